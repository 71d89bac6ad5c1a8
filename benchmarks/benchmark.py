#!/usr/bin/env python
"""CPU benchmark of one transfer: model size, FLOPs, network latency and end-to-end latency.

    python benchmarks/benchmark.py                      # 2 threads, 128 px, bundled checkpoint
    python benchmarks/benchmark.py --threads 2 --runs 50 --json out.json

Network time is one transfer on aligned 128-px crops at batch 1, motion included: the shape model's
retargeting, the thin-plate flow and the generator; the mouth fill (``compositing.mouth``: where the driving mouth
opens, its inside from a photo) is timed apart, on crops. End to end is ``AIPGANPipeline.__call__`` from two
~1-megapixel photo arrays (decode, detect and align both, motion, network, mouth fill, full-resolution warp and
paste-back), both ways: Hopper's closed mouth onto the astronaut, and the astronaut's open smile onto Hopper
(the astronaut's teeth read at her photo's resolution);
benchmarks/benchmark_processing.py splits the face processing per stage. Medians over ``--runs`` after warm-up.
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
from PIL import Image
from skimage import data
from torch.utils.flop_counter import FlopCounterMode

from aipgan_hf import AIPGANDiscriminator
from aipgan_hf.compositing.mouth import plan_mouth
from aipgan_hf.faces import image_to_tensor
from aipgan_hf.motion import landmark_flow
from aipgan_hf.pipeline import AIPGANPipeline


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


def report_json(figures: dict, path: str | None) -> None:
    """Print the figures as JSON and, when ``path`` is given, also write them there."""
    text = json.dumps(figures, indent=2)
    print(text)
    if path:
        Path(path).write_text(text + "\n")


def sample_photo(size: int = 1024, source: bool = False) -> np.ndarray:
    """A ~1-megapixel portrait upscaled to ``size`` x ``size``: skimage's astronaut, or (``source``)
    matplotlib's Grace Hopper (both public domain)."""
    import matplotlib.cbook  # the app extra

    if source:
        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
            image = Image.open(file).convert("RGB")
    else:
        image = Image.fromarray(data.astronaut())
    return np.asarray(image.resize((size, size), Image.BICUBIC))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="pipeline folder (default: the bundled checkpoint)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", default=None, help="also write the figures here")
    return parser.parse_args(argv)


def time_network(pipe: AIPGANPipeline, target_face, source_face, runs: int) -> dict[str, float]:
    """FLOPs and median times (ms) on aligned crops: the motion, the generator without and with the intrinsic
    image (the astronaut driven by Hopper), and the mouth fill (Hopper driven by the astronaut's open smile)."""
    generator, resolution = pipe.generator, pipe.resolution
    target = image_to_tensor(target_face.crop)[None]
    target_landmarks = torch.as_tensor(target_face.crop_landmarks, dtype=torch.float32)[None]

    def motion():
        driving = pipe.shape_model.drive(target_face.crop_landmarks, source_face.crop_landmarks)
        driving = torch.as_tensor(driving, dtype=torch.float32)[None]
        return driving, landmark_flow(target_landmarks, driving, resolution)

    def transfer(return_intrinsic: bool = False):
        driving, flow = motion()
        return generator(target, target_landmarks, driving, flow, return_intrinsic=return_intrinsic)

    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            transfer()
        transfer_flops = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            transfer(return_intrinsic=True)
        full_flops = counter.get_total_flops()
        motion_ms, _ = median_ms(motion, runs)
        network, network_p90 = median_ms(transfer, runs)
        network_full, _ = median_ms(lambda: transfer(return_intrinsic=True), runs)
        # the mouth fill on crops, Hopper driven by the astronaut's open smile (its inside read from her crop)
        hopper = image_to_tensor(source_face.crop)[None]
        hopper_landmarks = torch.as_tensor(source_face.crop_landmarks, dtype=torch.float32)[None]
        driving = torch.as_tensor(
            pipe.shape_model.drive(source_face.crop_landmarks, target_face.crop_landmarks), dtype=torch.float32
        )[None]
        output = generator(
            hopper,
            hopper_landmarks,
            driving,
            landmark_flow(hopper_landmarks, driving, resolution),
            return_intrinsic=False,
        )

        def fill():
            plan = plan_mouth(
                hopper_landmarks, driving, resolution, source_landmarks=target_landmarks, target=hopper, source=target
            )
            return plan.apply(output.image, output.warped_target, target)

        mouth_fill, _ = median_ms(fill, runs)
    return {
        "transfer_flops": transfer_flops,
        "full_flops": full_flops,
        "motion_ms": motion_ms,
        "network": network,
        "network_p90": network_p90,
        "network_full": network_full,
        "mouth_fill": mouth_fill,
    }


def print_table(figures: dict) -> None:
    """The figures as a Markdown table."""
    print("| measure | value |\n|---|---|")
    for key, value in figures.items():
        print(f"| {key} | {value:.3f} |" if isinstance(value, float) else f"| {key} | {value} |")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)

    pipe = AIPGANPipeline.from_pretrained(args.checkpoint)
    generator = pipe.generator
    resolution = pipe.resolution
    discriminator = AIPGANDiscriminator.from_aipgan_config(
        generator.aipgan_config, mouth_crop_size=48
    )  # as training builds it
    target_photo, source_photo = sample_photo(), sample_photo(source=True)
    target_face, source_face = pipe.processor.align(target_photo), pipe.processor.align(source_photo)
    timings = time_network(pipe, target_face, source_face, args.runs)

    end_to_end, end_to_end_p90 = median_ms(
        lambda: pipe(target_photo, source=source_photo), max(20, args.runs // 2), warmup=2
    )
    with_teeth, with_teeth_p90 = median_ms(
        lambda: pipe(source_photo, source=target_photo), max(20, args.runs // 2), warmup=2
    )

    figures = {
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads",
        "resolution": resolution,
        "generator_parameters": sum(p.numel() for p in generator.parameters()),
        "discriminator_parameters": sum(p.numel() for p in discriminator.parameters()),
        "generator_fp16_megabytes": sum(p.numel() for p in generator.parameters()) * 2 / 1e6,
        "gflops_per_transfer": timings["transfer_flops"] / 1e9,
        "gflops_with_intrinsic_image": timings["full_flops"] / 1e9,
        "motion_ms_median (shape model + flow, inside network)": timings["motion_ms"],
        "network_ms_median": timings["network"],
        "network_ms_p90": timings["network_p90"],
        "network_with_intrinsic_ms_median": timings["network_full"],
        "end_to_end_ms_median_1mp": end_to_end,
        "end_to_end_ms_p90_1mp": end_to_end_p90,
        "mouth_fill_ms_median (crops, the source's teeth)": timings["mouth_fill"],
        "end_to_end_ms_median_1mp_source_teeth (astronaut -> Hopper)": with_teeth,
        "end_to_end_ms_p90_1mp_source_teeth": with_teeth_p90,
        "runs": args.runs,
    }
    print_table(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
