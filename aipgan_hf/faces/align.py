"""Alignment: the canonical face template, the one similarity fit of the project, and the warp into a square crop.

Coordinates are ``(x, y)`` in pixel-index units (the centre of pixel ``[row, col]`` is ``(col, row)``), the
convention of dlib landmarks and of :func:`aipgan_hf.landmarks.landmarks_to_heatmaps`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from aipgan_hf.errors import ConfigError, NoFaceError
from aipgan_hf.faces.geometry import IDENTITY, apply_affine, compose_affine, invert_affine, pil_coefficients
from aipgan_hf.landmarks import LEFT_EYE, RIGHT_EYE

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

CANONICAL_BOX = (
    0.5 - 1.207 * _EYE_DISTANCE,
    _EYE_LINE - 0.749 * _EYE_DISTANCE,
    0.5 + 1.207 * _EYE_DISTANCE,
    _EYE_LINE + 1.755 * _EYE_DISTANCE,
)
"""Where dlib's detector box falls in a canonical crop (same measurement): x0, y0, x1, y1 as fractions."""


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

    The project's one similarity fit: alignment, paste-back and the landmark metrics all use it.

    Args:
        source: (N, 2) points.
        destination: (N, 2) points.
        weights: optional (N,) non-negative point weights (equal by default).

    Returns:
        (2, 3) float64 matrix ``M`` with ``destination ~= source @ M[:, :2].T + M[:, 2]``.

    Raises:
        NoFaceError: the source points all coincide (no scale can be fitted).
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


def _padded_region(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` where parts outside the image repeat the nearest edge pixel."""
    height, width = image.shape[:2]
    inside = image[max(y0, 0) : max(min(y1, height), 0), max(x0, 0) : max(min(x1, width), 0)]
    if inside.shape[:2] == (y1 - y0, x1 - x0):
        return inside  # a view, no copy
    if inside.size == 0:  # wholly outside: each pixel repeats the nearest edge's
        rows, cols = np.clip(np.arange(y0, y1), 0, height - 1), np.clip(np.arange(x0, x1), 0, width - 1)
        return image[np.ix_(rows, cols)]
    # padding a slice is 10-20 times faster than indexing with clipped rows and columns (a video's every frame)
    pads = ((max(0, -y0), max(0, y1 - height)), (max(0, -x0), max(0, x1 - width))) + ((0, 0),) * (image.ndim - 2)
    return np.pad(inside, pads, mode="edge")


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
    crop_to_region = compose_affine(invert_affine(region_to_photo), crop_to_photo)
    crop = region.transform(
        (resolution, resolution),
        Image.Transform.AFFINE,
        data=pil_coefficients(crop_to_region),
        resample=Image.Resampling.BILINEAR,
    )
    return np.asarray(crop)


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
        face_boxes: the boxes of the faces found in that photo, by number (largest first), this one included
            (:meth:`FaceProcessor.align <aipgan_hf.faces.FaceProcessor.align>`: a quick look that finds one face much
            larger than the others may not see the others); () where none was searched for (landmarks given).
    """

    crop: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray
    crop_landmarks: np.ndarray
    box: tuple[float, float, float, float]
    photo_size: tuple[int, int] | None = None
    face_boxes: tuple[tuple[float, float, float, float], ...] = ()

    @property
    def faces_found(self) -> int:
        """Faces found in the photo, this one included."""
        return max(1, len(self.face_boxes))

    @property
    def resolution(self) -> int:
        """Side of the crop."""
        return int(self.crop.shape[0])


def crop_matrix(landmarks: np.ndarray, resolution: int) -> np.ndarray:
    """(2, 3) similarity from photo to canonical crop coordinates that puts a face's landmarks on the template
    (no pixels: video driving needs only the landmarks in the crop frame, ``apply_affine(matrix, landmarks)``)."""
    return similarity_transform(five_points(landmarks), template_points(resolution), TEMPLATE_WEIGHTS)


def align_face(
    pixels: np.ndarray,
    landmarks: np.ndarray,
    box: tuple[float, ...],
    resolution: int,
    photo_size: tuple[int, int] | None = None,
    pixels_to_photo: np.ndarray = IDENTITY,
) -> AlignedFace:
    """Fit the template to a face's landmarks and warp its crop.

    Args:
        pixels: (h, w, 3) uint8 image the crop is cut from.
        landmarks: (68, 2) landmarks in photo coordinates.
        box: face box in photo coordinates.
        resolution: crop side.
        photo_size: (width, height) of the photo (defaults to the size of ``pixels``).
        pixels_to_photo: (2, 3) map from ``pixels`` to photo coordinates, when ``pixels`` is a reduced decode.
    """
    matrix = crop_matrix(landmarks, resolution)
    pixels_matrix = matrix if np.array_equal(pixels_to_photo, IDENTITY) else compose_affine(matrix, pixels_to_photo)
    return AlignedFace(
        crop=warp_to_crop(pixels, pixels_matrix, resolution),
        matrix=matrix,
        landmarks=np.asarray(landmarks, dtype=np.float32),
        crop_landmarks=apply_affine(matrix, landmarks).astype(np.float32),
        box=tuple(float(v) for v in box),
        photo_size=photo_size or (int(pixels.shape[1]), int(pixels.shape[0])),
    )


# Face-mask ellipse (fractions of the crop side): jaw to jaw plus a little, forehead to below the chin.
_MASK_CENTRE = (0.5, 0.51)
_MASK_AXES = (0.37, 0.39)


def face_mask(resolution: int, feather: float = 0.15) -> np.ndarray:
    """Feathered elliptical face mask in canonical-crop space: where the decoder may repaint and paste-back blends.

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
