"""Pixel arrays to (H, W, 3) uint8 RGB: dtypes, channel layouts, alpha, 16 bit, and grey detection."""

from __future__ import annotations

import numpy as np
from PIL import Image

from aipgan_hf.errors import (
    AIPGANError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    UnsupportedImageError,
)

DEFAULT_MAX_PIXELS = 50_000_000
"""Largest image (width x height) that is decoded; a guard against decompression bombs."""

MIN_IMAGE_SIDE = 16
"""Images with a side shorter than this are refused before any face search."""

_REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "CMYK", "I", "F")  # where Image.reduce averages meaningful values


def check_size(width: int, height: int, max_pixels: int, origin: str) -> None:
    """Refuse an image by its (header) size: more than ``max_pixels`` pixels, or a side below :data:`MIN_IMAGE_SIDE`."""
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{origin} is too large: {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,}; downscale it first"
        )
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ImageTooSmallError(
            f"{origin} is only {width}x{height} pixels; it must be at least {MIN_IMAGE_SIDE} pixels on each side"
        )


def array_to_rgb(array: np.ndarray, max_pixels: int) -> np.ndarray:
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
    check_size(shape[1], shape[0], max_pixels, "the image")
    array = _to_uint8(array)
    if array.ndim == 2:
        return grey_to_rgb(array)
    if shape[2] == 1:
        return grey_to_rgb(array[..., 0])
    if shape[2] == 4:
        return composite_on_white(array)
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return scale_16bit(array)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InvalidImageError("the image array contains NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0 or high > 255:
            raise UnsupportedImageError(f"float image values span [{low:g}, {high:g}]; expected 0..1 (or 0..255)")
        scale = 255.0 if high <= 1.0 else 1.0
        return np.rint(array.astype(np.float32) * scale).astype(np.uint8)
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > 255:
        if low >= 0 and high <= 65535:
            return scale_16bit(array.astype(np.uint16))
        raise UnsupportedImageError(
            f"integer image values span [{low}, {high}]; expected 0..255 (uint8) or 0..65535 (16-bit)"
        )
    return array.astype(np.uint8)


def scale_16bit(array: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (65535 / 257 = 255)."""
    return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)


def grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W, 3), the grey value in all three channels."""
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))


def composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 -> (H, W, 3) uint8, transparent pixels become white."""
    alpha = rgba[..., 3:4].astype(np.uint16)  # (H, W, 1)
    rgb = rgba[..., :3].astype(np.uint16)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    return np.ascontiguousarray(out.astype(np.uint8))


def is_rgb_uint8(image: object) -> bool:
    """Whether ``image`` is already an (H, W, 3) uint8 array (no conversion needed)."""
    return isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def is_grey(image: np.ndarray) -> bool:
    """Whether an (H, W, 3) image is grey: R == G == B at every pixel (a grey, grey+alpha or 16-bit grey file
    loads this way, and so does a colour file holding a black-and-white photo).

    A sparse sample is checked first, so colour photos are rejected without reading every pixel.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        return False
    for view in (image[::17, ::13], image):
        if not (np.array_equal(view[..., 0], view[..., 1]) and np.array_equal(view[..., 1], view[..., 2])):
            return False
    return True


LUMA = (0.299, 0.587, 0.114)
"""ITU-R 601 luma weights of R, G, B (what :func:`to_grey` and Pillow's "L" use)."""


def to_grey(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) uint8 with R == G == B: ITU-R 601 luma, as ``PIL.Image.convert("L")``."""
    return grey_to_rgb(np.asarray(Image.fromarray(np.ascontiguousarray(image)).convert("L")))


def pil_to_rgb(pil: Image.Image, max_pixels: int, origin: str) -> np.ndarray:
    """A decoded PIL image of any mode -> (H, W, 3) uint8 (alpha over white, 16 bit scaled, CMYK and palettes converted)."""
    mode = pil.mode
    try:
        if mode == "RGB":
            return np.ascontiguousarray(np.asarray(pil))
        if mode.startswith("I;16"):
            return grey_to_rgb(scale_16bit(np.asarray(pil)))
        if mode in ("I", "F"):
            return array_to_rgb(np.asarray(pil), max_pixels)
        has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in pil.info)
        if has_alpha:
            return composite_on_white(np.asarray(pil.convert("RGBA")))
        return np.ascontiguousarray(np.asarray(pil.convert("RGB")))
    except AIPGANError:
        raise
    except (ValueError, OSError, TypeError, KeyError) as error:
        raise UnsupportedImageError(f"{origin} has image mode {mode!r}, which cannot be converted to RGB") from error


def reduced_rgb(pil: Image.Image, factor: int, max_pixels: int, origin: str) -> np.ndarray:
    """(ceil(H / factor), ceil(W / factor), 3) uint8: box-filtered before the RGB conversion where the mode allows."""
    if pil.mode in _REDUCIBLE_MODES:
        return pil_to_rgb(pil.reduce(factor), max_pixels, origin)
    return np.asarray(Image.fromarray(pil_to_rgb(pil, max_pixels, origin)).reduce(factor))
