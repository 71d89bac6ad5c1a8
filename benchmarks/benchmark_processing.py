"""Per-stage latency of face processing on a ~1-megapixel photo (CPU, 2 threads).

Stages: decode (JPEG bytes -> RGB array), detect (HOG detector on a downscaled grey copy + 68 landmarks at
full resolution), align (similarity warp to the crop), normalise (crop -> tensor -> crop), paste-back
(the pipeline's: the photo warped by the crop's flow and the face blended in through its mask, at the
photo's resolution; ``compositing.PhotoWarper``) and encode (result -> JPEG). Prints a markdown table of
medians over ``--runs`` runs; the network stage is measured separately (benchmarks for the generator).

    python benchmarks/benchmark_processing.py --runs 30
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time
from typing import Callable

import numpy as np
import torch
from PIL import Image
from skimage import data

from aipgan_hf.compositing import PhotoWarper
from aipgan_hf.faces import FaceProcessor, face_mask, image_to_tensor, load_image, tensor_to_image
from aipgan_hf.motion import identity_grid


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per stage (median reported)")
    parser.add_argument("--size", type=int, default=1024, help="side of the square test photo")
    parser.add_argument("--resolution", type=int, default=128, help="aligned crop side")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return parser.parse_args()


def test_photo(size: int) -> bytes:
    """The astronaut portrait (public domain) upscaled to ``size`` x ``size``, as a quality-95 JPEG."""
    photo = Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def time_stage(function: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process-CPU milliseconds of ``runs`` calls, after two warm-up calls.

    On a shared machine the CPU time of these single-threaded stages estimates their unloaded latency.
    """
    for _ in range(2):
        function()
    wall, cpu = [], []
    for _ in range(runs):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append((time.perf_counter() - start_wall) * 1000.0)
        cpu.append((time.process_time() - start_cpu) * 1000.0)
    return wall, cpu


def encode_jpeg(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    jpeg = test_photo(args.size)
    processor = FaceProcessor(resolution=args.resolution)

    photo = load_image(jpeg)
    face = processor.find_faces(photo)[0]
    aligned = processor.align_with_landmarks(photo, face.landmarks, face.box)
    generated = 255 - aligned.crop  # stands in for the network's output
    flow, alpha = identity_grid(1, args.resolution)[0], face_mask(args.resolution)

    stages: dict[str, Callable[[], object]] = {
        "decode (JPEG -> RGB)": lambda: load_image(jpeg),
        "detect (HOG + 68 landmarks)": lambda: processor.find_faces(photo),
        "align (warp to crop)": lambda: processor.align_with_landmarks(photo, face.landmarks, face.box),
        "normalise (to/from [-1, 1])": lambda: tensor_to_image(image_to_tensor(aligned.crop)[None])[0],
        "paste-back (photo warp + blend)": lambda: PhotoWarper(photo, aligned.matrix, args.resolution).composite(
            flow, generated, alpha
        ),
        "encode (RGB -> JPEG)": lambda: encode_jpeg(photo),
    }
    results = {name: time_stage(function, args.runs) for name, function in stages.items()}

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Face processing, {args.size}x{args.size} photo ({args.size * args.size / 1e6:.2f} MP), "
        f"face box {face.size:.0f} px, crop {args.resolution} px, {args.runs} runs, "
        f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs "
        f"({platform.machine()}), load average {load:.1f}"
    )
    print()
    print("| stage | median ms | p90 ms | median CPU ms |")
    print("|---|---:|---:|---:|")
    total_wall = total_cpu = 0.0
    for name, (wall, cpu) in results.items():
        total_wall += statistics.median(wall)
        total_cpu += statistics.median(cpu)
        p90 = statistics.quantiles(wall, n=10)[-1]
        print(f"| {name} | {statistics.median(wall):.1f} | {p90:.1f} | {statistics.median(cpu):.1f} |")
    print(f"| **total (sum of medians)** | **{total_wall:.1f}** | | **{total_cpu:.1f}** |")


if __name__ == "__main__":
    main()
