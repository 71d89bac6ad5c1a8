"""Driving a photo from a live source (a webcam), frame by frame."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ..compositing import DEFAULT_MOUTH, check_mouth
from ..driving import PreparedTarget
from ..faces import FaceProcessor, image_to_tensor
from ..faces.align import warp_to_crop
from .frames import driving_faces
from .landmarks import ClipLandmarks, DrivingFace
from .reading import EASE, frame_changes

if TYPE_CHECKING:  # the pipeline is handed to each call: its class is needed only for the types
    from ..pipeline import AIPGANPipeline


LIVE_WINDOW = 3
"""A live frame reads as the mean of its own reading and the two before it (the app sends 10 frames a second): a
stream has no later frames to read, so the window is the clip's (:data:`~aipgan_hf.video.reading.WINDOW`) looking
back only."""


class LiveAnimator:
    """Frame-by-frame driving for a live source (a webcam): the same tracking, alignment and smoothing as
    :func:`animate`, with the first frame that shows a face as the reference (a live stream has no "whole clip"
    to choose from; :meth:`reset_reference` takes the next frame instead).

    The pipeline is passed to each call rather than kept, so a server can run every frame on whichever pipeline
    copy is free (dlib's models must not be used by two threads at once).

    With relative motion each frame also wears the emotion the pipeline's reader is sure of in it and the frames with
    a face just before (:data:`LIVE_WINDOW` in all; a frame without a face starts the window over), topped up by what
    the frame's change from the reference shows of it already, as a clip's frames are
    (:func:`~aipgan_hf.video.reading.frame_changes`), and eased causally: each frame moves a third of the way to it
    (``emotion``: what the last frame with a face read). A stream has no whole clip, so no resting emotion is worn.

    Args:
        prepared: ``pipe.prepare(photo)``.
        processor: a face processor with the pipeline's crop resolution (only its settings are kept).
        relative, smoothing, expression_strength, mouth, read_emotion, paste_back: as for :func:`animate`.
        offset: coefficient change from :meth:`AIPGANPipeline.expression_offset`.

    ``expression_strength``, ``offset`` and ``paste_back`` may change between frames (a page's controls).
    """

    def __init__(
        self,
        prepared: PreparedTarget,
        processor: FaceProcessor,
        relative: bool = True,
        smoothing: float = 1.0,
        expression_strength: float = 1.0,
        offset: np.ndarray | None = None,
        mouth: str = DEFAULT_MOUTH,
        read_emotion: bool = True,
        paste_back: bool = True,
    ) -> None:
        self.prepared, self.mouth = prepared, check_mouth(mouth)
        self.paste_back = paste_back
        self.relative = relative
        self.expression_strength = expression_strength
        self.offset = offset
        self.read_emotion = read_emotion
        self.recent: deque[list[torch.Tensor]] = deque(maxlen=LIVE_WINDOW)  # each read frame's heads' probabilities
        self.worn: np.ndarray | None = None  # (k,) the eased change worn, unscaled
        self.emotion = ""
        self.driving = DrivingFace(processor, smoothing, redetect_every=1)
        self.reference: np.ndarray | None = None
        self.last: np.ndarray | None = None
        self.frames = 0
        self.frames_without_face = 0
        self._start = time.monotonic()

    def reset_reference(self) -> None:
        """Measure relative motion from the next frame with a face (what was read starts over too)."""
        self.reference = None
        self._forget()

    def _forget(self) -> None:
        """Let go of what was read: nothing is worn until frames are read again."""
        self.recent.clear()
        self.worn, self.emotion = None, ""

    def __call__(self, pipe: AIPGANPipeline, frame: np.ndarray, seconds: float | None = None) -> Image.Image:
        """Render one live frame ((H, W, 3) uint8 RGB); without a face the last pose (or the target at rest)."""
        self.driving.tracker.processor = pipe.processor
        seconds = time.monotonic() - self._start if seconds is None else seconds
        landmarks = self.driving(frame, seconds)
        self.frames += 1
        reads = self._reads(pipe)
        if landmarks is None:
            self.frames_without_face += 1
            self.recent.clear()  # the window's frames follow each other
            landmarks = self.last if self.reference is not None else None  # no stale pose after a reset
        if landmarks is None:
            driving = self.prepared.landmarks
        else:
            self.last = landmarks
            if self.reference is None:
                self.reference = landmarks
            worn = self._worn(pipe, frame, landmarks) if reads and self.driving.matrix is not None else self.worn
            offset = self.offset
            if worn is not None:
                offset = worn * self.expression_strength + (0.0 if offset is None else offset)
            driving = pipe.shape_model.drive(
                self.prepared.landmarks,
                landmarks,
                reference_landmarks=self.reference if self.relative else None,
                strength=self.expression_strength,
                offset=offset,
            )
        driving = np.asarray(driving, dtype=np.float32)[None]
        sources, mouth = None, self.mouth
        if self.mouth == "source" and self.driving.matrix is not None:  # this frame's own mouth inside
            sources = driving_faces(
                pipe, [frame], self.driving.matrix[None], self.driving.unsmoothed[None], np.ones(1, bool), driving
            )
        elif self.mouth == "source":
            mouth = "own"  # no face in this frame: no driving mouth to read
        return pipe.render(self.prepared, driving, paste_back=self.paste_back, mouth=mouth, sources=sources)[0].image

    def _reads(self, pipe: AIPGANPipeline) -> bool:
        """Whether frames are read now (relative motion, strength above 0, the reading on, a reader); where not,
        what was read is let go, so that a setting changed between frames leaves nothing worn."""
        reads = self.read_emotion and self.relative and self.expression_strength > 0
        if not (reads and pipe.emotion_reader is not None):
            self._forget()
            return False
        return True

    def _worn(self, pipe: AIPGANPipeline, frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(k,) the change this frame wears for what is read in it and the frames before, eased."""
        reader = pipe.emotion_reader
        crop = warp_to_crop(frame, self.driving.matrix, pipe.processor.resolution)  # as a clip's first pass crops it
        self.recent.append(reader.heads(image_to_tensor(crop)[None]))
        read = reader.choose(*(torch.cat(heads).mean(dim=0) for heads in zip(*self.recent)))
        track = ClipLandmarks(np.asarray(landmarks, np.float32)[None], np.ones(1, bool), np.zeros(1))
        target, reference = (np.asarray(points, np.float64) for points in (self.prepared.landmarks, self.reference))
        worn, (self.emotion,) = frame_changes(pipe.shape_model, track, reference, target, [read], None)
        # eased looking back only: each frame moves 1 / (EASE + 1) of the way (a clip's box over 2 EASE + 1 frames
        # needs the frames after)
        self.worn = worn[0] if self.worn is None else self.worn + (worn[0] - self.worn) / (EASE + 1)
        return self.worn
