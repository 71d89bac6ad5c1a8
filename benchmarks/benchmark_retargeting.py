#!/usr/bin/env python
"""Expression response of the driving landmarks alone (no image is made): how well each way of retargeting
carries the source's own change onto another person's face.

    python benchmarks/benchmark_retargeting.py --dataset data_build/aipgan-faces-128 --split test

For the evaluation's cross-person pairs (target T, source S, the source person's neutral reference S0), each
mode gives driving landmarks D for T; the table is the Pearson r, per measure of ``aipgan_hf.evaluation.measures``
(mouth opening, mouth width, corner lift, brow raise, eye openness), between D's change from T and S's own change
from S0, their mean, and the slope of D's change on S's (below 1: the motion is shrunk). An image-level
evaluation (``python -m aipgan_hf.evaluation``) reads the output through dlib, so it can only come out lower.

A second table splits the error of each mode in two. The sources of one group (a clip's frames, one person's
photos) share one reference S0; "within a source" is the r after each group's mean change (D's and S's) is taken
out, over the pairs of groups with at least ``--min_group`` pairs, beside the plain r over the same pairs. What
the first lacks is the motion within one person; what the second loses beyond it is a constant per person: how
far that person's resting face (high brows, a wide mouth) is from the average one, which a single photo cannot tell.

A third table is the face outline's growth (``ShapeModel.outline_growth``) of the split's true changes, each source
against its reference, by family, and of the one-photo estimates of every row: what ``GROWTH_RANGE`` was chosen from
(``--split train``: the changes within one session) and how many estimates it scales. ``--growth_range 0 inf`` gives
the estimates before 0.22.0.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipgan_hf.evaluation.data import load_split, split_columns  # noqa: E402
from aipgan_hf.evaluation.measures import MEASURE_NAMES, expression_change, pearson  # noqa: E402
from aipgan_hf.evaluation.methods import oracle_landmarks  # noqa: E402
from aipgan_hf.evaluation.pairs import CROSS_PERSON, build_pairs, choose_references  # noqa: E402
from aipgan_hf.motion import ShapeModel  # noqa: E402
from aipgan_hf.motion.shape_model import GROWTH_RANGE  # noqa: E402
from training.pairs import SESSION_SOURCES  # noqa: E402

BUNDLED_SHAPE_MODEL = (
    Path(__file__).resolve().parents[1] / "aipgan_hf" / "checkpoints" / "default" / "shape_model.safetensors"
)


def modes(model: ShapeModel) -> dict:
    """Name -> (target, source, reference) -> driving landmarks; the last two use S0."""
    return {
        "single photo (pipe(source, target))": lambda t, s, r: model.drive(t, s),
        "replace the target's expression": lambda t, s, r: model.drive(t, s, replace_target_expression=True),
        "relative to S0 (source_reference=, video)": lambda t, s, r: model.drive(t, s, reference_landmarks=r),
        "oracle: T + aligned (S - S0)": lambda t, s, r: oracle_landmarks(t, s, r),
    }


def changes(driving: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N, 5) the driving landmarks' change of each measure from their targets."""
    return np.array([expression_change(d, t) for d, t in zip(driving, targets)])


def response(got: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(5,) Pearson r and (5,) slopes of the driving change ``got`` on the wanted change, both (N, 5)."""
    slope = np.array([np.polyfit(wanted[:, k], got[:, k], 1)[0] for k in range(len(MEASURE_NAMES))])
    return pearson(got, wanted), slope


def within_groups(
    got: np.ndarray, wanted: np.ndarray, groups: np.ndarray, min_group: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(5,) r over the pairs of groups with >= ``min_group`` pairs, (5,) the same after each group's mean change
    (driving and wanted) is taken out, and how many pairs that is."""
    names, index, counts = np.unique(groups, return_inverse=True, return_counts=True)
    keep = counts[index] >= min_group
    if keep.sum() < 3:  # no r to speak of
        return np.full(len(MEASURE_NAMES), np.nan), np.full(len(MEASURE_NAMES), np.nan), int(keep.sum())
    means = [
        np.stack([np.bincount(index, weights=values[:, k]) / counts for k in range(values.shape[1])], axis=1)
        for values in (got, wanted)
    ]  # (groups, 5) each
    centred = [values - mean[index] for values, mean in zip((got, wanted), means)]
    return pearson(got[keep], wanted[keep]), pearson(centred[0][keep], centred[1][keep]), int(keep.sum())


def print_growth(model: ShapeModel, columns) -> None:
    """The outline growth of the split's true changes by family (a clip's frames against its most neutral one, a
    person's labelled photos against a neutral one, grimaces) and of its one-photo estimates."""
    references = choose_references(columns)
    rows = np.array(sorted(references), dtype=int)
    true = model.outline_growth(model.change(columns.landmarks[rows], columns.landmarks[[references[r] for r in rows]]))
    sources = np.asarray(columns.sources if columns.sources is not None else [""] * len(columns), dtype=str)[rows]
    families = np.where(np.asarray(columns.clips, dtype=str)[rows] != "", "clip", sources)
    print("\n| true changes | pairs | 1st / 99th percentile of the outline's growth | share outside the range |")
    print("|---|---|---|---|")
    low, high = model.growth_range
    session = np.isin(families, ["clip", *SESSION_SOURCES])
    for name, chosen in [(f, families == f) for f in np.unique(families)] + [("one session", session)]:
        if chosen.any():
            first, last = np.percentile(true[chosen], [1, 99])
            outside = ((true[chosen] < low) | (true[chosen] > high)).mean()
            print(f"| {name} | {chosen.sum()} | {first:.3f} / {last:.3f} | {outside:.3f} |")
    expressions = model.expression(columns.landmarks)
    growth, scale = model.outline_growth(expressions), model.growth_scale(expressions)
    scaled = scale[scale < 1]
    print(
        f"\none-photo estimates of all {len(growth)} rows, scaled into {model.growth_range}: above it "
        f"{(growth > high).mean():.3f}, below it {(growth < low).mean():.3f}; their factors "
        f"{scaled.min(initial=1):.2f}–1 (median {np.median(scaled) if len(scaled) else 1:.2f}); past 1.3 "
        f"{(growth > 1.3).mean():.3f}"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="dataset folder from training/prepare_dataset.py")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--shape_model", default=str(BUNDLED_SHAPE_MODEL))
    parser.add_argument(
        "--growth_range",
        type=float,
        nargs=2,
        default=GROWTH_RANGE,
        help="the estimates' outline growth range (0 inf: before 0.22.0)",
    )
    parser.add_argument(
        "--max_pairs", type=int, default=400, help="pairs of both kinds drawn; the cross-person ones are used"
    )
    parser.add_argument("--min_group", type=int, default=5, help="fewest pairs of one source group in the second table")
    args = parser.parse_args(argv)
    model = dataclasses.replace(ShapeModel.load(args.shape_model), growth_range=tuple(args.growth_range))
    columns = split_columns(load_split(args.dataset, args.split))
    landmarks = columns.landmarks
    pairs = [p for p in build_pairs(columns, max_pairs=args.max_pairs) if p.kind == CROSS_PERSON]
    targets = landmarks[[p.target for p in pairs]]
    wanted = np.array([expression_change(landmarks[p.source], landmarks[p.reference]) for p in pairs])
    print(f"{len(pairs)} cross-person pairs of {args.split!r}\n")
    print("| mode | " + " | ".join(MEASURE_NAMES) + " | mean r | slopes |\n|---|" + "---|" * (len(MEASURE_NAMES) + 2))
    figures, groups = {}, np.array([p.reference for p in pairs])  # one S0 per source group
    for name, drive in modes(model).items():
        driving = np.array([drive(landmarks[p.target], landmarks[p.source], landmarks[p.reference]) for p in pairs])
        got = changes(driving, targets)
        r, slope = response(got, wanted)
        pooled, within, count = within_groups(got, wanted, groups, args.min_group)
        figures[name] = {
            "r": r.tolist(),
            "mean_r": float(r.mean()),
            "slopes": slope.tolist(),
            "groups": {"pairs": count, "r": pooled.tolist(), "within_r": within.tolist()},
        }
        print(
            f"| {name} | "
            + " | ".join(f"{x:.3f}" for x in r)
            + f" | **{r.mean():.3f}** | "
            + " / ".join(f"{x:.2f}" for x in slope)
            + " |"
        )
    print(
        f"\nSource groups of at least {args.min_group} pairs: r over their pairs / r within a source (each group's mean taken out)\n"
    )
    print("| mode | pairs | " + " | ".join(MEASURE_NAMES) + " | mean |\n|---|---|" + "---|" * (len(MEASURE_NAMES) + 1))
    for name, values in figures.items():
        pooled, within = np.array(values["groups"]["r"]), np.array(values["groups"]["within_r"])
        print(
            f"| {name} | {values['groups']['pairs']} | "
            + " | ".join(f"{a:.2f} / {b:.2f}" for a, b in zip(pooled, within))
            + f" | **{pooled.mean():.3f} / {within.mean():.3f}** |"
        )
    print_growth(model, columns)
    return figures


if __name__ == "__main__":
    main()
