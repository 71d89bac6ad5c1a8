#!/usr/bin/env python
"""Blind naming of closed-lipped read smiles, drawn with their teeth shown (0.16.0) or not (0.15.0).

    python benchmarks/blind_naming_smiles.py --dataset data_build/aipgan-faces-128 --output runs/smiles
    # fresh observers name runs/smiles/A/crops or runs/smiles/B/crops (never both); then, per set and observer:
    python benchmarks/blind_naming.py score --output runs/smiles/A --answers answers.csv

Up to ``--smiles`` photos labelled happy, of distinct people, that the reader reads as happiness and that smile with
closed lips (:func:`~aipgan_hf.motion.emotion.lips_closed`), each driving a neutral photo of another person, among
the other emotions' transfers (``blind_naming.choose_pairs``, ``--per_emotion``). Set A draws the first half of the
smiles as the pipeline does ("teeth") and the second half without the jaw's top-up ("closed"); set B the other way
round, so that an observer sees one version of each face. The other transfers are "model" in both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from blind_naming import choose_pairs, drive, write_crops  # noqa: E402

from aipgan_hf import AIPGANPipeline  # noqa: E402
from aipgan_hf.evaluation.data import decode_rows, load_split, split_columns  # noqa: E402
from aipgan_hf.faces import image_to_tensor  # noqa: E402
from aipgan_hf.motion.emotion import acted_on, lips_closed, read_change  # noqa: E402
from aipgan_hf.motion.lines import ESTIMATED  # noqa: E402
from aipgan_hf.pipeline_steps import source_motion  # noqa: E402


def closed_lipped_smiles(pipe: AIPGANPipeline, split, count: int, rng: np.random.Generator) -> list[dict]:
    """Up to ``count`` (target crop, both versions) of read, closed-lipped smiles of distinct people."""
    columns = split_columns(split)
    labels, people = np.asarray(columns.expressions, dtype=str), np.asarray(columns.identities, dtype=str)
    neutral = {}
    for row in np.flatnonzero(labels == "neutral"):
        neutral.setdefault(people[row], int(row))
    happy = [int(row) for row in rng.permutation(np.flatnonzero(labels == "happiness"))]
    data = decode_rows(split, set(happy) | set(neutral.values()))
    model, smiles, used = pipe.shape_model, [], set()
    for source in happy:
        landmarks = data.landmarks[source].astype(np.float64)
        if people[source] in used or not lips_closed(landmarks):
            continue
        read = pipe.emotion_reader.read(image_to_tensor(data.images[source])[None])[0]
        if read.label != "happiness" or not acted_on(read, model):
            continue
        used.add(people[source])
        others = [person for person in neutral if person != people[source]]
        target = neutral[others[rng.integers(len(others))]]
        image, target_landmarks = data.images[target], data.landmarks[target].astype(np.float64)
        closed = read_change(model, read, model.expression(landmarks), closed_lips=False)  # as 0.15.0 read it
        shut = model.drive(target_landmarks, landmarks, source_expression=closed)
        smiles.append(
            {
                "teeth": drive(
                    pipe, image, target_landmarks, *source_motion(model, target_landmarks, landmarks, read=read)
                ),
                "closed": drive(pipe, image, target_landmarks, shut, ESTIMATED),
            }
        )
        if len(smiles) == count:
            break
    return smiles


def other_transfers(pipe: AIPGANPipeline, split, per_emotion: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The other emotions' one-photo transfers, drawn as the pipeline draws them."""
    pairs = [pair for pair in choose_pairs(split_columns(split), per_emotion, rng) if pair["emotion"] != "happiness"]
    data = decode_rows(split, {pair[key] for pair in pairs for key in ("source", "target")})
    crops = []
    for pair in pairs:
        source, target = pair["source"], pair["target"]
        target_landmarks = data.landmarks[target].astype(np.float64)
        read = pipe.emotion_reader.read(image_to_tensor(data.images[source])[None])
        motion = source_motion(pipe.shape_model, target_landmarks, data.landmarks[source].astype(np.float64), read=read)
        crops.append((drive(pipe, data.images[target], target_landmarks, *motion), pair["emotion"]))
    return crops


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--output", required=True, help="folder for the sets A/ and B/")
    parser.add_argument("--checkpoint", default=None, help="pipeline folder (default: the bundled one)")
    parser.add_argument("--smiles", type=int, default=40)
    parser.add_argument("--per_emotion", type=int, default=16)
    parser.add_argument("--seed", type=int, default=2316)
    args = parser.parse_args(argv)
    pipe = AIPGANPipeline.from_pretrained(args.checkpoint)
    split = load_split(args.dataset, args.split)
    rng = np.random.default_rng(args.seed)
    smiles = closed_lipped_smiles(pipe, split, args.smiles, rng)
    others = other_transfers(pipe, split, args.per_emotion, rng)
    half = len(smiles) // 2
    for name, first in (("A", "teeth"), ("B", "closed")):
        second = "closed" if first == "teeth" else "teeth"
        crops = [
            (
                smile[first if index < half else second],
                {"pair": index, "emotion": "happiness", "method": first if index < half else second},
            )
            for index, smile in enumerate(smiles)
        ]
        crops += [
            (crop, {"pair": f"o{index}", "emotion": emotion, "method": "model"})
            for index, (crop, emotion) in enumerate(others)
        ]
        write_crops(crops, Path(args.output) / name, np.random.default_rng(args.seed + 1))


if __name__ == "__main__":
    main()
