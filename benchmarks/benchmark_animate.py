#!/usr/bin/env python
"""Speed and stability of driving a photo with a video (``aipgan animate``), on 2 threads.

    python benchmarks/benchmark_animate.py                      # bundled checkpoint, 256x256 clip onto a 1-MP photo
    python benchmarks/benchmark_animate.py --frames 150 --json animate.json
    python benchmarks/benchmark_animate.py --driving ../shared/data/videos/styletalk/video__nice_clip1.mp4

Figures:
- **network only**: ``pipe.render(prepared, landmarks, paste_back=False)`` per frame (flow + decode of the face);
- **end to end**: :func:`aipgan_hf.video.animate` on the clip, frames per second of the whole call but the one-off
  target preparation (decode, landmarks, render, paste-back into the 1-MP photo, H.264 encode in a thread that
  overlaps rendering), with the time split by stage;
- **jitter**: frame-to-frame RMS motion of the filtered driving landmarks on a still face (a clip of one repeated
  photo plus simulated detector noise: each frame re-encoded, so dlib sees slightly different pixels), with and
  without smoothing; lower is better;
- **lag**: on a synthetic fast mouth opening (a landmark step ramped over 3 frames plus noise of the size the
  still clip shows), frames until the filtered signal is within 10 % of the new value.

The driving clip is made from skimage's astronaut (public domain): a 256x256 window around the face that moves
a few pixels a frame; the 1-MP target is matplotlib's Grace Hopper scaled to 1,154x985.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from aipgan_hf.compositing.mouth import MOUTH_SOURCES  # noqa: E402
from aipgan_hf.pipeline import AIPGANPipeline  # noqa: E402
from aipgan_hf.video import animate  # noqa: E402
from aipgan_hf.video.clips import probe_clip  # noqa: E402
from aipgan_hf.video.landmarks import track_clip  # noqa: E402
from aipgan_hf.video.tracking import landmark_filter  # noqa: E402
from benchmarks.benchmark import report_json  # noqa: E402

ASTRONAUT_FACE_WINDOW = (20, 90)  # (top, left) of a 256x256 window of skimage's astronaut around her face


def astronaut_frames(
    count: int, size: int = 256, amplitude: int = 6, noise: float = 0.0, seed: int = 0
) -> list[np.ndarray]:
    """``count`` (size, size, 3) frames: a window around the astronaut's face, drifting by up to ``amplitude`` px,
    with Gaussian pixel noise of ``noise`` grey levels (a camera's, so that a still face still jitters)."""
    photo = skimage.data.astronaut()
    rng = np.random.default_rng(seed)
    top, left = ASTRONAUT_FACE_WINDOW
    frames = []
    for index in range(count):
        dx = round(amplitude * np.sin(2 * np.pi * index / 24))
        dy = round(amplitude / 2 * np.cos(2 * np.pi * index / 24))
        window = photo[top + dy : top + dy + 256, left + dx : left + dx + 256]
        if size != 256:
            window = np.asarray(Image.fromarray(window).resize((size, size)))
        if noise:
            window = np.clip(window + rng.normal(0, noise, window.shape), 0, 255).astype(np.uint8)
        frames.append(window)
    return frames


def write_clip(
    path: Path,
    frames: list[np.ndarray],
    fps: int | Fraction = 25,
    audio_hz: float | None = 440.0,
    container: str = "mp4",
    audio_codec: str = "aac",
    sample_rate: int = 16000,
) -> Path:
    """Write frames (and a sine tone as long as the video) with PyAV; ``frames=[]`` writes an audio-only file."""
    import av

    with av.open(str(path), "w", format=container) as output:
        video = None
        if frames:
            video = output.add_stream("libx264", rate=fps)
            video.height, video.width = frames[0].shape[:2]
            video.pix_fmt = "yuv420p"
        audio = None
        if audio_hz is not None:
            audio = output.add_stream(audio_codec, rate=sample_rate)
            audio.layout = "mono"
        seconds = len(frames) / float(fps) if frames else 1.0
        for index, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts, picture.time_base = index, 1 / Fraction(fps)
            output.mux(video.encode(picture))
        if audio is not None:
            samples = 0.3 * np.sin(2 * np.pi * audio_hz * np.arange(round(seconds * sample_rate)) / sample_rate)
            planar = audio_codec == "aac"
            data = samples.astype(np.float32) if planar else (samples * 32767).astype(np.int16)
            for start in range(0, len(data), 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(data[None, start : start + 1024]),
                    format="fltp" if planar else "s16",
                    layout="mono",
                )
                chunk.sample_rate, chunk.pts, chunk.time_base = sample_rate, start, Fraction(1, sample_rate)
                output.mux(audio.encode(chunk))
            output.mux(audio.encode(None))
        if video is not None:
            output.mux(video.encode(None))
    return path


def one_megapixel_target(folder: Path) -> Path:
    """Grace Hopper (public domain) scaled to about 1 MP, as a PNG."""
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        photo = Image.open(handle).convert("RGB")
    scale = (1_000_000 / (photo.width * photo.height)) ** 0.5
    path = folder / "target_1mp.png"
    photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS).save(path)
    return path


def frame_jitter(landmarks: np.ndarray) -> float:
    """RMS frame-to-frame landmark motion (pixels) of an (N, 68, 2) sequence."""
    steps = np.diff(landmarks, axis=0)
    return float(np.sqrt((steps**2).sum(axis=-1).mean()))


def step_lag(
    smoothing: float,
    fps: float = 30.0,
    noise: float = 0.3,
    jump: float = 12.0,
    ramp: int = 3,
    seed: int = 0,
    scale: float = 128.0,
) -> dict[str, float]:
    """Lag (frames) of the landmark filter on a fast mouth opening: a ``jump``-pixel step of the lower-lip points
    ramped over ``ramp`` frames, with Gaussian noise of ``noise`` px; the lag is the frames after the ramp ends until
    the filtered value is within 10 % of the jump for good."""
    rng = np.random.default_rng(seed)
    frames, start = 90, 45
    level = np.clip((np.arange(frames) - start) / ramp, 0, 1) * jump  # (frames,)
    signal = level[:, None] + rng.normal(0, noise, (frames, 20))  # 20 independent coordinates
    smoother = landmark_filter(smoothing, scale)
    filtered = signal if smoother is None else np.stack([smoother(row, k / fps) for k, row in enumerate(signal)])
    error = np.abs(filtered.mean(axis=1) - level)
    settled = np.flatnonzero(error[start:] > 0.1 * jump)
    lag = max(0, int(settled[-1]) + 1 - ramp) if len(settled) else 0
    still = filtered[:start]
    return {"lag_frames": lag, "still_jitter_px": round(float(np.sqrt((np.diff(still, axis=0) ** 2).mean())), 4)}


def measure(args: argparse.Namespace, work: Path) -> dict:
    torch.set_num_threads(args.threads)
    pipe = AIPGANPipeline.from_pretrained(args.checkpoint)
    target = one_megapixel_target(work)
    driving = (
        Path(args.driving) if args.driving else write_clip(work / "driving.mp4", astronaut_frames(args.frames), fps=30)
    )
    figures: dict = {
        "threads": args.threads,
        "cpu_cores": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "driving": str(driving.name),
        "target_size": Image.open(target).size,
    }

    prepared = pipe.prepare(target)
    landmarks = np.asarray(prepared.landmarks, dtype=np.float32)
    for _ in range(3):
        pipe.render(prepared, landmarks, paste_back=False)
    start = time.perf_counter()
    runs = max(10, args.frames // 2)
    for index in range(runs):
        moved = landmarks.copy()
        moved[57:60, 1] += 3.0 * np.sin(index)  # a little motion so nothing is cached
        pipe.render(prepared, moved, paste_back=False)
    figures["network_only_fps"] = round(runs / (time.perf_counter() - start), 1)

    result = animate(pipe, driving, target, output=work / "out.mp4", mouth=args.mouth, photo_texture=args.photo_texture)
    figures["mouth"], figures["photo_texture"] = args.mouth, args.photo_texture
    per_frame = result.seconds["total"] - result.seconds["prepare"]  # the target is prepared once per clip
    figures["end_to_end_fps"] = round(result.frames / per_frame, 1)
    figures["end_to_end_ms_per_frame"] = {
        stage: round(1000 * value / result.frames, 2)
        for stage, value in result.seconds.items()
        if stage not in ("prepare", "total")
    }  # compose and encode overlap render (threads)
    figures["prepare_target_s"] = round(result.seconds["prepare"], 3)

    still = write_clip(work / "still.mp4", astronaut_frames(60, amplitude=0, noise=4.0), fps=30, audio_hz=None)
    info = probe_clip(still)
    figures["still_face_jitter_px"] = {
        f"smoothing={value:g}": round(frame_jitter(track_clip(pipe.processor, info, smoothing=value).landmarks), 4)
        for value in (0.0, 1.0, 2.0)
    }
    figures["mouth_opening_lag"] = {f"smoothing={value:g}": step_lag(value) for value in (0.0, 1.0, 2.0)}
    return figures


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--checkpoint", default=None, help="pipeline folder or Hub id (default: the bundled checkpoint)"
    )
    parser.add_argument("--driving", default=None, help="a driving clip instead of the synthetic 256x256 one")
    parser.add_argument("--frames", type=int, default=90, help="frames of the synthetic driving clip")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument(
        "--mouth",
        default="source",
        choices=MOUTH_SOURCES,
        help="animate(mouth=): source (default) decodes the clip again for its mouths' insides",
    )
    parser.add_argument(
        "--photo-texture",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="animate(photo_texture=): the photo's fine texture under the repainted face (default)",
    )
    parser.add_argument("--json", default=None, help="write the figures here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aipgan-animate-") as tmp:
        figures = measure(args, Path(tmp))
    report_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
