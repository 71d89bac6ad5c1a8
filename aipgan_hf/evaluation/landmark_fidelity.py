"""Landmark measures of an expression transfer: alignment, motion fidelity, landmark error, mouth and eye ratios.

* **Landmark alignment**: before landmarks of two images are compared, one set is mapped onto the other by
  the least-squares similarity transform (scale, rotation, translation; Umeyama 1991) fitted on the rigid
  anchor points only (nose and the four eye corners, :data:`ANCHOR_POINTS`), which move least with
  expression; fitting on all 68 points would let an open mouth drag the whole face and hide displacement.
* **Motion fidelity** of a region R (brows, eyes, mouth) for output O, target T and a wanted motion from a
  face at rest to a moved face (the source's own change S - S0, or a ground truth G of the target person
  from T itself), all aligned onto T: ``d_want = S[R] - S0[R]``, ``d_out = O[R] - T[R]``,
  ``fidelity = 1 - ||d_out - d_want|| / ||d_want||`` (Frobenius norms). 1 = the region moved exactly as
  wanted, 0 = it did not move at all (as good as returning the target), below 0 = worse than not moving.
  Undefined (NaN, left out of means) when the wanted motion barely moves the region (RMS displacement under
  3% of the inter-ocular distance, about dlib's landmark noise), since the ratio is then noise over noise.
  The evaluation reports it as a diagnostic; its main expression measure is the *expression response* of
  :mod:`aipgan_hf.evaluation.measures`.
* **Landmark error (NME)**: mean point-to-point distance between aligned output and ground-truth
  landmarks over all 68 points, divided by the ground truth's inter-ocular (outer eye corner) distance.
* **Mouth aspect ratio** (MAR): mean of the three inner-lip vertical gaps over the outer mouth width.
  **Eye aspect ratio** (EAR, Soukupova & Cech 2016): ``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)`` per eye,
  averaged over both eyes. Errors are absolute differences output vs ground truth.
"""

from __future__ import annotations

import math

import numpy as np

from ..faces.align import similarity_transform
from ..faces.geometry import apply_affine
from ..landmarks import (
    EXPRESSION_REGIONS,
    LEFT_EYE,
    NUM_LANDMARKS,
    OUTER_LIPS,
    RIGHT_EYE,
    STABLE_POINTS,
    inner_lip_gap,
    region_indices,
)

ANCHOR_POINTS: tuple[int, ...] = STABLE_POINTS
"""Landmarks that move least with expression (nose, eye corners); similarity alignment is fitted on these."""

MIN_RELATIVE_DISPLACEMENT = 0.03
"""Below this RMS ground-truth displacement (fraction of inter-ocular distance) fidelity is undefined. dlib's
68-point fit jitters by about this much between two photos of the same face; on test pairs the median
displacement is 5-10% (brows, eyes, mouth)."""


def _check_landmarks(points: np.ndarray, name: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"{name} must be ({NUM_LANDMARKS}, 2) landmarks, got shape {points.shape}")
    return points


def similarity_matrix(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama, no reflection) taking ``points`` onto ``reference``: the
    project's one fit (:func:`aipgan_hf.faces.align.similarity_transform`) behind a shape check.

    Returns:
        (2, 3) matrix ``M`` with ``reference ~= points @ M[:, :2].T + M[:, 2]``.
    """
    points = np.asarray(points, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if points.shape != reference.shape or points.ndim != 2 or points.shape[1] != 2 or len(points) < 2:
        raise ValueError(f"need two matching (N>=2, 2) point sets, got {points.shape} and {reference.shape}")
    return similarity_transform(points, reference)


def apply_matrix(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (N, 2) points (:func:`aipgan_hf.faces.geometry.apply_affine`, points first)."""
    return apply_affine(matrix, points)


def align_landmarks(points: np.ndarray, reference: np.ndarray, anchor: tuple[int, ...] = ANCHOR_POINTS) -> np.ndarray:
    """Map 68 landmarks onto a reference set by the similarity transform fitted on the ``anchor`` points.

    Args:
        points: (68, 2) landmarks to move.
        reference: (68, 2) landmarks that define the frame.
        anchor: indices the transform is fitted on.

    Returns:
        (68, 2) float64 aligned landmarks.
    """
    points = _check_landmarks(points, "points")
    reference = _check_landmarks(reference, "reference")
    idx = list(anchor)
    return apply_matrix(points, similarity_matrix(points[idx], reference[idx]))


def interocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners (points 36 and 45)."""
    landmarks = _check_landmarks(landmarks, "landmarks")
    return float(np.linalg.norm(landmarks[LEFT_EYE.start + 3] - landmarks[RIGHT_EYE.start]))


def motion_fidelity(
    output: np.ndarray,
    target: np.ndarray,
    moved: np.ndarray,
    rest: np.ndarray,
    region: list[int],
    anchor: tuple[int, ...] = ANCHOR_POINTS,
) -> float:
    """How closely the output moved a region's landmarks away from the target as ``moved`` moved away from ``rest``.

    All sets are similarity-aligned onto the target (fitted on ``anchor``); ``d_want = moved - rest`` and
    ``d_out = output - target`` over the region, and the result is ``1 - ||d_out - d_want|| / ||d_want||``.

    Args:
        output: (68, 2) landmarks measured on the method's output.
        target: (68, 2) landmarks of the target (the identity image the output starts from).
        moved: (68, 2) landmarks of the face whose motion is wanted (the source, or a ground truth).
        rest: (68, 2) landmarks ``moved`` is compared with (the source's neutral reference; the target itself
            when ``moved`` is a ground truth of the target person).
        region: landmark indices of the region (e.g. ``region_indices(EXPRESSION_REGIONS["mouth"])``).
        anchor: rigid points the alignments onto the target are fitted on.

    Returns:
        The fidelity; NaN when the wanted motion barely moves the region (under dlib's landmark noise).
    """
    target = _check_landmarks(target, "target")
    wanted = align_landmarks(moved, target, anchor)[region] - align_landmarks(rest, target, anchor)[region]  # (R, 2)
    produced = align_landmarks(output, target, anchor)[region] - target[region]  # (R, 2)
    wanted_norm = float(np.linalg.norm(wanted))
    min_norm = MIN_RELATIVE_DISPLACEMENT * interocular_distance(target) * math.sqrt(len(region))
    if wanted_norm <= min_norm:
        return float("nan")
    return 1.0 - float(np.linalg.norm(produced - wanted)) / wanted_norm


def displacement_fidelity(
    output: np.ndarray,
    target: np.ndarray,
    truth: np.ndarray,
    region: list[int],
    anchor: tuple[int, ...] = ANCHOR_POINTS,
) -> float:
    """:func:`motion_fidelity` against a ground truth of the target person: ``1 - ||d_out - d_gt|| / ||d_gt||``
    with ``d_gt = truth - target`` (see the module docstring); NaN when the ground truth barely moves the region."""
    return motion_fidelity(output, target, truth, target, region, anchor)


def region_fidelities(
    output: np.ndarray, target: np.ndarray, truth: np.ndarray, rest: np.ndarray | None = None
) -> dict[str, float]:
    """:func:`motion_fidelity` for every region of :data:`aipgan_hf.landmarks.EXPRESSION_REGIONS`.

    ``truth`` is the face whose motion is wanted, measured from ``rest`` (default: the target itself, i.e.
    :func:`displacement_fidelity` against a ground truth of the target person).
    """
    target = _check_landmarks(target, "target")
    rest = target if rest is None else rest
    return {
        name: motion_fidelity(output, target, truth, rest, region_indices(slices))
        for name, slices in EXPRESSION_REGIONS.items()
    }


def normalized_landmark_error(output: np.ndarray, truth: np.ndarray, anchor: tuple[int, ...] = ANCHOR_POINTS) -> float:
    """Mean point distance between output landmarks aligned onto the ground truth's, over its inter-ocular distance."""
    truth = _check_landmarks(truth, "truth")
    aligned = align_landmarks(output, truth, anchor)
    return float(np.linalg.norm(aligned - truth, axis=1).mean() / interocular_distance(truth))


def mouth_aspect_ratio(landmarks: np.ndarray) -> float:
    """Mean inner-lip opening (pairs 61-67, 62-66, 63-65) over the outer mouth width (48-54)."""
    landmarks = _check_landmarks(landmarks, "landmarks")
    width = np.linalg.norm(landmarks[OUTER_LIPS.start] - landmarks[OUTER_LIPS.start + 6])
    return float(inner_lip_gap(landmarks) / max(width, 1e-6))


def eye_aspect_ratio(landmarks: np.ndarray) -> float:
    """Soukupova & Cech eye aspect ratio, mean of both eyes."""
    landmarks = _check_landmarks(landmarks, "landmarks")
    ratios = []
    for eye in (RIGHT_EYE, LEFT_EYE):
        p = landmarks[eye]  # (6, 2): corner, two upper lid points, corner, two lower lid points
        vertical = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
        ratios.append(vertical / max(2.0 * np.linalg.norm(p[0] - p[3]), 1e-6))
    return float(np.mean(ratios))
