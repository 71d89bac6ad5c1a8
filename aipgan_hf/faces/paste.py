"""Paste-back: a face in canonical-crop space warped into the photo and blended in with a feathered mask.

Only pixels under the warped mask change; every other pixel of the photo comes back bit-identical. A grey
photo gets a grey face (the model paints in colour, which would leave colour blotches in a black-and-white photo).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image

from aipgan_hf.errors import ConfigError, UnsupportedImageError
from aipgan_hf.faces.align import AlignedFace
from aipgan_hf.faces.geometry import apply_affine, invert_affine, pil_coefficients, rescale_matrix
from aipgan_hf.faces.pixels import is_rgb_uint8, to_grey

# Face-mask ellipse (fractions of the crop side): jaw to jaw plus a little, forehead to below the chin.
_MASK_CENTRE = (0.5, 0.51)
_MASK_AXES = (0.37, 0.39)


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


@functools.lru_cache(maxsize=8)
def _mask_uint8(resolution: int) -> np.ndarray:
    """The face mask as read-only uint8 (a derived array, cached per resolution)."""
    mask = np.rint(face_mask(resolution) * 255).astype(np.uint8)
    mask.flags.writeable = False
    return mask


def _region_to_face(aligned: AlignedFace, size: int, x0: int, y0: int) -> np.ndarray:
    """(2, 3) map from a photo region starting at (x0, y0) to a face of side ``size``."""
    photo_to_face = rescale_matrix(aligned.matrix, size / aligned.resolution)
    photo_to_face[:, 2] += photo_to_face[:, :2] @ np.array([x0, y0], dtype=np.float64)
    return photo_to_face


def _warp(image: np.ndarray, region_to_face: np.ndarray, width: int, height: int) -> np.ndarray:
    warped = Image.fromarray(np.ascontiguousarray(image)).transform(
        (width, height), Image.Transform.AFFINE, data=pil_coefficients(region_to_face), resample=Image.Resampling.BILINEAR
    )
    return np.asarray(warped)


def warped_alpha(
    height: int, width: int, aligned: AlignedFace, size: int, weight: np.ndarray | None = None
) -> tuple[np.ndarray | None, tuple[int, int, int, int]]:
    """The face mask (times ``weight``) warped into the photo, only over the bounding box of its support.

    Returns:
        (h, w) uint8 alpha and the region (x0, y0, x1, y1) it covers; ``(None, (0, 0, 0, 0))`` when the
        mask falls outside the photo.
    """
    mask = _mask_uint8(size)
    rows, cols = np.nonzero(mask)
    corners = np.array(
        [[cols.min() - 1, rows.min() - 1], [cols.max() + 1, rows.min() - 1],
         [cols.min() - 1, rows.max() + 1], [cols.max() + 1, rows.max() + 1]], dtype=np.float64
    )
    face_to_photo = invert_affine(rescale_matrix(aligned.matrix, size / aligned.resolution))
    photo_corners = apply_affine(face_to_photo, corners)
    x0 = max(0, int(math.floor(photo_corners[:, 0].min())) - 1)
    y0 = max(0, int(math.floor(photo_corners[:, 1].min())) - 1)
    x1 = min(width, int(math.ceil(photo_corners[:, 0].max())) + 2)
    y1 = min(height, int(math.ceil(photo_corners[:, 1].max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return None, (0, 0, 0, 0)
    if weight is not None:
        mask = np.rint(mask * np.clip(np.asarray(weight, dtype=np.float32), 0.0, 1.0)).astype(np.uint8)  # (S, S)
    return _warp(mask, _region_to_face(aligned, size, x0, y0), x1 - x0, y1 - y0), (x0, y0, x1, y1)


def paste_mask(photo_shape: tuple[int, ...], aligned: AlignedFace, face_resolution: int | None = None) -> np.ndarray:
    """The blending weight :func:`paste_face` uses, in photo space: (H, W) uint8, 0 where the photo is kept
    exactly, 255 where the face replaces it."""
    height, width = photo_shape[:2]
    alpha, (x0, y0, x1, y1) = warped_alpha(height, width, aligned, face_resolution or aligned.resolution)
    full = np.zeros((height, width), dtype=np.uint8)
    if alpha is not None:
        full[y0:y1, x0:x1] = alpha
    return full


def paste_face(
    photo: np.ndarray, face: np.ndarray | Image.Image, aligned: AlignedFace, weight: np.ndarray | None = None,
    grey: bool = False,
) -> np.ndarray:
    """Warp a face crop back into the photo and blend it in with the feathered face mask.

    Args:
        photo: (H, W, 3) uint8, the photo ``aligned`` was computed on (at full resolution).
        face: (S, S, 3) uint8 face in canonical-crop space (any S; usually the crop resolution).
        aligned: the alignment of that face.
        weight: optional (S, S) float in [0, 1], multiplied into the face mask: where it is 0 the photo keeps
            its own pixels.
        grey: paste the face's luma only (R == G == B), for a grey photo.

    Returns:
        (H, W, 3) uint8 new photo (the input is not modified).
    """
    if not is_rgb_uint8(photo):
        raise UnsupportedImageError("paste_back expects the photo as an (H, W, 3) uint8 array")
    if isinstance(face, Image.Image):
        face = np.asarray(face.convert("RGB"))
    if not is_rgb_uint8(face) or face.shape[0] != face.shape[1]:
        raise UnsupportedImageError(f"paste_back expects a square (S, S, 3) uint8 face, got {getattr(face, 'shape', None)}")
    height, width = photo.shape[:2]
    size = face.shape[0]
    if weight is not None and np.shape(weight) != (size, size):
        raise ConfigError(f"paste_back weight must be ({size}, {size}) like the face, got {np.shape(weight)}")
    alpha, (x0, y0, x1, y1) = warped_alpha(height, width, aligned, size, weight)
    result = photo.copy()
    if alpha is None:
        return result
    if grey:
        face = to_grey(face)
    warped = _warp(face, _region_to_face(aligned, size, x0, y0), x1 - x0, y1 - y0)
    alpha = alpha[..., None].astype(np.uint16)  # (h, w, 1)
    original = photo[y0:y1, x0:x1].astype(np.uint16)
    blended = (original * (255 - alpha) + warped.astype(np.uint16) * alpha + 127) // 255
    result[y0:y1, x0:x1] = blended.astype(np.uint8)  # alpha 0 gives back the original exactly
    return result
