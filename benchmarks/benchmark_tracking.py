#!/usr/bin/env python
"""How well the video tracker keeps a face (``aipgan_hf.video.tracking.FaceTracker``), on real clips.

    python benchmarks/benchmark_tracking.py --videos ../shared/data/videos --frames 120

Two parts, on the first ``--frames`` frames of every clip under ``--videos``:

* **The tracker** (``--before``: as it was before 0.21.0): frames it reports without a face; on how many of those
  the full face search (``FaceProcessor.find_faces``) does find one (a face the tracker lost); and, on every 10th
  frame, how far the tracked landmarks are from the full search's (mean point distance over the eye distance; a
  tracked box that holds no face gives a large error).
* **The check fit** (``FaceTracker.is_face``) on every 12th frame: for the full search's face and for three empty
  boxes of the same size beside it, the better of the two shifted refits' ratios (how far each follows its shifted
  box, as a share of the shift; ``MAX_ANCHOR_RATIO`` separates the two), and the down-right refit's alone (the
  check before 0.7.0, at 0.6).

With ``--tilted`` (a folder of upright portraits, e.g. ``../shared/data/london/neutral``), a third part: **tilting
heads**. Each portrait is turned by 0, 4, ..., 40 degrees (about the image's centre, onto a canvas that holds all of
it), one frame a step (a head tilting), both ways, and tracked through the turns; each frame's tracked landmarks are
compared with the upright photo's full search landmarks turned with it (mean point distance over the eye distance),
by roll, as shipped and with the tracker as before 0.21.0 (``tracker_before_0_21``: no fit turned upright, no
coasting).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipgan_hf.errors import AIPGANError  # noqa: E402
from aipgan_hf.faces import FaceProcessor, apply_affine, load_image  # noqa: E402
from aipgan_hf.faces.detect import rotate_image  # noqa: E402
from aipgan_hf.landmarks import LEFT_EYE, RIGHT_EYE  # noqa: E402
from aipgan_hf.video.clips import probe_clip, read_frames  # noqa: E402
from aipgan_hf.video.landmarks import clip_redetect_every  # noqa: E402
from aipgan_hf.video.tracking import ANCHOR_SHIFT, MAX_ANCHOR_RATIO, FaceTracker, anchor_ratio  # noqa: E402


def refit_ratios(
    processor: FaceProcessor, frame: np.ndarray, box: tuple[float, ...], landmarks: np.ndarray | None = None
) -> tuple[float, float]:
    """(down-right, up-left): the two shifted refits' :func:`anchor_ratio`; :meth:`FaceTracker.is_face` compares the
    smaller with MAX_ANCHOR_RATIO."""
    landmarks = processor.landmarks68(frame, box) if landmarks is None else landmarks
    return (
        anchor_ratio(processor, frame, box, landmarks, ANCHOR_SHIFT),
        anchor_ratio(processor, frame, box, landmarks, -ANCHOR_SHIFT),
    )


BOUND_BEFORE_0_7 = 0.6
"""The check before 0.7.0: the down-right refit alone, held by a face below this ratio."""


def full_search(processor: FaceProcessor, frame: np.ndarray):
    """The largest face the full search finds in ``frame`` (a ``DetectedFace``), or None."""
    try:
        faces = processor.find_faces(frame, small_faces=False)  # as the tracker searches
    except AIPGANError:
        return None
    return faces[0] if faces else None


def tracker_before_0_21(processor: FaceProcessor, redetect_every: int = 1) -> FaceTracker:
    """The tracker as it was before 0.21.0: every face fitted where it is, a lost face left to the full search."""
    return FaceTracker(processor, redetect_every, upright_roll=np.inf, coast_frames=0)


def empty_boxes(
    face_box: tuple[float, ...], width: int, height: int, rng: np.random.Generator, count: int = 3
) -> list[tuple[float, ...]]:
    """Up to ``count`` boxes of the face's size inside the frame that overlap the face by less than a tenth (none
    where the face fills the frame)."""
    side, boxes = face_box[2] - face_box[0], []
    for _ in range(60):
        x0, y0 = rng.uniform(0, max(1.0, width - side)), rng.uniform(0, max(1.0, height - side))
        overlap = max(0.0, min(x0 + side, face_box[2]) - max(x0, face_box[0])) * max(
            0.0, min(y0 + side, face_box[3]) - max(y0, face_box[1])
        )
        if overlap < 0.1 * side * side and x0 + side <= width and y0 + side <= height:
            boxes.append((x0, y0, x0 + side, y0 + side))
            if len(boxes) == count:
                break
    return boxes


def survey(processor: FaceProcessor, clip: Path, frames: int, rng: np.random.Generator, before: bool = False) -> dict:
    """One clip's counts and samples (see the module docstring); the full search runs at most once a frame.
    ``before``: with the tracker as it was before 0.21.0 (:func:`tracker_before_0_21`)."""
    info = probe_clip(clip)
    make = tracker_before_0_21 if before else FaceTracker
    tracker = make(processor, clip_redetect_every(info))  # as track_clip
    read = lost = missed = 0
    errors, faces, empties = [], [], []
    for index, (frame, _) in zip(range(frames), read_frames(info, None)):
        read += 1
        tracked = tracker.update(frame)
        found = full_search(processor, frame) if tracked is None or index % 10 == 0 or index % 12 == 0 else None
        if tracked is None:
            lost += 1
            missed += found is not None
        if index % 10 == 0 and tracked is not None and found is not None:
            eyes = np.linalg.norm(found.landmarks[RIGHT_EYE].mean(0) - found.landmarks[LEFT_EYE].mean(0))
            errors.append(float(np.linalg.norm(tracked.landmarks - found.landmarks, axis=1).mean() / eyes))
        if index % 12 == 0 and found is not None:
            faces.append(refit_ratios(processor, frame, found.box, found.landmarks))
            empties += [
                refit_ratios(processor, frame, box)
                for box in empty_boxes(found.box, frame.shape[1], frame.shape[0], rng)
            ]
    return {
        "frames": read,
        "lost": lost,
        "lost_with_a_face": missed,
        "errors": errors,
        "faces": faces,
        "empty": empties,
    }


def _share(kept: np.ndarray) -> float | None:
    return float(kept.mean()) if len(kept) else None


def summary(results: dict[str, dict]) -> dict:
    """The figures over all clips (None where there is nothing to measure)."""
    surveyed = [r for r in results.values() if "error" not in r]
    errors = np.array([x for r in surveyed for x in r["errors"]])
    faces, empties = (
        np.array([x for r in surveyed for x in r[key]]).reshape(-1, 2) for key in ("faces", "empty")
    )  # (n, 2) ratios
    best_face, best_empty = faces.min(axis=1), empties.min(axis=1)
    return {
        "clips": len(results),
        "unreadable": sorted(name for name, r in results.items() if "error" in r),
        **{key: sum(r[key] for r in surveyed) for key in ("frames", "lost", "lost_with_a_face")},
        "landmark_error": {
            "median": float(np.median(errors)),
            "p95": float(np.percentile(errors, 95)),
            "max": float(errors.max()),
            "n": len(errors),
        }
        if len(errors)
        else None,
        "check": {
            "threshold": MAX_ANCHOR_RATIO,
            "faces": len(faces),
            "empty_boxes": len(empties),
            "clips_with_empty_boxes": sum(bool(r["empty"]) for r in surveyed),
            "faces_rejected": _share(best_face >= MAX_ANCHOR_RATIO),
            "empty_accepted": _share(best_empty < MAX_ANCHOR_RATIO),
            "faces_p98": float(np.percentile(best_face, 98)) if len(faces) else None,
            "empty_min": float(best_empty.min()) if len(empties) else None,
            "down_right_alone_before_0.7": {
                "faces_rejected": _share(faces[:, 0] >= BOUND_BEFORE_0_7),
                "empty_accepted": _share(empties[:, 0] < BOUND_BEFORE_0_7),
            },
        },
        "worst_clips": sorted(((r["lost"], name) for name, r in results.items() if r.get("lost")), reverse=True)[:5],
    }


TILTS = tuple(range(0, 41, 4))
"""Degrees a portrait is turned by, one frame each (``--tilted``)."""


def tilted_errors(tracker: FaceTracker, photo: np.ndarray, sign: int) -> list[tuple[float, float]] | None:
    """(degrees, error in eye distances, inf where the tracker lost the face) for each of :data:`TILTS` turned one
    way (``sign``), tracked frame after frame by a fresh ``tracker``; None where the upright photo has no face."""
    upright = full_search(tracker.processor, photo)
    if upright is None:
        return None
    rows = []
    for degrees in TILTS:
        turned, to_turned = rotate_image(photo, sign * degrees)
        truth = apply_affine(to_turned, upright.landmarks)
        face = tracker.update(turned)
        eyes = np.linalg.norm(truth[RIGHT_EYE].mean(0) - truth[LEFT_EYE].mean(0))
        error = np.inf if face is None else float(np.linalg.norm(face.landmarks - truth, axis=1).mean() / eyes)
        rows.append((float(degrees), error))
    return rows


def tilting(processor: FaceProcessor, folder: Path, limit: int = 40) -> dict:
    """The tilting-heads part: per roll band, lost frames and the median / 95th percentile error, as shipped and
    with the tracker as before 0.21.0."""
    photos = [load_image(path) for path in sorted(folder.glob("*.jpg"))[:limit]]

    def table(make: Callable[[FaceProcessor], FaceTracker]) -> dict:
        found = []
        for photo in photos:
            for sign in (1, -1):
                found += tilted_errors(make(processor), photo, sign) or []
        rows = np.array(found, dtype=float).reshape(-1, 2)
        bands = {
            f"{low}-{low + 10} degrees": _band(rows[(rows[:, 0] >= low) & (rows[:, 0] < low + 10), 1])
            for low in (0, 10, 20, 30)
        }
        return bands | {"40 degrees": _band(rows[rows[:, 0] == 40, 1])}

    return {"portraits": len(photos), "shipped": table(FaceTracker), "as_before_0.21": table(tracker_before_0_21)}


def _band(errors: np.ndarray) -> dict:
    held = errors[np.isfinite(errors)]
    return {
        "frames": len(errors),
        "lost": int(len(errors) - len(held)),
        "median": round(float(np.median(held)), 4) if len(held) else None,
        "p95": round(float(np.percentile(held, 95)), 4) if len(held) else None,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, required=True, help="a folder searched for *.mp4 clips")
    parser.add_argument("--frames", type=int, default=120, help="frames read from the start of each clip")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--tilted", type=Path, default=None, help="a folder of upright portraits (*.jpg) to turn")
    parser.add_argument("--before", action="store_true", help="the clips with the tracker as before 0.21.0")
    args = parser.parse_args(argv)
    processor, rng = FaceProcessor(resolution=128), np.random.default_rng(0)
    results = {}
    for clip in sorted(args.videos.rglob("*.mp4")):
        try:
            results[clip.name] = survey(processor, clip, args.frames, rng, args.before)
        except AIPGANError as error:  # a damaged or unreadable clip is named, the others are measured
            results[clip.name] = {"error": str(error)}
    figures = summary(results)
    if args.tilted is not None:
        figures["tilting"] = tilting(processor, args.tilted)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
