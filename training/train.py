#!/usr/bin/env python
"""Train AIP-GAN with Accelerate on a face dataset made by training/prepare_dataset.py.

    accelerate launch training/train.py --dataset_name data_build/aipgan-faces-128 --output_dir runs/aipgan

One CPU, one GPU, many GPUs or nodes: whatever `accelerate launch` (or `torchrun`) sets up. Checkpoints are
`accelerator.save_state` folders (written atomically, rotated by --checkpoints_total_limit) that also hold a
`pipeline/` folder with the EMA generator, loadable by `AIPGANPipeline.from_pretrained`; the final EMA
pipeline is written to `<output_dir>/pipeline`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python training/train.py` from a checkout

from aipgan_hf import losses  # noqa: E402
from aipgan_hf.checkpoint import load_generator  # noqa: E402
from aipgan_hf.configuration import AIPGANConfig  # noqa: E402
from aipgan_hf.errors import AIPGANError  # noqa: E402
from aipgan_hf.evaluation.data import pick_split  # noqa: E402
from aipgan_hf.modeling import AIPGANDiscriminator, AIPGANGenerator  # noqa: E402
from aipgan_hf.motion import ShapeModel, landmark_flow  # noqa: E402
from training.checkpointing import (  # noqa: E402
    checkpoint_to_resume,
    load_critics,
    refuse_mixing_runs,
    register_hooks,
    resume,
    save_checkpoint,
    write_ema_pipeline,
)
from training.options import DEFAULT_MOUTH_CROP, parse_args  # noqa: E402
from training.pairs import (  # noqa: E402
    PairDataset,
    check_dataset_name,
    fixed_validation_pairs,
    load_corpus,
)
from training.validation import log_validation, validation_batch  # noqa: E402

logger = get_logger(__name__)


def has_accelerator_device() -> bool:
    return (
        torch.cuda.is_available()
        or (hasattr(torch, "xpu") and torch.xpu.is_available())
        or torch.backends.mps.is_available()
    )


def check_start(args: argparse.Namespace) -> None:
    """Stop before any work, and before the output folder is made, on what would fail or spoil the run later: a
    local dataset folder that is not there, another run's checkpoints in --output_dir, a resume that would build
    another generator than the checkpoint's."""
    check_dataset_name(args.dataset_name)
    refuse_mixing_runs(args)
    for flag in ("resolution", "base_channels"):
        trained_setting(args, "generator", flag, getattr(args, flag), "start a new run in another --output_dir")


def load_splits(args: argparse.Namespace):
    corpus = load_corpus(args.dataset_name)
    train = pick_split(corpus, "train", args.dataset_name)
    if args.max_train_samples is not None:
        train = train.select(range(min(args.max_train_samples, len(train))))
    validation = corpus["validation"] if "validation" in corpus else train
    if "validation" not in corpus:
        logger.warning(
            f"{args.dataset_name} has no validation split: validating on the training people, whose figures "
            "show fitting, not how the model does on new people"
        )
    pairs = PairDataset(
        train,
        resolution=args.resolution,
        cross_person_prob=args.cross_person_prob,
        seed=args.seed,
        augment_source=False,
        session_prob=args.session_prob,
        shape_model=ShapeModel.load(args.shape_model),
        colour_jitter=bool(args.colour_jitter),
    )
    return pairs, validation


def generator_step(batch, generator, discriminator, args, step: int):
    """Generator losses on one batch. Returns (loss, logs, output)."""
    model = generator.module if hasattr(generator, "module") else generator
    critic = discriminator.module if hasattr(discriminator, "module") else discriminator  # no DDP hooks in the G step
    target, truth, same = batch["target"], batch["ground_truth"], batch["same_person"]
    target_landmarks, driving = batch["target_landmarks"], batch["driving_landmarks"]
    resolution = target.shape[-1]
    flow = landmark_flow(target_landmarks, driving, resolution)
    out = generator(target, target_landmarks, driving, flow, return_landmarks=True)
    sigma = model.config.heatmap_sigma
    face = losses.face_weight(resolution, target.device)  # (1, 1, R, R)
    region = face * losses.expression_region(driving, resolution)  # (B, 1, R, R): lips and eyes inside the face
    face = face + args.expression_region_boost * region
    terms = {
        "reconstruction": losses.reconstruction_loss(out.image, truth, weight=same, spatial_weight=face),
        "gradient": losses.gradient_loss(out.image, truth, weight=same, spatial_weight=face),
        "painted_region": losses.painted_region_loss(out.colour, truth, region, weight=same),
        "landmark": losses.landmark_heatmap_loss(out.landmark_heatmaps, target_landmarks, resolution, sigma),
        "attention": losses.attention_supervision_loss(out.expression_attention, driving, resolution),
        "intrinsic": losses.intrinsic_loss(out.intrinsic_image, batch["neutral"], batch["has_neutral"], target),
        "mask": losses.mask_regularisation(out.mask),
        "mouth_mask": losses.mouth_mask_loss(
            out.mask, losses.new_mouth_interior(target_landmarks, driving, flow, resolution)
        ),
    }
    output_encoding = model.encode_identity(out.image, return_intrinsic=False, return_landmarks=True)
    with torch.no_grad():
        target_identity = model.encode_identity(target, return_intrinsic=False).features
    terms["identity_consistency"] = losses.identity_consistency_loss(
        losses.identity_embedding(output_encoding.features), losses.identity_embedding(target_identity)
    )
    # The output must show the driving shape, as the landmark head (trained on real targets) reads it.
    terms["expression_consistency"] = losses.landmark_heatmap_loss(
        output_encoding.landmark_heatmaps, driving, resolution, sigma
    )
    if step >= args.adversarial_start_step:
        critic.requires_grad_(False)
        fake = critic(out.image, driving)
        with torch.no_grad():
            real = critic(truth, ground_truth_landmarks(batch))
        critic.requires_grad_(True)
        terms["adversarial"] = losses.hinge_generator_loss(fake.logits)
        terms["feature_matching"] = losses.feature_matching_loss(fake.features, real.features, weight=same)
    loss = args.loss_weights.total(terms)
    return loss, {f"g/{k}": v.detach().item() for k, v in terms.items()}, out


def ground_truth_landmarks(batch) -> torch.Tensor:
    """(B, 68, 2): where the ground truth's face is: the driving landmarks of same-person pairs (the source's
    own), the target's of cross-person pairs (whose ground truth is the target)."""
    same = batch["same_person"].view(-1, 1, 1)
    return torch.where(same, batch["driving_landmarks"], batch["target_landmarks"])


def discriminator_step(batch, fake_image: torch.Tensor, discriminator) -> tuple[torch.Tensor, dict]:
    """Hinge loss on real ground truths vs the detached generator output."""
    real = discriminator(batch["ground_truth"], ground_truth_landmarks(batch))
    fake = discriminator(fake_image.detach(), batch["driving_landmarks"])
    loss = losses.hinge_discriminator_loss(real.logits, fake.logits)
    return loss, {"d/hinge": loss.detach().item()}


def create_accelerator(args: argparse.Namespace, output_dir: Path) -> Accelerator:
    return Accelerator(
        # Without this accelerate ignores torchrun's WORLD_SIZE on a CPU-only machine and every process trains alone.
        cpu=not has_accelerator_device(),
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )


def create_models(args: argparse.Namespace) -> tuple[AIPGANGenerator, AIPGANDiscriminator, EMAModel]:
    config = AIPGANConfig(resolution=args.resolution, base_channels=args.base_channels)
    generator = AIPGANGenerator(**config.to_dict())
    discriminator = AIPGANDiscriminator.from_aipgan_config(config, mouth_crop_size=mouth_crop_size(args))
    ema_start, ema_steps = generator, 0
    if args.init_from:
        start = Path(args.init_from)
        generator.load_state_dict(
            load_generator(start).state_dict(), strict=True
        )  # a checkpoint's raw generator, or a pipeline's
        if (start / "pipeline").is_dir() and (start / "discriminator").is_dir():  # a training checkpoint
            steps = start.name.rpartition("-")[2]  # checkpoint-N
            ema_start, ema_steps = load_generator(start / "pipeline"), int(steps) if steps.isdigit() else 0
            load_critics(discriminator, start / "discriminator")
    ema = EMAModel(
        ema_start.parameters(), decay=args.ema_decay, model_cls=AIPGANGenerator, model_config=generator.config
    )
    ema.optimization_step = ema_steps  # the checkpoint's EMA keeps its full decay instead of warming up again
    return generator, discriminator, ema


def trained_setting(
    args: argparse.Namespace, subfolder: str, flag: str, given: int | None, otherwise: str, before: int | None = None
) -> int | None:
    """The value of ``flag`` in the resumed checkpoint's ``<subfolder>/config.json`` (``before`` where the file
    predates it), or None when there is none to resume. A ``given`` value (None: the flag was not given) that
    differs stops the run with one line; ``otherwise``: what else the user can do."""
    path = checkpoint_to_resume(args)
    config = path / subfolder / "config.json" if path is not None else None
    if config is None or not config.is_file():
        return None
    trained = json.loads(config.read_text()).get(flag, before)
    if given is not None and trained is not None and given != trained:
        raise SystemExit(f"{path} was trained with --{flag} {trained}, not {given}: resume with that, or {otherwise}")
    return trained


def mouth_crop_size(args: argparse.Namespace) -> int:
    """The mouth critic's window: the flag's, else the resumed checkpoint's (0 for checkpoints made before the
    mouth critic existed), else the default. A flag that contradicts the checkpoint stops the run."""
    start = checkpoint_to_resume(args)
    new_run = (
        f"start a new run in another --output_dir with --init_from {start} --mouth_crop_size {args.mouth_crop_size}"
    )
    trained = trained_setting(args, "discriminator", "mouth_crop_size", args.mouth_crop_size, new_run, before=0)
    if trained is not None:
        return int(trained)
    return DEFAULT_MOUTH_CROP if args.mouth_crop_size is None else args.mouth_crop_size


def train_step(
    accelerator, batch, generator, discriminator, g_optimizer, d_optimizer, args, step: int
) -> tuple[torch.Tensor, dict]:
    """One generator update, then one discriminator update on the detached output (after the warm-up)."""
    with accelerator.accumulate(generator, discriminator):
        g_loss, logs, out = generator_step(batch, generator, discriminator, args, step)
        accelerator.backward(g_loss)
        if accelerator.sync_gradients:
            accelerator.clip_grad_norm_(generator.parameters(), args.max_grad_norm)
        g_optimizer.step()
        g_optimizer.zero_grad(set_to_none=True)
        if step >= args.adversarial_start_step:
            d_loss, d_logs = discriminator_step(batch, out.image, discriminator)
            accelerator.backward(d_loss * args.loss_weights.adversarial)
            d_optimizer.step()
            d_optimizer.zero_grad(set_to_none=True)
            logs.update(d_logs)
    logs["g/total"] = g_loss.detach().item()
    return g_loss, logs


def create_optimizers(
    args: argparse.Namespace, generator: AIPGANGenerator, discriminator: AIPGANDiscriminator
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for the generator and the discriminator, with the flags' learning rates and betas."""
    betas = (args.adam_beta1, args.adam_beta2)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=args.learning_rate, betas=betas)
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=args.discriminator_learning_rate, betas=betas)
    return g_optimizer, d_optimizer


def start_tracking(
    accelerator: Accelerator, args: argparse.Namespace, validation_split
) -> dict[str, torch.Tensor] | None:
    """On the main process: start the trackers and load the fixed validation pairs' batch (None elsewhere)."""
    if not accelerator.is_main_process:
        return None
    config = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}
    accelerator.init_trackers("aipgan", config=config)
    pairs = fixed_validation_pairs(validation_split, args.num_validation_pairs, seed=args.seed)
    return validation_batch(validation_split, pairs, args.resolution)


def log_sampled_targets(sample_log: str, accelerator: Accelerator, step: int, batch) -> None:
    """Diagnostics (--sample_log): which dataset rows this process trained on at ``step``."""
    with open(f"{sample_log}.rank{accelerator.process_index}.jsonl", "a") as log:
        log.write(json.dumps({"step": step, "targets": batch["target_index"].tolist()}) + "\n")


def finish_training(
    accelerator: Accelerator, generator, ema: EMAModel, shape_model, output_dir: Path, step: int
) -> None:
    """Write the final EMA pipeline to ``<output_dir>/pipeline`` and close the trackers."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_ema_pipeline(accelerator.unwrap_model(generator), ema, output_dir / "pipeline", shape_model)
        logger.info(f"done: {step} steps; EMA pipeline in {output_dir / 'pipeline'}")
    accelerator.end_training()


def _steps_per_epoch(batches: int, args: argparse.Namespace, accelerator: Accelerator) -> int:
    """Optimiser steps in one pass over ``batches`` batches; SystemExit when that is none."""
    steps_per_epoch = batches // args.gradient_accumulation_steps
    if steps_per_epoch == 0:
        raise SystemExit(
            f"the training split has fewer than {args.train_batch_size * accelerator.num_processes} pairs: lower --train_batch_size"
        )
    return steps_per_epoch


def _progress_postfix(logs: dict[str, float]) -> dict[str, str]:
    """The losses the progress bar shows, by their short names."""
    return {k.split("/")[-1]: f"{v:.3f}" for k, v in logs.items() if k in ("g/total", "g/reconstruction", "d/hinge")}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv, description=__doc__)
    check_start(args)
    output_dir = Path(args.output_dir)
    accelerator = create_accelerator(args, output_dir)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed)

    generator, discriminator, ema = create_models(args)
    dataset, validation_split = load_splits(args)
    if accelerator.is_main_process:  # only now: a run stopped by its models or data leaves no empty folder
        output_dir.mkdir(parents=True, exist_ok=True)
    dataloader = torch.utils.data.DataLoader(
        dataset, batch_size=args.train_batch_size, shuffle=True, drop_last=True, num_workers=args.dataloader_num_workers
    )
    g_optimizer, d_optimizer = create_optimizers(args, generator, discriminator)
    generator, discriminator, g_optimizer, d_optimizer, dataloader = accelerator.prepare(
        generator, discriminator, g_optimizer, d_optimizer, dataloader
    )
    ema.to(accelerator.device)
    accelerator.register_for_checkpointing(ema)
    register_hooks(accelerator, ema, dataset.shape_model)
    rates = [(g_optimizer, args.learning_rate), (d_optimizer, args.discriminator_learning_rate)]
    global_step = resume(
        accelerator, args, [generator, discriminator], [rate for rate, given in zip(rates, args.given_rates) if given]
    )  # rates not given: the checkpoint's
    val_batch = start_tracking(accelerator, args, validation_split)
    steps_per_epoch = _steps_per_epoch(len(dataloader), args, accelerator)
    logger.info(f"{len(dataset)} training items, {accelerator.num_processes} processes, {steps_per_epoch} steps/epoch")

    progress = tqdm(
        total=args.max_train_steps, initial=global_step, disable=not accelerator.is_local_main_process, desc="steps"
    )
    started, images_seen = time.perf_counter(), 0
    while global_step < args.max_train_steps:
        epoch = global_step // steps_per_epoch
        dataset.set_epoch(epoch)
        dataloader.set_epoch(epoch)
        skip = (global_step % steps_per_epoch) * args.gradient_accumulation_steps  # resuming mid-epoch
        for batch in accelerator.skip_first_batches(dataloader, skip) if skip else dataloader:
            _, logs = train_step(
                accelerator, batch, generator, discriminator, g_optimizer, d_optimizer, args, global_step
            )
            images_seen += batch["source"].shape[0] * accelerator.num_processes
            if args.sample_log:
                log_sampled_targets(args.sample_log, accelerator, global_step, batch)
            if not accelerator.sync_gradients:
                continue
            ema.step(accelerator.unwrap_model(generator).parameters())
            global_step += 1
            logs["images_per_second"] = images_seen / (time.perf_counter() - started)
            progress.update(1)
            progress.set_postfix(_progress_postfix(logs))
            accelerator.log(logs, step=global_step)
            if global_step % args.checkpointing_steps == 0:
                save_checkpoint(accelerator, output_dir, global_step, args.checkpoints_total_limit)
            if accelerator.is_main_process and args.validation_steps and global_step % args.validation_steps == 0:
                log_validation(accelerator, generator, ema, val_batch, dataset.shape_model, global_step, output_dir)
            if global_step >= args.max_train_steps:
                break
    finish_training(accelerator, generator, ema, dataset.shape_model, output_dir, global_step)


if __name__ == "__main__":
    try:
        main()
    except AIPGANError as error:  # bad input (data, checkpoint): its message, not a traceback
        sys.exit(str(error))
