"""Driving a photo from a live source (a webcam), frame by frame."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..compositing import DEFAULT_MOUTH, check_mouth
from ..driving import PreparedTarget
from ..faces import FaceProcessor
from .frames import driving_faces
from .landmarks import DrivingFace

if TYPE_CHECKING:  # the pipeline is handed to each call: its class is needed only for the types
    from ..pipeline import AIPGANPipeline


class LiveAnimator:
    """Frame-by-frame driving for a live source (a webcam): the same tracking, alignment and smoothing as
    :func:`animate`, with the first frame that shows a face as the reference (a live stream has no "whole clip"
    to choose from; :meth:`reset_reference` takes the next frame instead).

    The pipeline is passed to each call rather than kept, so a server can run every frame on whichever pipeline
    copy is free (dlib's models must not be used by two threads at once).

    Args:
        prepared: ``pipe.prepare(photo)``.
        processor: a face processor with the pipeline's crop resolution (only its settings are kept).
        relative, smoothing, expression_strength, mouth: as for :func:`animate`.
        offset: coefficient change from :meth:`AIPGANPipeline.expression_offset`.
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
    ) -> None:
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

    def __call__(self, pipe: AIPGANPipeline, frame: np.ndarray, seconds: float | None = None) -> Image.Image:
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
            driving = pipe.shape_model.drive(
                self.prepared.landmarks,
                landmarks,
                reference_landmarks=self.reference if self.relative else None,
                strength=self.expression_strength,
                offset=self.offset,
            )
        driving = np.asarray(driving, dtype=np.float32)[None]
        sources, mouth = None, self.mouth
        if self.mouth == "source" and self.driving.matrix is not None:  # this frame's own mouth inside
            sources = driving_faces(
                pipe, [frame], self.driving.matrix[None], self.driving.unsmoothed[None], np.ones(1, bool), driving
            )
        elif self.mouth == "source":
            mouth = "own"  # no face in this frame: no driving mouth to read
        return pipe.render(self.prepared, driving, paste_back=True, mouth=mouth, sources=sources)[0].image
