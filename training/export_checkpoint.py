#!/usr/bin/env python
"""Write a release pipeline folder (fp16 weights, mouth exemplar, model card) from a training run, or an
untrained placeholder; the package's shipped checkpoint is one, written with --output_dir aipgan_hf/checkpoints/default.

    python training/export_checkpoint.py --pipeline runs/aipgan/pipeline --output_dir runs/aipgan/export \
        --emotion_reader aipgan_hf/checkpoints/default --card_notes notes.md
    python training/export_checkpoint.py --untrained --resolution 128 --output_dir runs/untrained

Weights are stored as fp16 safetensors (``diffusion_pytorch_model.fp16.safetensors``); loading casts
them back to float32, which is what CPUs run fastest. The mouth exemplar (presets' teeth) is made here from
skimage's astronaut (NASA, public domain).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipgan_hf.checkpoint import load_generator  # noqa: E402
from aipgan_hf.compositing.exemplar import MouthExemplar  # noqa: E402
from aipgan_hf.configuration import AIPGANConfig  # noqa: E402
from aipgan_hf.faces import FaceProcessor  # noqa: E402
from aipgan_hf.model_card import default_model_card  # noqa: E402
from aipgan_hf.modeling import AIPGANGenerator  # noqa: E402
from aipgan_hf.motion import SHAPE_MODEL_NAME, ShapeModel  # noqa: E402
from aipgan_hf.motion.emotion import EmotionReader  # noqa: E402
from aipgan_hf.pipeline import AIPGANPipeline  # noqa: E402

logger = logging.getLogger(__name__)


def astronaut_exemplar(resolution: int) -> MouthExemplar:
    """The mouth exemplar: skimage's astronaut (public domain, an open smile with teeth), aligned at ``resolution``."""
    face = FaceProcessor(resolution=resolution).align(
        data.astronaut(), quick_look=False
    )  # the full search: the shipped file
    return MouthExemplar(crop=face.crop, landmarks=face.crop_landmarks)


def emotion_reader(folder: str | None, parser: argparse.ArgumentParser) -> EmotionReader | None:
    """The emotion reader of pipeline folder ``folder`` (None: none), with a warning for a pipeline written
    without one; a folder that has none is a usage error."""
    reader = EmotionReader.load(folder) if folder else None
    if folder and reader is None:
        parser.error(f"--emotion_reader {folder} has no emotion_reader/ folder (e.g. aipgan_hf/checkpoints/default)")
    if reader is None:
        logger.warning(
            "no emotion reader: this pipeline's one-photo transfers will not read the source's emotion. Pass "
            "--emotion_reader aipgan_hf/checkpoints/default to carry the shipped reader over"
        )
    return reader


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pipeline", help="a pipeline folder written by training/train.py (its EMA generator)")
    source.add_argument("--untrained", action="store_true", help="a randomly initialised generator (plumbing only)")
    parser.add_argument("--resolution", type=int, default=128, help="with --untrained")
    parser.add_argument("--shape_model", help="shape_model.safetensors to ship (default: the pipeline's own)")
    parser.add_argument(
        "--card_notes", help="markdown file appended to the model card (data, steps, hardware, figures)"
    )
    parser.add_argument(
        "--emotion_reader",
        default=None,
        help="a pipeline folder whose emotion reader to carry over, e.g. aipgan_hf/checkpoints/default (default: none)",
    )
    parser.add_argument(
        "--output_dir", required=True, help="the folder to write the pipeline's files into (the shipped one: see docs)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    reader = emotion_reader(args.emotion_reader, parser)  # read first: it may come from --output_dir itself

    if args.untrained:
        torch.manual_seed(0)
        generator = AIPGANGenerator(**AIPGANConfig(resolution=args.resolution).to_dict())
        card = default_model_card(trained=False, metadata={"tags": ["expression-transfer", "untrained"]})
    else:
        generator = load_generator(args.pipeline)
        notes = Path(args.card_notes).read_text() if args.card_notes else ""
        card = default_model_card(extra="\n" + notes)
    shape_path = args.shape_model or (Path(args.pipeline) / SHAPE_MODEL_NAME if args.pipeline else None)
    pipe = AIPGANPipeline(
        generator,
        shape_model=ShapeModel.load(shape_path) if shape_path else None,
        mouth_exemplar=astronaut_exemplar(generator.config.resolution),
        emotion_reader=reader,
    )
    folder = pipe.save_pretrained(args.output_dir, variant="fp16", model_card=card)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    logger.info(f"wrote {folder} ({size / 1e6:.2f} MB)")
    return folder


if __name__ == "__main__":
    main()
