"""Driving a photo with a video: clip I/O (:mod:`.clips`), face tracking and smoothing (:mod:`.tracking`) and the
frame loop (:mod:`.animate`). ``from aipgan_hf.video import animate``."""

from .animate import AnimationResult, LiveAnimator, animate, mouth_opening
from .clips import (
    DEFAULT_MAX_SECONDS,
    ClipWriter,
    InvalidVideoError,
    NoFaceInVideoError,
    NoVideoStreamError,
    VideoError,
    VideoTooLargeError,
    VideoTooLongError,
    probe_clip,
    read_frames,
)
from .tracking import FaceTracker, OneEuroFilter

__all__ = [
    "AnimationResult", "LiveAnimator", "animate", "mouth_opening", "DEFAULT_MAX_SECONDS", "ClipWriter",
    "InvalidVideoError", "NoFaceInVideoError", "NoVideoStreamError", "VideoError", "VideoTooLargeError",
    "VideoTooLongError", "probe_clip", "read_frames", "FaceTracker", "OneEuroFilter",
]
