"""Faces in, faces out: image loading, face detection, alignment, paste-back and normalisation.

Everything that touches pixels outside the networks lives here, so training, evaluation and inference
cannot drift apart. Nothing here has weights of its own: faces are found with dlib's HOG detector
(``dlib.get_frontal_face_detector``), landmarks come from dlib's 68-point shape predictor and identity
descriptors from dlib's face-recognition ResNet, all read from the ``face_recognition_models`` package.

Coordinates are ``(x, y)`` in pixel-index units (the centre of pixel ``[row, col]`` is ``(col, row)``),
the convention of dlib landmarks and of :func:`aipgan_hf.landmarks.landmarks_to_heatmaps`.

Typical use::

    processor = FaceProcessor(resolution=128)
    photo = processor.load("portrait.jpg")             # (H, W, 3) uint8
    face = processor.align(photo)                      # AlignedFace, largest face
    x = image_to_tensor(face.crop)                     # (3, 128, 128) in [-1, 1]
    ...                                                # run a model on x -> y
    result = processor.paste_back(photo, tensor_to_image(y), face)
"""

from __future__ import annotations

import importlib.util
import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from aipgan_hf.errors import (
    CheckpointError,
    ConfigError,
    FaceIndexError,
    FaceTooSmallError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    NoFaceError,
    TruncatedImageError,
    UnsupportedImageError,
)
from aipgan_hf.landmarks import LEFT_EYE, NUM_LANDMARKS, RIGHT_EYE

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 50_000_000
"""Largest image (width x height) that is decoded; a guard against decompression bombs."""

MIN_IMAGE_SIDE = 16
"""Images with a side shorter than this are refused before any face search."""

DEFAULT_DETECTION_SIZE = 640
"""Longest side of the downscaled copy the face detector runs on."""

# Canonical face template, in units of the crop side. Measured as the Procrustes mean of dlib's 68
# landmarks on 358 LFW faces and made left-right symmetric. With the distance between the eye centres as
# the unit, the nose tip lies 0.552 below the eye line, the mouth corners 1.103 below it and 0.452 either
# side of the centre; the brows reach 0.37 above the eye line, the chin 1.94 below, the jaw is 2.36 wide.
# The crop spans 3.4 eye distances with the eye line 30 % from the top: the brows sit ~19 % from the top
# (room for raised brows and forehead wrinkles) and the chin ~87 % down (room for an open mouth).
_EYE_DISTANCE = 1.0 / 3.4
_EYE_LINE = 0.30
TEMPLATE_5 = np.array(
    [
        [0.5 - 0.5 * _EYE_DISTANCE, _EYE_LINE],  # right eye centre (subject's right, image left)
        [0.5 + 0.5 * _EYE_DISTANCE, _EYE_LINE],  # left eye centre
        [0.5, _EYE_LINE + 0.552 * _EYE_DISTANCE],  # nose tip (point 30)
        [0.5 - 0.452 * _EYE_DISTANCE, _EYE_LINE + 1.103 * _EYE_DISTANCE],  # right mouth corner (point 48)
        [0.5 + 0.452 * _EYE_DISTANCE, _EYE_LINE + 1.103 * _EYE_DISTANCE],  # left mouth corner (point 54)
    ],
    dtype=np.float64,
)
"""(5, 2) template points (x, y) as fractions of the crop side."""

# Eyes count double and mouth corners half in the fit: eyes and nose stay put across expressions, mouth
# corners move with every smile. On LFW this also halves the eye-centre error of the fit.
TEMPLATE_WEIGHTS = np.array([2.0, 2.0, 1.0, 0.5, 0.5])

# Where dlib's detector box falls in a canonical crop (same measurement): x0, y0, x1, y1 as fractions.
_CANONICAL_BOX = (
    0.5 - 1.207 * _EYE_DISTANCE,
    _EYE_LINE - 0.749 * _EYE_DISTANCE,
    0.5 + 1.207 * _EYE_DISTANCE,
    _EYE_LINE + 1.755 * _EYE_DISTANCE,
)

# Face-mask ellipse (fractions of the crop side): jaw to jaw plus a little, forehead to below the chin.
_MASK_CENTRE = (0.5, 0.51)
_MASK_AXES = (0.37, 0.39)

# Fallback for tight crops: centred square boxes of these sizes (times the image's short side) are tried
# as the face box, and a 68-point fit is trusted only if moving the start box by 10 % (or shrinking it by
# 15 %) barely moves the landmarks (mean movement / box side below the limit). On 60 LFW faces cut to
# their detector box (+-10 %) and resized to 128 px, 95-98 % pass (63 % when cut 20 % inside the box);
# on 96 non-face images (skimage photos, noise, flat colour) the smallest value seen was 0.040.
_TIGHT_CROP_BOX_SCALES = (0.9, 1.15, 1.4)
_FIT_CONSISTENCY_LIMIT = 0.035
_TIGHT_CROP_ASPECT = (0.75, 1.34)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_KNOWN_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    _PNG_SIGNATURE: "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def load_image(image: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load any supported image input as an RGB array.

    Accepts a file path (``str`` or ``os.PathLike``), encoded bytes, a PIL image or a numpy array.
    EXIF orientation is applied. Grey, grey+alpha, RGBA (composited over white), CMYK, palette,
    16-bit and float images are converted; float arrays are read as 0..1 when their maximum is at most 1,
    otherwise as 0..255.

    Args:
        image: the input.
        max_pixels: refuse images with more pixels than this (checked from the header, before decoding).

    Returns:
        (H, W, 3) uint8 RGB array, C-contiguous.

    Raises:
        InvalidImageError: not an image (wrong type, missing file, undecodable bytes, NaN values).
        TruncatedImageError: the file starts like an image but its data ends early.
        UnsupportedImageError: an array layout, dtype or image mode that cannot become RGB.
        ImageTooLargeError: more than ``max_pixels`` pixels.
        ImageTooSmallError: a side shorter than :data:`MIN_IMAGE_SIDE`.
    """
    if image is None:
        raise InvalidImageError("no image was given (got None)")
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image, max_pixels)
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image, max_pixels, "the image")
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _decode_bytes(bytes(image), max_pixels)
    if isinstance(image, (str, os.PathLike)):
        return _decode_path(Path(image), max_pixels)
    if isinstance(image, torch.Tensor):
        raise UnsupportedImageError(
            "got a torch tensor; pass a numpy array of shape (H, W, 3) (tensor_to_image converts model outputs)"
        )
    raise InvalidImageError(
        f"expected a file path, image bytes, a PIL image or a numpy array, got {type(image).__name__}"
    )


def _decode_path(path: Path, max_pixels: int) -> np.ndarray:
    if not path.exists():
        raise InvalidImageError(f"file not found: {path}")
    if path.is_dir():
        raise InvalidImageError(f"{path} is a directory, not an image file")
    try:
        if path.stat().st_size == 0:
            raise InvalidImageError(f"{path} is empty (0 bytes)")
        with open(path, "rb") as handle:
            head = handle.read(16)
            handle.seek(0)
            return _decode_stream(handle, head, max_pixels, str(path))
    except PermissionError:
        raise InvalidImageError(f"no permission to read {path}") from None
    except OSError as error:  # e.g. a path too long or an unreadable device
        raise InvalidImageError(f"cannot read {path}: {error}") from None


def _decode_bytes(data: bytes, max_pixels: int) -> np.ndarray:
    if not data:
        raise InvalidImageError("the image data is empty (0 bytes)")
    return _decode_stream(io.BytesIO(data), data[:16], max_pixels, "the image")


def _decode_stream(stream: BinaryIO, head: bytes, max_pixels: int, origin: str) -> np.ndarray:
    """Open (header only), check the size, then decode. PIL's own bomb limit is caught, never changed."""
    try:
        pil = Image.open(stream)
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"{origin} is too large to decode safely: {error}") from None
    except (UnidentifiedImageError, SyntaxError, ValueError, EOFError):
        raise _unidentified_error(head, origin) from None
    except OSError as error:
        failure = _unidentified_error(head, origin)
        if "truncat" in str(error).lower() and not isinstance(failure, TruncatedImageError):
            failure = TruncatedImageError(f"{origin} is truncated: its header ends early")
        raise failure from None
    with pil:
        return _pil_to_rgb(pil, max_pixels, origin)


def _unidentified_error(head: bytes, origin: str) -> InvalidImageError:
    for signature, name in _KNOWN_SIGNATURES.items():
        if head.startswith(signature):
            return TruncatedImageError(f"{origin} starts like a {name} file but is truncated or damaged in its header")
    if head.lstrip()[:1] in (b"<", b"{", b"[") or _looks_like_text(head):
        return InvalidImageError(f"{origin} is not an image (it looks like text); use a JPEG, PNG or WebP photo")
    return InvalidImageError(f"{origin} is not an image in a known format; use a JPEG, PNG or WebP photo")


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(byte >= 9 for byte in head)


def _check_size(width: int, height: int, max_pixels: int, origin: str) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{origin} is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,}; downscale it first"
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ImageTooSmallError(
            f"{origin} is only {width}x{height} pixels; it must be at least {MIN_IMAGE_SIDE} pixels on each side"
        )


def _pil_to_rgb(pil: Image.Image, max_pixels: int, origin: str) -> np.ndarray:
    """Decode (header size checked first), apply EXIF orientation and convert to (H, W, 3) uint8."""
    width, height = pil.size
    _check_size(width, height, max_pixels, origin)
    try:
        pil.load()
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        message = str(error)
        if "truncat" in message.lower() or isinstance(error, EOFError):
            raise TruncatedImageError(f"{origin} is truncated: its data ends before the image is complete") from None
        raise InvalidImageError(f"{origin} is damaged and cannot be decoded ({message})") from None
    try:
        pil = ImageOps.exif_transpose(pil)
    except Exception as error:  # a broken EXIF block must not lose an otherwise good photo
        logger.warning("ignoring unreadable EXIF orientation in %s: %s", origin, error)
    mode = pil.mode
    if mode == "RGB":
        return np.ascontiguousarray(np.asarray(pil))
    if mode.startswith("I;16"):
        return _grey_to_rgb(_scale_16bit(np.asarray(pil)))
    if mode == "I":
        return _array_to_rgb(np.asarray(pil), max_pixels)
    if mode == "F":
        return _array_to_rgb(np.asarray(pil), max_pixels)
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in pil.info)
    try:
        if has_alpha:
            return _composite_on_white(np.asarray(pil.convert("RGBA")))
        return np.ascontiguousarray(np.asarray(pil.convert("RGB")))
    except (ValueError, OSError) as error:
        raise UnsupportedImageError(f"{origin} has image mode {mode!r}, which cannot be converted to RGB") from error


def _array_to_rgb(array: np.ndarray, max_pixels: int) -> np.ndarray:
    """Numpy input: (H, W), (H, W, 1|3|4) of uint8, uint16, other integers in 0..255, or float."""
    dtype = array.dtype
    if dtype == np.bool_:
        raise UnsupportedImageError("a boolean array is a mask, not a photo; pass a uint8 image of shape (H, W, 3)")
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise UnsupportedImageError(
            f"arrays of dtype {dtype} are not images; use uint8 (0..255), uint16 (0..65535) or float (0..1)"
        )
    shape = array.shape
    if array.ndim == 3 and shape[0] in (1, 3, 4) and shape[2] > 4:
        raise UnsupportedImageError(
            f"array of shape {shape} looks channel-first; transpose it to (H, W, C) with array.transpose(1, 2, 0)"
        )
    if not (array.ndim == 2 or (array.ndim == 3 and shape[2] in (1, 3, 4))):
        raise UnsupportedImageError(
            f"array of shape {shape} is not an image; expected (H, W), (H, W, 3) or (H, W, 4) (RGBA)"
        )
    _check_size(shape[1], shape[0], max_pixels, "the image")
    array = _to_uint8(array)
    if array.ndim == 2:
        return _grey_to_rgb(array)
    if shape[2] == 1:
        return _grey_to_rgb(array[..., 0])
    if shape[2] == 4:
        return _composite_on_white(array)
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return _scale_16bit(array)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InvalidImageError("the image array contains NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 255:
            raise UnsupportedImageError(
                f"float image values span [{low:g}, {high:g}]; expected 0..1 (or 0..255)"
            )
        scale = 255.0 if high <= 1.0 else 1.0
        return np.rint(array.astype(np.float32) * scale).astype(np.uint8)
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > 255:
        if low >= 0 and high <= 65535:
            return _scale_16bit(array.astype(np.uint16))
        raise UnsupportedImageError(
            f"integer image values span [{low}, {high}]; expected 0..255 (uint8) or 0..65535 (16-bit)"
        )
    return array.astype(np.uint8)


def _scale_16bit(array: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (65535 / 257 = 255)."""
    return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))  # (H, W) -> (H, W, 3)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 -> (H, W, 3) uint8, transparent pixels become white."""
    alpha = rgba[..., 3:4].astype(np.uint16)  # (H, W, 1)
    rgb = rgba[..., :3].astype(np.uint16)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return np.ascontiguousarray(out.astype(np.uint8))


# --------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------


def image_to_tensor(image: np.ndarray | Image.Image) -> torch.Tensor:
    """uint8 RGB image(s) to a float tensor in [-1, 1].

    Args:
        image: (H, W, 3) or (B, H, W, 3) uint8 array, or a PIL image.

    Returns:
        (3, H, W) or (B, 3, H, W) float32 tensor, ``x / 127.5 - 1``.
    """
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        found = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise UnsupportedImageError(f"image_to_tensor expects a uint8 array, got {found}")
    if image.ndim not in (3, 4) or image.shape[-1] != 3:
        raise UnsupportedImageError(
            f"image_to_tensor expects shape (H, W, 3) or (B, H, W, 3), got {image.shape}"
        )
    # numpy arithmetic: single-threaded, so tiny crops do not wait on torch's thread pool
    normalised = image.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    normalised = np.moveaxis(normalised, -1, -3)  # (..., H, W, 3) -> (..., 3, H, W)
    return torch.from_numpy(np.ascontiguousarray(normalised))


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`image_to_tensor`: clamps to [-1, 1] and rounds to uint8.

    Args:
        tensor: (3, H, W) or (B, 3, H, W) float tensor in [-1, 1] (NaN becomes 0).

    Returns:
        (H, W, 3) or (B, H, W, 3) uint8 array.
    """
    if tensor.ndim not in (3, 4) or tensor.shape[-3] != 3:
        raise UnsupportedImageError(f"tensor_to_image expects (3, H, W) or (B, 3, H, W), got {tuple(tensor.shape)}")
    values = tensor.detach().cpu().float().numpy()
    values = np.clip(np.nan_to_num(values, nan=0.0), -1.0, 1.0)
    values = np.rint((values + 1.0) * 127.5).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(values, -3, -1))  # (..., 3, H, W) -> (..., H, W, 3)


# --------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------


def template_points(resolution: int) -> np.ndarray:
    """The 5 canonical points (eye centres, nose tip, mouth corners) in pixel-index coordinates.

    Args:
        resolution: side of the square crop.

    Returns:
        (5, 2) float64 (x, y).
    """
    return TEMPLATE_5 * resolution - 0.5


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip and mouth corners from 68 landmarks.

    Args:
        landmarks: (68, 2) (x, y).

    Returns:
        (5, 2) float64, in :data:`TEMPLATE_5` order.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    return np.stack(
        [
            landmarks[RIGHT_EYE].mean(axis=0),
            landmarks[LEFT_EYE].mean(axis=0),
            landmarks[30],  # nose tip
            landmarks[48],  # right mouth corner
            landmarks[54],  # left mouth corner
        ]
    )


def similarity_transform(source: np.ndarray, destination: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted least-squares similarity (rotation, uniform scale, translation; no reflection), Umeyama 1991.

    Args:
        source: (N, 2) points.
        destination: (N, 2) points.
        weights: optional (N,) non-negative point weights (equal by default).

    Returns:
        (2, 3) float64 matrix ``M`` with ``destination ~= source @ M[:, :2].T + M[:, 2]``.
    """
    source = np.asarray(source, dtype=np.float64)
    destination = np.asarray(destination, dtype=np.float64)
    weights = np.ones(len(source)) if weights is None else np.asarray(weights, dtype=np.float64)
    weights = weights / weights.sum()
    source_mean = weights @ source  # (2,)
    destination_mean = weights @ destination
    source_centred, destination_centred = source - source_mean, destination - destination_mean
    covariance = (destination_centred * weights[:, None]).T @ source_centred  # (2, 2)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0 else -1.0])
    rotation = u @ np.diag(sign) @ vt
    variance = weights @ (source_centred**2).sum(axis=1)
    if variance <= 0:
        raise NoFaceError("the landmarks collapsed to a single point; no usable face")
    scale = float((singular * sign).sum() / variance)
    translation = destination_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine matrix."""
    linear_inverse = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear_inverse, -(linear_inverse @ matrix[:, 2])[:, None]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a (2, 3) affine matrix."""
    return np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


def _pil_coefficients(output_to_input: np.ndarray) -> tuple[float, ...]:
    """PIL's AFFINE data for an output->input map given in pixel-index coordinates.

    PIL samples in continuous coordinates (pixel centres at +0.5), hence the half-pixel shifts.
    """
    linear = output_to_input[:, :2]
    offset = output_to_input[:, 2] + 0.5 - linear @ np.array([0.5, 0.5])
    return tuple(np.hstack([linear, offset[:, None]]).ravel().tolist())


def _padded_region(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` where parts outside the image repeat the nearest edge pixel."""
    height, width = image.shape[:2]
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        return image[y0:y1, x0:x1]  # a view, no copy
    rows = np.clip(np.arange(y0, y1), 0, height - 1)
    cols = np.clip(np.arange(x0, x1), 0, width - 1)
    return image[np.ix_(rows, cols)]  # (y1 - y0, x1 - x0, 3)


def warp_to_crop(image: np.ndarray, matrix: np.ndarray, resolution: int) -> np.ndarray:
    """Resample ``image`` into a square crop through a photo->crop similarity matrix.

    Strong downscales are pre-filtered with a box filter (``Image.reduce``) so the crop does not alias;
    areas outside the photo repeat its edge pixels.

    Args:
        image: (H, W, 3) uint8 photo.
        matrix: (2, 3) photo->crop matrix in pixel-index coordinates.
        resolution: crop side.

    Returns:
        (resolution, resolution, 3) uint8 crop.
    """
    crop_to_photo = invert_affine(matrix)
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))  # crop pixels per photo pixel
    factor = max(1, int(math.floor(1.0 / scale))) if scale < 0.5 else 1
    edge = resolution - 0.5
    corners = apply_affine(crop_to_photo, np.array([[-0.5, -0.5], [edge, -0.5], [-0.5, edge], [edge, edge]]))
    margin = 2 * factor + 2
    x0 = int(math.floor(corners[:, 0].min())) - margin
    y0 = int(math.floor(corners[:, 1].min())) - margin
    x1 = int(math.ceil(corners[:, 0].max())) + margin
    y1 = int(math.ceil(corners[:, 1].max())) + margin
    x1 += (-(x1 - x0)) % factor  # whole reduce blocks
    y1 += (-(y1 - y0)) % factor
    region = Image.fromarray(_padded_region(image, x0, y0, x1, y1))
    if factor > 1:
        region = region.reduce(factor)
    # region pixel r (after reduce) covers photo pixels; photo = factor * r + (factor - 1) / 2 + origin
    region_to_photo = np.array(
        [[factor, 0.0, x0 + (factor - 1) / 2], [0.0, factor, y0 + (factor - 1) / 2]], dtype=np.float64
    )
    crop_to_region = _compose(invert_affine(region_to_photo), crop_to_photo)
    crop = region.transform(
        (resolution, resolution),
        Image.Transform.AFFINE,
        data=_pil_coefficients(crop_to_region),
        resample=Image.Resampling.BILINEAR,
    )
    return np.asarray(crop)


def face_mask(resolution: int, feather: float = 0.15) -> np.ndarray:
    """Feathered elliptical face mask in canonical-crop space, used by paste-back.

    The ellipse covers jaw to jaw and forehead to just below the chin of the canonical template; the
    value is 1 inside, falls smoothly to 0 over the outer ``feather`` fraction of the radius, and is
    exactly 0 outside the ellipse.

    Args:
        resolution: crop side.
        feather: width of the soft edge as a fraction of the ellipse radius, in (0, 1].

    Returns:
        (resolution, resolution) float32 in [0, 1].
    """
    if not 0 < feather <= 1:
        raise ConfigError(f"feather must be in (0, 1], got {feather}")
    coordinates = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution  # pixel centres in [0, 1]
    dx = (coordinates[None, :] - _MASK_CENTRE[0]) / _MASK_AXES[0]  # (1, R)
    dy = (coordinates[:, None] - _MASK_CENTRE[1]) / _MASK_AXES[1]  # (R, 1)
    radius = np.sqrt(dx**2 + dy**2)  # (R, R) elliptical radius, 1 on the ellipse
    ramp = np.clip((1.0 - radius) / feather, 0.0, 1.0)
    return (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32)  # smoothstep


# --------------------------------------------------------------------------------------------------
# Faces
# --------------------------------------------------------------------------------------------------


@dataclass
class AlignedFace:
    """One face, aligned to the canonical template.

    Attributes:
        crop: (R, R, 3) uint8 aligned face.
        matrix: (2, 3) float64 similarity transform, photo (x, y) -> crop (x, y).
        landmarks: (68, 2) float32 landmarks in photo coordinates.
        crop_landmarks: (68, 2) float32 landmarks in crop coordinates.
        box: detector box in the photo, (x0, y0, x1, y1).
        photo_size: (width, height) of the photo the face was aligned in (None when unknown).
    """

    crop: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray
    crop_landmarks: np.ndarray
    box: tuple[float, float, float, float]
    photo_size: tuple[int, int] | None = None

    @property
    def resolution(self) -> int:
        """Side of the crop."""
        return int(self.crop.shape[0])


@dataclass
class DetectedFace:
    """A face found in a photo, before alignment.

    Attributes:
        box: face box in the photo, (x0, y0, x1, y1).
        landmarks: (68, 2) float32 landmarks in photo coordinates.
        method: how it was found: "detector", "padded", "rotated +25", "rotated -25", "tight-crop" or "given".
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    method: str

    @property
    def size(self) -> float:
        """Side of the face box in photo pixels (what ``min_face_size`` is compared with)."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def dlib_model_path(filename: str) -> Path:
    """Path of a model file shipped by the ``face_recognition_models`` package (never imported: its
    ``__init__`` needs ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "the face_recognition_models package is not installed (pip install face_recognition_models)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / filename
    if not path.is_file():
        raise CheckpointError(f"dlib model file {path} is missing; reinstall face_recognition_models")
    return path


class FaceProcessor:
    """Finds, aligns and pastes back faces at a fixed crop resolution.

    dlib models load on first use and belong to this instance (no module-level model state). Detection
    runs on a grey copy whose longest side is at most ``detection_size``; landmarks are then fitted at
    full resolution. The HOG detector sees faces of about 80 px and more in that copy; only when it finds
    none does the search go on: the copy upsampled 2x (faces from ~40 px), the copy with a border (tight
    crops), the copy rotated by +-25 degrees (tilted heads), and last, for a near-square image, centred
    boxes about the image's size, kept only if the 68-point fit in them is stable. To find small faces
    next to a large one (group photos), raise ``detection_size``.

    Args:
        resolution: side of the aligned crop (any size, e.g. 64, 128, 256).
        min_face_size: smallest accepted face, as the side of the detector box in photo pixels.
        max_pixels: pixel cap for decoded images (decompression-bomb guard).
        detection_size: longest side of the copy the detector runs on.
    """

    def __init__(
        self,
        resolution: int = 128,
        min_face_size: int = 32,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        detection_size: int = DEFAULT_DETECTION_SIZE,
    ) -> None:
        if not isinstance(resolution, int) or resolution < 16:
            raise ConfigError(f"resolution must be an integer of at least 16, got {resolution!r}")
        if not isinstance(min_face_size, int) or min_face_size < 1:
            raise ConfigError(f"min_face_size must be a positive integer, got {min_face_size!r}")
        if not isinstance(max_pixels, int) or max_pixels < MIN_IMAGE_SIDE**2:
            raise ConfigError(f"max_pixels must be an integer of at least {MIN_IMAGE_SIDE**2}, got {max_pixels!r}")
        if not isinstance(detection_size, int) or detection_size < 80:
            raise ConfigError(f"detection_size must be an integer of at least 80, got {detection_size!r}")
        self.resolution = resolution
        self.min_face_size = min_face_size
        self.max_pixels = max_pixels
        self.detection_size = detection_size
        self._detector: Any = None
        self._predictor: Any = None
        self._recognizer: Any = None
        self._mask_cache: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict[str, Any]:
        # dlib models are reloaded lazily in the receiving process (e.g. datasets.map workers)
        state = self.__dict__.copy()
        state.update(_detector=None, _predictor=None, _recognizer=None)
        return state

    def __repr__(self) -> str:
        return (
            f"FaceProcessor(resolution={self.resolution}, min_face_size={self.min_face_size}, "
            f"max_pixels={self.max_pixels}, detection_size={self.detection_size})"
        )

    # ----- models -----------------------------------------------------------------------------

    @property
    def detector(self) -> Any:
        """dlib HOG frontal face detector (loaded on first use)."""
        if self._detector is None:
            import dlib

            self._detector = dlib.get_frontal_face_detector()
        return self._detector

    @property
    def predictor(self) -> Any:
        """dlib 68-point shape predictor (loaded on first use)."""
        if self._predictor is None:
            import dlib

            self._predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))
        return self._predictor

    @property
    def recognizer(self) -> Any:
        """dlib face-recognition ResNet (loaded on first use)."""
        if self._recognizer is None:
            import dlib

            self._recognizer = dlib.face_recognition_model_v1(
                str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat"))
            )
        return self._recognizer

    # ----- public API ---------------------------------------------------------------------------

    def load(self, image: Any) -> np.ndarray:
        """:func:`load_image` with this processor's pixel cap, refusing images too small for a face.

        Returns:
            (H, W, 3) uint8 RGB.
        """
        rgb = load_image(image, max_pixels=self.max_pixels)
        height, width = rgb.shape[:2]
        if min(height, width) < self.min_face_size:
            raise ImageTooSmallError(
                f"the image is only {width}x{height} pixels; faces must be at least {self.min_face_size} "
                f"pixels wide, so the image must be at least that on each side"
            )
        return rgb

    def find_faces(self, image: Any) -> list[DetectedFace]:
        """Boxes and 68 landmarks of all faces of at least ``min_face_size`` pixels, largest first (no warping).

        Raises:
            NoFaceError: no face found.
            FaceTooSmallError: faces were found but all are smaller than ``min_face_size``.
        """
        return self._usable_faces(self.load(image))

    def detect(self, image: Any) -> list[AlignedFace]:
        """All faces of at least ``min_face_size`` pixels, aligned, largest first.

        Raises:
            NoFaceError: no face found.
            FaceTooSmallError: faces were found but all are smaller than ``min_face_size``.
        """
        rgb = self.load(image)
        return [self._align_detection(rgb, detection) for detection in self._usable_faces(rgb)]

    def align(self, image: Any, face_index: int | None = None) -> AlignedFace:
        """Detect and align one face.

        Args:
            image: any input :func:`load_image` accepts.
            face_index: which face, counting from 0 in order of decreasing size; ``None`` is the largest.

        Returns:
            The aligned face.

        Raises:
            NoFaceError, FaceTooSmallError, FaceIndexError, and the errors of :func:`load_image`.
        """
        if face_index is not None and (
            isinstance(face_index, bool) or not isinstance(face_index, (int, np.integer)) or face_index < 0
        ):
            raise FaceIndexError(f"face index must be a whole number 0 or more, got {face_index!r}")
        rgb = self.load(image)
        faces = self._usable_faces(rgb)
        index = 0 if face_index is None else int(face_index)
        if index >= len(faces):
            found = f"{len(faces)} face" + ("s" if len(faces) != 1 else "")
            raise FaceIndexError(
                f"face index {index} asked for, but only {found} found (valid indices 0..{len(faces) - 1})"
            )
        return self._align_detection(rgb, faces[index])

    def align_with_landmarks(
        self, image: Any, landmarks: np.ndarray, box: tuple[float, ...] | None = None
    ) -> AlignedFace:
        """Align a face whose 68 landmarks are already known (no detection).

        Args:
            image: the photo.
            landmarks: (68, 2) photo coordinates.
            box: optional face box; defaults to the landmarks' bounding box.
        """
        rgb = load_image(image, max_pixels=self.max_pixels)
        landmarks = np.asarray(landmarks, dtype=np.float32)
        if landmarks.shape != (NUM_LANDMARKS, 2):
            raise ConfigError(f"landmarks must have shape ({NUM_LANDMARKS}, 2), got {landmarks.shape}")
        if box is None:
            box = (*landmarks.min(axis=0).tolist(), *landmarks.max(axis=0).tolist())
        return self._align_detection(rgb, DetectedFace(tuple(float(v) for v in box), landmarks, "given"))

    def landmarks68(self, image: Any, box: tuple[float, float, float, float]) -> np.ndarray:
        """Fit dlib's 68 landmarks inside a face box.

        Args:
            image: the photo (any :func:`load_image` input; pass an (H, W, 3) uint8 array to avoid copies).
            box: (x0, y0, x1, y1) face box in photo pixels.

        Returns:
            (68, 2) float32 (x, y) photo coordinates.
        """
        rgb = image if _is_rgb_uint8(image) else load_image(image, max_pixels=self.max_pixels)
        return self._fit_landmarks(np.ascontiguousarray(rgb), box)

    def paste_mask(
        self, photo_shape: tuple[int, ...], aligned: AlignedFace, face_resolution: int | None = None
    ) -> np.ndarray:
        """The blending weight :meth:`paste_back` uses, in photo space.

        Args:
            photo_shape: (H, W, ...) of the photo.
            aligned: the face the crop came from.
            face_resolution: side of the face being pasted (defaults to the crop's).

        Returns:
            (H, W) uint8 alpha, 0 where the photo is kept exactly, 255 where the face replaces it.
        """
        height, width = photo_shape[:2]
        alpha, (x0, y0, x1, y1) = self._warped_alpha(height, width, aligned, face_resolution or aligned.resolution)
        full = np.zeros((height, width), dtype=np.uint8)
        if alpha is not None:
            full[y0:y1, x0:x1] = alpha
        return full

    def paste_back(
        self, photo: np.ndarray, face: np.ndarray | Image.Image, aligned: AlignedFace, weight: np.ndarray | None = None
    ) -> np.ndarray:
        """Warp a face crop back into the photo and blend it in with a feathered mask.

        Only pixels where the warped :func:`face_mask` is non-zero change; every other pixel of the
        returned photo is bit-identical to the input.

        Args:
            photo: (H, W, 3) uint8, the photo ``aligned`` was computed on.
            face: (S, S, 3) uint8 face in canonical-crop space (any S; usually the crop resolution).
            aligned: the alignment of that face.
            weight: optional (S, S) float in [0, 1], multiplied into the face mask: where it is 0 the photo
                keeps its own pixels. The pipeline passes the generator's repaint mask, so regions the model
                left unchanged keep the photo's full resolution instead of the crop's.

        Returns:
            (H, W, 3) uint8 new photo (the input is not modified).
        """
        if not _is_rgb_uint8(photo):
            raise UnsupportedImageError("paste_back expects the photo as an (H, W, 3) uint8 array")
        if isinstance(face, Image.Image):
            face = np.asarray(face.convert("RGB"))
        if not _is_rgb_uint8(face) or face.shape[0] != face.shape[1]:
            shape = getattr(face, "shape", None)
            raise UnsupportedImageError(f"paste_back expects a square (S, S, 3) uint8 face, got {shape}")
        height, width = photo.shape[:2]
        size = face.shape[0]
        if weight is not None and np.shape(weight) != (size, size):
            raise ConfigError(f"paste_back weight must be ({size}, {size}) like the face, got {np.shape(weight)}")
        alpha, (x0, y0, x1, y1) = self._warped_alpha(height, width, aligned, size, weight)
        result = photo.copy()
        if alpha is None:
            return result
        photo_to_face = _rescale_matrix(aligned.matrix, size / aligned.resolution)
        region_to_face = photo_to_face.copy()
        region_to_face[:, 2] += photo_to_face[:, :2] @ np.array([x0, y0], dtype=np.float64)
        warped = Image.fromarray(np.ascontiguousarray(face)).transform(
            (x1 - x0, y1 - y0),
            Image.Transform.AFFINE,
            data=_pil_coefficients(region_to_face),
            resample=Image.Resampling.BILINEAR,
        )
        weight = alpha[..., None].astype(np.uint16)  # (h, w, 1)
        original = photo[y0:y1, x0:x1].astype(np.uint16)
        blended = (original * (255 - weight) + np.asarray(warped).astype(np.uint16) * weight + 127) // 255
        result[y0:y1, x0:x1] = blended.astype(np.uint8)  # alpha 0 gives back the original exactly
        return result

    def descriptor(self, image_or_crop: Any, aligned: AlignedFace | None = None) -> np.ndarray:
        """128-d dlib face-recognition descriptor (identity embedding; same person if distance < ~0.6).

        Args:
            image_or_crop: a photo, or an aligned crop (e.g. a generated face).
            aligned: optional alignment to reuse instead of detecting. The image is taken to be in
                ``aligned``'s crop frame (``crop_landmarks`` are used) when it has the crop's shape and is
                not the photo the face was aligned in (judged by ``aligned.photo_size``); otherwise it is
                that photo (``landmarks``).

        Returns:
            (128,) float32.
        """
        import dlib

        rgb = self.load(image_or_crop)
        height, width = rgb.shape[:2]
        if aligned is None:
            detection = self._usable_faces(rgb)[0]
            landmarks, box = detection.landmarks, detection.box
        elif rgb.shape == aligned.crop.shape and aligned.photo_size != (width, height):
            landmarks = aligned.crop_landmarks
            x0, y0, x1, y1 = _CANONICAL_BOX
            box = (x0 * width, y0 * height, x1 * width, y1 * height)
        else:
            landmarks, box = aligned.landmarks, aligned.box
        points = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in landmarks])
        shape = dlib.full_object_detection(_dlib_rectangle(box), points)
        return np.asarray(self.recognizer.compute_face_descriptor(rgb, shape), dtype=np.float32)

    # ----- internals ----------------------------------------------------------------------------

    def _usable_faces(self, rgb: np.ndarray) -> list[DetectedFace]:
        detections = self._find_faces(rgb)
        if not detections:
            raise NoFaceError(
                "no face found in the image; use a photo with a clearly visible, roughly frontal face "
                f"at least {self.min_face_size} pixels wide"
            )
        usable = [detection for detection in detections if detection.size >= self.min_face_size]
        if not usable:
            raise FaceTooSmallError(
                f"the largest face found is {detections[0].size:.0f} pixels wide; faces must be at least "
                f"{self.min_face_size} pixels wide (use a closer or higher-resolution photo)"
            )
        return usable

    def _find_faces(self, rgb: np.ndarray) -> list[DetectedFace]:
        """All faces, largest first: the detector on a downscaled grey copy (then upsampled), then the
        fallbacks for tight crops and tilted heads. Landmarks are always fitted at full resolution."""
        rgb = np.ascontiguousarray(rgb)
        height, width = rgb.shape[:2]
        grey = Image.fromarray(rgb).convert("L")
        scale = min(1.0, self.detection_size / max(height, width))
        if scale < 1.0:
            small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
            grey = grey.resize(small_size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        small = np.asarray(grey)
        small_to_photo = np.array([[width / small.shape[1], 0.0, 0.0], [0.0, height / small.shape[0], 0.0]])
        side = max(small.shape)
        upsample = _upsampling(side, 400)

        # 1. the detector on the small copy, 2. once more at twice the size for smaller faces
        boxes = self._run_detector(small, upsample)
        if not boxes and side * 2 ** (upsample + 1) <= 1400:
            boxes = self._run_detector(small, upsample + 1)
        if boxes:
            return self._fit_boxes(rgb, boxes, small_to_photo, "detector")
        # 3. tight crops: give the detector a border to see the face outline against
        pad = max(8, round(0.3 * side))
        padded = np.pad(small, pad, mode="edge")
        boxes = self._run_detector(padded, _upsampling(max(padded.shape), 400))
        if boxes:
            padded_to_photo = small_to_photo.copy()
            padded_to_photo[:, 2] -= small_to_photo[:, :2] @ np.array([pad, pad], dtype=np.float64)
            return self._fit_boxes(rgb, boxes, padded_to_photo, "padded")
        # 4. tilted heads: the HOG detector only finds roughly upright faces
        for angle in (25.0, -25.0):
            rotated_small, small_to_rotated = _rotate(small, angle)
            boxes = self._run_detector(rotated_small, _upsampling(max(rotated_small.shape), 400))
            if boxes:
                rotated_to_photo = _compose(small_to_photo, invert_affine(small_to_rotated))
                return self._fit_rotated_boxes(rgb, boxes, rotated_to_photo, angle)
        # 5. the image is itself a tight face crop
        fallback = self._tight_crop_face(rgb)
        return [] if fallback is None else [fallback]

    def _fit_boxes(
        self, rgb: np.ndarray, boxes: list[tuple[float, ...]], to_photo: np.ndarray, method: str
    ) -> list[DetectedFace]:
        """Detector boxes (in a scaled/shifted copy) -> photo boxes with 68 landmarks, largest first."""
        detections = []
        for x0, y0, x1, y1 in boxes:
            (px0, py0), (px1, py1) = apply_affine(to_photo, np.array([[x0, y0], [x1, y1]]))
            box = (float(px0), float(py0), float(px1), float(py1))
            detections.append(DetectedFace(box, self._fit_landmarks(rgb, box), method))
        detections.sort(key=lambda detection: -detection.size)
        logger.debug("found %d face(s) by %s", len(detections), method)
        return detections

    def _fit_rotated_boxes(
        self, rgb: np.ndarray, boxes: list[tuple[float, ...]], rotated_to_photo: np.ndarray, angle: float
    ) -> list[DetectedFace]:
        """Boxes found in a rotated copy: fit landmarks in the photo rotated the same way, map them back."""
        rotated_photo, photo_to_rotated = _rotate(rgb, angle)
        rotated_photo = np.ascontiguousarray(rotated_photo)
        detections = []
        for x0, y0, x1, y1 in boxes:
            centre = apply_affine(rotated_to_photo, np.array([[(x0 + x1) / 2, (y0 + y1) / 2]]))[0]
            half = 0.5 * (x1 - x0) * math.sqrt(abs(np.linalg.det(rotated_to_photo[:, :2])))
            rotated_centre = apply_affine(photo_to_rotated, centre[None])[0]
            rotated_box = (*(rotated_centre - half), *(rotated_centre + half))
            landmarks = apply_affine(invert_affine(photo_to_rotated), self._fit_landmarks(rotated_photo, rotated_box))
            box = (*(centre - half).tolist(), *(centre + half).tolist())
            detections.append(DetectedFace(box, landmarks.astype(np.float32), f"rotated {angle:+.0f}"))
        detections.sort(key=lambda detection: -detection.size)
        logger.debug("found %d face(s) in a copy rotated by %+.0f degrees", len(detections), angle)
        return detections

    def _run_detector(self, grey: np.ndarray, upsample: int) -> list[tuple[float, float, float, float]]:
        rectangles = self.detector(grey, upsample)
        return [(r.left(), r.top(), r.right() + 1.0, r.bottom() + 1.0) for r in rectangles]

    def _fit_landmarks(self, rgb: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
        shape = self.predictor(rgb, _dlib_rectangle(box))
        return np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float32)  # (68, 2)

    def _tight_crop_face(self, rgb: np.ndarray) -> DetectedFace | None:
        """Last resort for images that are themselves a tight face crop: try centred boxes about the
        image's size (and the canonical-crop box) as the face box; keep the fit most stable under small
        box shifts, if it is stable enough."""
        height, width = rgb.shape[:2]
        aspect = width / height
        if not _TIGHT_CROP_ASPECT[0] <= aspect <= _TIGHT_CROP_ASPECT[1]:
            return None
        side = min(width, height)
        centre_x, centre_y = width / 2, height / 2
        candidates = [
            (centre_x - k * side / 2, centre_y - k * side / 2, centre_x + k * side / 2, centre_y + k * side / 2)
            for k in _TIGHT_CROP_BOX_SCALES
        ]
        if width == height:  # maybe one of our own aligned crops
            x0, y0, x1, y1 = _CANONICAL_BOX
            candidates.append((x0 * width, y0 * height, x1 * width, y1 * height))
        best: tuple[float, DetectedFace] | None = None
        for box in candidates:
            landmarks = self._fit_landmarks(rgb, box)
            inconsistency = self._fit_inconsistency(rgb, box, landmarks)
            logger.debug("tight-crop candidate %s: inconsistency %.3f", box, inconsistency)
            if inconsistency < _FIT_CONSISTENCY_LIMIT and (best is None or inconsistency < best[0]):
                best = (inconsistency, DetectedFace(box, landmarks, "tight-crop"))
        return None if best is None else best[1]

    def _fit_inconsistency(self, rgb: np.ndarray, box: tuple[float, ...], landmarks: np.ndarray) -> float:
        """Mean landmark movement (in box sides) when the start box shifts by 10 % or shrinks by 15 %.
        A real face pulls the fit back in place; noise or a flat image lets it follow the box."""
        x0, y0, x1, y1 = box
        box_side = x1 - x0
        centre_x, centre_y, half = (x0 + x1) / 2, (y0 + y1) / 2, box_side / 2
        movements = []
        for dx, dy, shrink in ((0.1, 0, 1), (-0.1, 0, 1), (0, 0.1, 1), (0, -0.1, 1), (0, 0, 0.85)):
            cx, cy, h = centre_x + dx * box_side, centre_y + dy * box_side, half * shrink
            moved = self._fit_landmarks(rgb, (cx - h, cy - h, cx + h, cy + h))
            movements.append(np.linalg.norm(moved - landmarks, axis=1).mean() / box_side)
        return float(np.mean(movements))

    def _align_detection(self, rgb: np.ndarray, detection: DetectedFace) -> AlignedFace:
        matrix = similarity_transform(
            five_points(detection.landmarks), template_points(self.resolution), TEMPLATE_WEIGHTS
        )
        crop = warp_to_crop(rgb, matrix, self.resolution)
        crop_landmarks = apply_affine(matrix, detection.landmarks).astype(np.float32)
        return AlignedFace(
            crop=crop,
            matrix=matrix,
            landmarks=detection.landmarks.astype(np.float32),
            crop_landmarks=crop_landmarks,
            box=tuple(float(v) for v in detection.box),
            photo_size=(int(rgb.shape[1]), int(rgb.shape[0])),
        )

    def _mask(self, resolution: int) -> np.ndarray:
        """Cached uint8 face mask (per instance; only ever holds derived arrays, never models)."""
        if resolution not in self._mask_cache:
            self._mask_cache[resolution] = np.rint(face_mask(resolution) * 255).astype(np.uint8)
        return self._mask_cache[resolution]

    def _warped_alpha(
        self, height: int, width: int, aligned: AlignedFace, size: int, weight: np.ndarray | None = None
    ) -> tuple[np.ndarray | None, tuple[int, int, int, int]]:
        """The face mask (times ``weight``) warped into the photo, only over the bounding box of its support."""
        photo_to_face = _rescale_matrix(aligned.matrix, size / aligned.resolution)
        face_to_photo = invert_affine(photo_to_face)
        mask = self._mask(size)
        rows, cols = np.nonzero(mask)
        corners = np.array(
            [[cols.min() - 1, rows.min() - 1], [cols.max() + 1, rows.min() - 1],
             [cols.min() - 1, rows.max() + 1], [cols.max() + 1, rows.max() + 1]], dtype=np.float64
        )
        photo_corners = apply_affine(face_to_photo, corners)
        x0 = max(0, int(math.floor(photo_corners[:, 0].min())) - 1)
        y0 = max(0, int(math.floor(photo_corners[:, 1].min())) - 1)
        x1 = min(width, int(math.ceil(photo_corners[:, 0].max())) + 2)
        y1 = min(height, int(math.ceil(photo_corners[:, 1].max())) + 2)
        if x1 <= x0 or y1 <= y0:
            return None, (0, 0, 0, 0)
        region_to_face = photo_to_face.copy()
        region_to_face[:, 2] += photo_to_face[:, :2] @ np.array([x0, y0], dtype=np.float64)
        if weight is not None:
            mask = np.rint(mask * np.clip(np.asarray(weight, dtype=np.float32), 0.0, 1.0)).astype(np.uint8)  # (S, S)
        alpha = Image.fromarray(mask).transform(
            (x1 - x0, y1 - y0),
            Image.Transform.AFFINE,
            data=_pil_coefficients(region_to_face),
            resample=Image.Resampling.BILINEAR,
        )
        return np.asarray(alpha), (x0, y0, x1, y1)


def _upsampling(side: int, target: int) -> int:
    """Smallest number of 2x dlib upsamplings that brings ``side`` to at least ``target`` (at most 3)."""
    upsample = 0
    while side * 2**upsample < target and upsample < 3:
        upsample += 1
    return upsample


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The (2, 3) affine map ``outer(inner(p))``."""
    linear = outer[:, :2] @ inner[:, :2]
    return np.hstack([linear, (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def _rotate(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate an image about its centre onto a canvas that holds all of it (black corners).

    Returns:
        The rotated image and the (2, 3) matrix mapping original (x, y) to rotated (x, y).
    """
    height, width = image.shape[:2]
    theta = math.radians(angle)
    rotation = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], dtype=np.float64)
    rotated_corners = corners @ rotation.T
    new_width, new_height = (np.ceil(rotated_corners.max(axis=0) - rotated_corners.min(axis=0)) + 1).astype(int)
    centre_in = np.array([(width - 1) / 2, (height - 1) / 2])
    centre_out = np.array([(new_width - 1) / 2, (new_height - 1) / 2])
    matrix = np.hstack([rotation, (centre_out - rotation @ centre_in)[:, None]])
    rotated = Image.fromarray(image).transform(
        (int(new_width), int(new_height)),
        Image.Transform.AFFINE,
        data=_pil_coefficients(invert_affine(matrix)),
        resample=Image.Resampling.BILINEAR,
    )
    return np.asarray(rotated), matrix


def _rescale_matrix(matrix: np.ndarray, factor: float) -> np.ndarray:
    """A photo->crop matrix for a crop ``factor`` times larger (pixel-index coordinates)."""
    rescaled = matrix * factor
    rescaled[:, 2] = (matrix[:, 2] + 0.5) * factor - 0.5
    return rescaled


def _dlib_rectangle(box: tuple[float, ...]) -> Any:
    import dlib

    x0, y0, x1, y1 = box
    return dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)


def _is_rgb_uint8(image: Any) -> bool:
    return isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
