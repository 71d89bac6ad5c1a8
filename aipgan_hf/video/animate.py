"""Drive a photo with a video: every frame of the driving clip gives the target photo its expression.

Two passes over the clip:

1. **Landmarks** (cheap: decode + one tracked 68-point fit + its check fit a frame): the driving face is tracked,
   aligned to the canonical crop frame (which removes its head position, size and roll) and smoothed with the
   One-Euro filter. Frames without a face keep the last good pose. The reference frame for relative motion is
   chosen here, from the whole clip.
2. **Rendering**: the target was prepared once (:meth:`AIPGANPipeline.prepare_target`: detection, alignment,
   identity features); each frame only maps the driving landmarks onto the target's face
   (:meth:`ShapeModel.drive`) and renders them, 8 frames per network call (:meth:`AIPGANPipeline.drive_batch`),
   each frame's warp and paste-back into the photo in a second thread (:meth:`AIPGANPipeline.compose_frame`), then
   the frame is encoded in a third. The driving clip is decoded again for the insides of its opened mouths
   (``mouth="source"``, the default: teeth and tongue from the driving frame, see :mod:`aipgan_hf.compositing.mouth`;
   only if some frame's landmarks say it will read them) and for ``side_by_side``.

Relative motion (First Order Motion's mode): the target gets the *change* of expression between the reference
frame and the current one, on top of its own resting face, so it keeps its face shape and resting expression.
The reference is the most neutral frame: the mean of the (up to) 5 frames with the smallest mouth opening.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError
from ..faces.align import crop_matrix, warp_to_crop
from ..landmarks import LEFT_EYE, RIGHT_EYE, inner_lip_gap
from ..compositing import DrivingFaces, check_mouth, mouth_shares
from ..faces import FaceProcessor, apply_affine, image_to_tensor
from .clips import (
    DEFAULT_MAX_FRAME_PIXELS,
    DEFAULT_MAX_SECONDS,
    BackgroundEncoder,
    ClipInfo,
    ClipWriter,
    InvalidVideoError,
    NoFaceInVideoError,
    probe_clip,
    read_frames,
)
from .tracking import FaceTracker, landmark_filter

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: stage is "landmarks" (first pass) or "rendering" (second pass)."""

REFERENCE_FRAMES = 5
"""The neutral reference is the mean of this many frames with the smallest mouth opening."""
REFERENCE_MODES = ("neutral", "first")
RENDER_BATCH = 8
"""Frames decoded by one network call: on 2 CPU threads a batch of 8 costs about half as much per frame as one."""
MAX_EXPRESSION_STRENGTH = 1.5  # the pipeline's range (kept here so this module does not import the networks)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Gap between the inner lips over the distance between the eye centres (0 = closed, ~0.5 = wide open).

    Args:
        landmarks: (..., 68, 2) in any pixel frame.

    Returns:
        (...) float.
    """
    gap = inner_lip_gap(np.asarray(landmarks, dtype=np.float64))
    eyes = np.linalg.norm(landmarks[..., RIGHT_EYE, :].mean(axis=-2) - landmarks[..., LEFT_EYE, :].mean(axis=-2), axis=-1)
    return gap / np.maximum(eyes, 1e-6)


@dataclass
class AnimationResult:
    """What :func:`animate` made.

    Attributes:
        frames: frames written (always the driving clip's frame count).
        fps: frame rate of the output (the driving clip's).
        frames_without_face: driving frames where no face was found (they kept the last good pose).
        output: the MP4 written, or None when frames were returned in ``images``.
        reference_frame: index of the frame relative motion was measured from (with ``reference="neutral"``,
            the one with the smallest mouth opening).
        driving_landmarks: (frames, 68, 2) float32, the landmarks each frame was rendered with, in the target's
            crop frame.
        images: the (H, W, 3) uint8 frames when no output path was given, else None.
        seconds: time by stage: "prepare" (the target), "decode", "landmarks", "render", "encode" (in a thread of its
            own, overlapping the rendering), and "total" (the whole call, wall clock).
    """

    frames: int
    fps: float
    frames_without_face: int
    output: Path | None
    reference_frame: int
    driving_landmarks: np.ndarray = field(repr=False)
    images: list[np.ndarray] | None = field(default=None, repr=False)
    seconds: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: frames, fps, frames without a face, speed."""
        total = self.seconds.get("total", 0.0)
        speed = f", {self.frames / total:.1f} frames/s" if total > 0 else ""
        return f"{self.frames} frames at {self.fps:g} fps, {self.frames_without_face} without a face{speed}"


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


def track_clip(processor: FaceProcessor, info: ClipInfo, smoothing: float = 1.0, max_seconds: float | None = DEFAULT_MAX_SECONDS,
               progress: Progress | None = None, seconds: dict[str, float] | None = None) -> ClipLandmarks:
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
        unsmoothed.append(np.full((68, 2), np.nan, np.float32) if driving.unsmoothed is None else driving.unsmoothed.astype(np.float32))
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
    return ClipLandmarks(np.stack(filled).astype(np.float32), found, np.asarray(times), np.stack(matrices), np.stack(unsmoothed))


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


def drive_clip(pipe: Any, prepared: Any, track: ClipLandmarks, relative: bool = True, reference: str = "neutral",
               strength: float = 1.0, offset: np.ndarray | None = None) -> tuple[int, np.ndarray]:
    """(reference frame index, (N, 68, 2) float32 driving landmarks in the target's crop frame) for a tracked clip."""
    reference_index, reference_points = reference_landmarks(track, reference)
    target = np.asarray(prepared.landmarks, dtype=np.float64)  # (68, 2): aligned once, driven by every frame
    driving = pipe.shape_model.drive(target, track.landmarks, reference_landmarks=reference_points if relative else None,
                                     strength=strength, offset=offset)
    return reference_index, np.array(np.broadcast_to(driving, track.landmarks.shape), dtype=np.float32)  # (N, 68, 2)


def _side_by_side(driving: np.ndarray, result: np.ndarray) -> np.ndarray:
    """Driving frame (scaled to the result's height) | result."""
    height = result.shape[0]
    width = max(2, round(driving.shape[1] * height / driving.shape[0]))
    scaled = np.asarray(Image.fromarray(driving).resize((width, height), Image.Resampling.BILINEAR))
    return np.concatenate([scaled, result], axis=1)


def render_frames(pipe: Any, prepared: Any, driving_landmarks: np.ndarray, paste_back: bool = True,
                  frames: Iterator[tuple[np.ndarray, float]] | None = None, seconds: dict[str, float] | None = None,
                  side_by_side: bool = False, track: ClipLandmarks | None = None, mouth: str = "source",
                  reads: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """The second pass: one (H, W, 3) uint8 frame for each row of ``driving_landmarks`` ((N, 68, 2) target crop px).

    The network runs on :data:`RENDER_BATCH` frames at a time, and the pictures of one batch (warp and paste-back
    into the photo) are made in a second thread while the network runs on the next batch (both release the GIL).

    Args:
        frames: the driving clip decoded again (``read_frames``), for ``side_by_side`` and for the insides of its
            opened mouths (``mouth="source"`` with ``track``); without it neither is done.
        side_by_side: each frame shows the driving frame left of the result.
        track: the first pass (its frames' crop matrices: where each driving mouth is).
        mouth: as in ``pipe(..., mouth=)``: "source" takes an opened mouth's inside from the driving frame.
        reads: :func:`reads_driving_mouth` of these frames, if already known (else it is worked out here); the
            driving faces are cut out only for batches where some frame reads its mouth.
    """
    seconds = seconds if seconds is not None else {}
    if reads is None and frames is not None:
        reads = reads_driving_mouth(pipe, prepared, driving_landmarks, track, mouth)

    def compose(output: Any, count: int, sources: Any) -> list[np.ndarray]:
        clock = time.perf_counter()
        images = [pipe.compose_frame(prepared, output, index, paste_back, sources) for index in range(count)]
        seconds["compose"] = seconds.get("compose", 0.0) + time.perf_counter() - clock
        return images

    def shown(images: list[np.ndarray], driving: list[np.ndarray] | None) -> Iterator[np.ndarray]:
        return iter(images) if not side_by_side or driving is None else map(_side_by_side, driving, images)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="compose") as pictures:
        pending = []  # the batch being composed while the network runs on the next one, with its driving frames
        for start in range(0, len(driving_landmarks), RENDER_BATCH):
            batch = driving_landmarks[start:start + RENDER_BATCH]
            clock = time.perf_counter()
            driving = None if frames is None else [frame for frame, _ in _take(frames, len(batch))]
            decoded = time.perf_counter()
            seconds["decode"] = seconds.get("decode", 0.0) + decoded - clock
            sources = None
            rows = slice(start, start + len(batch))
            if driving is not None and reads is not None and reads[rows].any():
                sources = driving_faces(pipe, driving, track.matrices[rows], track.unsmoothed[rows], track.found[rows], track.landmarks[rows])
            output = pipe.drive_batch(prepared, batch, sources, mouth)
            seconds["render"] = seconds.get("render", 0.0) + time.perf_counter() - decoded
            pending.append((pictures.submit(compose, output, len(batch), sources), driving))
            if len(pending) == 2:
                future, driven_by = pending.pop(0)
                yield from shown(future.result(), driven_by)
        for future, driven_by in pending:
            yield from shown(future.result(), driven_by)


def reads_driving_mouth(pipe: Any, prepared: Any, driving_landmarks: np.ndarray, track: ClipLandmarks | None,
                        mouth: str = "source") -> np.ndarray | None:
    """(N,) bool: which frames take their opened mouth's inside from the driving frame (``mouth="source"``), decided
    from landmarks as :meth:`~aipgan_hf.pipeline.AIPGANPipeline.drive_batch` will (``compositing.mouth.mouth_shares``);
    None when none can (another ``mouth``, or no crop matrices in ``track``)."""
    if mouth != "source" or track is None or track.matrices is None:
        return None
    found = np.asarray(track.found, dtype=bool)
    device = getattr(pipe, "device", torch.device("cpu"))  # where drive_batch decides it: the same rounding

    def tensor(points: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(points, dtype=np.float32), device=device)

    target = tensor(prepared.landmarks)[None].expand(len(driving_landmarks), -1, -1)
    sources = tensor(_face_landmarks(track.unsmoothed, found, track.landmarks))
    _, share = mouth_shares(target, tensor(driving_landmarks), pipe.resolution, sources, mouth, torch.as_tensor(found, device=device))
    return (share > 0).cpu().numpy()


def _face_landmarks(landmarks: np.ndarray, found: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """(N, 68, 2) float32: ``landmarks`` where ``found``, else ``fallback`` (any finite points: they are not read)."""
    return np.where(np.asarray(found, dtype=bool)[:, None, None], np.nan_to_num(landmarks), fallback).astype(np.float32)


def _take(frames: Iterator[tuple[np.ndarray, float]], count: int) -> list[tuple[np.ndarray, float]]:
    """The next ``count`` decoded frames (a second decode of a clip gives the frames the first one gave)."""
    taken = [item for _, item in zip(range(count), frames)]
    if len(taken) < count:
        raise InvalidVideoError("the video gave fewer frames when it was decoded a second time")
    return taken


def driving_faces(pipe: Any, frames: list[np.ndarray], matrices: np.ndarray, landmarks: np.ndarray, found: np.ndarray,
                  fallback: np.ndarray) -> Any:
    """``pipe.drive_batch``'s ``DrivingFaces`` for driving frames: their (N, 2, 3) crop matrices and unsmoothed
    (N, 68, 2) crop-frame landmarks where ``found``; frames without a face give ``fallback`` landmarks (any finite
    ones: they are not read)."""
    found = np.asarray(found, dtype=bool).copy()
    landmarks = _face_landmarks(landmarks, found, fallback)
    resolution = pipe.resolution
    crops = [warp_to_crop(frame, matrix, resolution) if seen else np.zeros((resolution, resolution, 3), np.uint8)
             for frame, matrix, seen in zip(frames, matrices, found)]
    return DrivingFaces(frames=frames, matrices=matrices, crops=image_to_tensor(np.stack(crops)), landmarks=landmarks, found=found)


def animate(
    pipe: Any,
    driving: str | os.PathLike,
    target: Any,
    output: str | os.PathLike | None = None,
    relative: bool = True,
    smoothing: float = 1.0,
    paste_back: bool = True,
    side_by_side: bool = False,
    photo_texture: bool = False,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    progress: Progress | None = None,
    reference: str = "neutral",
    expression_strength: float = 1.0,
    expression_offsets: dict[str, float] | None = None,
    target_face_index: int | None = None,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    mouth: str = "source",
) -> AnimationResult:
    """Animate the target photo with the driving clip's expressions.

    Args:
        pipe: an :class:`~aipgan_hf.pipeline.AIPGANPipeline`.
        driving: the driving clip (any container/codec FFmpeg reads).
        target: the photo to animate (path, bytes, PIL image or array).
        output: MP4 to write (H.264, the clip's frame rate, the clip's audio); None returns the frames in
            ``result.images`` instead (they are held in memory).
        relative: take each frame's expression relative to the reference frame (the target keeps its resting
            expression); False adds each frame's expression as the shape model estimates it on its own (its change
            from an average neutral face), with no reference frame.
        smoothing: One-Euro filter strength on the driving landmarks; 0 turns it off.
        paste_back: frames are the whole target photo (True) or the aligned face crop.
        side_by_side: frames show the driving clip (scaled to the same height) left of the result.
        photo_texture: keep the photo's fine texture under the repainted face, as photo transfers do; off by
            default here: it costs about 6 of a frame's 40 ms on a 1-MP photo.
        max_seconds: refuse longer clips (None: no limit).
        progress: ``progress(stage, done, total)`` after every frame of each pass.
        reference: "neutral" (the frame with the smallest mouth opening) or "first".
        expression_strength: scales the driving expression change (0 keeps the target still).
        expression_offsets: slider values added along ``pipe.shape_model.directions``, e.g. ``{"smile": 0.5}``.
        target_face_index: which face of the target photo (largest first).
        max_frame_pixels: refuse clips with larger frames.
        mouth: where an opened mouth's inside comes from, as in ``pipe(..., mouth=)``: "source" (default) the
            target's own open mouth, else the driving frame's (the clip is decoded a second time if a frame uses it), "own",
            "network".

    Raises:
        InvalidVideoError, NoVideoStreamError, VideoTooLongError, VideoTooLargeError, NoFaceInVideoError, and the
        pipeline's errors about the target photo. On any error ``output`` is left as it was.
    """
    if not 0.0 <= float(expression_strength) <= MAX_EXPRESSION_STRENGTH:
        raise ConfigError(f"expression_strength must be between 0.0 and {MAX_EXPRESSION_STRENGTH}, got {expression_strength}")
    check_mouth(mouth)
    info = probe_clip(driving, max_seconds=max_seconds, max_frame_pixels=max_frame_pixels)
    seconds: dict[str, float] = {}
    started = clock = time.perf_counter()
    prepared = pipe.prepare_target(target, face_index=target_face_index, photo_texture=photo_texture)
    offset = pipe.expression_offset(expression_offsets)
    seconds["prepare"] = time.perf_counter() - clock
    track = track_clip(pipe.processor, info, smoothing, max_seconds, progress, seconds)
    reference_index, driving_landmarks = drive_clip(pipe, prepared, track, relative, reference, expression_strength, offset)
    count = len(driving_landmarks)
    reads = reads_driving_mouth(pipe, prepared, driving_landmarks, track, mouth)
    again = read_frames(info, max_seconds) if side_by_side or (reads is not None and reads.any()) else None
    frames = render_frames(pipe, prepared, driving_landmarks, paste_back, again, seconds, side_by_side, track, mouth, reads)
    images: list[np.ndarray] | None = None
    if output is None:
        images = []
        for index, image in enumerate(frames):
            images.append(image)
            if progress is not None:
                progress("rendering", index + 1, count)
    else:
        with ClipWriter(output, info.fps, audio_from=info.path) as writer, BackgroundEncoder(writer, seconds) as encoder:
            for index, image in enumerate(frames):
                # a pasted-back frame differs from the photo only in the warper's box: only that box is converted
                encoder.write(image, prepared.warper.box if paste_back and not side_by_side and prepared.warper else None)
                if progress is not None:
                    progress("rendering", index + 1, count)
    seconds["total"] = time.perf_counter() - started
    result = AnimationResult(
        frames=count, fps=float(info.fps), frames_without_face=int((~track.found).sum()),
        output=Path(output) if output is not None else None, reference_frame=reference_index,
        driving_landmarks=driving_landmarks, images=images, seconds=seconds,
    )
    logger.info("animated %s: %s", info.path.name, result.summary())
    return result


class LiveAnimator:
    """Frame-by-frame driving for a live source (a webcam): the same tracking, alignment and smoothing as
    :func:`animate`, with the first frame that shows a face as the reference (a live stream has no "whole clip"
    to choose from; :meth:`reset_reference` takes the next frame instead).

    The pipeline is passed to each call rather than kept, so a server can run every frame on whichever pipeline
    copy is free (dlib's models must not be used by two threads at once).

    Args:
        prepared: ``pipe.prepare_target(photo)``.
        processor: a face processor with the pipeline's crop resolution (only its settings are kept).
        relative, smoothing, expression_strength, mouth: as for :func:`animate`.
        offset: coefficient change from :meth:`AIPGANPipeline.expression_offset`.
    """

    def __init__(self, prepared: Any, processor: FaceProcessor, relative: bool = True, smoothing: float = 1.0,
                 expression_strength: float = 1.0, offset: np.ndarray | None = None, mouth: str = "source") -> None:
        self.prepared, self.mouth = prepared, check_mouth(mouth)
        self.relative = relative
        self.expression_strength = expression_strength
        self.offset = offset
        self.driving = DrivingFace(processor, smoothing, redetect_every=1)
        self.reference: np.ndarray | None = None
        self.last: np.ndarray | None = None
        self.frames = 0
        self.frames_without_face = 0
        self._start = time.monotonic()

    def reset_reference(self) -> None:
        """Measure relative motion from the next frame with a face."""
        self.reference = None

    def __call__(self, pipe: Any, frame: np.ndarray, seconds: float | None = None) -> Image.Image:
        """Render one live frame ((H, W, 3) uint8 RGB); without a face the last pose (or the target at rest)."""
        self.driving.tracker.processor = pipe.processor
        seconds = time.monotonic() - self._start if seconds is None else seconds
        landmarks = self.driving(frame, seconds)
        self.frames += 1
        if landmarks is None:
            self.frames_without_face += 1
            landmarks = self.last
        if landmarks is None:
            driving = self.prepared.landmarks
        else:
            self.last = landmarks
            if self.reference is None:
                self.reference = landmarks
            driving = pipe.shape_model.drive(self.prepared.landmarks, landmarks,
                                             reference_landmarks=self.reference if self.relative else None,
                                             strength=self.expression_strength, offset=self.offset)
        driving = np.asarray(driving, dtype=np.float32)[None]
        sources = None
        if self.mouth == "source" and self.driving.matrix is not None:  # this frame's own mouth inside
            sources = driving_faces(pipe, [frame], self.driving.matrix[None], self.driving.unsmoothed[None], np.ones(1, bool), driving)
        output = pipe.drive_batch(self.prepared, driving, sources, self.mouth)
        return Image.fromarray(pipe.compose_frame(self.prepared, output, 0, True, sources))


__all__ = ["AnimationResult", "ClipLandmarks", "DrivingFace", "LiveAnimator", "animate", "drive_clip",
           "mouth_opening", "reads_driving_mouth", "reference_landmarks", "render_frames", "track_clip"]
