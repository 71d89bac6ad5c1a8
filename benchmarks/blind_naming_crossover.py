#!/usr/bin/env python
"""Blind naming in crossover sets: the transfers a change draws, as shipped or as before, one version a set.

    python benchmarks/blind_naming_crossover.py smiles --dataset data_build/aipgan-faces-128 --output runs/smiles
    python benchmarks/blind_naming_crossover.py sadness --dataset data_build/aipgan-faces-128 --output runs/sad --seed 41
    python benchmarks/blind_naming_crossover.py reference --dataset data_build/aipgan-faces-128 --output runs/ref
    python benchmarks/blind_naming_crossover.py named --dataset data_build/aipgan-faces-128 --output runs/named --seed 190
    python benchmarks/blind_naming_crossover.py grown --dataset data_build/aipgan-faces-128 --output runs/grown --seed 220
    python benchmarks/blind_naming_crossover.py pinched --dataset data_build/aipgan-faces-128 --output runs/pinched --seed 224
    # fresh observers name runs/smiles/A/crops or runs/smiles/B/crops (never both); then, per set and observer:
    python benchmarks/blind_naming.py score --output runs/smiles/A --answers answers.csv

- ``smiles``: up to ``--count`` photos labelled happy, of distinct people, that the reader reads as happiness and
  that smile with closed lips (:func:`~aipgan_hf.motion.emotion.lips_closed`), each driving a neutral photo of
  another person; before, the jaw was not topped up (``read_change(..., closed_lips=False)``).
- ``sadness``: ``--count`` transfers of photos labelled sad that the reader reads as sadness (a source drives
  several targets where there are fewer), onto neutral photos of other people whose
  :func:`~aipgan_hf.landmarks.mouth_opening` is above :data:`OPEN`; before, the target's mouth was not closed (no
  ``close_mouth``).
- ``reference``: up to ``--count`` labelled photos of distinct people who have a neutral photo too, whose reading is
  worn beside it (:func:`~aipgan_hf.motion.emotion.acted_on`, ``beside_reference``), each given that neutral photo
  and driving a neutral photo of another person (0.17.0); before, a reference photo read nothing (its exact change).
- ``grown``, ``pinched``: up to ``--count`` labelled photos of distinct people whose one-photo estimate grows the
  face past the top of the shape model's ``growth_range`` (shrinks it below the bottom) and whose transfer follows it
  (a read smile, an unsure reading), each driving a neutral photo of another person (0.22.0, 0.23.0); before, the
  estimate was not scaled on that side. ``--growth_range`` sets the range "shipped" is drawn with. Prints each
  version's dlib distance to the target. (0.22.0 measured a bottom that scaled a pinching estimate as a whole, mouth
  too, and did not ship it: those sets are drawn at commit ca71690.)

- ``named``: the standard sets' one-photo transfers (``choose_pairs``, ``--per_emotion``, default 8) as read
  ("shipped") and named ("named": ``pipe(..., source_emotion=)`` the source's label, 0.18.0), beside the sources and
  the target people's own photos; where the two are the same crop it is shown once (key "also"), where they differ
  every other pair is named in set A, the others in set B.

For the other cases, set A draws the first half of these pairs as shipped and the second half as before; set B the other
way round, so
that an observer sees one version of each face. Among them are the other emotions' transfers (``choose_pairs``,
``--per_emotion``), drawn as shipped ("model"). The key's method is "shipped" or "before" for the pairs.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from blind_naming import EMOTIONS, choose_pairs, drive, write_crops  # noqa: E402

from aipgan_hf import AIPGANPipeline  # noqa: E402
from aipgan_hf.evaluation.crops import CropMeasurer  # noqa: E402
from aipgan_hf.evaluation.data import decode_rows, load_split, split_columns  # noqa: E402
from aipgan_hf.evaluation.identity import SAME_PERSON_THRESHOLD  # noqa: E402
from aipgan_hf.faces import image_to_tensor  # noqa: E402
from aipgan_hf.landmarks import mouth_opening  # noqa: E402
from aipgan_hf.motion.emotion import acted_on, lips_closed, read_change, told_emotion  # noqa: E402
from aipgan_hf.motion.lines import ESTIMATED, EXACT  # noqa: E402
from aipgan_hf.pipeline_steps import source_motion  # noqa: E402

EMOTION = {
    "smiles": "happiness",
    "sadness": "sadness",
    "reference": None,
    "named": None,
    "grown": None,
    "pinched": None,
}
OPEN = 0.07
"""``sadness``: the mouth opening above which a target's mouth counts as open."""


def _neutral_photos(split, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The split's labels and people, and one neutral photo's row per person (the first, or a random one)."""
    columns = split_columns(split)
    labels, people = np.asarray(columns.expressions, dtype=str), np.asarray(columns.identities, dtype=str)
    rows = np.flatnonzero(labels == "neutral")
    neutral = {}
    for row in rows if rng is None else rng.permutation(rows):
        neutral.setdefault(people[row], int(row))
    return labels, people, neutral


def _read_sources(pipe: AIPGANPipeline, data, rows: list[int], emotion: str) -> list[tuple[int, object]]:
    """(row, reading) of the rows whose reading is ``emotion`` and acted on."""
    found = []
    for row in rows:
        read = pipe.emotion_reader.read(image_to_tensor(data.images[row])[None])[0]
        if read.label == emotion and acted_on(read, pipe.shape_model, data.landmarks[row].astype(np.float64)):
            found.append((row, read))
    return found


def pairs_of(case: str, pipe: AIPGANPipeline, split, count: int, rng: np.random.Generator) -> list[dict]:
    """Up to ``count`` {"shipped", "before"} crops of the case's transfers."""
    labels, people, neutral = _neutral_photos(split)
    sources = [int(row) for row in rng.permutation(np.flatnonzero(labels == EMOTION[case]))]
    data = decode_rows(split, set(sources) | set(neutral.values()))
    model, chosen = pipe.shape_model, []
    if case == "smiles":
        used = set()
        for source in sources:
            if people[source] in used or not lips_closed(data.landmarks[source].astype(np.float64)):
                continue
            found = _read_sources(pipe, data, [source], "happiness")
            if found:
                used.add(people[source])
                others = [person for person in neutral if person != people[source]]
                chosen.append((source, neutral[others[rng.integers(len(others))]], found[0][1]))
            if len(chosen) == count:
                break
    else:
        read = _read_sources(pipe, data, sources, "sadness")
        opening = mouth_opening(np.stack([data.landmarks[row] for row in neutral.values()]))
        targets = [
            int(row) for row in rng.permutation([row for row, open_ in zip(neutral.values(), opening) if open_ > OPEN])
        ]
        for index in range(min(count, len(targets)) if read else 0):
            source, reading = read[index % len(read)]
            target = next(row for row in targets if people[row] != people[source])
            targets.remove(target)
            chosen.append((source, target, reading))
    pairs = []
    for source, target, reading in chosen:
        image, target_landmarks = data.images[target], data.landmarks[target].astype(np.float64)
        landmarks = data.landmarks[source].astype(np.float64)
        shipped = source_motion(model, target_landmarks, landmarks, read=reading)
        if case == "smiles":  # as 0.15.0 read it: the jaw not topped up
            before = read_change(model, reading, model.estimate(landmarks), closed_lips=False), ESTIMATED
        else:  # the target's own open mouth kept
            own = model.expression(target_landmarks)
            before = read_change(model, reading, model.expression(landmarks), own, lips_closed(landmarks)), EXACT
        driven = model.drive(target_landmarks, landmarks, source_expression=before[0])
        pairs.append(
            {
                "shipped": drive(pipe, image, target_landmarks, *shipped),
                "before": drive(pipe, image, target_landmarks, driven, before[1]),
                "emotion": EMOTION[case],
            }
        )
    return pairs


def scaled_pairs(case: str, pipe: AIPGANPipeline, split, count: int, rng: np.random.Generator) -> list[dict]:
    """Up to ``count`` {"shipped", "before", "emotion", "target"} crops of transfers whose source's estimate the
    shape model scales: past the top of its ``growth_range`` (``grown``) or below its bottom (``pinched``)."""
    labels, people, neutral = _neutral_photos(split)
    landmarks = split_columns(split).landmarks
    model = pipe.shape_model
    low, high = model.growth_range
    before_model = dataclasses.replace(model, growth_range=(low, math.inf) if case == "grown" else (0.0, high))
    labelled = np.flatnonzero(np.isin(labels, EMOTIONS))
    growth = model.outline_growth(model.expression(landmarks[labelled]))
    scaled = labelled[growth > high] if case == "grown" else labelled[growth < low]
    sources = [int(row) for row in rng.permutation(scaled)]
    data = decode_rows(split, set(sources) | set(neutral.values()))
    pairs, used = [], set()
    for source in sources:
        if len(pairs) == count:
            break
        if people[source] in used:
            continue
        others = [person for person in neutral if person != people[source]]
        target = neutral[others[rng.integers(len(others))]]
        image, target_landmarks = data.images[target], data.landmarks[target].astype(np.float64)
        read = pipe.emotion_reader.read(image_to_tensor(data.images[source])[None])
        shipped, before = (
            source_motion(shape_model, target_landmarks, data.landmarks[source].astype(np.float64), read=read)
            for shape_model in (model, before_model)
        )
        if np.array_equal(shipped[0], before[0]):  # a preset worn: the estimate does not reach the target
            continue
        used.add(people[source])
        pairs.append(
            {
                "shipped": drive(pipe, image, target_landmarks, *shipped),
                "before": drive(pipe, image, target_landmarks, *before),
                "emotion": str(labels[source]),
                "target": (image, target_landmarks),
            }
        )
    return pairs


def print_identity(pipe: AIPGANPipeline, pairs: list[dict]) -> None:
    """Each version's mean dlib distance to its target, and in how many pairs the scaled one ("shipped") is nearer."""
    measurer = CropMeasurer(pipe.processor, {})
    distances = {"shipped": [], "before": []}
    for pair in pairs:
        image, landmarks = pair["target"]
        own = measurer.measure(image, landmarks).descriptor
        for method, found in distances.items():
            found.append(float(np.linalg.norm(measurer.measure(pair[method], landmarks).descriptor - own)))
    shipped, before = (np.array(found) for found in distances.values())
    print(
        f"dlib distance to the target, {len(pairs)} pairs: scaled {shipped.mean():.3f}, unscaled {before.mean():.3f}; "
        f"scaled nearer in {(shipped < before).sum()}; same person (< {SAME_PERSON_THRESHOLD}): "
        f"{(shipped < SAME_PERSON_THRESHOLD).mean():.3f} against {(before < SAME_PERSON_THRESHOLD).mean():.3f}"
    )


def reference_pairs(pipe: AIPGANPipeline, split, count: int, rng: np.random.Generator) -> list[dict]:
    """Up to ``count`` {"shipped", "before", "emotion"} crops of transfers given the source's neutral photo."""
    labels, people, neutral = _neutral_photos(split, rng)
    sources = [int(row) for row in rng.permutation(np.flatnonzero(~np.isin(labels, ["neutral", ""])))]
    sources = [row for row in sources if people[row] in neutral]
    data = decode_rows(split, set(sources) | set(neutral.values()))
    pairs, used = [], set()
    for source in sources:
        read = pipe.emotion_reader.read(image_to_tensor(data.images[source])[None])[0]
        landmarks = data.landmarks[source].astype(np.float64)
        if people[source] in used or not acted_on(read, pipe.shape_model, landmarks, beside_reference=True):
            continue
        used.add(people[source])
        others = [person for person in neutral if person != people[source]]
        target = neutral[others[rng.integers(len(others))]]
        image, target_landmarks = data.images[target], data.landmarks[target].astype(np.float64)
        reference = data.landmarks[neutral[people[source]]].astype(np.float64)
        shipped = source_motion(pipe.shape_model, target_landmarks, landmarks, reference, read=read)
        before = source_motion(pipe.shape_model, target_landmarks, landmarks, reference)
        pairs.append(
            {
                "shipped": drive(pipe, image, target_landmarks, *shipped),
                "before": drive(pipe, image, target_landmarks, *before),
                "emotion": str(labels[source]),
            }
        )
        if len(pairs) == count:
            break
    return pairs


def other_transfers(
    pipe: AIPGANPipeline, split, per_emotion: int, left_out: str | None, rng: np.random.Generator
) -> list:
    """(crop, emotion) of the other emotions' one-photo transfers, drawn as the pipeline draws them."""
    pairs = [pair for pair in choose_pairs(split_columns(split), per_emotion, rng) if pair["emotion"] != left_out]
    data = decode_rows(split, {pair[key] for pair in pairs for key in ("source", "target")})
    crops = []
    for pair in pairs:
        source, target = pair["source"], pair["target"]
        target_landmarks = data.landmarks[target].astype(np.float64)
        read = pipe.emotion_reader.read(image_to_tensor(data.images[source])[None])
        motion = source_motion(pipe.shape_model, target_landmarks, data.landmarks[source].astype(np.float64), read=read)
        crops.append((drive(pipe, data.images[target], target_landmarks, *motion), pair["emotion"]))
    return crops


def named_sets(pipe: AIPGANPipeline, split, per_emotion: int, rng: np.random.Generator) -> tuple[list, list]:
    """Sets A and B of ``named``: (crop, key) of each pair's transfer as read or named, its source and own photo."""
    pairs = choose_pairs(split_columns(split), per_emotion, rng)
    data = decode_rows(
        split, {pair[key] for pair in pairs for key in ("source", "target", "own") if pair[key] is not None}
    )
    sets, differ = ([], []), 0
    for index, pair in enumerate(pairs):
        image, meta = data.images[pair["target"]], {"pair": index, "emotion": pair["emotion"]}
        target, source = (data.landmarks[pair[key]].astype(np.float64) for key in ("target", "source"))
        read = pipe.emotion_reader.read(image_to_tensor(data.images[pair["source"]])[None])
        named = [told_emotion(pair["emotion"], pipe.shape_model)]
        crops = {
            "shipped": drive(pipe, image, target, *source_motion(pipe.shape_model, target, source, read=read)),
            "named": drive(pipe, image, target, *source_motion(pipe.shape_model, target, source, read=named)),
        }
        if np.array_equal(crops["shipped"], crops["named"]):
            shown = [(crops["shipped"], {**meta, "method": "shipped", "also": ["named"]})] * 2
        else:
            order = ("shipped", "named") if differ % 2 == 0 else ("named", "shipped")
            shown, differ = [(crops[method], {**meta, "method": method}) for method in order], differ + 1
        for crops_of_set, crop in zip(sets, shown):
            crops_of_set.append(crop)
            crops_of_set.append((data.images[pair["source"]], {**meta, "method": "source"}))
            if pair["own"] is not None:
                crops_of_set.append((data.images[pair["own"]], {**meta, "method": "own photo"}))
    return sets


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=sorted(EMOTION))
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--output", required=True, help="folder for the sets A/ and B/")
    parser.add_argument("--checkpoint", default=None, help="pipeline folder (default: the bundled one)")
    parser.add_argument(
        "--count",
        type=int,
        default=None,
        help="pairs (default: smiles 40, sadness 24, reference 40, grown and pinched 30)",
    )
    parser.add_argument(
        "--per_emotion",
        type=int,
        default=None,
        help="other transfers (default: smiles 16, sadness 8, reference 4, named 8, grown and pinched 4)",
    )
    parser.add_argument("--seed", type=int, default=2316)
    parser.add_argument(
        "--growth_range", type=float, nargs=2, default=None, help="the shape model's range (default: as shipped)"
    )
    args = parser.parse_args(argv)
    pipe = AIPGANPipeline.from_pretrained(args.checkpoint)
    if args.growth_range is not None:
        pipe.shape_model = dataclasses.replace(pipe.shape_model, growth_range=tuple(args.growth_range))
    split = load_split(args.dataset, args.split)
    rng = np.random.default_rng(args.seed)
    if args.case == "named":
        for name, crops in zip("AB", named_sets(pipe, split, args.per_emotion or 8, rng)):
            write_crops(crops, Path(args.output) / name, np.random.default_rng(args.seed + 1))
        return
    count = args.count or {"smiles": 40, "sadness": 24, "reference": 40, "grown": 30, "pinched": 30}[args.case]
    if args.case == "reference":
        pairs = reference_pairs(pipe, split, count, rng)
    elif args.case in ("grown", "pinched"):
        if args.case == "pinched" and pipe.shape_model.growth_range[0] == 0:
            parser.error("pinched needs a range with a bottom (--growth_range 0 ... leaves it open)")
        pairs = scaled_pairs(args.case, pipe, split, count, rng)
        print_identity(pipe, pairs)
    else:
        pairs = pairs_of(args.case, pipe, split, count, rng)
    per_emotion = args.per_emotion or {"smiles": 16, "sadness": 8, "reference": 4, "grown": 4, "pinched": 4}[args.case]
    others = other_transfers(pipe, split, per_emotion, EMOTION[args.case], rng)
    half = len(pairs) // 2
    for name, first, second in (("A", "shipped", "before"), ("B", "before", "shipped")):
        crops = []
        for index, pair in enumerate(pairs):
            method = first if index < half else second
            crops.append((pair[method], {"pair": index, "emotion": pair["emotion"], "method": method}))
        for index, (crop, emotion) in enumerate(others):
            crops.append((crop, {"pair": f"o{index}", "emotion": emotion, "method": "model"}))
        write_crops(crops, Path(args.output) / name, np.random.default_rng(args.seed + 1))


if __name__ == "__main__":
    main()
