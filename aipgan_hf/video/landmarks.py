"""The first pass over a driving clip: its face tracked, aligned to the canonical crop frame (which removes its
head position, size and roll) and smoothed with the One-Euro filter; frames without a face keep the last good pose.
The reference frame for relative motion is chosen here, from the whole clip."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..faces import FaceProcessor, apply_affine
from ..faces.align import crop_matrix
from ..landmarks import mouth_opening
from .clips import DEFAULT_MAX_SECONDS, ClipInfo, NoFaceInVideoError, read_frames
from .tracking import FaceTracker, landmark_filter

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stage is "landmarks" (first pass) or "rendering" (second pass)."""

REFERENCE_FRAMES = 5
"""The neutral reference is the mean of this many frames with the smallest mouth opening."""
REFERENCE_MODES = ("neutral", "first")


class DrivingFace:
    """Per-frame driving landmarks in the canonical crop frame: track, align, smooth.

    Args:
        processor: face processor (detector, 68-point predictor, crop resolution).
        smoothing: One-Euro strength; 0 turns the filter off (see :func:`landmark_filter`).
        redetect_every: while the face is lost, search for it on one frame in this many.
    """

    def __init__(self, processor: FaceProcessor, smoothing: float = 1.0, redetect_every: int = 1) -> None:
        self.tracker = FaceTracker(processor, redetect_every=redetect_every)
        self.filter = landmark_filter(smoothing, scale=float(processor.resolution))
        self.matrix: np.ndarray | None = None  # the last frame's frame -> crop similarity (None without a face)
        self.unsmoothed: np.ndarray | None = None  # and its crop-frame landmarks before smoothing

    def __call__(self, frame: np.ndarray, seconds: float) -> np.ndarray | None:
        """(68, 2) float32 smoothed crop-frame landmarks of the face in ``frame``, or None without a face."""
        face = self.tracker.update(frame)
        self.matrix = self.unsmoothed = None
        if face is None:
            return None
        # only the landmarks in the crop frame are needed: no crop of the driving frame is warped
        self.matrix = crop_matrix(face.landmarks, self.tracker.processor.resolution)
        landmarks = self.unsmoothed = apply_affine(self.matrix, face.landmarks)
        if self.filter is not None:
            landmarks = self.filter(landmarks, seconds)
        return landmarks.astype(np.float32)


@dataclass
class ClipLandmarks:
    """The first pass over a clip: (N, 68, 2) crop-frame landmarks (gaps filled), which frames had a face, times;
    and, where a face was found, each frame's (N, 2, 3) frame -> crop similarity and unsmoothed (N, 68, 2)
    crop-frame landmarks (where its pixels are: the driving mouth's inside is read there)."""

    landmarks: np.ndarray
    found: np.ndarray
    times: np.ndarray
    matrices: np.ndarray | None = None
    unsmoothed: np.ndarray | None = None


def track_clip(
    processor: FaceProcessor,
    info: ClipInfo,
    smoothing: float = 1.0,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    progress: Progress | None = None,
    seconds: dict[str, float] | None = None,
) -> ClipLandmarks:
    """Landmarks of every frame of a clip. Frames without a face take the last good frame's landmarks (frames before
    the first face take the first face's).

    Raises:
        NoFaceInVideoError: no frame has a face.
    """
    driving = DrivingFace(processor, smoothing, redetect_every=max(1, round(float(info.fps) / 10)))
    total = info.frame_count or round((info.duration_s or 0) * float(info.fps))
    rows: list[np.ndarray | None] = []
    times: list[float] = []
    matrices = []  # (2, 3) per frame, NaN without a face
    unsmoothed = []  # (68, 2) per frame, NaN without a face
    seconds = seconds if seconds is not None else {}
    clock = time.perf_counter()
    for frame, at in read_frames(info, max_seconds):
        decoded = time.perf_counter()
        rows.append(driving(frame, at))
        times.append(at)
        matrices.append(np.full((2, 3), np.nan) if driving.matrix is None else driving.matrix)
        unsmoothed.append(
            np.full((68, 2), np.nan, np.float32)
            if driving.unsmoothed is None
            else driving.unsmoothed.astype(np.float32)
        )
        done = time.perf_counter()
        seconds["decode"] = seconds.get("decode", 0.0) + decoded - clock
        seconds["landmarks"] = seconds.get("landmarks", 0.0) + done - decoded
        clock = done
        if progress is not None:
            progress("landmarks", len(rows), max(total, len(rows)))
    found = np.array([row is not None for row in rows])
    if not found.any():
        raise NoFaceInVideoError(
            f"no face found in any of the {len(rows)} frames of {info.path.name}; use a clip with a clearly visible, "
            f"roughly frontal face at least {processor.min_face_size} pixels wide"
        )
    first = next(row for row in rows if row is not None)
    filled, last = [], first
    for row in rows:
        last = row if row is not None else last
        filled.append(last)
    return ClipLandmarks(
        np.stack(filled).astype(np.float32), found, np.asarray(times), np.stack(matrices), np.stack(unsmoothed)
    )


def reference_landmarks(track: ClipLandmarks, mode: str = "neutral") -> tuple[int, np.ndarray]:
    """(index of the reference frame, (68, 2) reference landmarks): the first frame with a face, or the most neutral
    one (the mean of the :data:`REFERENCE_FRAMES` frames with a face and the smallest mouth opening; the index is
    the most closed of them)."""
    if mode not in REFERENCE_MODES:
        raise ValueError(f"reference must be one of {REFERENCE_MODES}, got {mode!r}")
    candidates = np.flatnonzero(track.found)
    if mode == "first":
        return int(candidates[0]), track.landmarks[candidates[0]]
    order = candidates[np.argsort(mouth_opening(track.landmarks[candidates]), kind="stable")]
    chosen = order[:REFERENCE_FRAMES]
    return int(chosen[0]), track.landmarks[chosen].mean(axis=0)
