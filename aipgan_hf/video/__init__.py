"""Driving a photo with a video: reading clips (:mod:`.clips`), face tracking and smoothing (:mod:`.tracking`), the
first pass's landmarks (:mod:`.landmarks`), what the clip's face reads as (:mod:`.reading`), the call that runs both
passes (:mod:`.animate`), the second pass's frame loop (:mod:`.frames`), writing clips (:mod:`.writer`) and live
driving (:mod:`.live`).
``from aipgan_hf.video import animate``."""

from .animate import AnimationResult, animate, fit_side
from .clips import (
    DEFAULT_MAX_SECONDS,
    InvalidVideoError,
    NoFaceInVideoError,
    NoVideoStreamError,
    VideoError,
    VideoTooLargeError,
    VideoTooLongError,
    probe_clip,
    read_frames,
)
from .landmarks import mouth_opening
from .live import LiveAnimator
from .reading import clip_note, frames_note
from .tracking import FaceTracker, OneEuroFilter
from .writer import ClipWriter

__all__ = [
    "AnimationResult",
    "LiveAnimator",
    "animate",
    "fit_side",
    "clip_note",
    "frames_note",
    "mouth_opening",
    "DEFAULT_MAX_SECONDS",
    "ClipWriter",
    "InvalidVideoError",
    "NoFaceInVideoError",
    "NoVideoStreamError",
    "VideoError",
    "VideoTooLargeError",
    "VideoTooLongError",
    "probe_clip",
    "read_frames",
    "FaceTracker",
    "OneEuroFilter",
]
