#!/usr/bin/env python
"""Batch throughput of the generator: GPU (bf16, channels_last, torch.compile) and CPU (2 threads).

    python benchmarks/benchmark_gpu.py                          # bundled checkpoint, H100 peak 989 TFLOPS
    python benchmarks/benchmark_gpu.py --peak_tflops 989 --batch_size 256 --cpu_batch_size 32 --json gpu.json

Throughput is aligned-crop transfers per second through ``AIPGANGenerator.forward`` (no detection, no
intrinsic image), the work ``aipgan_hf.driving.drive_crops`` does on a dataset of crops. FLOPs per
transfer are counted once with ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add is 2 FLOPs);
the share of peak is achieved FLOP/s over ``--peak_tflops`` (dense bf16 tensor-core peak; H100 SXM: 989).

On the GPU three variants are timed and the best is reported: fp32 eager, bf16 + channels_last eager, and
bf16 + channels_last under ``torch.compile`` (skipped with a note if compilation fails). The CPU line is
fp32 eager with ``--cpu_threads`` threads. Without CUDA the CPU part still runs and the script says that
the GPU part was skipped, then exits with status 0. Latency of single transfers is in benchmark.py.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from aipgan_hf.checkpoint import BUNDLED_CHECKPOINT
from aipgan_hf.checkpoint import load_generator as load_pipeline_generator
from aipgan_hf.configuration import AIPGANConfig
from aipgan_hf.errors import CheckpointError
from aipgan_hf.modeling import AIPGANGenerator
from aipgan_hf.motion import landmark_flow


def load_generator(checkpoint: str | None) -> tuple[torch.nn.Module, str]:
    """The generator of a pipeline folder (default: bundled), or a random one of the default config if none.

    Weights do not change the timing, so a missing checkpoint only changes the description.
    """
    try:
        return load_pipeline_generator(checkpoint or BUNDLED_CHECKPOINT), str(checkpoint or "bundled checkpoint")
    except CheckpointError as error:
        if checkpoint is not None:
            raise
        print(f"note: {error}; timing a randomly initialised generator of the default config instead")
        return AIPGANGenerator(**AIPGANConfig().to_dict()).eval(), "random weights, default config"


def driven_inputs(batch_size: int, resolution: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random target crops, plausible landmarks (a grid of points in the face's middle), driving landmarks moved
    a little, and their flow: what one transfer feeds the generator. Shapes (B, 3, R, R), (B, 68, 2) x2, (B, R, R, 2)."""
    generator_inputs = torch.Generator(device="cpu").manual_seed(seed)
    target = torch.rand(batch_size, 3, resolution, resolution, generator=generator_inputs) * 2 - 1
    landmarks = (0.3 + 0.4 * torch.rand(batch_size, 68, 2, generator=generator_inputs)) * resolution
    driving = landmarks + torch.randn(batch_size, 68, 2, generator=generator_inputs) * resolution / 64
    return target, landmarks, driving, landmark_flow(landmarks, driving, resolution)


def flops_per_transfer(generator: torch.nn.Module, resolution: int) -> float:
    """FLOPs of one transfer (batch 1, fp32 on CPU; the count does not depend on device or dtype)."""
    generator = generator.to("cpu").float()
    inputs = driven_inputs(1, resolution)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        generator(*inputs, return_intrinsic=False)
    return float(counter.get_total_flops())


def transfers_per_second(
    generator: torch.nn.Module,
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    compile_model: bool = False,
    seconds: float = 3.0,
    warmup: int = 3,
) -> float:
    """Timed forward passes on random crops; returns transfers per second.

    Runs ``warmup`` passes (compilation happens there), then as many passes as fit in about ``seconds``.
    """
    resolution = int(generator.config.resolution)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = generator.to(device)
    model = model.bfloat16() if dtype == torch.bfloat16 else model.float()  # not .to(dtype): diffusers warns on it
    model = model.to(memory_format=memory_format).eval()
    forward: Callable = torch.compile(model) if compile_model else model
    target, landmarks, driving, flow = driven_inputs(batch_size, resolution)
    target = target.to(device=device, dtype=dtype, memory_format=memory_format)  # (B, 3, R, R)
    inputs = (target, landmarks.to(device), driving.to(device), flow.to(device=device, dtype=dtype))

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    with torch.no_grad():
        for _ in range(warmup):
            forward(*inputs, return_intrinsic=False)
        synchronize()
        start = time.perf_counter()
        forward(*inputs, return_intrinsic=False)
        synchronize()
        once = max(time.perf_counter() - start, 1e-6)
        repeats = max(3, int(seconds / once))
        start = time.perf_counter()
        for _ in range(repeats):
            forward(*inputs, return_intrinsic=False)
        synchronize()
        elapsed = time.perf_counter() - start
    return batch_size * repeats / elapsed


def gpu_figures(generator: torch.nn.Module, batch_size: int, flops: float, peak_tflops: float, seconds: float) -> dict:
    """Transfers/s of each GPU variant, the best one, and its share of the bf16 peak."""
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    variants = {
        "fp32 eager": dict(dtype=torch.float32),
        "bf16 channels_last eager": dict(dtype=torch.bfloat16, channels_last=True),
        "bf16 channels_last compiled": dict(dtype=torch.bfloat16, channels_last=True, compile_model=True),
    }
    figures: dict = {"gpu": torch.cuda.get_device_name(device), "gpu_batch_size": batch_size}
    results = {}
    for name, options in variants.items():
        try:
            results[name] = transfers_per_second(generator, batch_size, device, seconds=seconds, **options)
        except Exception as error:  # noqa: BLE001 -- e.g. no triton for torch.compile: report and go on
            figures[f"{name} error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
        torch.compiler.reset()
    for name, value in results.items():
        figures[f"gpu transfers/s ({name})"] = value
    if results:
        best = max(results, key=results.get)
        achieved_tflops = flops * results[best] / 1e12
        figures.update(
            {
                "gpu best variant": best,
                "gpu transfers/s (best)": results[best],
                "gpu achieved TFLOP/s (best)": achieved_tflops,
                "gpu share of bf16 peak (best)": achieved_tflops / peak_tflops,
            }
        )
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="pipeline folder (default: the bundled checkpoint)")
    parser.add_argument("--batch_size", type=int, default=256, help="GPU batch (default 256)")
    parser.add_argument("--cpu_batch_size", type=int, default=32, help="CPU batch (default 32)")
    parser.add_argument("--cpu_threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--peak_tflops", type=float, default=989.0, help="dense bf16 peak of the GPU (H100 SXM: 989)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per variant")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    generator, weights = load_generator(args.checkpoint)
    resolution = int(generator.config.resolution)
    flops = flops_per_transfer(generator, resolution)
    figures: dict = {
        "torch": torch.__version__,
        "weights": weights,
        "resolution": resolution,
        "gflops_per_transfer": flops / 1e9,
    }

    threads = torch.get_num_threads()
    torch.set_num_threads(args.cpu_threads)
    try:
        cpu = transfers_per_second(generator, args.cpu_batch_size, torch.device("cpu"), seconds=args.seconds, warmup=1)
    finally:
        torch.set_num_threads(threads)
    figures.update(
        {
            "cpu": f"{platform.processor() or platform.machine()}, {args.cpu_threads} threads",
            "cpu_batch_size": args.cpu_batch_size,
            "cpu transfers/s (fp32 eager)": cpu,
            "cpu GFLOP/s": flops * cpu / 1e9,
        }
    )

    if torch.cuda.is_available():
        figures.update(gpu_figures(generator, args.batch_size, flops, args.peak_tflops, args.seconds))
    else:
        figures["gpu"] = "none: CUDA is not available on this machine, GPU part skipped"

    print("| measure | value |\n|---|---|")
    for key, value in figures.items():
        print(f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |")
    if not torch.cuda.is_available():
        print(
            "\nCUDA is not available: only the CPU throughput was measured. Run this on a CUDA machine for the GPU figures."
        )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
