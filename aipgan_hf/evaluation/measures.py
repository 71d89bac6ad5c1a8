"""Expression response: does the output move the target's face the way the source's own face moved?

The reference for a transfer is the source person's own expression change ``S - S0`` (S: the expressive
source photo or frame, S0: a neutral photo or frame of the same person), not the target person's own photo
with the same label: two people's "anger" differ in landmarks about as much as each differs from neutral.

Five scalar **landmark measures**, each in eye-distance units of a *frame* (a landmark set that fixes position,
scale and orientation), after the measured landmarks are mapped onto the frame by the one least-squares
similarity fit of :func:`aipgan_hf.evaluation.landmark_fidelity.align_landmarks` (on the stable nose and eye-corner points).
"Across" is the frame's eye line (outer corners 36 -> 45), "up" is perpendicular to it, towards the brows. Every
measure is a signed projection on one of these axes, so it is linear in the landmarks: a closed mouth whose
lip points cross by landmark noise reads slightly negative instead of being folded into a positive gap.

* ``mouth_open``: inner-lip opening, the height of the upper inner lip above the lower one (61-67, 62-66, 63-65
  averaged).
* ``mouth_width``: outer mouth-corner distance 48 -> 54 along the eye line.
* ``corner_lift``: height of the mouth corners (48, 54, mean) above the nose base (33); negative numbers,
  a smile raises them.
* ``brow_raise``: mean height of the ten brow points (17-26) above the mean of the four eye corners.
* ``eye_open``: lid opening, the height of the upper lid above the lower one (37-41, 38-40, 43-47, 44-46 averaged).

The **change** of a face X from a face Y of the same person is ``measures(X, frame=Y) - measures(Y, frame=Y)``:
the output's change from the target is measured in the target's frame, the source's change in its reference's.
The **expression response** of a measure is the Pearson r, over pairs, between the output's change and the
source's own change; an output that copies the source's change scores 1, one that never moves scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..landmarks import (
    INNER_LIP_GAPS,
    LEFT_BROW,
    LEFT_EYE,
    LID_GAPS,
    MOUTH_CORNERS,
    NOSE_BASE,
    RIGHT_BROW,
    RIGHT_EYE,
)
from .landmark_fidelity import align_landmarks, interocular_distance
from .statistics import Estimate, percentile_interval

MEASURE_NAMES: tuple[str, ...] = ("mouth_open", "mouth_width", "corner_lift", "brow_raise", "eye_open")
"""The five landmark measures, in report order."""

MEASURE_TITLES: dict[str, str] = {
    "mouth_open": "mouth opening",
    "mouth_width": "mouth width",
    "corner_lift": "corner lift",
    "brow_raise": "brow raise",
    "eye_open": "eye openness",
}

EYE_CORNERS = (RIGHT_EYE.start, RIGHT_EYE.start + 3, LEFT_EYE.start, LEFT_EYE.start + 3)  # 36, 39, 42, 45
BROW_POINTS = tuple(range(RIGHT_BROW.start, LEFT_BROW.stop))  # 17-26

MIN_SPREAD = 1e-9
"""Below this standard deviation (eye-distance units) a change is taken as constant (see :func:`pearson`)."""


def landmark_measures(landmarks: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """The five measures of :data:`MEASURE_NAMES` of one face, in the frame's eye-distance units.

    Args:
        landmarks: (68, 2) landmarks to measure.
        frame: (68, 2) landmarks that define position, scale and "up" (the same person's reference face; pass
            ``landmarks`` itself to measure a face in its own frame).

    Returns:
        (5,) float64 in :data:`MEASURE_NAMES` order; NaN everywhere when either set has NaN.
    """
    points, frame = np.asarray(landmarks, dtype=np.float64), np.asarray(frame, dtype=np.float64)
    if not (np.isfinite(points).all() and np.isfinite(frame).all()):
        return np.full(len(MEASURE_NAMES), np.nan)
    aligned = align_landmarks(points, frame)  # (68, 2) in the frame
    unit = interocular_distance(frame)
    across = (frame[EYE_CORNERS[3]] - frame[EYE_CORNERS[0]]) / unit  # unit vector along the eye line
    up = np.array([across[1], -across[0]])  # turned 90 degrees towards the brows (image y grows downwards)
    height = aligned @ up / unit  # (68,) eye-distance units
    width = aligned @ across / unit  # (68,)

    def gap(pairs: Sequence[tuple[int, int]]) -> float:  # upper point above the lower one, mean over pairs
        return float(np.mean([height[upper] - height[lower] for upper, lower in pairs]))

    return np.array(
        [
            gap(INNER_LIP_GAPS),
            width[MOUTH_CORNERS[1]] - width[MOUTH_CORNERS[0]],
            height[list(MOUTH_CORNERS)].mean() - height[NOSE_BASE],
            height[list(BROW_POINTS)].mean() - height[list(EYE_CORNERS)].mean(),
            gap(LID_GAPS),
        ]
    )


def expression_change(face: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(5,) change of the measures from ``reference`` to ``face`` (two faces of one person), in the reference's frame."""
    return landmark_measures(face, reference) - landmark_measures(reference, reference)


def neutrality_scores(shapes: np.ndarray) -> np.ndarray:
    """How far from neutral each face of one person (a clip's frames, a person's photos) is; lower = more neutral.

    Score = mouth opening + mean point distance to the group's median shape, both in eye-distance units after
    aligning every face onto the first one: a closed mouth and a typical (resting) shape for that person.

    Args:
        shapes: (N, 68, 2) landmarks of one person.

    Returns:
        (N,) scores.
    """
    shapes = np.asarray(shapes, dtype=np.float64)
    aligned = np.stack([align_landmarks(shape, shapes[0]) for shape in shapes])  # (N, 68, 2)
    median = np.median(aligned, axis=0)  # (68, 2)
    unit = interocular_distance(median)
    spread = np.linalg.norm(aligned - median, axis=2).mean(axis=1) / unit  # (N,)
    opening = np.array([landmark_measures(shape, median)[0] for shape in aligned])  # (N,)
    return opening + spread


# --------------------------------------------------------------------------------------------------
# Correlation with a bootstrap interval


def pearson(output_changes: np.ndarray, source_changes: np.ndarray) -> np.ndarray:
    """Pearson r per column of two (..., n, k) arrays (over the n axis).

    An output change that is constant (spread under :data:`MIN_SPREAD`, e.g. "target unchanged") gets r = 0:
    it does not respond to the source at all. A constant source change leaves r undefined (NaN).
    """
    x = output_changes - output_changes.mean(axis=-2, keepdims=True)
    y = source_changes - source_changes.mean(axis=-2, keepdims=True)
    sx, sy = np.sqrt((x**2).mean(axis=-2)), np.sqrt((y**2).mean(axis=-2))  # (..., k)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (x * y).mean(axis=-2) / (sx * sy)
    r = np.where(sx < MIN_SPREAD, 0.0, r)
    return np.where(sy < MIN_SPREAD, np.nan, r)


def response_slopes(output_changes: np.ndarray, source_changes: np.ndarray) -> np.ndarray:
    """(5,) least-squares slope of each measure's output change on the source's (1: moves as far as the source;
    below: shrunk), over the rows where both are defined; NaN where the source's change does not vary."""
    keep = np.isfinite(output_changes).all(axis=1) & np.isfinite(source_changes).all(axis=1)
    x, y = source_changes[keep], output_changes[keep]
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        slopes = (x * y).sum(axis=0) / (x * x).sum(axis=0)
    return np.where(np.sqrt((x * x).mean(axis=0)) < MIN_SPREAD, np.nan, slopes)


def expression_response(
    output_changes: np.ndarray,
    source_changes: np.ndarray,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Pearson r of every measure and their mean, with percentile-bootstrap intervals (pairs resampled).

    Args:
        output_changes: (n, 5) output minus target, per pair (NaN rows: landmarks undefined, left out).
        source_changes: (n, 5) source minus its reference, per pair.
        confidence, resamples, seed: of the bootstrap (the same pair resamples serve all measures and the mean).

    Returns:
        :data:`MEASURE_NAMES` and ``"mean"`` -> :class:`~aipgan_hf.evaluation.statistics.Estimate` (``n`` = pairs used).
    """
    output_changes = np.asarray(output_changes, dtype=np.float64).reshape(-1, len(MEASURE_NAMES))
    source_changes = np.asarray(source_changes, dtype=np.float64).reshape(-1, len(MEASURE_NAMES))
    keep = np.isfinite(output_changes).all(axis=1) & np.isfinite(source_changes).all(axis=1)
    x, y = output_changes[keep], source_changes[keep]
    n = len(x)
    names = (*MEASURE_NAMES, "mean")
    if n < 3:
        return {name: Estimate(float("nan"), float("nan"), float("nan"), 0) for name in names}
    r = pearson(x, y)  # (5,)
    indices = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    resampled = pearson(x[indices], y[indices])  # (resamples, 5)
    point = np.append(r, r.mean())
    spread = np.concatenate([resampled, resampled.mean(axis=1, keepdims=True)], axis=1)  # (resamples, 6)
    estimates = {}
    for column, name in enumerate(names):
        low, high = percentile_interval(spread[:, column], confidence)
        estimates[name] = Estimate(float(point[column]), low, high, n)
    return estimates
