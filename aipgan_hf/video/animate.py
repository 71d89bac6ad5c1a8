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
The reference is the most neutral frame: the mean of the (up to) 5 frames with the smallest mouth opening. What
relative motion cannot carry is the reference's own expression (a clip angry throughout moves only its mouth), nor a
frown its points do not show: the emotion reader reads the resting face and every few frames, and each frame wears
what it reads around it, or else the clip's resting emotion, as a transfer from one photo would
(:mod:`~aipgan_hf.video.reading`; a user may name the emotion instead).
"""

from __future__ import annotations

import logging
import numbers
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..compositing import DEFAULT_MOUTH, check_mouth
from ..driving import PreparedTarget, check_range
from ..errors import ConfigError
from ..motion import MAX_EXPRESSION_STRENGTH
from ..motion.emotion import EmotionRead, acted_on, told_emotion, worn_change
from ..pipeline_steps import TARGET_ROLE, read_photo
from .clips import DEFAULT_MAX_FRAME_PIXELS, DEFAULT_MAX_SECONDS, probe_clip
from .frames import DrivenClip, render_clip
from .landmarks import ClipLandmarks, Progress, reference_landmarks, track_clip
from .reading import FrameHeads, clip_reading, eased, frame_changes, frame_readings

if TYPE_CHECKING:  # the pipeline's animate() calls into this module: its class is needed only for the types
    from ..pipeline import AIPGANPipeline

logger = logging.getLogger(__name__)

DEFAULT_MAX_SIDE = 1920
"""The longer side a target photo is animated at, at most (:func:`animate`'s ``max_side``)."""

VIDEO_OUTPUT_SUFFIXES = (".mp4", ".m4v")
"""What a result video may be named: it is an MP4 (H.264, or MPEG-4 where the build lacks x264)."""


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
        emotion: the clip's resting emotion (read and kept throughout:
            :attr:`~aipgan_hf.video.reading.ClipReading.kept`; or named: ``told``), worn under every frame that
            reads no other emotion of its own (a named one under every frame), or None.
        reading: what the reader read of the reference frames, worn or not (None without a reading).
        seconds: time by stage: "prepare" (the target), "decode", "landmarks", "reading" (the emotion reader's and
            what each frame wears), "render", "encode" (in a thread of its own, overlapping the rendering), and
            "total" (the whole call, wall clock).
        frame_emotions: the emotion each frame wears ("" none): its own reading's, else ``emotion``
            (:func:`~aipgan_hf.video.reading.frame_changes`).
        target_face_boxes: the boxes of the faces found in the target photo (its own pixels, though a large photo
            is animated scaled down: ``max_side``), by number, the one animated included (``target_faces`` counts
            them).
        driving_faces: the most faces found in one frame of the clip (its largest face in the first frame with one
            drives the photo; a face lost is looked for where it was).
    """

    frames: int
    fps: float
    frames_without_face: int
    output: Path | None
    reference_frame: int
    driving_landmarks: np.ndarray = field(repr=False)
    images: list[np.ndarray] | None = field(default=None, repr=False)
    emotion: EmotionRead | None = None
    reading: EmotionRead | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    frame_emotions: tuple[str, ...] = ()
    target_face_boxes: tuple[tuple[float, float, float, float], ...] = ()
    driving_faces: int = 1

    @property
    def target_faces(self) -> int:
        """Faces found in the target photo, the one animated included."""
        return max(1, len(self.target_face_boxes))

    def driving_faces_note(self) -> str | None:
        """For a user, where the clip showed several faces: which one drove the photo; None otherwise."""
        if self.driving_faces <= 1:
            return None
        return (
            f"The clip shows {self.driving_faces} faces; the largest in its first frame with a face drives the photo "
            "(crop the clip to drive it with another)"
        )

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
    read: EmotionRead | None = None,
    frames: list[EmotionRead | None] | None = None,
) -> tuple[int, np.ndarray, EmotionRead | None, tuple[str, ...]]:
    """(reference frame index, (N, 68, 2) float32 driving landmarks in the target's crop frame, the resting emotion
    worn, (N,) the emotion each frame wears or "") for a tracked clip. With relative motion, a ``read`` of the
    reference that is acted on (:func:`~aipgan_hf.motion.emotion.acted_on`) is worn under every frame's change, as
    one photo of the reference would give it (:func:`~aipgan_hf.motion.emotion.worn_change`; its mouth left to the
    frames); with the frames' readings (``frames``, :func:`~aipgan_hf.video.reading.frame_readings`), a frame whose
    own is acted on and another emotion wears that instead, topped up (:func:`~aipgan_hf.video.reading.frame_changes`),
    all eased in and out (:func:`~aipgan_hf.video.reading.eased`)."""
    reference_index, reference_points = reference_landmarks(track, reference)
    target = np.asarray(prepared.landmarks, dtype=np.float64)  # (68, 2): aligned once, driven by every frame
    points = reference_points.astype(np.float64)
    moves = relative and strength > 0
    worn = read if moves and acted_on(read, pipe.shape_model, points) else None
    labels = ("" if worn is None else worn.label,) * len(track.landmarks)
    if moves and frames is not None:
        changes, labels = frame_changes(pipe.shape_model, track, points, target, frames, worn)
        changes = eased(changes) * float(strength)
        offset = changes if offset is None else changes + offset
    elif worn is not None:
        resting = worn_change(pipe.shape_model, worn, points, target, open_lips=False) * float(strength)
        offset = resting if offset is None else resting + offset
    driving = pipe.shape_model.drive(
        target,
        track.landmarks,
        reference_landmarks=reference_points if relative else None,
        strength=strength,
        offset=offset,
    )
    driving = np.array(np.broadcast_to(driving, track.landmarks.shape), dtype=np.float32)  # (N, 68, 2)
    return reference_index, driving, worn, labels


def animate(
    pipe: AIPGANPipeline,
    driving: str | os.PathLike,
    target: Any,
    output: str | os.PathLike | None = None,
    relative: bool = True,
    smoothing: float = 1.0,
    paste_back: bool = True,
    side_by_side: bool = False,
    photo_texture: bool = True,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    progress: Progress | None = None,
    reference: str = "neutral",
    expression_strength: float = 1.0,
    expression_offsets: dict[str, float] | None = None,
    target_face_index: int | None = None,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    mouth: str = DEFAULT_MOUTH,
    read_emotion: bool = True,
    source_emotion: str | None = None,
    max_side: int | None = DEFAULT_MAX_SIDE,
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
        photo_texture: keep the photo's fine texture under the repainted face, as photo transfers do (off: about
            5 ms a frame faster on a 1-MP photo, the face as soft as the network's 128-px paint).
        max_seconds: refuse longer clips (None: no limit). progress: called after every frame of each pass.
        reference: "neutral" (the frame with the smallest mouth opening) or "first".
        expression_strength: scales the driving expression change (0 keeps the target still).
        expression_offsets: slider values added along ``pipe.shape_model.directions``, e.g. ``{"smile": 0.5}``.
        target_face_index: which face of the target photo (largest first).
        max_frame_pixels: larger frames are read scaled down to it (up to 4K,
            :data:`~aipgan_hf.video.clips.MAX_STORED_FRAME_PIXELS`; larger are refused).
        mouth: where an opened mouth's inside comes from, as in ``pipe(..., mouth=)``; "source": the target's own
            open mouth, else the driving frame's (the clip is decoded a second time if a frame uses it).
        read_emotion: with relative motion, each frame wears the emotion the reader is sure of around it, else the
            clip's resting emotion where the reader is sure of the reference frames' and reads it in the clip as a
            whole too (``result.frame_emotions``, ``result.emotion``; :mod:`~aipgan_hf.video.reading`); False: the
            frames' changes alone.
        source_emotion: the clip's emotion as the user names it (a preset's name), worn under every frame in place
            of what the reader reads (with relative motion and the reading on).
        max_side: a larger target photo is animated scaled down to this many pixels on its longer side (a phone's
            12-MP photo made a 4000 x 3000 video at about 2 frames/s); None: at its own size.

    Raises:
        InvalidVideoError, NoVideoStreamError, VideoTooLongError, VideoTooLargeError, NoFaceInVideoError, and the
        pipeline's errors about the target photo. On any error ``output`` is left as it was.
    """
    _check_controls(expression_strength, mouth, output, max_side)
    output = None if output is None else Path(output).expanduser()
    named = _named_emotion(pipe, source_emotion, relative, read_emotion)
    info = probe_clip(driving, max_seconds=max_seconds, max_frame_pixels=max_frame_pixels)
    seconds: dict[str, float] = {}
    started = clock = time.perf_counter()
    fitted, scale = fit_side(pipe, target, max_side)
    prepared = pipe.prepare(fitted, face_index=target_face_index, photo_texture=photo_texture)
    offset = pipe.expression_offset(expression_offsets)
    seconds["prepare"] = time.perf_counter() - clock
    reads = (
        relative and read_emotion and not source_emotion and expression_strength > 0 and pipe.emotion_reader is not None
    )
    with FrameHeads(pipe.emotion_reader) if reads else nullcontext() as kept:  # read while the pass tracks
        on_read = None if kept is None else kept.add
        track = track_clip(
            pipe.processor, info, smoothing, max_seconds, progress, seconds, keep_crops=reads, on_read=on_read
        )
        clock = time.perf_counter()
        reading = clip_reading(pipe, track, reference) if reads else None
        frames = frame_readings(pipe, track, kept) if reads else None
    read = named or (reading.kept if reading else None)
    reference_index, driving_landmarks, worn, labels = drive_clip(
        pipe, prepared, track, relative, reference, expression_strength, offset, read, frames
    )
    seconds["reading"] = time.perf_counter() - clock
    clip = DrivenClip(info, max_seconds, track, reference_index, driving_landmarks)
    images = render_clip(pipe, prepared, clip, output, paste_back, side_by_side, mouth, progress, seconds)
    seconds["total"] = time.perf_counter() - started
    rest = reading.rest if reading else None
    boxes = tuple(tuple(v / scale for v in box) for box in prepared.face.face_boxes)  # in the photo's own pixels
    return _result(clip, output, images, seconds, worn, rest, labels, boxes)


def _result(
    clip: DrivenClip,
    output: str | os.PathLike | None,
    images: list[np.ndarray] | None,
    seconds: dict[str, float],
    emotion: EmotionRead | None = None,
    reading: EmotionRead | None = None,
    frame_emotions: tuple[str, ...] = (),
    target_face_boxes: tuple = (),
) -> AnimationResult:
    """The :class:`AnimationResult` of a delivered clip, logged."""
    result = AnimationResult(
        frames=len(clip.driving_landmarks),
        fps=float(clip.info.fps),
        frames_without_face=int((~clip.track.found).sum()),
        output=Path(output) if output is not None else None,
        reference_frame=clip.reference_index,
        driving_landmarks=clip.driving_landmarks,
        images=images,
        emotion=emotion,
        reading=reading,
        frame_emotions=frame_emotions,
        seconds=seconds,
        target_face_boxes=target_face_boxes,
        driving_faces=clip.track.faces_seen,
    )
    logger.info("animated %s: %s", clip.info.path.name, result.summary())
    return result


def fit_side(pipe: AIPGANPipeline, target: Any, max_side: int | None = DEFAULT_MAX_SIDE) -> tuple[Any, float]:
    """The target photo scaled down to ``max_side`` pixels on its longer side where it is larger (logged), and the
    scale (1 where it is not). ConfigError for a ``max_side`` under 64."""
    check_max_side(max_side)
    if max_side is None:
        return target, 1.0
    photo = read_photo(pipe.processor, target, TARGET_ROLE)
    if max(photo.size) <= max_side:
        return photo, 1.0
    scale = max_side / max(photo.size)
    size = (max(1, round(photo.size[0] * scale)), max(1, round(photo.size[1] * scale)))
    logger.info("the %dx%d target photo is animated at %dx%d (max_side)", *photo.size, *size)
    pixels = photo.pixels if max(photo.pixels.shape[:2]) >= max_side else photo.full_resolution()  # a JPEG's draft
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS)), scale


def check_max_side(max_side: int | None) -> None:
    """ConfigError unless ``max_side`` is None or a whole number of pixels, 64 or more."""
    if max_side is not None and (
        isinstance(max_side, bool) or not isinstance(max_side, numbers.Integral) or max_side < 64
    ):
        raise ConfigError(f"max_side must be a whole number of pixels, 64 or more (or None), got {max_side!r}")


def _check_controls(
    expression_strength: float, mouth: str, output: str | os.PathLike | None, max_side: int | None = None
) -> None:
    """ConfigError for an expression strength out of range, an unknown mouth, a ``max_side`` under 64 pixels or an
    output that cannot be an MP4 written there, before the clip is read."""
    check_range("expression_strength", expression_strength, 0.0, MAX_EXPRESSION_STRENGTH)
    check_mouth(mouth)
    check_max_side(max_side)
    if output is None:
        return
    path = Path(output).expanduser()
    if path.is_dir():  # before its suffix: a folder named "out" has none
        raise ConfigError(f"{path} is a folder: name the result file inside it, e.g. {path / 'result.mp4'}")
    if path.suffix.lower() not in VIDEO_OUTPUT_SUFFIXES:
        raise ConfigError(f"the result is an MP4 video: name it .mp4, not {path.name!r}")
    if not path.parent.is_dir():
        raise ConfigError(f"cannot write {path}: its folder {path.parent} does not exist")


def _named_emotion(
    pipe: AIPGANPipeline, source_emotion: str | None, relative: bool, read_emotion: bool
) -> EmotionRead | None:
    """The clip's emotion as named (:func:`~aipgan_hf.motion.emotion.told_emotion`), or None; ConfigError where
    nothing would wear it: the clip's resting emotion is worn under relative motion only (absolute motion keeps the
    reference's expression)."""
    if source_emotion is None:
        return None
    named = told_emotion(source_emotion, pipe.shape_model, read_emotion)
    if not relative:
        raise ConfigError("the clip's emotion (source_emotion) is worn under relative motion only")
    return named


__all__ = [
    "AnimationResult",
    "animate",
    "drive_clip",
]
