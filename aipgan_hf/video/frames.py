"""The second pass of :func:`~aipgan_hf.video.animate.animate`: the driving landmarks rendered into frames,
:data:`RENDER_BATCH` at a time, and delivered (an MP4, or the frames kept).

An opened mouth's inside comes from the driving frame only with ``mouth="source"``: the clip is then decoded again
(only if some frame's landmarks say it will read one), as it is for ``side_by_side``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ..compositing import DEFAULT_MOUTH, DrivingFaces, TransferResult, mouth_shares
from ..driving import PreparedTarget
from ..faces import image_to_tensor
from ..faces.align import warp_to_crop
from .clips import ClipInfo, InvalidVideoError, read_frames
from .landmarks import ClipLandmarks, Progress
from .writer import BackgroundEncoder, ClipWriter, evenly_timed

if TYPE_CHECKING:  # the pipeline's animate() calls into this module: its class is needed only for the types
    from ..pipeline import AIPGANPipeline

RENDER_BATCH = 8
"""Frames decoded by one network call: on 2 CPU threads a batch of 8 costs about half as much per frame as one."""


@dataclass
class DrivenClip:
    """What the first pass hands the second: the clip (decoded again up to ``max_seconds``), its tracked faces,
    the reference frame's index and (N, 68, 2) float32 driving landmarks in the target's crop frame."""

    info: ClipInfo
    max_seconds: float | None
    track: ClipLandmarks
    reference_index: int
    driving_landmarks: np.ndarray


def render_clip(
    pipe: AIPGANPipeline,
    prepared: PreparedTarget,
    clip: DrivenClip,
    output: str | os.PathLike | None,
    paste_back: bool,
    side_by_side: bool,
    mouth: str,
    progress: Progress | None,
    seconds: dict[str, float],
) -> list[np.ndarray] | None:
    """The second pass: every frame rendered and delivered to ``output`` (None: the frames are returned)."""
    driving_landmarks, track = clip.driving_landmarks, clip.track
    reads = reads_driving_mouth(pipe, prepared, driving_landmarks, track, mouth)
    again = read_frames(clip.info, clip.max_seconds) if side_by_side or (reads is not None and reads.any()) else None
    frames = render_frames(
        pipe, prepared, driving_landmarks, paste_back, again, seconds, side_by_side, track, mouth, reads
    )
    changed_box = _changed_box(prepared, paste_back and not side_by_side)
    return _deliver(frames, track.times, output, clip.info, changed_box, progress, seconds)


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
            driving, sources = _driving_batch(pipe, frames, slice(start, start + len(batch)), reads, track, seconds)
            pending.append((workers.submit(render, batch, sources), driving))
            if len(pending) == 2:
                yield from shown(*pending.pop(0))
        for done, driven_by in pending:
            yield from shown(done, driven_by)


def _driving_batch(
    pipe: AIPGANPipeline,
    frames: Iterator[tuple[np.ndarray, float]] | None,
    rows: slice,
    reads: np.ndarray | None,
    track: ClipLandmarks | None,
    seconds: dict[str, float],
) -> tuple[list[np.ndarray] | None, DrivingFaces | None]:
    """A batch's driving frames (``rows`` of the clip), decoded again (None without ``frames``), and their faces
    when some frame of the batch reads its driving mouth (else None)."""
    clock = time.perf_counter()
    driving = None if frames is None else [frame for frame, _ in _take(frames, rows.stop - rows.start)]
    seconds["decode"] = seconds.get("decode", 0.0) + time.perf_counter() - clock
    if driving is None or reads is None or not reads[rows].any():
        return driving, None
    sources = driving_faces(
        pipe,
        driving,
        track.matrices[rows],
        track.unsmoothed[rows],
        track.found[rows],
        track.landmarks[rows],
    )
    return driving, sources


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
    times: np.ndarray,
    output: str | os.PathLike | None,
    info: ClipInfo,
    changed_box: Callable[[], tuple[int, int, int, int] | None],
    progress: Progress | None,
    seconds: dict[str, float],
) -> list[np.ndarray] | None:
    """The frames written to ``output`` (an MP4 with the clip's frame rate, or each frame at its ``times`` where the
    clip's rate varies, and its audio; None: kept and returned)."""
    count = len(times)
    if output is None:
        images = []
        for index, image in enumerate(frames):
            images.append(image)
            if progress is not None:
                progress("rendering", index + 1, count)
        return images
    variable = not evenly_timed(times, info.fps)
    writer = ClipWriter(output, info.fps, audio_from=info.path, variable_rate=variable)
    with writer, BackgroundEncoder(writer, seconds) as encoder:
        for index, (image, at) in enumerate(zip(frames, times, strict=True)):
            encoder.write(image, changed_box(), float(at))
            if progress is not None:
                progress("rendering", index + 1, count)
    return None


def _changed_box(prepared: PreparedTarget, pasted_alone: bool) -> Callable[[], tuple[int, int, int, int] | None]:
    """Where the next frame may differ from the photo: a frame pasted back into it (``pasted_alone``: not side by
    side) differs only in the warper's box, and only that box is converted; None: the whole frame."""
    return lambda: prepared.warper.box if pasted_alone and prepared.warper else None
