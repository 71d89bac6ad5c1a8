#!/usr/bin/env python
"""Blind naming: does a person who is told nothing name the emotion we meant?

    python benchmarks/blind_naming.py transfers --dataset data_build/aipgan-faces-128 --output runs/naming
    python benchmarks/blind_naming.py presets --dataset data_build/aipgan-faces-128 --output runs/naming_presets
    # an observer names every crop of runs/naming/crops (sheets/ shows them numbered), one "id,label" line each
    python benchmarks/blind_naming.py score --output runs/naming --answers answers.csv

``transfers``: for each emotion, up to ``--per_emotion`` labelled test-split sources of distinct people, each
driving a neutral photo of another test person (one who has a photo of that emotion too, where there is one).
The crops are the model's transfers (one photo; and given the source person's neutral photo where the split has
one), the warp alone (the same one-photo driving landmarks, no network), the target unchanged, the sources, and the
target people's own photos of that emotion, shuffled together. Where two of the model's transfers are the same
crop (a reading worn beside the neutral photo; the transfer without the reading where it acted on nothing), it is
shown once and scored for both. The model's transfers read the source's emotion as
``pipe(target, source=...)`` does; ``--without_reader`` adds its transfer without the reading (``read_emotion=False``).
``presets``: the seven presets on ``--faces`` neutral test faces of distinct people, with the faces unchanged.
The observer sees only numbered crops: the key (what each one is) is written beside them, in ``key.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipgan_hf import AIPGANPipeline  # noqa: E402
from aipgan_hf.driving import drive_crops  # noqa: E402
from aipgan_hf.evaluation.data import decode_rows, load_split, split_columns  # noqa: E402
from aipgan_hf.evaluation.methods import piecewise_affine_warp  # noqa: E402
from aipgan_hf.faces import image_to_tensor, tensor_to_image  # noqa: E402
from aipgan_hf.motion.lines import EXACT, LineStrength  # noqa: E402
from aipgan_hf.pipeline_steps import preset_landmarks, source_motion  # noqa: E402

EMOTIONS = ("happiness", "sadness", "surprise", "fear", "anger", "disgust", "contempt")
CHOICES = ("neutral", "happy", "sad", "angry", "surprised", "fearful", "disgusted", "contempt")
"""What the observer may answer; :data:`NAMED` maps each to the dataset's label."""
NAMED = dict(zip(CHOICES, ("neutral", "happiness", "sadness", "anger", "surprise", "fear", "disgust", "contempt")))
SHOWN = 256
"""Side of a crop as the observer sees it (the 128-px crop, enlarged)."""


def drive(
    pipe: AIPGANPipeline,
    target: np.ndarray,
    target_landmarks: np.ndarray,
    driving: np.ndarray,
    line_strength: LineStrength = EXACT,
) -> np.ndarray:
    """(R, R, 3) uint8: the model's output for an aligned target crop driven to (68, 2) crop landmarks, with the
    pipeline's default mouth (the target's own, else the checkpoint's exemplar) and its lines at ``line_strength``
    (a one-photo transfer's: :func:`~aipgan_hf.pipeline_steps.source_motion`'s; a preset's: in full)."""
    exemplar, exemplar_landmarks = pipe.mouth_exemplar.tensors() if pipe.mouth_exemplar is not None else (None, None)
    output = drive_crops(
        pipe.generator,
        image_to_tensor(target)[None],
        torch.as_tensor(target_landmarks)[None].float(),
        torch.as_tensor(driving)[None].float(),
        source=exemplar,
        source_landmarks=exemplar_landmarks,
        return_intrinsic=False,
        lines=pipe.lines,
        line_strength=line_strength,
    )
    return tensor_to_image(output.image[0].float().cpu())


def choose_pairs(columns, per_emotion: int, rng: np.random.Generator) -> list[dict]:
    """Up to ``per_emotion`` (source, target, own photo or None, the source person's neutral photo or None) per
    emotion, sources of distinct people. The neutral photo is the person's first (no draw: the pairs stay those of
    earlier rounds with the same seed)."""
    labels, people = np.asarray(columns.expressions, dtype=str), np.asarray(columns.identities, dtype=str)
    neutral_by_person = defaultdict(list)
    for row in np.flatnonzero(labels == "neutral"):
        neutral_by_person[people[row]].append(int(row))
    pairs = []
    for emotion in EMOTIONS:
        rows = rng.permutation(np.flatnonzero(labels == emotion))
        own_by_person = defaultdict(list)
        for row in rows:
            own_by_person[people[row]].append(int(row))
        used, count = set(), 0
        for source in rows:
            if people[source] in used or count >= per_emotion:
                continue
            count += 1
            with_own = [p for p in own_by_person if p != people[source] and p in neutral_by_person and p not in used]
            others = [p for p in neutral_by_person if p != people[source]]
            person = with_own[rng.integers(len(with_own))] if with_own else others[rng.integers(len(others))]
            used.update({people[source], person})
            pairs.append(
                {
                    "emotion": emotion,
                    "source": int(source),
                    "target": neutral_by_person[person][0],
                    "own": own_by_person[person][0] if person in own_by_person else None,
                    "reference": neutral_by_person[people[source]][0] if people[source] in neutral_by_person else None,
                }
            )
    return pairs


def write_crops(
    crops: list[tuple[np.ndarray, dict]], output: Path, rng: np.random.Generator, per_sheet: int = 20
) -> None:
    """Shuffle, number and write the crops (crops/NNN.png, sheets/sheet_NN.png) and the key (key.json)."""
    order = rng.permutation(len(crops))
    (output / "crops").mkdir(parents=True, exist_ok=True)
    (output / "sheets").mkdir(exist_ok=True)
    key, shown = {}, []
    for number, index in enumerate(order, start=1):
        image, meta = crops[index]
        picture = Image.fromarray(image).resize((SHOWN, SHOWN), Image.LANCZOS)
        picture.save(output / "crops" / f"{number:03d}.png")
        key[f"{number:03d}"] = meta
        shown.append(picture)
    for sheet, start in enumerate(range(0, len(shown), per_sheet), start=1):
        page = Image.new("RGB", (5 * SHOWN, ((min(per_sheet, len(shown) - start) + 4) // 5) * (SHOWN + 24)), "white")
        draw = ImageDraw.Draw(page)
        for offset, picture in enumerate(shown[start : start + per_sheet]):
            x, y = (offset % 5) * SHOWN, (offset // 5) * (SHOWN + 24)
            page.paste(picture, (x, y + 24))
            draw.text((x + 4, y + 4), f"{start + offset + 1:03d}", fill="black")
        page.save(output / "sheets" / f"sheet_{sheet:02d}.png")
    (output / "key.json").write_text(json.dumps(key, indent=1))


def make_transfers(args, pipe: AIPGANPipeline) -> None:
    split = load_split(args.dataset, args.split)
    rng = np.random.default_rng(args.seed)
    pairs = choose_pairs(split_columns(split), args.per_emotion, rng)
    data = decode_rows(split, {row for pair in pairs for row in pair.values() if isinstance(row, int)})
    crops = []
    for pair_id, pair in enumerate(pairs):
        source, target = pair["source"], pair["target"]
        target_landmarks = data.landmarks[target].astype(np.float64)
        source_landmarks = data.landmarks[source].astype(np.float64)
        # as pipe(target, source=...) drives and draws a one-photo transfer: the 68 points and the emotion read
        read = (
            None
            if pipe.emotion_reader is None
            else pipe.emotion_reader.read(image_to_tensor(data.images[source])[None])
        )
        driving, strength = source_motion(pipe.shape_model, target_landmarks, source_landmarks, read=read)
        meta = {"pair": pair_id, "emotion": pair["emotion"]}
        model_crop = drive(pipe, data.images[target], target_landmarks, driving, strength)
        model_meta = {**meta, "method": "model"}
        crops.append((model_crop, model_meta))
        points_only = (
            source_motion(pipe.shape_model, target_landmarks, source_landmarks) if args.without_reader else None
        )
        if points_only is not None and np.array_equal(points_only[0], driving):  # read_emotion=False
            model_meta.setdefault("also", []).append("68 points")
        elif points_only is not None:
            crops.append(
                (drive(pipe, data.images[target], target_landmarks, *points_only), {**meta, "method": "68 points"})
            )
        if pair["reference"] is not None:  # as pipe(target, source=..., source_reference=...) does
            reference = data.landmarks[pair["reference"]].astype(np.float64)
            exact = source_motion(pipe.shape_model, target_landmarks, source_landmarks, reference, read=read)
            if np.array_equal(exact[0], driving):  # a reading worn beside it as from one photo: one crop, both
                model_meta.setdefault("also", []).append("model given S0")
            else:
                crops.append(
                    (drive(pipe, data.images[target], target_landmarks, *exact), {**meta, "method": "model given S0"})
                )
        crops.append(
            (piecewise_affine_warp(data.images[target], target_landmarks, driving), {**meta, "method": "warp"})
        )
        crops.append((data.images[target], {**meta, "method": "target"}))
        crops.append((data.images[source], {**meta, "method": "source"}))
        if pair["own"] is not None:
            crops.append((data.images[pair["own"]], {**meta, "method": "own photo"}))
    write_crops(crops, Path(args.output), rng)


def make_presets(args, pipe: AIPGANPipeline) -> None:
    split = load_split(args.dataset, args.split)
    columns = split_columns(split)
    rng = np.random.default_rng(args.seed)
    first = {}
    for row in rng.permutation(np.flatnonzero(np.asarray(columns.expressions, dtype=str) == "neutral")):
        first.setdefault(columns.identities[row], int(row))
    rows = list(first.values())[: args.faces]
    data = decode_rows(split, set(rows))
    crops = []
    for face, row in enumerate(rows):
        landmarks = data.landmarks[row].astype(np.float64)
        crops.append((data.images[row], {"face": face, "emotion": "neutral", "method": "unchanged"}))
        for emotion in EMOTIONS:
            driving = preset_landmarks(pipe.shape_model, emotion, 1.0, None, landmarks)  # as pipe(expression=)
            crops.append(
                (
                    drive(pipe, data.images[row], landmarks, driving),
                    {"face": face, "emotion": emotion, "method": "preset"},
                )
            )
    write_crops(crops, Path(args.output), rng)


def score(args) -> dict:
    """Per method: the share named as the intended emotion, per emotion, and the share named neutral."""
    key = json.loads((Path(args.output) / "key.json").read_text())
    with open(args.answers, newline="") as file:
        answers = {
            f"{int(row[0]):03d}": NAMED.get(row[1].strip().lower(), row[1].strip().lower())
            for row in csv.reader(file)
            if row and row[0].strip().isdigit()
        }
    hits, counts, neutral = Counter(), Counter(), Counter()
    by_emotion = defaultdict(Counter)
    confusion = defaultdict(Counter)
    for number, meta in key.items():
        if number not in answers:
            continue
        emotion, named = meta["emotion"], answers[number]
        for method in (meta["method"], *meta.get("also", ())):  # a crop two methods draw alike counts for both
            counts[method] += 1
            hits[method] += named == emotion
            neutral[method] += named == "neutral"
            by_emotion[method][emotion, "n"] += 1
            by_emotion[method][emotion, "hit"] += named == emotion
            confusion[method, emotion][named] += 1
    print(
        f"| method | named as intended | named neutral | {' | '.join(EMOTIONS)} |\n|---|---|---|"
        + "---|" * len(EMOTIONS)
    )
    table = {}
    for method in counts:
        cells = [
            f"{by_emotion[method][e, 'hit']}/{by_emotion[method][e, 'n']}" if by_emotion[method][e, "n"] else "-"
            for e in EMOTIONS
        ]
        table[method] = {
            "rate": hits[method] / counts[method],
            "neutral": neutral[method] / counts[method],
            "n": counts[method],
        }
        print(
            f"| {method} | {hits[method]}/{counts[method]} ({table[method]['rate']:.0%}) | "
            f"{neutral[method]}/{counts[method]} ({table[method]['neutral']:.0%}) | " + " | ".join(cells) + " |"
        )
    print("\nconfusions (method, intended: named counts)")
    for (method, emotion), named in sorted(confusion.items()):
        print(f"{method}, {emotion}: {dict(named.most_common())}")
    return table


def run(args, score: Callable, makers: dict[str, Callable]) -> None:
    """``score`` the answers (no model needed), or load the pipeline and run ``makers[args.command]``."""
    if args.command == "score":
        score(args)
        return
    makers[args.command](args, AIPGANPipeline.from_pretrained(args.checkpoint))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("transfers", "presets", "score"))
    parser.add_argument("--dataset")
    parser.add_argument("--split", default="test")
    parser.add_argument("--output", required=True, help="folder for crops/, sheets/ and key.json")
    parser.add_argument("--checkpoint", default=None, help="pipeline folder (default: the bundled one)")
    parser.add_argument("--per_emotion", type=int, default=5)
    parser.add_argument("--faces", type=int, default=10)
    parser.add_argument("--answers", help="score: CSV of id,label")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--without_reader", action="store_true", help="transfers: also the 68 points' motion alone (read_emotion=False)"
    )
    run(parser.parse_args(argv), score, {"transfers": make_transfers, "presets": make_presets})


if __name__ == "__main__":
    main()
