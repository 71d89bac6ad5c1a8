"""Reading a driving clip: probe it and check its limits, then decode its frames.

Everything here is PyAV (FFmpeg); nothing knows about faces. Writing a clip is :mod:`.writer`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AIPGANError
from ..faces.decode import refuse_web_address

logger = logging.getLogger(__name__)

DEFAULT_MAX_SECONDS = 60.0
DEFAULT_MAX_FRAME_PIXELS = 1920 * 1088  # 1080p in either orientation (1088: codecs pad 1080 to macroblocks)
MAX_STORED_FRAME_PIXELS = 4096 * 2304
"""The largest frames read at all (4K in either orientation, a phone's default): frames over ``max_frame_pixels``
are scaled down to it as they are decoded (the clip gives only its faces' landmarks and, side by side, its picture)."""
MIN_FRAME_SIDE = 32
DEFAULT_FPS = Fraction(25)
IMAGE_DEMUXERS = {"image2", "apng"}  # FFmpeg reads photos as one-frame videos (and "*_pipe" ones): refused


class VideoError(AIPGANError):
    """Base class of the errors about a driving video."""


class InvalidVideoError(VideoError):
    """The file is missing, not a video, or damaged."""


class NoVideoStreamError(InvalidVideoError):
    """The file is a media file without a video stream (for example audio only)."""


class VideoTooLongError(VideoError):
    """The clip is longer than the configured limit."""


class VideoTooLargeError(VideoError):
    """The clip's frames have more pixels than the configured limit (or are too small)."""


class NoFaceInVideoError(VideoError):
    """No frame of the clip shows a usable face."""


@dataclass(frozen=True)
class ClipInfo:
    """What the container header says about a clip.

    Attributes:
        path: the file.
        width, height: frame size in pixels, as stored (:func:`read_frames` turns a phone's sideways frames
            upright).
        fps: frame rate (the stream's average rate; 25 when the header has none).
        duration_s: length in seconds (None when the header does not say).
        frame_count: frames in the header (0 when unknown).
        audio_codec: codec name of the first audio stream, None without audio.
        decoded_size: (width, height) the frames are scaled to as they are decoded, as stored; None: their own.
    """

    path: Path
    width: int
    height: int
    fps: Fraction
    duration_s: float | None
    frame_count: int
    audio_codec: str | None
    decoded_size: tuple[int, int] | None = None


def open_clip(path: Path) -> Any:
    """The file opened by PyAV; a file it cannot open raises :class:`InvalidVideoError`."""
    import av

    try:
        return av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise InvalidVideoError(_not_a_video(path, error)) from None
    except OSError as error:
        raise InvalidVideoError(f"cannot read {path.name}: {error.strerror or error}") from None


def _not_a_video(path: Path, error: Exception) -> str:
    try:
        with path.open("rb") as handle:
            head = handle.read(512)
    except OSError:
        head = b""
    try:
        head.decode("utf-8")
        text = bool(head) and all(byte >= 9 for byte in head)
    except UnicodeDecodeError as undecodable:  # not `error`: Python unbinds the name after the block
        cut = undecodable.start
        text = cut >= len(head) - 3 and all(byte >= 9 for byte in head[:cut])  # cut inside a character
    kind = " (it looks like text)" if text else ""
    logger.debug("FFmpeg could not open %s: %s", path, error)
    return f"{path.name} is not a video{kind}; use an MP4, WebM or MOV clip"


def probe_clip(
    path: str | os.PathLike,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
) -> ClipInfo:
    """Read a clip's header and check it against the limits, before any frame is decoded.

    Raises:
        InvalidVideoError: missing file, not a video, no video stream (:class:`NoVideoStreamError`).
        VideoTooLongError: the header's duration is over ``max_seconds``.
        VideoTooLargeError: more than ``max_frame_pixels`` pixels a frame, or a side under 32 pixels.
    """
    refuse_web_address(path, InvalidVideoError, "clip")
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidVideoError(f"a driving clip is a video file's path, got {type(path).__name__}")
    path = Path(path).expanduser()
    try:
        if not path.is_file():
            raise InvalidVideoError(f"video file not found: {path}" if not path.exists() else f"{path} is not a file")
    except OSError as error:  # e.g. a name longer than the file system allows
        raise InvalidVideoError(f"cannot read {path.name[:80]}: {error.strerror or error}") from None
    with open_clip(path) as container:
        if not container.streams.video:
            found = "it holds only audio" if container.streams.audio else "it has no video stream"
            raise NoVideoStreamError(f"{path.name} is not a video: {found}")
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        if not width or not height:  # e.g. a text file named .jpg, which FFmpeg's image demuxer accepts
            raise InvalidVideoError(_not_a_video(path, ValueError("no frame size")))
        if container.format.name in IMAGE_DEMUXERS or container.format.name.endswith("_pipe"):
            raise InvalidVideoError(f"{path.name} is a still image, not a video; use an MP4, WebM or MOV clip")
        fps = Fraction(stream.average_rate or stream.guessed_rate or DEFAULT_FPS)
        if fps <= 0 or fps > 240:
            fps = DEFAULT_FPS
        duration = None
        if container.duration:
            duration = container.duration / 1_000_000
        elif stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        audio = container.streams.audio[0].codec_context.codec.canonical_name if container.streams.audio else None
        info = ClipInfo(path, width, height, fps.limit_denominator(1001), duration, int(stream.frames or 0), audio)
    check_limits(info, max_seconds, max_frame_pixels)
    if width * height > max_frame_pixels:
        scale = math.sqrt(max_frame_pixels / (width * height))
        info = replace(info, decoded_size=(2 * int(width * scale / 2), 2 * int(height * scale / 2)))  # even sides
        logger.info("%s: its %dx%d frames are decoded at %dx%d", path.name, width, height, *info.decoded_size)
    return info


def check_limits(info: ClipInfo, max_seconds: float | None, max_frame_pixels: int) -> None:
    """The length and resolution limits of :func:`probe_clip` (also applied while decoding): frames over
    ``max_frame_pixels`` are read scaled down, up to :data:`MAX_STORED_FRAME_PIXELS`."""
    if info.width * info.height > max(max_frame_pixels, MAX_STORED_FRAME_PIXELS):
        raise VideoTooLargeError(
            f"the video is {info.width}x{info.height} pixels a frame, more than 4K ({MAX_STORED_FRAME_PIXELS:,}); "
            "scale it down to 1080p"
        )
    if min(info.width, info.height) < MIN_FRAME_SIDE:
        raise VideoTooLargeError(
            f"the video is only {info.width}x{info.height} pixels; a face needs at least {MIN_FRAME_SIDE}"
        )
    if (
        max_seconds is not None
        and info.duration_s is not None
        and info.duration_s > max_seconds + 0.5 / float(info.fps)
    ):
        raise VideoTooLongError(
            f"the video is {info.duration_s:.1f} s long, more than the limit of {max_seconds:g} s; trim it first"
        )


def read_frames(info: ClipInfo, max_seconds: float | None = DEFAULT_MAX_SECONDS) -> Iterator[tuple[np.ndarray, float]]:
    """Decode the clip's video frames in order.

    Yields:
        ((H, W, 3) uint8 RGB frame, its time in seconds from the first frame).

    Raises:
        VideoTooLongError: a frame lies beyond ``max_seconds`` (for headers that gave no duration).
        VideoTooLargeError: a frame changed size beyond the pixel limit mid-stream.
        InvalidVideoError: the stream is damaged beyond what the decoder conceals.
    """
    import av

    if not hasattr(av.VideoFrame, "rotation"):
        logger.warning(
            "PyAV %s cannot tell a clip's display rotation: a phone's portrait clip stays sideways", av.__version__
        )
    with open_clip(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start: float | None = None
        index = 0
        try:
            for frame in container.decode(stream):
                seconds = (
                    float(frame.pts * frame.time_base)
                    if frame.pts is not None and frame.time_base
                    else index / float(info.fps)
                )
                start = seconds if start is None else start
                seconds -= start
                if max_seconds is not None and seconds > max_seconds:
                    raise VideoTooLongError(f"the video is longer than the limit of {max_seconds:g} s; trim it first")
                if frame.width * frame.height > info.width * info.height * 1.01 + 1:
                    raise VideoTooLargeError(
                        f"the video's frame size changes to {frame.width}x{frame.height} mid-stream"
                    )
                yield _upright(frame, info.decoded_size), seconds
                index += 1
        except av.FFmpegError as error:
            raise InvalidVideoError(f"{info.path.name} is damaged after frame {index}: {error}") from None
    if index == 0:
        raise InvalidVideoError(f"{info.path.name} has a video stream but no frame could be decoded")


def _upright(frame: Any, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a decoded frame as players show it: a phone stores a portrait clip's frames sideways,
    with a display matrix saying how to turn them (``frame.rotation``: degrees counter-clockwise, a multiple of 90;
    a PyAV too old to have it leaves them as stored). ``size``: (width, height) to scale it to first, as stored."""
    scaled = {} if size is None else {"width": size[0], "height": size[1], "interpolation": "AREA"}
    pixels = frame.to_ndarray(format="rgb24", **scaled)
    turns = round(getattr(frame, "rotation", 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels
