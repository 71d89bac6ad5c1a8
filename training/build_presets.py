#!/usr/bin/env python
"""Measure preset expression directions for `AIPGANPipeline.synthesize` and store them with a checkpoint.

    python training/build_presets.py --dataset_name data_build/aipgan-faces-128 --checkpoint aipgan_hf/checkpoints/default

For each expression label of the dataset's train split (happiness, surprise, anger, sadness, fear, disgust,
neutral), the mean expression-encoder features over up to ``--max_per_label`` crops, per encoder level. A
preset applies ``mean[label] - mean[neutral]`` to a target's own expression features, so "synthesis" needs
no second photo. Written as ``expression_presets.safetensors`` in the checkpoint folder.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipgan_hf.pipeline import PRESETS_NAME, load_generator  # noqa: E402
from aipgan_hf.processing import image_to_tensor, load_image  # noqa: E402

logger = logging.getLogger(__name__)
LABELS = ("neutral", "happiness", "surprise", "anger", "sadness", "fear", "disgust")


def preset_features(
    generator, split, labels=LABELS, max_per_label: int = 400, min_per_label: int = 20, batch_size: int = 32
) -> dict[str, torch.Tensor]:
    """Mean expression features per label and level: keys ``"<label>.<level>"``, values (C, H, W). Labels with
    fewer than ``min_per_label`` images are skipped: a mean of a handful of faces is mostly their identity."""
    resolution = generator.config.resolution
    expressions = split["expression"]
    presets = {}
    for label in labels:
        rows = [i for i, e in enumerate(expressions) if e == label][:max_per_label]
        if len(rows) < min_per_label:
            logger.warning(f"only {len(rows)} '{label}' images in the split (< {min_per_label}); preset skipped")
            continue
        sums = None
        for start in range(0, len(rows), batch_size):
            crops = [load_image(split[r]["image"]) for r in rows[start : start + batch_size]]
            batch = torch.stack([image_to_tensor(c) for c in crops])  # (b, 3, R, R)
            if batch.shape[-1] != resolution:
                batch = torch.nn.functional.interpolate(batch, size=(resolution, resolution), mode="bilinear", antialias=True)
            with torch.inference_mode():
                features = generator.encode_expression(batch).features
            level_sums = [f.sum(0) for f in features]
            sums = level_sums if sums is None else [a + b for a, b in zip(sums, level_sums)]
        for level, total in enumerate(sums):
            presets[f"{label}.{level}"] = (total / len(rows)).contiguous()
        logger.info(f"{label}: {len(rows)} images")
    if "neutral.0" not in presets:
        raise SystemExit("the split has no neutral images: presets need a neutral reference")
    return presets


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset_name", required=True)
    parser.add_argument("--checkpoint", required=True, help="pipeline folder; the presets are written into it")
    parser.add_argument("--split", default="train")
    parser.add_argument("--max_per_label", type=int, default=400)
    parser.add_argument("--min_per_label", type=int, default=20)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    import datasets

    split = datasets.load_dataset(args.dataset_name, split=args.split)
    presets = preset_features(load_generator(args.checkpoint), split, max_per_label=args.max_per_label, min_per_label=args.min_per_label)
    path = Path(args.checkpoint) / PRESETS_NAME
    save_file({k: v.half() for k, v in presets.items()}, str(path))
    logger.info(f"wrote {path}: {sorted({k.split('.')[0] for k in presets})}")
    return path


if __name__ == "__main__":
    main()
