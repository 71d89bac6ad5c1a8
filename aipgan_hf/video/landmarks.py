"""The first pass over a driving clip: its face tracked, aligned to the canonical crop frame (which removes its
head position, size and roll) and smoothed with the One-Euro filter; frames without a face keep the last good pose.
The reference frame for relative motion is chosen here, from the whole clip; the crops of the frames it may be made
of, of frames spread over the clip and of every few frames are kept (the clip's emotion and its frames' are read from
them: :mod:`~aipgan_hf.video.reading`)."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..faces import FaceProcessor, apply_affine
from ..faces.align import crop_matrix, warp_to_crop
from ..landmarks import mouth_opening
from .clips import DEFAULT_MAX_SECONDS, ClipInfo, NoFaceInVideoError, read_frames
from .tracking import FaceTracker, landmark_filter

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stage is "landmarks" (first pass) or "rendering" (second pass)."""

REFERENCE_FRAMES = 5
"""The neutral reference is the mean of this many frames with the smallest mouth opening."""
SAMPLED_FRAMES = 24
"""Frames spread over a clip (every total // 24-th frame with a face, at most 47) show what it looks like as a whole:
their crops are kept for the clip's reading (:func:`~aipgan_hf.video.reading.clip_reading`)."""
READ_EVERY = 3
"""Every third frame with a face has its crop kept for the frames' readings
(:func:`~aipgan_hf.video.reading.frame_readings`): 10 a second of a 30-fps clip, 29 MB of crops for a minute of it."""
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
    crop-frame landmarks (where its pixels are: the driving mouth's inside is read there). ``openings``: each
    frame's mouth opening (NaN without a face), which :func:`reference_frames` ranks; ``crops``: the (R, R, 3) uint8
    crops, by frame index, of the frames the reference may be made of, of the ``sampled`` frames
    (:data:`SAMPLED_FRAMES`) and of the ``read`` frames (:data:`READ_EVERY`). ``faces_seen``: the most faces a search
    found in one frame (the face followed is the largest of the first search's)."""

    landmarks: np.ndarray
    found: np.ndarray
    times: np.ndarray
    matrices: np.ndarray | None = None
    unsmoothed: np.ndarray | None = None
    openings: np.ndarray | None = None
    crops: dict[int, np.ndarray] = field(default_factory=dict)
    sampled: tuple[int, ...] = ()
    read: tuple[int, ...] = ()
    faces_seen: int = 1


class _KeptCrops:
    """The crops kept as the pass goes (a clip is decoded once), for the clip's reading: the first frame's with a
    face and those of the :data:`REFERENCE_FRAMES` most closed mouths so far (ties to the earlier frame), as
    :func:`reference_frames` ranks them over the whole clip; and every ``step``-th frame's with a face, the step
    doubling (every other sample let go) whenever twice :data:`SAMPLED_FRAMES` are kept: a clip whose length the
    file does not give is sampled as evenly; and every :data:`READ_EVERY`-th frame's with a face."""

    def __init__(self, resolution: int, step: int, on_read: Callable[[int, np.ndarray], None] | None = None) -> None:
        self.resolution, self.step, self.on_read = resolution, step, on_read
        self.crops: dict[int, np.ndarray] = {}
        self.sampled: list[int] = []
        self.read: list[int] = []
        self.first: int | None = None
        self.closed: list[tuple[float, int]] = []  # (-opening, -index) of the most closed: the top is the most open

    def offer(self, index: int, frame: np.ndarray, matrix: np.ndarray, opening: float) -> None:
        """Frame ``index`` has a face: its (2, 3) frame -> crop ``matrix`` and its mouth ``opening``."""
        key = (-opening, -index)
        if self.first is None:
            self.first = index
            self._keep(index, frame, matrix)
        if index % READ_EVERY == 0:
            self.read.append(index)
            self._keep(index, frame, matrix)
            if self.on_read is not None:
                self.on_read(index, self.crops[index])
        if index % self.step == 0:
            self.sampled.append(index)
            self._keep(index, frame, matrix)
            if len(self.sampled) >= 2 * SAMPLED_FRAMES:
                self.step *= 2
                let_go = [i for i in self.sampled if i % self.step]
                self.sampled = [i for i in self.sampled if i % self.step == 0]
                self._let_go(let_go)
        if len(self.closed) < REFERENCE_FRAMES:
            heapq.heappush(self.closed, key)
        elif key > self.closed[0]:  # more closed than the most open kept
            self._let_go([-heapq.heapreplace(self.closed, key)[1]])
        else:
            return
        self._keep(index, frame, matrix)

    def _keep(self, index: int, frame: np.ndarray, matrix: np.ndarray) -> None:
        if index not in self.crops:
            self.crops[index] = warp_to_crop(frame, matrix, self.resolution)

    def _let_go(self, indices: list[int]) -> None:
        """Drop the crops of ``indices`` that no other reason keeps."""
        held = {self.first, *self.sampled, *self.read, *(-index for _, index in self.closed)}
        for index in indices:
            if index not in held:
                self.crops.pop(index, None)


def clip_redetect_every(info: ClipInfo) -> int:
    """While a clip's face is lost, the full search runs on one frame in this many: 10 searches a second."""
    return max(1, round(float(info.fps) / 10))


def track_clip(
    processor: FaceProcessor,
    info: ClipInfo,
    smoothing: float = 1.0,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    progress: Progress | None = None,
    seconds: dict[str, float] | None = None,
    keep_crops: bool = True,
    tracker: FaceTracker | None = None,
    on_read: Callable[[int, np.ndarray], None] | None = None,
) -> ClipLandmarks:
    """Landmarks of every frame of a clip. Frames without a face take the last good frame's landmarks (frames before
    the first face take the first face's). ``keep_crops``: keep the crops the clip's reading needs
    (``ClipLandmarks.crops``; off where nothing will be read). ``tracker``: a tracker of the caller's on the same
    ``processor`` (e.g. one as it was before 0.21.0, for a comparison; reset here, with its own ``redetect_every``),
    in place of one that searches for a lost face on one frame in :func:`clip_redetect_every`. ``on_read``: called
    with (index, crop) of each read frame (:data:`READ_EVERY`) as its crop is kept, in the clip's order (with
    ``keep_crops`` only).

    Raises:
        NoFaceInVideoError: no frame has a face.
        ValueError: ``tracker`` works on another processor.
    """
    driving = DrivingFace(processor, smoothing, clip_redetect_every(info))
    if tracker is not None:
        if tracker.processor is not processor:
            raise ValueError("track_clip's tracker must use the processor it is given")
        tracker.reset()
        driving.tracker = tracker
    total = info.frame_count or round((info.duration_s or 0) * float(info.fps))
    rows: list[np.ndarray | None] = []
    times: list[float] = []
    matrices = []  # (2, 3) per frame, NaN without a face
    unsmoothed = []  # (68, 2) per frame, NaN without a face
    kept = _KeptCrops(processor.resolution, max(1, total // SAMPLED_FRAMES), on_read) if keep_crops else None
    openings: list[float] = []  # NaN without a face
    seconds = seconds if seconds is not None else {}
    clock = time.perf_counter()
    for frame, at in read_frames(info, max_seconds):
        decoded = time.perf_counter()
        rows.append(driving(frame, at))
        openings.append(np.nan if rows[-1] is None else float(mouth_opening(rows[-1])))
        if kept is not None and rows[-1] is not None:
            kept.offer(len(rows) - 1, frame, driving.matrix, openings[-1])
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
        np.stack(filled).astype(np.float32),
        found,
        np.asarray(times),
        np.stack(matrices),
        np.stack(unsmoothed),
        np.asarray(openings),
        {} if kept is None else kept.crops,
        () if kept is None else tuple(kept.sampled),
        () if kept is None else tuple(kept.read),
        max(1, driving.tracker.most_faces),
    )


def reference_frames(track: ClipLandmarks, mode: str = "neutral") -> np.ndarray:
    """Indices of the frames the reference is made of: the first frame with a face, or the :data:`REFERENCE_FRAMES`
    frames with a face and the smallest mouth opening, the most closed first (ties: the earlier frame)."""
    if mode not in REFERENCE_MODES:
        raise ValueError(f"reference must be one of {REFERENCE_MODES}, got {mode!r}")
    candidates = np.flatnonzero(track.found)
    if mode == "first":
        return candidates[:1]
    openings = mouth_opening(track.landmarks) if track.openings is None else track.openings  # as the pass kept crops
    order = candidates[np.argsort(openings[candidates], kind="stable")]
    return order[:REFERENCE_FRAMES]


def reference_landmarks(track: ClipLandmarks, mode: str = "neutral") -> tuple[int, np.ndarray]:
    """(index of the reference frame, (68, 2) reference landmarks): the first frame with a face, or the most neutral
    one (the mean of the :func:`reference_frames`; the index is the most closed of them)."""
    chosen = reference_frames(track, mode)
    return int(chosen[0]), track.landmarks[chosen].mean(axis=0)
