"""Decoding and validating inputs: a path, encoded bytes, a PIL image or a numpy array becomes an (H, W, 3)
uint8 RGB array, or one of the project's typed errors with a message a person can act on.

Two entry points:

- :func:`load_image`: the whole image at full resolution.
- :func:`load_photo`: a :class:`Photo`. An encoded image of more than :data:`DRAFT_MAX_PIXELS` pixels comes back
  reduced: a JPEG decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, Pillow's ``Image.draft``), any other
  format box-filtered right after decoding, before the RGB conversion. The face search then costs what that
  budget costs, not what the header claims; :meth:`Photo.full_resolution` decodes the whole image when (and
  only when) paste-back needs it.

Sizes are checked from the header before anything is decoded. Pillow's global limits are never changed.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from aipgan_hf.errors import (
    AIPGANError,
    ImageTooLargeError,
    InvalidImageError,
    TruncatedImageError,
    UnsupportedImageError,
)
from aipgan_hf.faces.geometry import IDENTITY, scale_affine
from aipgan_hf.faces.jpeg import DRAFT_MAX_PIXELS, check_jpeg_length, draft, reduced_to_full
from aipgan_hf.faces.pixels import DEFAULT_MAX_PIXELS, array_to_rgb, check_size, is_grey, pil_to_rgb, reduced_rgb

logger = logging.getLogger(__name__)

URL_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
"""A path that starts like this is a web address (https://, s3://): refused, nothing is downloaded."""

_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
_TRANSPOSES = {  # EXIF orientation -> the transpose that displays the image upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(eq=False)
class Photo:
    """A decoded photo, maybe at reduced scale, that remembers its full size and whether it is grey.

    Attributes:
        pixels: (h, w, 3) uint8 RGB: the full image, or a reduced copy of a large encoded image.
        size: (width, height) of the full-resolution image (after EXIF orientation).
        grey: every pixel has R == G == B (a grey file, or a black-and-white photo stored as colour).
        pixels_to_photo: (2, 3) map from ``pixels`` coordinates to full-resolution coordinates.
        icc_profile: the file's ICC colour profile where it describes RGB (a phone's Display P3), which the
            results carry on: their pixels are in the photo's colour space. None for sRGB-by-default files.
    """

    pixels: np.ndarray
    size: tuple[int, int]
    grey: bool
    pixels_to_photo: np.ndarray = field(default_factory=IDENTITY.copy)
    source: Any = field(default=None, repr=False)  # the path or bytes decoded again by full_resolution()
    max_pixels: int = DEFAULT_MAX_PIXELS
    icc_profile: bytes | None = field(default=None, repr=False)

    @property
    def reduced(self) -> bool:
        """Whether ``pixels`` is smaller than the full image."""
        return self.size != (self.pixels.shape[1], self.pixels.shape[0])

    def full_resolution(self) -> np.ndarray:
        """(H, W, 3) uint8: ``pixels`` itself, or the full decode of a reduced photo."""
        if not self.reduced:
            return self.pixels
        rgb = load_image(self.source, self.max_pixels)
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            raise InvalidImageError("the image changed while it was being processed; try again")
        return rgb


def load_image(image: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load any supported image input as an RGB array.

    Accepts a file path (``str`` or ``os.PathLike``; no web address), encoded bytes, a binary file object (an open
    file, ``io.BytesIO``: read from where it stands), a PIL image, a numpy array or a :class:`Photo`. EXIF
    orientation is applied. Grey, grey+alpha, RGBA (composited over white), CMYK, palette, 16-bit and float images
    are converted; float arrays are read as 0..1 when their maximum is at most 1, otherwise as 0..255.

    Args:
        image: the input.
        max_pixels: refuse images with more pixels than this (checked from the header, before decoding).

    Returns:
        (H, W, 3) uint8 RGB array, C-contiguous.

    Raises:
        InvalidImageError: not an image (wrong type, unreadable path, undecodable bytes, NaN values).
        TruncatedImageError: the file starts like an image but its data ends early.
        UnsupportedImageError: an array layout, dtype or image mode that cannot become RGB.
        ImageTooLargeError: more than ``max_pixels`` pixels.
        ImageTooSmallError: a side shorter than :data:`~aipgan_hf.faces.pixels.MIN_IMAGE_SIDE`.
    """
    if isinstance(image, Photo):
        return image.full_resolution()
    return _load(image, max_pixels, None).pixels


def load_photo(image: Any, max_pixels: int = DEFAULT_MAX_PIXELS, draft_pixels: int | None = DRAFT_MAX_PIXELS) -> Photo:
    """Like :func:`load_image`, but an encoded image (path or bytes) of more than ``draft_pixels`` pixels comes
    back at reduced scale; arrays and PIL images are used as they are.

    Args:
        image: any input :func:`load_image` accepts (a :class:`Photo` is returned as it is).
        max_pixels: refuse images with more pixels than this (the full size, from the header).
        draft_pixels: pixel budget of ``Photo.pixels``; ``None`` always decodes at full resolution.

    Raises:
        The errors of :func:`load_image`.
    """
    if isinstance(image, Photo):
        return image
    return _load(image, max_pixels, draft_pixels)


def _load(image: Any, max_pixels: int, draft_pixels: int | None) -> Photo:
    if image is None:
        raise InvalidImageError("no image was given (got None)")
    if isinstance(image, np.ndarray):
        rgb = array_to_rgb(image, max_pixels)
        return Photo(rgb, (rgb.shape[1], rgb.shape[0]), is_grey(rgb), max_pixels=max_pixels)
    if isinstance(image, Image.Image):  # the caller's object: never drafted
        return _decode_pil(image, max_pixels, "the image", None)
    refuse_web_address(image, InvalidImageError, "photo")
    if isinstance(image, (str, os.PathLike)):  # before file objects: some paths have a read() too (py.path)
        if not os.fspath(image):
            raise InvalidImageError("the file path is empty")
        return _decode_path(image, max_pixels, draft_pixels)
    if callable(getattr(image, "read", None)):  # an open file or io.BytesIO: read from where it stands
        image = _read_binary(image)
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        if not data:
            raise InvalidImageError("the image data is empty (0 bytes)")
        return _decode_stream(io.BytesIO(data), data[:16], max_pixels, "the image", draft_pixels, data)
    torch = sys.modules.get("torch")  # a tensor can only exist if torch was imported
    if torch is not None and isinstance(image, torch.Tensor):
        raise UnsupportedImageError(
            "got a torch tensor; pass a numpy array of shape (H, W, 3) (tensor_to_image converts model outputs)"
        )
    raise InvalidImageError(
        f"expected a file path, image bytes, a PIL image or a numpy array, got {type(image).__name__}"
    )


def refuse_web_address(path: Any, error: type[Exception], what: str) -> None:
    """``error`` where ``path`` is a web address (:data:`URL_SCHEME`): nothing is downloaded."""
    if isinstance(path, str) and URL_SCHEME.match(path):
        raise error(
            f"{_shown(path)} is a web address: aipgan-hf reads no network; download the {what} and pass its file"
        )


def _read_binary(stream: Any) -> bytes:
    """What a file object holds from where it stands; InvalidImageError for one open as text."""
    text_mode = isinstance(stream, io.TextIOBase) or "b" not in str(getattr(stream, "mode", "b"))
    try:
        data = None if text_mode else stream.read()
    except UnicodeDecodeError:  # a file object that decodes as it reads
        data = None
    if not isinstance(data, (bytes, bytearray)):
        raise InvalidImageError("the file is open as text; open the image in binary mode ('rb')")
    return data


def _shown(text: str, limit: int = 120) -> str:
    """A path as it appears in one-line messages: control characters escaped, long names shortened."""
    if not text.isprintable():
        text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 3 :]} ({len(text)} characters)"


def _decode_path(image: str | os.PathLike, max_pixels: int, draft_pixels: int | None) -> Photo:
    """Every failure to reach or read the file (missing, a directory, too long a name, no permission, a device,
    an I/O error) becomes an InvalidImageError naming it."""
    try:
        path = Path(image)
    except TypeError as error:  # os.PathLike whose __fspath__ returns something odd
        raise InvalidImageError(f"not a usable file path: {error}") from None
    name = _shown(str(path))
    try:
        status = path.stat()
        if stat.S_ISDIR(status.st_mode):
            raise InvalidImageError(f"{name} is a directory, not an image file")
        if not stat.S_ISREG(status.st_mode):
            raise InvalidImageError(f"{name} is not a regular file (a device, pipe or socket)")
        if status.st_size == 0:
            raise InvalidImageError(f"{name} is empty (0 bytes)")
        with open(path, "rb") as handle:
            head = handle.read(16)
            handle.seek(0)
            return _decode_stream(handle, head, max_pixels, name, draft_pixels, path)
    except AIPGANError:
        raise
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidImageError(f"file not found: {name}") from None
    except PermissionError:
        raise InvalidImageError(f"no permission to read {name}") from None
    except OSError as error:  # e.g. a file name over 255 characters, an unreadable device
        raise InvalidImageError(f"cannot read {name}: {error.strerror or type(error).__name__}") from None
    except ValueError as error:  # e.g. an embedded NUL character
        raise InvalidImageError(f"{name} is not a usable file path ({error})") from None


def _decode_stream(
    stream: BinaryIO, head: bytes, max_pixels: int, origin: str, draft_pixels: int | None, source: Any
) -> Photo:
    """Open (header only), check the size, then decode. PIL's own bomb limit is caught, never changed."""
    try:
        pil = Image.open(stream)
    except Image.DecompressionBombError as error:
        raise _bomb_error(error, max_pixels, origin) from None
    except MemoryError:
        raise ImageTooLargeError(f"{origin} is too large to open in the memory available") from None
    except UnidentifiedImageError:
        raise _unidentified_error(head, origin) from None
    except Exception as error:  # noqa: BLE001 -- Pillow's parsers raise many types (struct.error, IndexError, ...) on damaged headers
        failure = _unidentified_error(head, origin)
        if "truncat" in str(error).lower() and not isinstance(failure, TruncatedImageError):
            failure = TruncatedImageError(f"{origin} is truncated: its header ends early")
        raise failure from None
    with pil:
        if pil.format in ("JPEG", "MPO"):
            check_jpeg_length(stream, pil.size, origin)
        return _decode_pil(pil, max_pixels, origin, draft_pixels, source)


def _bomb_error(error: Exception, max_pixels: int, origin: str) -> ImageTooLargeError:
    """The project's message for Pillow's decompression-bomb refusal (Pillow's text is never shown)."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or max_pixels))
    size = f"{int(found.group(1)):,} pixels" if found else f"more than {limit:,} pixels"
    return ImageTooLargeError(f"{origin} is too large: {size}, more than the limit of {limit:,}; downscale it first")


HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
"""An ISO media file's major brands of HEIC / HEIF photos (an iPhone's default), which Pillow cannot open."""


def _unidentified_error(head: bytes, origin: str) -> InvalidImageError:
    for signature, name in _SIGNATURES.items():
        if head.startswith(signature):
            return TruncatedImageError(f"{origin} starts like a {name} file but is truncated or damaged in its header")
    if head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return InvalidImageError(f"{origin} is a HEIC / HEIF photo, which cannot be read here; save it as JPEG first")
    if head.lstrip()[:1] in (b"<", b"{", b"[") or _looks_like_text(head):
        return InvalidImageError(f"{origin} is not an image (it looks like text); use a JPEG, PNG or WebP photo")
    return InvalidImageError(f"{origin} is not an image in a known format; use a JPEG, PNG or WebP photo")


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(byte >= 9 for byte in head)


def _decode_pil(pil: Image.Image, max_pixels: int, origin: str, draft_pixels: int | None, source: Any = None) -> Photo:
    """Check the header size, decode, apply EXIF orientation, convert to RGB. With a ``draft_pixels`` budget a
    larger image comes back reduced: a JPEG decoded at 1/2, 1/4 or 1/8 scale, any other format box-filtered."""
    width, height = pil.size
    check_size(width, height, max_pixels, origin)
    factor = draft(pil, draft_pixels)
    drafted_size = pil.size
    _load_pixels(pil, max_pixels, origin)
    orientation = _orientation(pil, origin)
    if orientation != 1:
        pil = pil.transpose(_TRANSPOSES[orientation])
    size = (height, width) if orientation >= 5 else (width, height)
    if factor > 1:  # libjpeg decoded it at reduced scale
        rgb, matrix = (
            pil_to_rgb(pil, max_pixels, origin),
            reduced_to_full(factor, orientation, (width, height), drafted_size),
        )
    elif draft_pixels is not None and width * height > draft_pixels:
        factor = math.ceil(math.sqrt(width * height / draft_pixels))
        rgb, matrix = reduced_rgb(pil, factor, max_pixels, origin), scale_affine(factor)
    else:
        rgb, matrix = pil_to_rgb(pil, max_pixels, origin), IDENTITY.copy()
    return Photo(rgb, size, is_grey(rgb), matrix, source if factor > 1 else None, max_pixels, rgb_profile(pil))


def rgb_profile(pil: Image.Image) -> bytes | None:
    """``pil``'s embedded ICC profile where its colour space is RGB (bytes 16-19 of the header), else None: a CMYK
    or grey file's profile no longer describes the RGB pixels it is converted to."""
    profile = pil.info.get("icc_profile")
    return profile if isinstance(profile, bytes) and profile[16:20] == b"RGB " else None


def _load_pixels(pil: Image.Image, max_pixels: int, origin: str) -> None:
    try:
        pil.load()
    except Image.DecompressionBombError as error:
        raise _bomb_error(error, max_pixels, origin) from None
    except MemoryError:
        raise ImageTooLargeError(f"{origin} is too large to decode in the memory available") from None
    except Exception as error:  # noqa: BLE001 -- any decoder failure on hostile data means a damaged file
        message = " ".join(str(error).split())[:200]
        if "truncat" in message.lower() or isinstance(error, EOFError):
            raise TruncatedImageError(f"{origin} is truncated: its data ends before the image is complete") from None
        raise InvalidImageError(f"{origin} is damaged and cannot be decoded ({message})") from None


def _orientation(pil: Image.Image, origin: str) -> int:
    """The EXIF orientation (1..8); 1 when absent, invalid or unreadable (a broken EXIF block must not lose a photo)."""
    try:
        value = pil.getexif().get(0x0112, 1)
    except Exception as error:  # noqa: BLE001
        logger.warning("ignoring unreadable EXIF orientation in %s: %s", origin, error)
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSES else 1
