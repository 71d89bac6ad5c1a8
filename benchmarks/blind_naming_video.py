#!/usr/bin/env python
"""Blind naming of video driving: does a frame of the animated target read as the driving frame does, with the
clip's resting emotion worn (0.19.0) and without it?

    python benchmarks/blind_naming_video.py sets --dataset data_build/aipgan-faces-128 --output runs/video \\
        --seed 196 --frames 3                              # as shipped; round 1: --seed 195 --frames 2 --rest_only
    # fresh observers name runs/video/A/crops or runs/video/B/crops (never both), one "id,label" line each, into an
    # answers file beside that set's key.json (A/answers.csv, A/answers2.csv, ...); then:
    python benchmarks/blind_naming_video.py score --output runs/video --answers runs/video/A/answers.csv \\
        runs/video/A/answers2.csv runs/video/B/answers.csv runs/video/B/answers2.csv

Every clip under ``--clips`` drives frames of its own (``--frames`` a clip where the reader's reading of its
reference frames is worn, one elsewhere, drawn at random among the frames with a face), each onto a neutral photo
of another test-split person, as :func:`~aipgan_hf.video.animate.animate` draws it with relative motion: "shipped"
wears the clip's reading where it is kept (:attr:`~aipgan_hf.video.animate.ClipReading.kept`), "before" does not
(``read_emotion=False``); ``--rest_only`` wears the resting face's reading alone, as the first round (seed 195)
did. Where the two are one crop (nothing worn) it is in both sets (key "also"); elsewhere every
other pair is in set A, the rest in set B. The driving frame's own crop is in both sets ("frame").

``score`` counts, per version, the transfers an observer named as the same observer named the driving frame
(where that observer named it at all), as the clip's label where the corpus has one, and "neutral"; only the pairs
whose two versions differ tell them apart, and they are reported alone too.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from blind_naming import NAMED, drive, write_crops  # noqa: E402

from aipgan_hf import AIPGANPipeline  # noqa: E402
from aipgan_hf.evaluation.data import decode_rows, load_split, split_columns  # noqa: E402
from aipgan_hf.faces.align import warp_to_crop  # noqa: E402
from aipgan_hf.video.animate import clip_reading, drive_clip  # noqa: E402
from aipgan_hf.video.clips import probe_clip, read_frames  # noqa: E402
from aipgan_hf.video.landmarks import track_clip  # noqa: E402

VERSIONS = ("shipped", "before")


def clip_labels(dataset: str) -> dict[str, str]:
    """Each clip's label in the corpus (its frames' expression where they have one), by clip name."""
    labels = {}
    for split in ("train", "validation", "test"):
        columns = load_split(dataset, split)
        for clip, label in zip(columns["clip"], columns["expression"]):
            if clip and label:
                labels[str(clip)] = str(label)
    return labels


def frame_crops(info, track, indices: list[int], resolution: int) -> dict[int, np.ndarray]:
    """(R, R, 3) aligned crops of the clip's frames ``indices`` (decoded again)."""
    crops, last = {}, max(indices)
    for index, (frame, _) in enumerate(read_frames(info, None)):
        if index in indices:
            crops[index] = warp_to_crop(frame, track.matrices[index], resolution)
        if index >= last:
            break
    return crops


def make_sets(args, pipe: AIPGANPipeline) -> None:
    """Sets A and B under ``--output``: each clip's frames driven with the clip's reading worn and without, one
    version of a differing pair a set, and the driving frames' crops."""
    rng = np.random.default_rng(args.seed)
    columns = split_columns(load_split(args.dataset, args.split))
    people, labels = np.asarray(columns.identities, dtype=str), np.asarray(columns.expressions, dtype=str)
    neutral = {}
    for row in rng.permutation(np.flatnonzero(labels == "neutral")):
        neutral.setdefault(people[row], int(row))
    targets = iter(rng.permutation(list(neutral.values())))
    data = decode_rows(load_split(args.dataset, args.split), set(neutral.values()))
    corpus = clip_labels(args.dataset)
    sets, differ = ([], []), 0
    for path in sorted(Path(args.clips).glob("*/*.mp4")):
        info = probe_clip(path, max_seconds=None)
        track = track_clip(pipe.processor, info, 1.0, None)
        reading = clip_reading(pipe, track)
        read = reading.rest if args.rest_only else reading.kept
        target = int(next(targets))
        image, target_landmarks = data.images[target], data.landmarks[target].astype(np.float64)
        prepared = SimpleNamespace(landmarks=target_landmarks)  # all drive_clip reads of a prepared target
        _, shipped, worn = drive_clip(pipe, prepared, track, read=read)
        before = drive_clip(pipe, prepared, track)[1]
        count = args.frames if worn is not None else 1
        found = np.flatnonzero(track.found)
        frames = sorted(int(i) for i in rng.choice(found, size=min(count, len(found)), replace=False))
        shown = frame_crops(info, track, frames, pipe.processor.resolution)
        for index in frames:
            meta = {
                "clip": path.stem,
                "frame": index,
                "label": corpus.get(path.stem, ""),
                "reading": reading.rest.label,
                "probability": round(reading.rest.probability, 3),
                "whole": reading.whole.label,
                "whole_probability": round(reading.whole.probability, 3),
                "worn": worn.label if worn is not None else "",
            }
            crops = {
                "shipped": drive(pipe, image, target_landmarks, shipped[index]),
                "before": drive(pipe, image, target_landmarks, before[index]),
            }
            meta["pair"] = f"{path.stem}@{index}"
            if np.array_equal(crops["shipped"], crops["before"]):
                pairs = [(crops["shipped"], {**meta, "method": "shipped", "also": ["before"]})] * 2
            else:
                order = VERSIONS if differ % 2 == 0 else VERSIONS[::-1]
                pairs, differ = [(crops[method], {**meta, "method": method}) for method in order], differ + 1
            for crops_of_set, crop in zip(sets, pairs):
                crops_of_set += [crop, (shown[index], {**meta, "method": "frame"})]
        print(f"{path.parent.name}/{path.stem}: {reading}, worn {worn is not None}, frames {frames}", flush=True)
    for name, crops in zip("AB", sets):
        write_crops(crops, Path(args.output) / name, np.random.default_rng(args.seed + 1))
    print(f"{differ} pairs differ")


def score(args) -> None:
    """Print, per version, the transfers named as the same observer named the driving frame, as the clip's label,
    and "neutral": over the pairs whose versions differ, and over all."""
    counts = Counter()
    for answers in args.answers:
        key = json.loads((Path(answers).parent / "key.json").read_text())
        with open(answers, newline="") as file:
            named = {
                f"{int(row[0]):03d}": NAMED.get(row[1].strip().lower(), row[1].strip().lower())
                for row in csv.reader(file)
                if row and row[0].strip().isdigit()
            }
        frame_named = {meta["pair"]: named.get(number) for number, meta in key.items() if meta["method"] == "frame"}
        for number, meta in key.items():
            if meta["method"] == "frame" or number not in named:
                continue
            differs = "also" not in meta
            for method in (meta["method"], *meta.get("also", ())):
                for scope in ("all", "differ") if differs else ("all",):
                    counts[method, scope, "n"] += 1
                    counts[method, scope, "neutral"] += named[number] == "neutral"
                    if frame_named.get(meta["pair"]):
                        counts[method, scope, "frame n"] += 1
                        counts[method, scope, "as frame"] += named[number] == frame_named[meta["pair"]]
                    if meta["label"]:
                        counts[method, scope, "label n"] += 1
                        counts[method, scope, "as label"] += named[number] == meta["label"]
        for number, meta in key.items():
            if meta["method"] == "frame" and number in named and meta["label"]:
                counts["frame", "all", "label n"] += 1
                counts["frame", "all", "as label"] += named[number] == meta["label"]
    print("| version | pairs | named as the observer named the driving frame | as the clip's label | neutral |")
    print("|---|---|---|---|---|")
    for method, scope in [(m, s) for s in ("differ", "all") for m in VERSIONS] + [("frame", "all")]:
        c = {k[2]: v for k, v in counts.items() if k[:2] == (method, scope)}

        def cell(hit: str, n: str) -> str:
            return f"{c.get(hit, 0)}/{c.get(n, 0)} ({c.get(hit, 0) / c[n]:.0%})" if c.get(n) else "-"

        print(
            f"| {method} | {scope} | {cell('as frame', 'frame n')} | {cell('as label', 'label n')} | "
            f"{cell('neutral', 'n')} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("sets", "score"))
    parser.add_argument("--dataset", help="sets: a prepared dataset folder (its test people are the targets)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", default="../shared/data/videos", help="sets: a folder of <family>/<clip>.mp4")
    parser.add_argument("--frames", type=int, default=2, help="sets: frames of a clip whose reading is worn")
    parser.add_argument("--output", required=True, help="folder for the sets A/ and B/")
    parser.add_argument("--checkpoint", default=None, help="pipeline folder (default: the bundled one)")
    parser.add_argument("--answers", nargs="+", help="score: answers.csv files, each beside its set's key.json")
    parser.add_argument("--rest_only", action="store_true", help="sets: wear the resting face's reading alone")
    parser.add_argument("--seed", type=int, default=196)
    args = parser.parse_args(argv)
    if args.command == "score":
        score(args)
        return
    make_sets(args, AIPGANPipeline.from_pretrained(args.checkpoint))


if __name__ == "__main__":
    main()
