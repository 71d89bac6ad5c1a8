"""Drive a photo with a video: every frame of the driving clip gives the target photo its expression.

Two passes over the clip:

1. **Landmarks** (:mod:`.landmarks`; cheap: decode + one tracked 68-point fit + its check fit a frame). The
   reference frame for relative motion is chosen here, from the whole clip.
2. **Rendering**: the target was prepared once (:meth:`AIPGANPipeline.prepare`: detection, alignment, identity
   features); each frame only maps the driving landmarks onto the target's face (:meth:`ShapeModel.drive`) and
   renders them, 8 frames per network call (:meth:`AIPGANPipeline.render`), two batches at a time in two threads
   (one's network overlaps the other's paste-back), then the frame is encoded in a third. An opened mouth's inside
   is by default the target's own or the checkpoint's exemplar's (:mod:`aipgan_hf.compositing.mouth`); with
   ``mouth="source"`` it is the driving frame's, and the clip is decoded again for it (only if some frame's
   landmarks say it will read one), as it is for ``side_by_side``.

Relative motion (First Order Motion's mode): the target gets the *change* of expression between the reference
frame and the current one, on top of its own resting face, so it keeps its face shape and resting expression.
The reference is the most neutral frame: the mean of the (up to) 5 frames with the smallest mouth opening.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from ..compositing import DEFAULT_MOUTH, DrivingFaces, TransferResult, check_mouth, mouth_shares
from ..driving import PreparedTarget
from ..errors import ConfigError
from ..faces import image_to_tensor
from ..faces.align import warp_to_crop
from ..motion import MAX_EXPRESSION_STRENGTH
from .clips import (
    DEFAULT_MAX_FRAME_PIXELS,
    DEFAULT_MAX_SECONDS,
    ClipInfo,
    InvalidVideoError,
    probe_clip,
    read_frames,
)
from .landmarks import ClipLandmarks, Progress, reference_landmarks, track_clip
from .writer import BackgroundEncoder, ClipWriter

if TYPE_CHECKING:  # the pipeline's animate() calls into this module: its class is needed only for the types
    from ..pipeline import AIPGANPipeline

logger = logging.getLogger(__name__)

RENDER_BATCH = 8
"""Frames decoded by one network call: on 2 CPU threads a batch of 8 costs about half as much per frame as one."""


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


def drive_clip(
    pipe: AIPGANPipeline,
    prepared: PreparedTarget,
    track: ClipLandmarks,
    relative: bool = True,
    reference: str = "neutral",
    strength: float = 1.0,
    offset: np.ndarray | None = None,
) -> tuple[int, np.ndarray]:
    """(reference frame index, (N, 68, 2) float32 driving landmarks in the target's crop frame) for a tracked clip."""
    reference_index, reference_points = reference_landmarks(track, reference)
    target = np.asarray(prepared.landmarks, dtype=np.float64)  # (68, 2): aligned once, driven by every frame
    driving = pipe.shape_model.drive(
        target,
        track.landmarks,
        reference_landmarks=reference_points if relative else None,
        strength=strength,
        offset=offset,
    )
    return reference_index, np.array(np.broadcast_to(driving, track.landmarks.shape), dtype=np.float32)  # (N, 68, 2)


def _side_by_side(driving: np.ndarray, result: np.ndarray) -> np.ndarray:
    """Driving frame (scaled to the result's height) | result."""
    height = result.shape[0]
    width = max(2, round(driving.shape[1] * height / driving.shape[0]))
    scaled = np.asarray(Image.fromarray(driving).resize((width, height), Image.Resampling.BILINEAR))
    return np.concatenate([scaled, result], axis=1)


def render_frames(
    pipe: AIPGANPipeline,
    prepared: PreparedTarget,
    driving_landmarks: np.ndarray,
    paste_back: bool = True,
    frames: Iterator[tuple[np.ndarray, float]] | None = None,
    seconds: dict[str, float] | None = None,
    side_by_side: bool = False,
    track: ClipLandmarks | None = None,
    mouth: str = DEFAULT_MOUTH,
    reads: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """The second pass: one (H, W, 3) uint8 frame for each row of ``driving_landmarks`` ((N, 68, 2) target crop px).

    The network runs on :data:`RENDER_BATCH` frames at a time (one :meth:`AIPGANPipeline.render` call), two batches
    at once in two threads: one batch's paste-back overlaps the next one's network (both release the GIL).

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

    def render(batch: np.ndarray, sources: DrivingFaces | None) -> tuple[list[TransferResult], float]:
        clock = time.perf_counter()
        # without the driving faces no frame of the batch reads its driving mouth: "source" is then "own"
        batch_mouth = "own" if mouth == "source" and sources is None else mouth
        results = pipe.render(prepared, batch, paste_back=paste_back, mouth=batch_mouth, sources=sources)
        return results, time.perf_counter() - clock

    def shown(
        done: Future[tuple[list[TransferResult], float]], driving: list[np.ndarray] | None
    ) -> Iterator[np.ndarray]:
        results, spent = done.result()
        seconds["render"] = seconds.get("render", 0.0) + spent
        images = [np.asarray(result.image) for result in results]
        return iter(images) if not side_by_side or driving is None else map(_side_by_side, driving, images)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="render") as workers:
        pending = []  # batches being rendered, with their driving frames
        for start in range(0, len(driving_landmarks), RENDER_BATCH):
            batch = driving_landmarks[start : start + RENDER_BATCH]
            clock = time.perf_counter()
            driving = None if frames is None else [frame for frame, _ in _take(frames, len(batch))]
            seconds["decode"] = seconds.get("decode", 0.0) + time.perf_counter() - clock
            sources = None
            rows = slice(start, start + len(batch))
            if driving is not None and reads is not None and reads[rows].any():
                sources = driving_faces(
                    pipe,
                    driving,
                    track.matrices[rows],
                    track.unsmoothed[rows],
                    track.found[rows],
                    track.landmarks[rows],
                )
            pending.append((workers.submit(render, batch, sources), driving))
            if len(pending) == 2:
                yield from shown(*pending.pop(0))
        for done, driven_by in pending:
            yield from shown(done, driven_by)


def reads_driving_mouth(
    pipe: AIPGANPipeline,
    prepared: PreparedTarget,
    driving_landmarks: np.ndarray,
    track: ClipLandmarks | None,
    mouth: str = DEFAULT_MOUTH,
) -> np.ndarray | None:
    """(N,) bool: which frames take their opened mouth's inside from the driving frame (``mouth="source"``), decided
    from landmarks as :meth:`~aipgan_hf.pipeline.AIPGANPipeline.render` will (``compositing.mouth.mouth_shares``);
    None when none can (another ``mouth``, or no crop matrices in ``track``)."""
    if mouth != "source" or track is None or track.matrices is None:
        return None
    found = np.asarray(track.found, dtype=bool)
    device = getattr(pipe, "device", torch.device("cpu"))  # where render decides it: the same rounding

    def tensor(points: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(points, dtype=np.float32), device=device)

    target = tensor(prepared.landmarks)[None].expand(len(driving_landmarks), -1, -1)
    sources = tensor(_face_landmarks(track.unsmoothed, found, track.landmarks))
    _, share = mouth_shares(
        target, tensor(driving_landmarks), pipe.resolution, sources, mouth, torch.as_tensor(found, device=device)
    )
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


def driving_faces(
    pipe: AIPGANPipeline,
    frames: list[np.ndarray],
    matrices: np.ndarray,
    landmarks: np.ndarray,
    found: np.ndarray,
    fallback: np.ndarray,
) -> DrivingFaces:
    """``pipe.render``'s ``DrivingFaces`` for driving frames: their (N, 2, 3) crop matrices and unsmoothed
    (N, 68, 2) crop-frame landmarks where ``found``; frames without a face give ``fallback`` landmarks (any finite
    ones: they are not read)."""
    found = np.asarray(found, dtype=bool).copy()
    landmarks = _face_landmarks(landmarks, found, fallback)
    resolution = pipe.resolution
    crops = [
        warp_to_crop(frame, matrix, resolution) if seen else np.zeros((resolution, resolution, 3), np.uint8)
        for frame, matrix, seen in zip(frames, matrices, found)
    ]
    return DrivingFaces(
        frames=frames, matrices=matrices, crops=image_to_tensor(np.stack(crops)), landmarks=landmarks, found=found
    )


def _deliver(
    frames: Iterator[np.ndarray],
    count: int,
    output: str | os.PathLike | None,
    info: ClipInfo,
    changed_box: Callable[[], tuple[int, int, int, int] | None],
    progress: Progress | None,
    seconds: dict[str, float],
) -> list[np.ndarray] | None:
    """The frames written to ``output`` (an MP4 with the clip's frame rate and audio; None: kept and returned)."""
    if output is None:
        images = []
        for index, image in enumerate(frames):
            images.append(image)
            if progress is not None:
                progress("rendering", index + 1, count)
        return images
    with ClipWriter(output, info.fps, audio_from=info.path) as writer, BackgroundEncoder(writer, seconds) as encoder:
        for index, image in enumerate(frames):
            encoder.write(image, changed_box())
            if progress is not None:
                progress("rendering", index + 1, count)
    return None


def animate(
    pipe: AIPGANPipeline,
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
    mouth: str = DEFAULT_MOUTH,
) -> AnimationResult:
    """Animate the target photo with the driving clip's expressions.

    Args:
        pipe: an :class:`~aipgan_hf.pipeline.AIPGANPipeline`.
        driving: the driving clip (any container/codec FFmpeg reads).
        target: the photo to animate (path, bytes, PIL image or array).
        output: MP4 to write (H.264, the clip's frame rate and audio); None: the frames in ``result.images``.
        relative: each frame's expression relative to the reference frame (the target keeps its resting
            expression); False: as the shape model estimates it alone (its change from an average neutral face).
        smoothing: One-Euro filter strength on the driving landmarks (0: off). paste_back: as in ``pipe(...)``.
        side_by_side: frames show the driving clip (scaled to the same height) left of the result.
        photo_texture: keep the photo's fine texture under the repainted face, as photo transfers do (off: it
            costs time on every frame).
        max_seconds: refuse longer clips (None: no limit). progress: called after every frame of each pass.
        reference: "neutral" (the frame with the smallest mouth opening) or "first".
        expression_strength: scales the driving expression change (0 keeps the target still).
        expression_offsets: slider values added along ``pipe.shape_model.directions``, e.g. ``{"smile": 0.5}``.
        target_face_index: which face of the target photo (largest first). max_frame_pixels: refuse larger frames.
        mouth: where an opened mouth's inside comes from, as in ``pipe(..., mouth=)``; "source": the target's own
            open mouth, else the driving frame's (the clip is decoded a second time if a frame uses it).

    Raises:
        InvalidVideoError, NoVideoStreamError, VideoTooLongError, VideoTooLargeError, NoFaceInVideoError, and the
        pipeline's errors about the target photo. On any error ``output`` is left as it was.
    """
    if not 0.0 <= float(expression_strength) <= MAX_EXPRESSION_STRENGTH:
        raise ConfigError(
            f"expression_strength must be between 0.0 and {MAX_EXPRESSION_STRENGTH}, got {expression_strength}"
        )
    check_mouth(mouth)
    info = probe_clip(driving, max_seconds=max_seconds, max_frame_pixels=max_frame_pixels)
    seconds: dict[str, float] = {}
    started = clock = time.perf_counter()
    prepared = pipe.prepare(target, face_index=target_face_index, photo_texture=photo_texture)
    offset = pipe.expression_offset(expression_offsets)
    seconds["prepare"] = time.perf_counter() - clock
    track = track_clip(pipe.processor, info, smoothing, max_seconds, progress, seconds)
    reference_index, driving_landmarks = drive_clip(
        pipe, prepared, track, relative, reference, expression_strength, offset
    )
    count = len(driving_landmarks)
    reads = reads_driving_mouth(pipe, prepared, driving_landmarks, track, mouth)
    again = read_frames(info, max_seconds) if side_by_side or (reads is not None and reads.any()) else None
    frames = render_frames(
        pipe, prepared, driving_landmarks, paste_back, again, seconds, side_by_side, track, mouth, reads
    )

    def changed_box() -> tuple[int, int, int, int] | None:
        # a pasted-back frame differs from the photo only in the warper's box: only that box is converted
        return prepared.warper.box if paste_back and not side_by_side and prepared.warper else None

    images = _deliver(frames, count, output, info, changed_box, progress, seconds)
    seconds["total"] = time.perf_counter() - started
    result = AnimationResult(
        frames=count,
        fps=float(info.fps),
        frames_without_face=int((~track.found).sum()),
        output=Path(output) if output is not None else None,
        reference_frame=reference_index,
        driving_landmarks=driving_landmarks,
        images=images,
        seconds=seconds,
    )
    logger.info("animated %s: %s", info.path.name, result.summary())
    return result


__all__ = [
    "RENDER_BATCH",
    "AnimationResult",
    "animate",
    "drive_clip",
    "driving_faces",
    "reads_driving_mouth",
    "render_frames",
]
