"""(2, 3) affine matrices on (x, y) points in pixel-index coordinates (the centre of pixel ``[row, col]`` is
``(col, row)``), and their translation into Pillow's ``Image.transform`` convention."""

from __future__ import annotations

import math

import numpy as np

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
"""The (2, 3) identity map."""


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine matrix."""
    linear_inverse = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear_inverse, -(linear_inverse @ matrix[:, 2])[:, None]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a (2, 3) affine matrix."""
    return np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The (2, 3) affine map ``outer(inner(p))``."""
    linear = outer[:, :2] @ inner[:, :2]
    return np.hstack([linear, (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def scale_affine(factor: float) -> np.ndarray:
    """The map from a grid ``factor`` times coarser to the fine one: coarse pixel ``i`` covers fine pixels
    ``factor * i`` .. ``factor * (i + 1) - 1``, so its centre is at ``factor * i + (factor - 1) / 2``."""
    offset = (factor - 1) / 2
    return np.array([[factor, 0.0, offset], [0.0, factor, offset]])


def turn_matrix(angle: float) -> np.ndarray:
    """(2, 2) the linear map that turns image (x, y) (y down) by ``angle`` degrees anticlockwise on screen: a head
    whose eye line is tilted by ``angle`` (clockwise on screen) comes out level."""
    theta = math.radians(angle)
    return np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])


def rescale_matrix(matrix: np.ndarray, factor: float) -> np.ndarray:
    """A photo->crop matrix for a crop ``factor`` times larger (pixel-index coordinates)."""
    rescaled = matrix * factor
    rescaled[:, 2] = (matrix[:, 2] + 0.5) * factor - 0.5
    return rescaled


def pil_coefficients(output_to_input: np.ndarray) -> tuple[float, ...]:
    """PIL's AFFINE data for an output->input map given in pixel-index coordinates.

    PIL samples in continuous coordinates (pixel centres at +0.5), hence the half-pixel shifts.
    """
    linear = output_to_input[:, :2]
    offset = output_to_input[:, 2] + 0.5 - linear @ np.array([0.5, 0.5])
    return tuple(np.hstack([linear, offset[:, None]]).ravel().tolist())


def orientation_matrix(orientation: int, width: int, height: int) -> np.ndarray:
    """(2, 3) map from stored (x, y) to displayed (x, y) for an EXIF orientation of a ``width`` x ``height`` image."""
    w, h = width - 1, height - 1
    rows = {
        1: [[1, 0, 0], [0, 1, 0]],
        2: [[-1, 0, w], [0, 1, 0]],
        3: [[-1, 0, w], [0, -1, h]],
        4: [[1, 0, 0], [0, -1, h]],
        5: [[0, 1, 0], [1, 0, 0]],
        6: [[0, -1, h], [1, 0, 0]],
        7: [[0, -1, h], [-1, 0, w]],
        8: [[0, 1, 0], [-1, 0, w]],
    }
    return np.array(rows[orientation], dtype=np.float64)
