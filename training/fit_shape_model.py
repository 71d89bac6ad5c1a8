#!/usr/bin/env python
"""Fit the 68-point expression model (aipgan_hf.motion.ShapeModel) on the training split.

    python training/fit_shape_model.py --dataset_name data_build/aipgan-faces-128 --output shape_model.safetensors

1. Align every face by a similarity on nose + eye corners to the Procrustes mean (outer-eye-corner distance 1).
2. Pairs whose neutral is known: each photo or frame S of a group (a video clip, else a person) with the
   group's reference S0 (a neutral-labelled photo; for clips and unlabelled groups the most neutral member:
   mouth closed, other measures at the group's median). Target: the displacement S - S0.
   The head-turn direction (``head_turn_direction``: how two neutral photos of one person differ most) is
   removed from both the displacements and the regressor's inputs: a turned head is not an expression.
3. A weighted ridge regression from the aligned S to S - S0 (each source family, video / LFW / London /
   grimace, weighs the same in total), then PCA of its predictions: the expression basis and coefficients,
   each scaled back to the spread of the true displacements (``calibration_gain``: the regressor shrinks).
4. Slider directions from the coefficients of the training split.
5. The slopes: on the calibration split's pairs (validation people, never the training ones), each of the
   evaluation's five measures of the estimate is scaled so that it moves as far as the true change does
   (``measure_calibration``), the other measures held.
6. The FACS action units and the seven emotion presets (``aipgan_hf.motion.action_units``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipgan_hf.errors import AIPGANError  # noqa: E402
from aipgan_hf.evaluation.data import pick_split  # noqa: E402
from aipgan_hf.evaluation.measures import MEASURE_NAMES, landmark_measures  # noqa: E402
from aipgan_hf.landmarks import INNER_LIPS, LEFT_BROW, LEFT_EYE, OUTER_LIPS, RIGHT_BROW, RIGHT_EYE  # noqa: E402
from aipgan_hf.motion.action_units import with_action_units  # noqa: E402
from aipgan_hf.motion.shape_model import STABLE_POINTS, ShapeModel, align_shapes  # noqa: E402
from training.pairs import _landmark_array, load_corpus  # noqa: E402

logger = logging.getLogger(__name__)


def procrustes_mean(shapes: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Mean shape (68, 2) under similarity alignment on the stable points, outer-eye-corner distance 1."""
    mean = shapes.mean(axis=0)
    for _ in range(iterations):
        mean = mean - mean[STABLE_POINTS].mean(axis=0)
        mean = mean / np.linalg.norm(mean[45] - mean[36])
        mean = align_shapes(shapes, mean)[0].mean(axis=0)
    mean = mean - mean[STABLE_POINTS].mean(axis=0)
    return mean / np.linalg.norm(mean[45] - mean[36])


def pca(samples: np.ndarray, count: int, weights: np.ndarray) -> np.ndarray:
    """(count, D) leading orthonormal directions of the weighted second moment of (N, D) samples."""
    weights = weights / weights.sum()
    values, vectors = np.linalg.eigh((samples * weights[:, None]).T @ samples)  # ascending
    return vectors[:, ::-1][:, :count].T


def measure_values(shapes: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(N, 4) linear measures (mouth open, smile, brows up, eyes closed) of aligned (N, 68, 2) shapes."""
    return np.stack([(shapes * g).sum(axis=(1, 2)) for g in _measure_gradients(mean).values()], axis=1)


def neutral_references(
    shapes: np.ndarray, mean: np.ndarray, groups: np.ndarray, labelled_neutral: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, their reference rows) for every group with >= 2 members: a labelled neutral member when there is
    one, else the member with the smallest mouth opening plus half the distance of its other measures to the
    group's median."""
    values = measure_values(shapes, mean)
    rows, references = [], []
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        if len(members) < 2:
            continue
        neutral = members[labelled_neutral[members]]
        if len(neutral):
            reference = neutral[0]
        else:
            others = np.abs(values[members, 1:] - np.median(values[members, 1:], axis=0)).sum(axis=1)
            reference = members[np.argmin(values[members, 0] + 0.5 * others)]
        rows.append(members)
        references.append(np.full(len(members), reference))
    return np.concatenate(rows), np.concatenate(references)


def ridge(inputs: np.ndarray, outputs: np.ndarray, weights: np.ndarray, regularisation: float) -> np.ndarray:
    """(D + 1, E) weighted ridge solution of outputs ~ [inputs, 1] @ W (the bias unregularised)."""
    design = np.hstack([inputs, np.ones((len(inputs), 1))])
    gram = (design * weights[:, None]).T @ design + regularisation * np.diag([1.0] * inputs.shape[1] + [0.0])
    return np.linalg.solve(gram, (design * weights[:, None]).T @ outputs)


def _measure_gradients(mean: np.ndarray) -> dict[str, np.ndarray]:
    """(68, 2) gradients of linear landmark measures at the mean shape (y grows downwards)."""

    def y_of(indices, sign):
        g = np.zeros_like(mean)
        g[list(indices), 1] = sign / len(indices)
        return g

    inner = list(range(INNER_LIPS.start, INNER_LIPS.stop))
    upper, lower = inner[1:4], inner[5:8]
    corners = [OUTER_LIPS.start, OUTER_LIPS.start + 6]
    brows = [*range(RIGHT_BROW.start, RIGHT_BROW.stop), *range(LEFT_BROW.start, LEFT_BROW.stop)]
    eyes = [*range(RIGHT_EYE.start, RIGHT_EYE.stop), *range(LEFT_EYE.start, LEFT_EYE.stop)]
    lids_up, lids_down = [37, 38, 43, 44], [41, 40, 47, 46]
    width = np.zeros_like(mean)
    width[corners[0], 0], width[corners[1], 0] = -0.5, 0.5
    return {
        "mouth_open": y_of(lower, 1) + y_of(upper, -1),
        "smile": y_of([51, 57], 1) + y_of(corners, -1) + width,  # corners lift and widen
        "brows_up": y_of(eyes, 1) + y_of(brows, -1),
        "eyes_closed": y_of(lids_up, 1) + y_of(lids_down, -1),
    }


def calibration_gain(predicted: np.ndarray, true: np.ndarray, weights: np.ndarray, max_gain: float) -> np.ndarray:
    """(k,) per-component gains that give the predicted coefficients the spread of the true ones.

    A regressor predicts the *expected* displacement, shrunk towards neutral wherever the photo leaves it unsure
    (docs/design.md, "Shrinkage"). Shown on a face, a shrunk smile is no smile. The gain (weighted std of the true
    projections over the predicted ones, between 1 and ``max_gain``) restores the size of the motion; correlations
    are unchanged per component."""
    weights = weights / weights.sum()
    spread = lambda values: np.sqrt(weights @ (values - weights @ values) ** 2)
    return np.clip(spread(true) / np.maximum(spread(predicted), 1e-12), 1.0, max_gain)


MIN_TURN_PAIRS = 20
"""Fewest pairs of neutral photos of one person needed to find the head-turn direction (fewer: none is removed)."""


def head_turn_direction(shapes: np.ndarray, groups: np.ndarray, labelled_neutral: np.ndarray) -> np.ndarray | None:
    """(68, 2) unit direction of a head turning left or right as aligned 68-point shapes show it, or None.

    It is the leading principal direction of the differences between two neutral-labelled photos of one person
    (the same face and expression in another pose). The next direction, nodding, shares its motion with smiles
    and brow raises and is kept (docs/design.md, "A turned head is not an expression"). A similarity alignment
    cannot undo an out-of-plane turn, so without this a source photo taken from the side would move the target's
    jaw and cheek as if they were an expression."""
    differences = []
    for group in np.unique(groups[labelled_neutral]):
        members = np.flatnonzero((groups == group) & labelled_neutral)
        if len(members) < 2:
            continue
        first, second = np.triu_indices(len(members), k=1)
        differences.append((shapes[members[first]] - shapes[members[second]]).reshape(len(first), -1))
    differences = np.concatenate(differences) if differences else np.empty((0, shapes[0].size))
    if len(differences) < MIN_TURN_PAIRS:
        return None
    _, values, vectors = np.linalg.svd(differences, full_matrices=False)  # of their second moment: d and -d alike
    if values[0] <= 1e-9:
        return None  # the photos do not differ at all
    shares = values**2 / (values**2).sum()
    logger.info(
        f"head turn from {len(differences)} pairs of neutral photos: {shares[0]:.0%} of their variance (next {shares[1]:.0%})"
    )
    turn = vectors[0].reshape(-1, 2)
    return turn * (1.0 if turn[30, 0] >= 0 else -1.0)  # sign: the nose tip moves to +x


def named_directions(model: ShapeModel, coefficients: np.ndarray) -> dict[str, np.ndarray]:
    """Slider directions: for each measure, the most probable coefficient change (the least change weighted by the
    coefficients' training variances) that moves that measure and leaves the other three measures where they were,
    scaled so one slider unit moves its measure by two standard deviations of its variation in the training split.

    Each slider does one thing: without the other measures held, a direction carries what goes with its measure in
    the training faces (closing the eyes opens the mouth, as eyes narrow in a laugh)."""
    gradients = _measure_gradients(model.mean)
    if model.num_expression < len(gradients):
        raise ValueError(
            f"{len(gradients)} sliders that each hold the others need at least {len(gradients)} expression components, "
            f"the model has {model.num_expression}"
        )
    variances = coefficients.var(axis=0)
    basis = model.expression_basis.reshape(model.num_expression, -1)
    sensitivities = np.stack([basis @ gradient.ravel() for gradient in gradients.values()])  # (m, k)
    weighted = variances[:, None] * sensitivities.T  # (k, m)
    coupling = sensitivities @ weighted  # (m, m): how each measure's weighted gradient moves every measure
    if np.linalg.cond(coupling) > 1e8:
        raise ValueError(
            "the expression basis cannot move the slider measures one at a time (they move together on it)"
        )
    unit_moves = np.linalg.solve(coupling, weighted.T).T  # (k, m): column i moves measure i by 1, the others by 0
    directions = {}
    for index, name in enumerate(gradients):
        spread = (coefficients @ sensitivities[index]).std()
        directions[name] = unit_moves[:, index] * (2 * spread)
    return directions


def measure_jacobian(mean: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """(5, 136) derivative of the evaluation's five measures (``landmark_measures``) of a face moved from ``mean``
    (in ``mean``'s frame), by central differences: near the mean face they are linear in the landmarks."""
    jacobian = np.empty((5, mean.size))
    for index in range(mean.size):
        delta = np.zeros(mean.size)
        delta[index] = step
        up, down = (landmark_measures(mean + sign * delta.reshape(mean.shape), mean) for sign in (1, -1))
        jacobian[:, index] = (up - down) / (2 * step)
    return jacobian


def measure_calibration(
    model: ShapeModel,
    shapes: np.ndarray,
    references: np.ndarray,
    weights: np.ndarray,
    max_gain: float,
    targets: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """((k, k) matrix M, (5,) gains): ``M @ coefficients`` moves each measure by its gain, the others held.

    From one photo the estimate is the *expected* change, shrunk wherever the photo leaves it unsure (brows
    most: a person's resting brow height looks like a raise). Here each measure's slope of the estimate on the
    true change S - S0 is measured on held-out pairs (aligned ``shapes`` and ``references``, (N, 68, 2)), and
    the estimate is scaled along that measure by 1 / slope (within 1 and ``max_gain``): a smile or a frown
    then moves as far as the source's, at the price of a larger spread where the photo misleads. ``targets`` (5,):
    the slope each measure is scaled to (default 1), e.g. above 1 where the rendered face is read back short."""
    jacobian = measure_jacobian(model.mean)
    basis = model.expression_basis.reshape(model.num_expression, -1)
    sensitivities = jacobian @ basis.T  # (5, k)
    estimated = model.expression(shapes) @ sensitivities.T  # (N, 5) measures of the estimated change
    true = (shapes - references).reshape(len(shapes), -1) @ jacobian.T
    weights = weights / weights.sum()
    centred = [values - weights @ values for values in (estimated, true)]
    slopes = (weights @ (centred[0] * centred[1])) / np.maximum(weights @ centred[1] ** 2, 1e-12)
    targets = np.ones(len(slopes)) if targets is None else np.asarray(targets, dtype=np.float64)
    gains = np.clip(targets / np.maximum(slopes, 1e-6), 1.0, max_gain)
    variances = np.var(model.expression(shapes), axis=0) + 1e-12
    weighted = variances[:, None] * sensitivities.T  # (k, 5): the least variance-weighted change per measure
    unit_moves = np.linalg.solve(sensitivities @ weighted, weighted.T).T  # (k, 5): moves measure i by 1, others 0
    matrix = np.eye(model.num_expression) + unit_moves @ np.diag(gains - 1.0) @ sensitivities
    logger.info(f"calibration: slopes {np.round(slopes, 2).tolist()} -> gains {np.round(gains, 2).tolist()}")
    return matrix, gains


MIN_CALIBRATION_PAIRS = 200
"""Fewest held-out pairs for trustworthy slopes. The full corpus's validation split gives 1,661; drawn 200 at a time
from those, the five slopes (and so the gains, 1 / slope) vary by 7-20 % (one standard deviation), 16 at a time by
20-42 %."""


def warn_about_calibration(pair_count: int, gains: np.ndarray, max_gain: float) -> None:
    """Log how many pairs set the slopes; warn when they are few, or when a gain stopped at ``max_gain``."""
    logger.info(f"calibration: {pair_count} held-out pairs")
    if pair_count < MIN_CALIBRATION_PAIRS:
        logger.warning(
            f"calibration from only {pair_count} pairs (the full corpus's validation split has 1,661; "
            f"at least {MIN_CALIBRATION_PAIRS} give reliable slopes): its gains may exaggerate or flatten expressions. "
            "Use a larger corpus (more validation people), or --calibration_split '' to skip the calibration"
        )
    capped = [name for name, gain in zip(MEASURE_NAMES, gains) if gain >= max_gain]
    if capped:
        logger.warning(
            f"calibration gain of {', '.join(capped)} reached --max_slope_gain {max_gain:g}: the estimate barely "
            "follows the true change there, and scaling it this far gives exaggerated, grotesque expressions. Use a "
            "larger corpus, --calibration_split '' (no calibration) or a lower --max_slope_gain"
        )


def calibrated(model: ShapeModel, matrix: np.ndarray) -> ShapeModel:
    """``model`` whose estimator gives ``matrix @`` its coefficients."""
    return dataclasses.replace(model, estimator=matrix @ model.estimator, bias=matrix @ model.bias)


def calibration_pairs(model: ShapeModel, columns: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(aligned shapes, their neutral references, weights) of a split's same-person pairs (``neutral_references``)."""
    source = columns["source"]
    is_video = np.char.startswith(source.astype(str), "video")
    shapes = model.align(columns["landmarks"])[0]
    groups = np.where(is_video, columns["clip"], columns["identity"])
    rows, references = neutral_references(shapes, model.mean, groups, (columns["expression"] == "neutral") & ~is_video)
    keep = rows != references
    rows, references = rows[keep], references[keep]
    family = np.where(is_video[rows], "video", source[rows])
    counts = {f: int((family == f).sum()) for f in np.unique(family)}
    return shapes[rows], shapes[references], np.array([1.0 / counts[f] for f in family])


def label_presets(coefficients: np.ndarray, labels: np.ndarray, min_count: int = 20) -> dict[str, np.ndarray]:
    """Mean coefficients per label minus the neutral mean (labels with >= min_count photos)."""
    neutral = coefficients[labels == "neutral"].mean(axis=0)
    return {
        label: coefficients[labels == label].mean(axis=0) - neutral
        for label in sorted(set(labels) - {"", "neutral"})
        if (labels == label).sum() >= min_count
    }


def fit(
    landmarks: np.ndarray,
    identity: np.ndarray,
    expression: np.ndarray,
    source: np.ndarray,
    clip: np.ndarray,
    expression_count: int = 32,
    regularisation: float = 1e-3,
    max_gain: float = 1.5,
) -> ShapeModel:
    """Fit the model from a split's columns (landmarks (N, 68, 2); the rest (N,) strings)."""
    mean = procrustes_mean(landmarks[:: max(1, len(landmarks) // 3000)])
    shapes = align_shapes(landmarks, mean)[0]
    is_video = np.char.startswith(source.astype(str), "video")
    rows, references = neutral_references(
        shapes, mean, np.where(is_video, clip, identity), (expression == "neutral") & ~is_video
    )
    family = np.where(is_video[rows], "video", source[rows])
    counts = {f: int((family == f).sum()) for f in np.unique(family)}
    weights = np.array([1.0 / counts[f] for f in family])
    inputs = (shapes[rows] - mean).reshape(len(rows), -1)
    displacements = (shapes[rows] - shapes[references]).reshape(len(rows), -1)
    turn = head_turn_direction(shapes, identity, (expression == "neutral") & ~is_video)
    if turn is not None:  # a turn is neither an expression nor evidence of one: removed from targets and inputs
        displacements -= np.outer(displacements @ turn.ravel(), turn.ravel())
        inputs -= np.outer(inputs @ turn.ravel(), turn.ravel())
    solution = ridge(inputs, displacements, weights, regularisation)
    predictions = np.hstack([inputs, np.ones((len(rows), 1))]) @ solution  # (N, 136) estimated displacements
    basis = pca(predictions, expression_count, weights)  # (k, 136)
    gain = calibration_gain(predictions @ basis.T, displacements @ basis.T, weights, max_gain)
    logger.info(f"{len(rows)} (photo, neutral reference) pairs {counts}; gains {np.round(gain, 2).tolist()}")
    model = ShapeModel(
        mean=mean,
        expression_basis=basis.reshape(expression_count, -1, 2),
        estimator=gain[:, None] * (basis @ solution[:-1].T),
        bias=gain * (basis @ solution[-1]),
        head_turn=turn,
    )
    coefficients = model.expression(landmarks)
    model.directions = named_directions(model, coefficients - coefficients.mean(axis=0))
    model.presets = label_presets(coefficients[~is_video], expression[~is_video])
    return model


def load_columns(dataset_name: str, split: str = "train") -> dict[str, np.ndarray]:
    """The landmarks and label columns of a split; ConfigError for a missing dataset folder or split."""
    data = pick_split(load_corpus(dataset_name), split, dataset_name)
    columns = data.select_columns(["identity", "expression", "source", "clip"]).to_pandas()
    return {
        "landmarks": _landmark_array(data).astype(np.float64),
        **{name: columns[name].fillna("").to_numpy(dtype=str) for name in columns.columns},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_name", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--expression_components", type=int, default=32)
    parser.add_argument("--regularisation", type=float, default=1e-3)
    parser.add_argument("--max_gain", type=float, default=1.5)
    parser.add_argument(
        "--calibration_split", default="validation", help="split whose pairs set the slopes ('' : none)"
    )
    parser.add_argument("--max_slope_gain", type=float, default=4.0)
    parser.add_argument(
        "--target_slopes",
        type=float,
        nargs=5,
        default=None,
        metavar=("OPEN", "WIDTH", "CORNERS", "BROWS", "EYES"),
        help="slope of the estimate on the true change per measure after calibration (default 1 each)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    columns = load_columns(args.dataset_name)
    held_out_columns = load_columns(args.dataset_name, args.calibration_split) if args.calibration_split else None
    model = fit(
        **columns,
        expression_count=args.expression_components,
        regularisation=args.regularisation,
        max_gain=args.max_gain,
    )
    if held_out_columns is not None:
        held_out = calibration_pairs(model, held_out_columns)
        matrix, gains = measure_calibration(model, *held_out, args.max_slope_gain, args.target_slopes)
        warn_about_calibration(len(held_out[0]), gains, args.max_slope_gain)
        model = calibrated(model, matrix)
    model = with_action_units(model)
    model.save(args.output)
    logger.info(f"wrote {args.output}: presets {sorted(model.presets)}, sliders {sorted(model.directions)}")


if __name__ == "__main__":
    try:
        main()
    except AIPGANError as error:  # bad input (a missing dataset or split): its message, not a traceback
        sys.exit(str(error))
