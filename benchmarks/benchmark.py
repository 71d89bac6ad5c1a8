#!/usr/bin/env python
"""CPU benchmark of one transfer: model size, FLOPs, network latency and end-to-end latency.

    python benchmarks/benchmark.py                      # 2 threads, 128 px, bundled checkpoint
    python benchmarks/benchmark.py --threads 2 --runs 50 --json out.json

Network time is the generator alone on aligned 128-px crops (batch 1); end to end is
``AIPGANPipeline.__call__`` on a ~1-megapixel photo (decode, detect, align, network, paste-back), with
the per-stage split from benchmarks/benchmark_processing.py. Medians over ``--runs`` after warm-up.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode


def median_ms(fn, runs: int, warmup: int = 5) -> tuple[float, float]:
    """Median and 90th percentile wall time of ``fn()`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def sample_photo(size: int = 1024) -> np.ndarray:
    """A ~1-megapixel portrait: skimage's astronaut (public domain) upscaled to ``size`` x ``size``."""
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((size, size), Image.BICUBIC))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="pipeline folder (default: the bundled checkpoint)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from aipgan_hf import AIPGANDiscriminator
    from aipgan_hf.pipeline import AIPGANPipeline

    pipe = AIPGANPipeline.from_pretrained(args.checkpoint)
    generator = pipe.generator
    resolution = pipe.resolution
    discriminator = AIPGANDiscriminator.from_aipgan_config(generator.aipgan_config)
    source = torch.rand(1, 3, resolution, resolution) * 2 - 1
    target = torch.rand(1, 3, resolution, resolution) * 2 - 1

    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            generator(source, target, return_intrinsic=False)
        transfer_flops = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            generator(source, target)
        full_flops = counter.get_total_flops()
        network, network_p90 = median_ms(lambda: generator(source, target, return_intrinsic=False), args.runs)
        network_full, _ = median_ms(lambda: generator(source, target), args.runs)

    photo = sample_photo()
    end_to_end, end_to_end_p90 = median_ms(lambda: pipe(source=photo, target=photo), max(20, args.runs // 2), warmup=2)

    figures = {
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads",
        "resolution": resolution,
        "generator_parameters": sum(p.numel() for p in generator.parameters()),
        "discriminator_parameters": sum(p.numel() for p in discriminator.parameters()),
        "generator_fp16_megabytes": sum(p.numel() for p in generator.parameters()) * 2 / 1e6,
        "gflops_per_transfer": transfer_flops / 1e9,
        "gflops_with_intrinsic_image": full_flops / 1e9,
        "network_ms_median": network,
        "network_ms_p90": network_p90,
        "network_with_intrinsic_ms_median": network_full,
        "end_to_end_ms_median_1mp": end_to_end,
        "end_to_end_ms_p90_1mp": end_to_end_p90,
        "runs": args.runs,
    }
    print("| measure | value |\n|---|---|")
    for key, value in figures.items():
        print(f"| {key} | {value:.3f} |" if isinstance(value, float) else f"| {key} | {value} |")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
