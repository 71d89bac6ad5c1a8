#!/usr/bin/env python
"""Fit how expression lines are read from a motion the shape model estimates from one photo.

    python training/fit_line_reading.py --dataset_name data_build/aipgan-faces-128

On the estimated motions (``ShapeModel.expression`` on the basis) of the training split's photos. These are the raw
estimates, which the shipped constants were fitted on; a transfer takes ``ShapeModel.estimate``, which scales
the 8 % (train split) that balloon the face and, all but their mouths, the 13.5 % that pinch it. Fitted on
``estimate`` instead, the slope would be 0.60, the floors of AU4 0.75, AU1 0.75, AU7 0.94, the rest within 0.04:
the shipped floors draw fewer lines than such a refit would.
1. ``JAW_CORNER_SLOPE`` (``aipgan_hf/motion/action_units.py``): how far the lip corners descend per unit of the
   chin's drop where no corner unit acts (neutral, surprised and angry photos): least squares through the origin.
2. ``ONE_PHOTO_FLOOR`` (``aipgan_hf/motion/lines.py``): per unit, the ``--percentile`` of the line intensities that
   the neutral photos read on each side of the face (as the lines are drawn; the corners already read against the
   jaw), capped at ``--max_floor``.
Logs both as Python to paste, then the mean intensities per label on ``--report_split`` as read and as drawn from
one photo (floored; before the half strength), to compare with ``docs/design.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipgan_hf.checkpoint import BUNDLED_CHECKPOINT  # noqa: E402
from aipgan_hf.motion import SHAPE_MODEL_NAME, ShapeModel  # noqa: E402
from aipgan_hf.motion.action_units import (  # noqa: E402
    ACTION_UNITS,
    CHIN,
    JAW_CORNER_SLOPE,
    LINED_UNITS,
    LIP_CORNERS,
    ONE_SIDED,
    line_intensities,
)
from aipgan_hf.motion.lines import ESTIMATED, LineStrength  # noqa: E402
from training.fit_shape_model import load_columns  # noqa: E402

logger = logging.getLogger(__name__)

JAW_ONLY = ("neutral", "surprise", "anger")
"""Labels whose faces move no lip corner on purpose: their corners move with the jaw, or with noise."""
SHOWN = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU9", "AU12", "AU14", "AU15", "AU20", "AU26")
REPORTED = ("neutral", "happiness", "sadness", "surprise", "anger")


def estimated_motions(model: ShapeModel, landmarks: np.ndarray) -> np.ndarray:
    """(N, 68, 2) model-frame motion the shape model estimates from each face alone (the regressor's, unscaled)."""
    return np.einsum("nk,kpd->npd", model.expression(landmarks), model.expression_basis)


def jaw_corner_slope(motions: np.ndarray) -> float:
    """Corners' mean descent per unit of the chin's drop, least squares through the origin."""
    corners, chin = motions[:, LIP_CORNERS, 1].mean(axis=1), motions[:, CHIN, 1].mean(axis=1)
    return float(chin @ corners / (chin @ chin))


def noise_floor(intensities: np.ndarray, percentile: float, max_floor: float) -> dict[str, float]:
    """Per unit that draws lines, the ``percentile`` of (N, U) neutral faces' readings, at most ``max_floor``."""
    values = np.minimum(np.percentile(intensities, percentile, axis=0), max_floor)
    return {unit: round(float(values[i]), 2) for i, unit in enumerate(ACTION_UNITS) if unit in LINED_UNITS}


def label_table(intensities: np.ndarray, labels: np.ndarray) -> str:
    """Mean intensity per label (rows) and unit (:data:`SHOWN`), as text."""
    columns = [list(ACTION_UNITS).index(unit) for unit in SHOWN]
    rows = [f"{'label':10} " + " ".join(f"{unit:>5}" for unit in SHOWN)]
    for label in REPORTED:
        chosen = labels == label
        rows.append(f"{label:10} " + " ".join(f"{intensities[chosen, c].mean():5.2f}" for c in columns))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_name", required=True)
    parser.add_argument("--shape_model", default=str(BUNDLED_CHECKPOINT / SHAPE_MODEL_NAME))
    parser.add_argument("--percentile", type=float, default=90.0)
    parser.add_argument("--max_floor", type=float, default=1.0, help="so that the strongest reading still draws")
    parser.add_argument("--report_split", default="validation")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = ShapeModel.load(args.shape_model)
    train = load_columns(args.dataset_name, "train")
    motions = estimated_motions(model, train["landmarks"])
    slope = jaw_corner_slope(motions[np.isin(train["expression"], JAW_ONLY)])
    for label in (*JAW_ONLY, "sadness"):
        logger.info(f"  slope on {label}: {jaw_corner_slope(motions[train['expression'] == label]):.3f}")
    logger.info(f"JAW_CORNER_SLOPE = {slope:.2f}  (in use: {JAW_CORNER_SLOPE})")
    if abs(slope - JAW_CORNER_SLOPE) > 0.005:
        logger.warning("the slope in use differs: paste it and run again, the floor depends on it")
    neutral = train["expression"] == "neutral"
    per_side = line_intensities(motions[neutral], model.mean, sides=True)  # (N, U, 2): drawn a side at a time
    floor = noise_floor(per_side.transpose(0, 2, 1).reshape(-1, per_side.shape[1]), args.percentile, args.max_floor)
    # a one-sided unit reads on one side of a face at most: pooled with the other side's 0s, its percentile would be
    # the faces' lower one
    larger_side = noise_floor(per_side.max(axis=2), args.percentile, args.max_floor)
    floor.update({unit: larger_side[unit] for unit in ONE_SIDED})
    logger.info(f"ONE_PHOTO_FLOOR = {floor}  ({neutral.sum()} neutral photos; in use: {ESTIMATED.floor})")
    report = load_columns(args.dataset_name, args.report_split)
    read = line_intensities(estimated_motions(model, report["landmarks"]), model.mean, sides=True)
    logger.info(
        f"{args.report_split}, as read (mean of the sides):\n{label_table(read.mean(-1), report['expression'])}"
    )
    drawn = LineStrength(floor=floor)(read).mean(-1)
    table = label_table(drawn, report["expression"])
    logger.info(f"{args.report_split}, drawn from one photo (before the half strength):\n{table}")


if __name__ == "__main__":
    main()
