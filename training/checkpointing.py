"""Checkpoints of a training run (training/train.py): `accelerator.save_state` folders written atomically and
rotated, each holding the EMA generator as a loadable pipeline; resuming from one, and taking a finished run's
critics as the start of a new one."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file

from aipgan_hf.modeling import AIPGANDiscriminator, AIPGANGenerator
from aipgan_hf.pipeline import AIPGANPipeline

logger = get_logger(__name__)


def latest_checkpoint(output_dir: Path) -> Path | None:
    checkpoints = sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return checkpoints[-1] if checkpoints else None


def rotate_checkpoints(output_dir: Path, limit: int | None) -> None:
    """Keep room for one more checkpoint within ``limit``; delete the oldest."""
    if not limit:
        return
    checkpoints = sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    for old in checkpoints[: max(0, len(checkpoints) - limit + 1)]:
        logger.info(f"removing old checkpoint {old}")
        shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(accelerator: Accelerator, output_dir: Path, step: int, limit: int | None) -> Path:
    """`save_state` into a temporary folder, then an atomic rename: a kill mid-write leaves no half checkpoint."""
    final = output_dir / f"checkpoint-{step}"
    staging = output_dir / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        rotate_checkpoints(output_dir, limit)
        shutil.rmtree(staging, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        os.replace(staging, final)
        logger.info(f"saved {final}")
    accelerator.wait_for_everyone()
    return final


def register_hooks(accelerator: Accelerator, ema: EMAModel, shape_model) -> None:
    """Model weights go through `save_pretrained` (HF folders), the EMA generator as a loadable pipeline."""

    def save_model_hook(models, weights, output_dir):
        if accelerator.is_main_process:
            for model in models:
                name = "generator" if isinstance(model, AIPGANGenerator) else "discriminator"
                model.save_pretrained(os.path.join(output_dir, name))
            generator = next(m for m in models if isinstance(m, AIPGANGenerator))
            write_ema_pipeline(generator, ema, Path(output_dir) / "pipeline", shape_model)
        while weights:  # saved above; keep accelerate from writing them a second time
            weights.pop()

    def load_model_hook(models, input_dir):
        while models:
            model = models.pop()
            cls, name = (
                (AIPGANGenerator, "generator")
                if isinstance(model, AIPGANGenerator)
                else (AIPGANDiscriminator, "discriminator")
            )
            loaded = cls.from_pretrained(input_dir, subfolder=name, low_cpu_mem_usage=False)
            model.load_state_dict(loaded.state_dict(), strict=True)
            del loaded

    accelerator.register_save_state_pre_hook(save_model_hook)
    accelerator.register_load_state_pre_hook(load_model_hook)


def ema_generator(generator: AIPGANGenerator, ema: EMAModel) -> AIPGANGenerator:
    """A CPU copy of the (unwrapped) generator carrying the EMA weights; the training model is untouched."""
    model = AIPGANGenerator.from_config(generator.config)
    ema.copy_to(model.parameters())
    trained_buffers = dict(generator.named_buffers())
    for name, buffer in model.named_buffers():
        buffer.copy_(trained_buffers[name])
    return model.float().cpu().eval()


def write_ema_pipeline(
    generator: AIPGANGenerator,
    ema: EMAModel,
    folder: Path,
    shape_model,
    variant: str | None = None,
    card: str | None = None,
) -> None:
    AIPGANPipeline(ema_generator(generator, ema), shape_model=shape_model).save_pretrained(
        folder, variant=variant, model_card=card
    )


def load_critics(discriminator: AIPGANDiscriminator, folder: Path) -> None:
    """The saved critics' weights into ``discriminator``; critics the folder lacks (a mouth critic added since)
    keep their fresh initialisation. Anything else that does not match is an error."""
    state = load_file(folder / "diffusion_pytorch_model.safetensors")
    try:
        missing, unexpected = discriminator.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a tensor of another shape
        raise SystemExit(f"{folder} does not fit this discriminator: {error}") from None
    new_critics = sorted({key.split(".")[0] for key in missing})
    if unexpected or any(not key.startswith("mouth.") for key in missing):
        raise SystemExit(
            f"{folder} does not fit this discriminator: unexpected {unexpected[:3]}, missing {missing[:3]}"
        )
    if new_critics:
        logger.info(f"critics new to {folder}, starting fresh: {new_critics}")


def refuse_mixing_runs(args: argparse.Namespace) -> None:
    """SystemExit when --output_dir holds checkpoints and this run does not resume: rotation would delete the
    other run's checkpoints and this run's would collide with theirs."""
    latest = latest_checkpoint(Path(args.output_dir))
    if latest is not None and not args.resume_from_checkpoint:
        raise SystemExit(
            f"{args.output_dir} already holds checkpoints of another run (up to {latest.name}): pass "
            "--resume_from_checkpoint latest to continue it, or another --output_dir"
        )


def checkpoint_to_resume(args: argparse.Namespace) -> Path | None:
    """The checkpoint folder --resume_from_checkpoint names ("latest": the newest in --output_dir), or None."""
    if not args.resume_from_checkpoint:
        return None
    return (
        latest_checkpoint(Path(args.output_dir))
        if args.resume_from_checkpoint == "latest"
        else Path(args.resume_from_checkpoint)
    )


def resume(
    accelerator: Accelerator,
    args: argparse.Namespace,
    models: list,
    learning_rates: list[tuple[torch.optim.Optimizer, float]] = (),
) -> int:
    """Load the checkpoint --resume_from_checkpoint names (or the latest), with the given (optimizer, learning rate)
    pairs set to those rates; returns the step to continue from."""
    if not args.resume_from_checkpoint:
        return 0
    path = checkpoint_to_resume(args)
    if path is None:
        logger.info("no checkpoint to resume from; starting a new run")
        return 0
    accelerator.load_state(str(path))
    for model in models:
        model.train()  # loading hooks may leave models in eval mode
    for optimizer, rate in learning_rates:  # the flags win over the rates saved with the optimizer state
        for group in optimizer.param_groups:
            if group["lr"] != rate:
                logger.info(f"learning rate {group['lr']:g} -> {rate:g} (the flag's)")
                group["lr"] = rate
    step = int(path.name.split("-")[1])
    logger.info(f"resumed from {path} at step {step}")
    return step
