"""train.py's command line: its flags in groups, and the checks and defaults :func:`parse_args` applies."""

from __future__ import annotations

import argparse
import dataclasses

from aipgan_hf.configuration import AIPGANConfig
from aipgan_hf.losses import LossWeights

DEFAULT_LEARNING_RATE = 2e-4
DEFAULT_MOUTH_CROP = 48


def parse_args(argv: list[str] | None = None, description: str | None = None) -> argparse.Namespace:
    """train.py's options (``description``: its ``--help`` text), with the loss weights gathered in
    ``args.loss_weights`` and the learning rates' defaults filled in (``args.given_rates``: which were given)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_model_arguments(parser)
    _add_optimiser_arguments(parser)
    _add_bookkeeping_arguments(parser)
    _add_pair_arguments(parser)
    _add_training_arguments(parser)
    args = parser.parse_args(argv)
    # the one place flags become weights; the flat `*_weight` values stay on args for the trackers' config
    args.loss_weights = LossWeights(
        **{w.name: getattr(args, f"{w.name}_weight") for w in dataclasses.fields(LossWeights)}
    )
    if args.mouth_crop_size is not None and not (args.mouth_crop_size == 0 or args.mouth_crop_size >= 16):
        parser.error(f"--mouth_crop_size must be 0 (no mouth critic) or at least 16, got {args.mouth_crop_size}")
    if args.checkpointing_steps < 1:
        parser.error(
            f"--checkpointing_steps must be at least 1 (steps between checkpoints), got {args.checkpointing_steps}"
        )
    args.given_rates = (args.learning_rate is not None, args.discriminator_learning_rate is not None)
    args.learning_rate = DEFAULT_LEARNING_RATE if args.learning_rate is None else args.learning_rate
    if args.discriminator_learning_rate is None:
        args.discriminator_learning_rate = args.learning_rate
    return args


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The data, the output folder, the generator's size and where its weights start."""
    parser.add_argument(
        "--dataset_name", required=True, help="local folder from prepare_dataset.py or a Hub dataset id"
    )
    parser.add_argument("--output_dir", default="runs/aipgan")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--base_channels", type=int, default=AIPGANConfig.base_channels)
    parser.add_argument(
        "--init_from",
        default=None,
        help="starts a new run from weights: a pipeline folder (its generator), or a training checkpoint "
        "folder (its generator, EMA generator and discriminator; critics it lacks start fresh)",
    )
    parser.add_argument(
        "--mouth_crop_size",
        type=int,
        default=None,
        help=f"side of the mouth critic's window, 0 (no mouth critic) or >= 16; default {DEFAULT_MOUTH_CROP}, "
        "or what the checkpoint resumed was trained with",
    )


def _add_optimiser_arguments(parser: argparse.ArgumentParser) -> None:
    """Batch, steps, learning rates and the optimiser's settings."""
    parser.add_argument("--train_batch_size", type=int, default=16, help="per device")
    parser.add_argument("--max_train_steps", type=int, default=10000)
    parser.add_argument(
        "--learning_rate",
        type=float,
        default=None,
        help=f"default {DEFAULT_LEARNING_RATE}; when resuming, the checkpoint's unless given",
    )
    parser.add_argument(
        "--discriminator_learning_rate",
        type=float,
        default=None,
        help="default: --learning_rate; when resuming, the checkpoint's unless given",
    )
    parser.add_argument("--adam_beta1", type=float, default=0.5)
    parser.add_argument("--adam_beta2", type=float, default=0.999)
    parser.add_argument("--max_grad_norm", type=float, default=1.0)
    parser.add_argument("--gradient_accumulation_steps", type=int, default=1)
    parser.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default=None)


def _add_bookkeeping_arguments(parser: argparse.ArgumentParser) -> None:
    """Checkpoints, resuming, validation, logging, seeding and data loading."""
    parser.add_argument("--checkpointing_steps", type=int, default=500)
    parser.add_argument("--checkpoints_total_limit", type=int, default=3)
    parser.add_argument("--resume_from_checkpoint", default=None, help='a checkpoint folder, or "latest"')
    parser.add_argument("--validation_steps", type=int, default=500)
    parser.add_argument("--num_validation_pairs", type=int, default=8)
    parser.add_argument("--report_to", default="tensorboard", help='"tensorboard", "none", ...')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataloader_num_workers", type=int, default=0)


def _add_pair_arguments(parser: argparse.ArgumentParser) -> None:
    """The shape model and how training pairs are drawn and weighted."""
    parser.add_argument("--shape_model", required=True, help="shape_model.safetensors from training/fit_shape_model.py")
    parser.add_argument(
        "--cross_person_prob",
        type=float,
        default=0.2,
        help="pairs driven by another person's expression (no ground truth: adversarial + consistency losses)",
    )
    parser.add_argument(
        "--session_prob", type=float, default=0.7, help="share of same-person pairs from one clip / session"
    )
    parser.add_argument(
        "--colour_jitter", type=int, default=1, help="1: one colour jitter on target and ground truth alike"
    )
    parser.add_argument(
        "--expression_region_boost",
        type=float,
        default=4.0,
        help="extra reconstruction weight around the driving lips and eyes (what the warp cannot do)",
    )


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """EMA, warm-up, sample limits, diagnostics and one flag per loss weight."""
    parser.add_argument("--ema_decay", type=float, default=0.999)
    parser.add_argument("--adversarial_start_step", type=int, default=500, help="steps of reconstruction-only warm-up")
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument(
        "--sample_log", default=None, help="diagnostics: append each rank's (step, rows) to <this>.rank<N>.jsonl"
    )
    for weight in dataclasses.fields(LossWeights):
        parser.add_argument(f"--{weight.name}_weight", type=float, default=weight.default)
