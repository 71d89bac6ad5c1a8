"""Writing a clip: RGB frames to an MP4 (H.264) with another clip's audio, optionally from a thread.

The writer never leaves a partial file under the output name: it writes to a hidden temporary file beside it and
renames that at the end.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..provenance import description
from .clips import VideoError, open_clip

logger = logging.getLogger(__name__)

VIDEO_EDIT = "expression driven by a video"
"""What the clips' stamp says was done (their "description" and "comment" tags, as photos' EXIF description)."""
VIDEO_CODECS = ("libx264", "mpeg4")  # H.264 where this FFmpeg build has it, else MPEG-4 part 2
MP4_AUDIO_CODECS = {"aac", "mp3", "alac", "ac3", "eac3"}  # copied as they are; anything else becomes AAC
AUDIO_LEAD_SECONDS = 0.5  # audio is muxed this far ahead of the video, so the two stay interleaved


def video_codec() -> str:
    """The first encoder of :data:`VIDEO_CODECS` this FFmpeg build has."""
    import av

    for name in VIDEO_CODECS:
        if name in av.codecs_available:
            return name
    raise VideoError(f"this PyAV build has none of the video encoders {', '.join(VIDEO_CODECS)}")


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad an odd width or height by one edge pixel (4:2:0 chroma needs even sides)."""
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    return np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge") if pad_h or pad_w else frame


class _YUVPlanes:
    """The frame being encoded as 4:2:0 planes in one buffer, updated in place: a whole RGB frame, or only a box."""

    def __init__(self) -> None:
        self.buffer: np.ndarray | None = None  # (H * 3/2, W): Y, then U and V, as av's "yuv420p" ndarray
        self.y = self.u = self.v = np.empty(0, np.uint8)  # (H, W), (H/2, W/2), (H/2, W/2) views of the buffer

    def update(self, frame: np.ndarray, box: tuple[int, int, int, int] | None = None) -> None:
        """Convert ``frame`` ((h, w, 3) uint8 RGB; odd sides padded by an edge pixel), or only its ``box``."""
        if box is None or self.buffer is None:
            planes = _to_yuv420(_even(frame))
            height, width = planes[0].shape
            self.buffer = np.empty((height * 3 // 2, width), np.uint8)
            flat = self.buffer.reshape(-1)
            quarter = (height // 2) * (width // 2)
            self.y = flat[: height * width].reshape(height, width)
            self.u = flat[height * width : height * width + quarter].reshape(height // 2, width // 2)
            self.v = flat[height * width + quarter :].reshape(height // 2, width // 2)
            self.y[:], self.u[:], self.v[:] = planes
            return
        height, width = self.y.shape
        x0, y0, x1, y1 = box
        x0, y0 = max(0, x0 - x0 % 2), max(0, y0 - y0 % 2)  # whole 2x2 chroma blocks
        x1, y1 = min(width, x1 + x1 % 2), min(height, y1 + y1 % 2)
        if x1 <= x0 or y1 <= y0:
            return
        luma, blue, red = _to_yuv420(
            _even(frame[y0:y1, x0:x1])
        )  # the box ends at an odd side: padded as a whole frame is
        self.y[y0:y1, x0:x1] = luma
        self.u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = blue
        self.v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2] = red


def _to_yuv420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FFmpeg's (swscale) RGB -> YUV 4:2:0 of an even-sided (h, w, 3) uint8 image: (h, w), (h/2, w/2), (h/2, w/2)."""
    import av

    height, width = rgb.shape[:2]
    flat = (
        av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        .reformat(format="yuv420p")
        .to_ndarray()
        .ravel()
    )
    quarter = (height // 2) * (width // 2)
    luma = flat[: height * width].reshape(height, width)
    blue = flat[height * width : height * width + quarter].reshape(height // 2, width // 2)
    red = flat[height * width + quarter : height * width + 2 * quarter].reshape(height // 2, width // 2)
    return luma, blue, red


class _AudioCopy:
    """Copies (or, for codecs MP4 cannot hold, re-encodes to AAC) the audio of a clip into an output container,
    a little ahead of the video so the file stays interleaved."""

    def __init__(self, source: Path, output: Any) -> None:
        self._input = open_clip(source)
        self._in_stream = self._input.streams.audio[0]
        self._video_start = self._start_time(self._input.streams.video[0]) if self._input.streams.video else 0.0
        self._copy = self._in_stream.codec_context.codec.canonical_name in MP4_AUDIO_CODECS  # not "mp3float"
        if self._copy:
            self._out_stream = output.add_stream_from_template(self._in_stream)
        else:
            import av

            rate = self._in_stream.codec_context.sample_rate or 48000
            self._out_stream = output.add_stream("aac", rate=rate)
            self._out_stream.layout = "stereo" if (self._in_stream.codec_context.channels or 1) > 1 else "mono"
            self._resampler = av.AudioResampler(format="fltp", layout=self._out_stream.layout, rate=rate)
        self._output = output
        self._packets = self._input.demux(self._in_stream)
        self._pending: list[Any] = []
        self._done = False

    @staticmethod
    def _start_time(stream: Any) -> float:
        return (
            float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0
        )

    def mux_until(self, seconds: float) -> None:
        """Mux the audio up to ``seconds`` of the output's time line (plus a short lead)."""
        while not self._done:
            try:
                packet = next(self._packets)
            except StopIteration:
                self._done = True
                break
            if packet.pts is None or packet.size == 0:
                continue  # the demuxer's flush packet
            time = float(packet.pts * packet.time_base) - self._video_start
            if time < 0:
                continue  # audio before the first video frame
            self._write(packet)
            if time > seconds + AUDIO_LEAD_SECONDS:
                break

    def _write(self, packet: Any) -> None:
        offset = round(self._video_start / packet.time_base)
        if self._copy:
            packet.pts -= offset
            if packet.dts is not None:
                packet.dts -= offset
            packet.stream = self._out_stream
            self._output.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder numbers the resampled samples itself
            for resampled in self._resampler.resample(frame):
                self._output.mux(self._out_stream.encode(resampled))

    def finish(self) -> None:
        """Mux the rest of the audio, flush the encoder (when re-encoding) and close the input."""
        self.mux_until(float("inf"))
        if not self._copy:
            for resampled in self._resampler.resample(None):
                self._output.mux(self._out_stream.encode(resampled))
            self._output.mux(self._out_stream.encode(None))
        self._input.close()

    def close(self) -> None:
        self._input.close()


VARIABLE_RATE_CLOCK = 60_000
"""Ticks a second of a variable-frame-rate output's time stamps: each frame is stamped with its driving frame's own
time. Whole ticks for 23.976 to 60 fps (2,002 a frame at 29.97), and under the 65,535 the MPEG-4 fallback encoder
takes."""


def evenly_timed(times: np.ndarray, fps: Fraction | float) -> bool:
    """Whether frames at ``times`` (seconds from the first) lie within half a frame of ``k / fps``: a constant-rate
    clip, written at ``fps``. A phone's clip in low light drops its rate for a while; written at its average rate its
    picture would drift from its sound."""
    times = np.asarray(times, dtype=np.float64)
    return bool(np.all(np.abs(times - np.arange(len(times)) / float(fps)) <= 0.5 / float(fps)))


class ClipWriter:
    """Writes RGB frames to an MP4 at a fixed frame rate (or each at its own time), with another clip's audio,
    atomically, stamped as edited (its "description" and "comment" tags, :data:`VIDEO_EDIT`).

    Use as a context manager: on a clean exit the temporary file is renamed to ``output``; on an exception it is
    deleted and ``output`` is left as it was.

    Args:
        output: the MP4 to write.
        fps: frame rate.
        audio_from: a clip whose first audio stream is copied (None: no audio).
        quality: x264 CRF (lower is better; 18 is near-transparent, 23 the x264 default).
        preset: x264 speed preset. Faster presets than "veryfast" save little time for larger files and
            visibly worse faces (docs/design.md, "Driving a photo with a video").
        variable_rate: stamp each frame with the time :meth:`write` is given (a variable-frame-rate clip's), on a
            :data:`VARIABLE_RATE_CLOCK` clock, instead of frame ``k`` at ``k / fps``.
    """

    def __init__(
        self,
        output: str | os.PathLike,
        fps: Fraction | float,
        audio_from: str | os.PathLike | None = None,
        quality: int = 20,
        preset: str = "veryfast",
        variable_rate: bool = False,
    ) -> None:
        self.output = Path(output)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.variable_rate = variable_rate
        self.time_base = Fraction(1, VARIABLE_RATE_CLOCK) if variable_rate else 1 / self.fps
        self._last_pts = -1
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.quality = quality
        self.preset = preset
        self.frames = 0
        self._container: Any = None
        self._stream: Any = None
        self._audio: _AudioCopy | None = None
        self._temporary: Path | None = None
        self._planes = _YUVPlanes()

    def __enter__(self) -> "ClipWriter":
        import av

        # FFmpeg creates the file itself (ordinary permissions, unlike mkstemp's 0600); the random part keeps two
        # writers of the same output apart
        self._temporary = self.output.with_name(f".{self.output.name}.{secrets.token_hex(6)}.part")
        self._container = av.open(str(self._temporary), mode="w", format="mp4", options={"movflags": "+faststart"})
        self._container.metadata.update(description=description(VIDEO_EDIT), comment=description(VIDEO_EDIT))
        try:
            if self.audio_from is not None and _has_audio(self.audio_from):
                self._audio = _AudioCopy(self.audio_from, self._container)
        except BaseException:
            self._discard()
            raise
        return self

    def _open_video(self, width: int, height: int) -> None:
        codec = video_codec()
        stream = self._container.add_stream(codec, rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = self.time_base
        if codec == "libx264":
            stream.options = {"crf": str(self.quality), "preset": self.preset}
        else:
            stream.bit_rate = max(1_000_000, width * height * 4)
        self._stream = stream

    def write(
        self, frame: np.ndarray, changed: tuple[int, int, int, int] | None = None, at: float | None = None
    ) -> None:
        """Append one (H, W, 3) uint8 RGB frame; every frame must have the first one's size.

        ``changed``: the (x0, y0, x1, y1) box outside which this frame equals the previous one (a photo driven by
        a clip changes only around the face); only that box is converted to YUV (a third of the time on a 1-MP
        photo whose face is 500 px wide). ``at``: its time in seconds from the first frame (used where the writer
        has a ``variable_rate``; else frame ``k`` is at ``k / fps``)."""
        import av

        frame = np.ascontiguousarray(frame)
        size = (frame.shape[1] + frame.shape[1] % 2, frame.shape[0] + frame.shape[0] % 2)
        if self._stream is None:
            self._open_video(*size)
        elif size != (self._stream.width, self._stream.height):
            raise ValueError(
                f"frame {self.frames} is {frame.shape[1]}x{frame.shape[0]}, the clip {self._stream.width}x{self._stream.height}"
            )
        seconds = at if self.variable_rate and at is not None else self.frames / float(self.fps)
        if self._audio is not None:
            self._audio.mux_until(seconds)
        self._planes.update(frame, changed if self.frames else None)
        video_frame = av.VideoFrame.from_ndarray(self._planes.buffer, format="yuv420p")
        self._last_pts = max(round(seconds / self.time_base), self._last_pts + 1)  # a damaged clip's repeated times
        video_frame.pts = self._last_pts
        video_frame.time_base = self._stream.codec_context.time_base
        self._container.mux(self._stream.encode(video_frame))
        self.frames += 1

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            self._discard()
            return
        try:
            if self._stream is None:
                raise VideoError("no frame was written")
            self._container.mux(self._stream.encode(None))
            if self._audio is not None:
                self._audio.finish()
            self._container.close()
            os.replace(self._temporary, self.output)
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        for closing in (self._audio, self._container):
            try:
                if closing is not None:
                    closing.close()
            except Exception:  # noqa: BLE001 -- the original error matters, not this one
                logger.debug("error while closing a discarded clip", exc_info=True)
        if self._temporary is not None:
            self._temporary.unlink(missing_ok=True)


class BackgroundEncoder:
    """Feeds a :class:`ClipWriter` from a thread, so encoding overlaps the rendering of the next frames (x264 and
    the muxer release the GIL). An encoding error is raised by the next :meth:`write` or on leaving the block.

    Args:
        writer: an open ClipWriter (entered); only this thread touches it until the block ends.
        seconds: optional dict; the time spent encoding is added under "encode".
        depth: frames that may wait for the encoder.
    """

    def __init__(self, writer: ClipWriter, seconds: dict[str, float] | None = None, depth: int = 4) -> None:
        self.writer = writer
        self.seconds = seconds if seconds is not None else {}
        self._frames: queue.Queue[tuple[np.ndarray, tuple[int, int, int, int] | None, float | None] | None] = (
            queue.Queue(maxsize=depth)
        )
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="clip-encoder", daemon=True)

    def _run(self) -> None:
        while (item := self._frames.get()) is not None:
            if self._error is not None:
                continue  # drain the queue so write() never blocks
            clock = time.perf_counter()
            try:
                self.writer.write(*item)
            except BaseException as error:  # noqa: BLE001 -- handed to the caller's thread
                self._error = error
            self.seconds["encode"] = self.seconds.get("encode", 0.0) + time.perf_counter() - clock

    def write(
        self, frame: np.ndarray, changed: tuple[int, int, int, int] | None = None, at: float | None = None
    ) -> None:
        """Queue one frame (blocks while ``depth`` frames wait); ``changed`` and ``at`` as for
        :meth:`ClipWriter.write`."""
        if self._error is not None:
            raise self._error
        self._frames.put((frame, changed, at))

    def __enter__(self) -> "BackgroundEncoder":
        self._thread.start()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._frames.put(None)
        self._thread.join()
        if kind is None and self._error is not None:
            raise self._error


def _has_audio(path: Path) -> bool:
    with open_clip(path) as container:
        return bool(container.streams.audio)
