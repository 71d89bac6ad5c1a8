"""What a driving clip's face reads as, and what the target wears for it under relative motion.

Relative motion gives the target each frame's change from the clip's most neutral frames, so it loses whatever those
frames show already (a clip angry throughout moves only the mouth), and a face gains no frown that its 68 points do
not carry. The reader (:class:`~aipgan_hf.motion.emotion.EmotionReader`) reads the clip twice over:

- **the resting face** (0.19.0): the reference frames' crops together, kept where the clip as a whole reads the same
  emotion (:class:`ClipReading`);
- **each frame** (0.20.0): the crops of every third frame (:data:`~aipgan_hf.video.landmarks.READ_EVERY`); a frame
  reads as the mean of the readings within :data:`WINDOW` frames of it (:func:`frame_readings`). Where that reading
  is acted on and is another emotion than the kept resting one, the frame wears it, less what the frame's own change
  shows of it already (:func:`topped_up`); else it wears the resting emotion that was kept, in full (0.19.0); each as
  one photo of the reference would give it (:func:`~aipgan_hf.motion.emotion.worn_change`, :func:`frame_changes`),
  eased in and out over a few frames (:func:`eased`).

    first pass: crops --read--> rest, whole, per-frame readings --frame_changes, eased--> (N, k) worn under each frame
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..faces import image_to_tensor
from ..motion import ShapeModel
from ..motion.action_units import ACTION_UNITS, line_intensities, slider_name
from ..motion.emotion import (
    READ_FROM,
    SMILE_FROM,
    SMILE_FULL,
    EmotionRead,
    EmotionReader,
    acted_on,
    reading_note,
    worn_change,
)
from .landmarks import ClipLandmarks, reference_frames

if TYPE_CHECKING:  # the pipeline's animate() calls into this package: its class is needed only for the types
    from ..pipeline import AIPGANPipeline

logger = logging.getLogger(__name__)

WINDOW = 6
"""A frame reads as the mean of the readings at most this many frames before or after it (a fifth of a second at 30
fps): a single frame's reading flickers, a clip's whole hides what its frames do. In blind naming, the reading of the
driving frame's crop alone was what an observer named that frame 51.5 % of the time, the clip's resting reading
44.3 % (docs/design.md, "Each frame's emotion")."""
EASE = 2
"""A frame that comes to wear another emotion eases into it over 2 * EASE + 1 frames (:func:`eased`): the largest move
from one frame to the next is then 0.19.0's (a median over 15 clips of 4.3 crop pixels; unsmoothed 7.8), and blind
observers named the transfers as the driving frames 66 times of 160 against 0.19.0's 49 where the two wore another
emotion. Over 13 frames (6 either side) they named them no closer than 0.19.0's (64 against 64 of 156)."""
BATCH = 32
"""Crops read by one call of the reader."""


@dataclass(frozen=True)
class ClipReading:
    """The reader's two readings of a clip (:func:`clip_reading`): its resting face (the reference frames) and the
    clip as a whole (:data:`~aipgan_hf.video.landmarks.SAMPLED_FRAMES` frames spread over it)."""

    rest: EmotionRead
    whole: EmotionRead

    @property
    def kept(self) -> EmotionRead | None:
        """The resting face's reading where the clip as a whole reads the same emotion above
        :data:`~aipgan_hf.motion.emotion.READ_FROM`: an emotion the clip keeps throughout, which relative motion
        loses; else None. A talker's most closed mouths (its reference) are often pressed lips read as sad or
        angry: where the resting face alone was worn, most clips that lost agreement with what observers saw in the
        frame were ones the clip as a whole reads otherwise (docs/design.md, "The clip's resting emotion")."""
        same = self.whole.label == self.rest.label and self.whole.probability > READ_FROM
        return self.rest if same else None


def clip_reading(pipe: AIPGANPipeline, track: ClipLandmarks, reference: str = "neutral") -> ClipReading | None:
    """The reader's readings of the reference frames' crops together and of the sampled frames' together; None
    where the pipeline has no reader or a group has no crop (a face seen only between the samples): the reading is
    an addition, never a reason for a clip to fail."""
    groups = [
        [track.crops[int(i)] for i in frames if int(i) in track.crops]
        for frames in (reference_frames(track, reference), track.sampled)
    ]
    if pipe.emotion_reader is None or not all(groups):
        return None
    rest, whole = (pipe.emotion_reader.read_together(torch.stack([image_to_tensor(c) for c in g])) for g in groups)
    return ClipReading(rest, whole)


def _heads(reader: EmotionReader, crops: list[np.ndarray]) -> list[torch.Tensor]:
    """Each head's (M, C) probabilities for ``crops``: :meth:`~aipgan_hf.motion.emotion.EmotionReader.heads`."""
    return reader.heads(torch.stack([image_to_tensor(crop) for crop in crops]))


class FrameHeads:
    """The reader's heads on the read frames' crops, :data:`BATCH` at a time in a thread of its own, as they are
    added: fed by the first pass as it keeps them (:func:`~aipgan_hf.video.landmarks.track_clip`'s ``on_read``), torch
    lets go of the GIL that dlib's fits hold, so the reading runs on the core the pass leaves idle (saving about 0.6 ms
    a frame). Use as a context manager; :meth:`heads` before it closes."""

    def __init__(self, reader: EmotionReader) -> None:
        self.reader = reader
        self.indices: list[int] = []
        self._crops: list[np.ndarray] = []
        self._batches: list[Future[list[torch.Tensor]]] = []
        self._thread: ThreadPoolExecutor | None = None

    def __enter__(self) -> FrameHeads:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frame-reader")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)  # a pass that failed reads no more

    def add(self, index: int, crop: np.ndarray) -> None:
        """The crop of read frame ``index`` (frames come in the clip's order)."""
        self.indices.append(index)
        self._crops.append(crop)
        if len(self._crops) == BATCH:
            self._read()

    def _read(self) -> None:
        self._batches.append(self._thread.submit(_heads, self.reader, self._crops))
        self._crops = []

    def heads(self) -> list[torch.Tensor]:
        """Each head's (M, C) probabilities for the M crops added, in their order."""
        if self._crops:
            self._read()
        return [torch.cat(parts) for parts in zip(*(batch.result() for batch in self._batches))]


def frame_readings(
    pipe: AIPGANPipeline, track: ClipLandmarks, read_as_kept: FrameHeads | None = None
) -> list[EmotionRead | None]:
    """Each frame's reading: the mean of each head's probabilities over the read frames (``track.read``) within
    :data:`WINDOW` frames of it, chosen between the heads as a single crop's reading is; None where none is that
    near (or the pipeline has no reader). ``read_as_kept``: those crops' heads, read while the pass kept them."""
    reader, read = pipe.emotion_reader, [int(i) for i in track.read if int(i) in track.crops]
    if reader is None or not read:
        return [None] * len(track.landmarks)
    if read_as_kept is not None and read_as_kept.indices == read:
        heads = read_as_kept.heads()
    else:
        if read_as_kept is not None:  # the pass handed on other crops than it kept: read them again, and say so
            logger.warning("the frames' crops read during the first pass are not the ones it kept; reading again")
        with FrameHeads(reader) as now:  # the same batches, read here
            for index in read:
                now.add(index, track.crops[index])
            heads = now.heads()
    positions = np.asarray(read)
    readings: list[EmotionRead | None] = []
    for frame in range(len(track.landmarks)):
        near = torch.as_tensor(np.flatnonzero(np.abs(positions - frame) <= WINDOW))
        readings.append(reader.choose(*(head[near].mean(dim=0) for head in heads)) if len(near) else None)
    return readings


def topped_up(shape_model: ShapeModel, worn: np.ndarray, change: np.ndarray) -> np.ndarray:
    """(N, k) ``worn`` less, unit by unit, what each frame's own (N, k) ``change`` already shows of it (up to what
    ``worn`` has): a smile worn under a laughing frame, or a frown under a frowning one, is not doubled. Read as the
    units' lines are (:func:`~aipgan_hf.motion.action_units.line_intensities`); a unit the model has no slider of is
    left as it is."""
    basis = shape_model.expression_basis.reshape(shape_model.num_expression, -1)

    def units(coefficients: np.ndarray) -> np.ndarray:  # (N, U)
        return line_intensities((coefficients @ basis).reshape(len(coefficients), -1, 2), shape_model.mean)

    overlap = np.minimum(units(worn), units(change))  # (N, U), both at least 0
    directions = np.stack(
        [shape_model.directions.get(slider_name(unit), np.zeros(shape_model.num_expression)) for unit in ACTION_UNITS]
    )  # (U, k)
    return worn - overlap @ directions


def frame_changes(
    shape_model: ShapeModel,
    track: ClipLandmarks,
    reference_points: np.ndarray,
    target: np.ndarray,
    readings: list[EmotionRead | None],
    kept: EmotionRead | None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """((N, k) coefficient change worn under each frame's own change, (N,) the emotion each wears or ""), each worn
    as one photo of the (68, 2) reference would give it to the (68, 2) target, its mouth left to the frames:

    - a frame whose reading is acted on (:func:`~aipgan_hf.motion.emotion.acted_on`, against the frame's points) and
      is another emotion than ``kept``'s wears it, :func:`topped_up` by the frame's change from the reference (the
      change from a reference without that emotion is the emotion's own, as far as the points carry it);
    - every other frame wears ``kept`` (the clip's resting emotion, acted on by the caller; or nothing) in full,
      as 0.19.0 did: the reference shows it already, so the frame's change is a change on top of it.
    """
    count = len(track.landmarks)
    worn, labels, own, made = np.zeros((count, shape_model.num_expression)), [], [], {}
    for frame, read in enumerate(readings):
        points = track.landmarks[frame].astype(np.float64)
        other = acted_on(read, shape_model, points) and (kept is None or read.label != kept.label)
        chosen = read if other else kept
        labels.append("" if chosen is None else chosen.label)
        own.append(other)
        if chosen is None:
            continue
        key = (chosen.label, _smile_weight(chosen))  # all that worn_change reads of a reading
        if key not in made:
            made[key] = worn_change(shape_model, chosen, reference_points, target, open_lips=False)
        worn[frame] = made[key]
    topped = np.flatnonzero(own)
    if len(topped):
        change = shape_model.change(track.landmarks[topped].astype(np.float64), reference_points)
        worn[topped] = topped_up(shape_model, worn[topped], change)
    return worn, tuple(labels)


def _smile_weight(read: EmotionRead) -> float:
    """How much of a read smile is completed (0 for other emotions): the one thing besides its label that
    :func:`~aipgan_hf.motion.emotion.worn_change` reads of a reading."""
    if read.label != "happiness":
        return 0.0
    return float(np.clip((read.probability - SMILE_FROM) / (SMILE_FULL - SMILE_FROM), 0.0, 1.0))


def eased(worn: np.ndarray, half: int = EASE) -> np.ndarray:
    """(N, k) ``worn`` averaged over the frames within ``half`` of each (the clip's ends repeated): a frame that comes
    to wear another emotion eases into it over 2 half + 1 frames rather than jumping. Unsmoothed, a calm talker read
    sad, then surprised, then happy moved the target's landmarks by up to 10 crop pixels from one frame to the next
    (0.19.0: 3)."""
    width = 2 * half + 1
    padded = np.concatenate([np.repeat(worn[:1], half, axis=0), worn, np.repeat(worn[-1:], half, axis=0)])
    sums = np.cumsum(np.concatenate([np.zeros((1, worn.shape[1])), padded]), axis=0)
    return (sums[width:] - sums[:-width]) / width


def clip_note(rest: EmotionRead) -> str:
    """What a clip that wears its resting emotion ``rest`` (read, or named: ``told``) tells its user, in a
    sentence."""
    if rest.told:
        return reading_note(rest, "clip")
    return reading_note(rest, "clip's resting face") + " where a frame reads no other emotion of its own"


def frames_note(labels: tuple[str, ...], rest: EmotionRead | None = None) -> str | None:
    """What the frames wore of their own (:attr:`~aipgan_hf.video.animate.AnimationResult.frame_emotions`, leaving
    out the clip's resting emotion ``rest``), in a sentence: "Read frame by frame, the target wears happiness in 20%
    of the frames, surprise in 5%"; None where no frame wore one of its own (a named emotion is worn by every
    frame)."""
    if rest is not None and rest.told:
        return None
    names, counts = np.unique([label for label in labels if label not in ("", rest and rest.label)], return_counts=True)
    parts = [f"{names[i]} in {counts[i] / len(labels):.0%}" for i in np.argsort(-counts, kind="stable")]
    if not parts:
        return None
    return f"Read frame by frame, the target wears {parts[0]} of the frames" + "".join(f", {p}" for p in parts[1:])
