#!/usr/bin/env python
"""Blind naming of video driving: does a frame of the animated target read as the driving frame does, with the
clip's emotions worn and without them (0.19.0: the resting face's; 0.20.0: each frame's)?

    python benchmarks/blind_naming_video.py sets --dataset data_build/aipgan-faces-128 --output runs/video \\
        --seed 204 --frames 2 --baseline rest      # as shipped against 0.19.0 (0.20.0's round 8)
    # 0.19.0's rounds: --seed 196 --frames 3 --rest_worn (and 197); round 1: --seed 195 --frames 2 --rest_only
    # 0.21.0's round 9 (the tracker against 0.20.0's, drawn with its draft): --seed 205 --frames 2 --baseline tracker
    # fresh observers name runs/video/A/crops or runs/video/B/crops (never both), one "id,label" line each, into an
    # answers file beside that set's key.json (A/answers.csv, A/answers2.csv, ...); then:
    python benchmarks/blind_naming_video.py score --output runs/video --answers runs/video/A/answers.csv \\
        runs/video/A/answers2.csv runs/video/B/answers.csv runs/video/B/answers2.csv
    python benchmarks/blind_naming_video.py readings --output runs/video --answers ...   # the same answers files

Every clip under ``--clips`` drives frames of its own, drawn at random among the frames with a face, each onto a
neutral photo of another test-split person, as :func:`~aipgan_hf.video.animate.animate` draws it with relative
motion. "shipped" wears each frame's reading, else the clip's resting reading where it is kept
(:mod:`~aipgan_hf.video.reading`); "before" wears nothing (``read_emotion=False``), or with ``--baseline rest`` the
kept resting reading under every frame (0.19.0), or with ``--baseline tracker`` all as shipped but the clip tracked
as before 0.21.0 (``benchmark_tracking.tracker_before_0_21``; frames drawn only where the two sets of driving
landmarks differ by more than a crop pixel, clips with none left out and named). ``--frames`` frames a clip; where
"before" wears nothing, one frame of a clip that "shipped" wears nothing under either. ``--rest_worn`` makes "shipped"
0.19.0's (the kept resting reading alone), ``--rest_only`` the first round's (the resting face's reading, kept or
not). Where the two are one crop it is in both sets (key "also"); elsewhere every other pair is in set A, the rest in
set B. The driving frame's own crop is in both sets ("frame").

``score`` counts, per version, the transfers an observer named as the same observer named the driving frame
(where that observer named it at all), as the clip's label where the corpus has one, and "neutral"; only the pairs
whose two versions differ tell them apart, and they are reported alone too.

``readings`` asks what a reading could give before any transfer is drawn: how often each reading of the clip is the
emotion the observer named the driving frame, a reading at most :data:`~aipgan_hf.motion.emotion.READ_FROM` counting
as "neutral" (the frame's change alone). "worn" is what "shipped" wore on that frame, "rest" the reference frames'
reading, "whole" the sampled frames' (from the key), and "frame" the reader's reading of the driving frame's own crop
(read here from the set's crops).
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
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_tracking import tracker_before_0_21  # noqa: E402
from blind_naming import NAMED, drive, run, write_crops  # noqa: E402

from aipgan_hf import AIPGANPipeline  # noqa: E402
from aipgan_hf.evaluation.data import decode_rows, load_split, split_columns  # noqa: E402
from aipgan_hf.faces import image_to_tensor  # noqa: E402
from aipgan_hf.faces.align import warp_to_crop  # noqa: E402
from aipgan_hf.motion.emotion import READ_FROM  # noqa: E402
from aipgan_hf.video.animate import drive_clip  # noqa: E402
from aipgan_hf.video.clips import probe_clip, read_frames  # noqa: E402
from aipgan_hf.video.landmarks import clip_redetect_every, track_clip  # noqa: E402
from aipgan_hf.video.reading import clip_reading, frame_readings  # noqa: E402

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
    """Sets A and B under ``--output``: each clip's frames driven as shipped and as before, one version of a
    differing pair a set, and the driving frames' crops."""
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
        each = None if args.rest_only or args.rest_worn else frame_readings(pipe, track)
        target = int(next(targets))
        image, target_landmarks = data.images[target], data.landmarks[target].astype(np.float64)
        prepared = SimpleNamespace(landmarks=target_landmarks)  # all drive_clip reads of a prepared target
        _, shipped, _, wears = drive_clip(pipe, prepared, track, read=read, frames=each)
        if args.baseline == "tracker":
            before, wore = _tracked_as_before(pipe, prepared, info)
            found = np.flatnonzero(track.found & (np.abs(shipped - before).max(axis=(1, 2)) > 1.0))
            if not len(found):
                print(f"{path.parent.name}/{path.stem}: the two trackers agree within a crop pixel", flush=True)
                continue
            count = args.frames
        else:
            _, before, _, wore = drive_clip(
                pipe, prepared, track, read=reading.kept if args.baseline == "rest" else None
            )
            count = args.frames if any(wears) or any(wore) else 1
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
                "worn": wears[index],  # what "shipped" wears on this frame
                "before_worn": wore[index],
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
        print(f"{path.parent.name}/{path.stem}: {reading}, wears {[wears[i] for i in frames]}", flush=True)
    for name, crops in zip("AB", sets):
        write_crops(crops, Path(args.output) / name, np.random.default_rng(args.seed + 1))
    print(f"{differ} pairs differ")


def _tracked_as_before(pipe: AIPGANPipeline, prepared, info) -> tuple[np.ndarray, tuple[str, ...]]:
    """The clip's driving landmarks and worn emotions as shipped but for the tracker, as it was before 0.21.0."""
    before = tracker_before_0_21(pipe.processor, clip_redetect_every(info))
    track = track_clip(pipe.processor, info, 1.0, None, tracker=before)
    reading = clip_reading(pipe, track)
    _, driving, _, wore = drive_clip(pipe, prepared, track, read=reading.kept, frames=frame_readings(pipe, track))
    return driving, wore


def _answers(path: str) -> dict[str, str]:
    """An observer's namings by crop number ("001"), in the reader's labels."""
    with open(path, newline="") as file:
        return {
            f"{int(row[0]):03d}": NAMED.get(row[1].strip().lower(), row[1].strip().lower())
            for row in csv.reader(file)
            if row and row[0].strip().isdigit()
        }


def readings(args, pipe: AIPGANPipeline) -> None:
    """Print, per reading of the clip, how often it is the emotion the observer named the driving frame."""
    counts, cache = Counter(), {}
    for answers in args.answers:
        folder = Path(answers).parent
        key, named = json.loads((folder / "key.json").read_text()), _answers(answers)
        frames = sorted(number for number, meta in key.items() if meta["method"] == "frame")
        if folder not in cache:  # several observers of one set: its frames are read once
            side = pipe.processor.resolution
            crops = [
                Image.open(folder / "crops" / f"{n}.png").convert("RGB").resize((side, side), Image.LANCZOS)
                for n in frames
            ]
            cache[folder] = dict(zip(frames, pipe.emotion_reader.read(image_to_tensor(np.stack(crops)))))
        for number in frames:
            meta, seen = key[number], named.get(number)
            if "whole" not in meta or not seen:
                continue
            read = cache[folder][number]
            rules = {
                "worn": meta["worn"] or "neutral",
                "rest": meta["reading"] if meta["probability"] > READ_FROM else "neutral",
                "whole": meta["whole"] if meta["whole_probability"] > READ_FROM else "neutral",
                "frame": read.label if read.probability > READ_FROM else "neutral",
            }
            counts["n"] += 1
            for rule, label in rules.items():
                counts[rule, "same"] += label == seen
                counts[rule, "emotion"] += label != "neutral"
    print(f"| reading | the observer's naming of the driving frame (of {counts['n']}) | an emotion, not neutral |")
    print("|---|---|---|")
    for rule in ("worn", "rest", "whole", "frame"):
        same, emotion = counts[rule, "same"], counts[rule, "emotion"]
        print(f"| {rule} | {same} ({same / max(1, counts['n']):.1%}) | {emotion / max(1, counts['n']):.0%} |")


def score(args) -> None:
    """Print, per version, the transfers named as the same observer named the driving frame, as the clip's label,
    and "neutral": over the pairs whose versions differ, and over all."""
    counts = Counter()
    for answers in args.answers:
        key, named = json.loads((Path(answers).parent / "key.json").read_text()), _answers(answers)
        frame_named = {meta["pair"]: named.get(number) for number, meta in key.items() if meta["method"] == "frame"}
        for number, meta in key.items():
            if meta["method"] == "frame" or number not in named:
                continue
            differs = "also" not in meta
            wears_other = meta.get("before_worn", meta["worn"]) != meta["worn"]  # keys of 0.20.0's sets
            for method in (meta["method"], *meta.get("also", ())):
                for scope in ("all", "differ", *(("wears another",) if wears_other else ())) if differs else ("all",):
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
    scopes = ("wears another", "differ", "all") if any(k[1] == "wears another" for k in counts) else ("differ", "all")
    for method, scope in [(m, s) for s in scopes for m in VERSIONS] + [("frame", "all")]:
        c = {k[2]: v for k, v in counts.items() if k[:2] == (method, scope)}

        def cell(hit: str, n: str) -> str:
            return f"{c.get(hit, 0)}/{c.get(n, 0)} ({c.get(hit, 0) / c[n]:.0%})" if c.get(n) else "-"

        print(
            f"| {method} | {scope} | {cell('as frame', 'frame n')} | {cell('as label', 'label n')} | "
            f"{cell('neutral', 'n')} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("sets", "score", "readings"))
    parser.add_argument("--dataset", help="sets: a prepared dataset folder (its test people are the targets)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--clips", default="../shared/data/videos", help="sets: a folder of <family>/<clip>.mp4")
    parser.add_argument("--frames", type=int, default=2, help="sets: frames of a clip whose reading is worn")
    parser.add_argument("--output", required=True, help="folder for the sets A/ and B/")
    parser.add_argument("--checkpoint", default=None, help="pipeline folder (default: the bundled one)")
    parser.add_argument(
        "--answers", nargs="+", help="score, readings: answers.csv files, each beside its set's key.json"
    )
    parser.add_argument("--rest_only", action="store_true", help="sets: wear the resting face's reading alone")
    parser.add_argument("--rest_worn", action="store_true", help="sets: wear the kept resting reading alone (0.19.0)")
    parser.add_argument(
        "--baseline",
        choices=("none", "rest", "tracker"),
        default="none",
        help="sets: what 'before' wears; 'tracker': as shipped, tracked as before 0.21.0 (frames where the two differ)",
    )
    parser.add_argument("--seed", type=int, default=196)
    args = parser.parse_args(argv)
    if args.baseline == "tracker" and (args.rest_only or args.rest_worn):
        parser.error("--baseline tracker compares the trackers as shipped: without --rest_only or --rest_worn")
    run(args, score, {"sets": make_sets, "readings": readings})


if __name__ == "__main__":
    main()
