"""Validation of training/train.py: the fixed validation pairs run through the EMA generator as the pipeline
drives it, logged as an image grid with quick identity/expression figures measured with the project's own measures
(aipgan_hf.evaluation) on the validation identities."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from accelerate.logging import get_logger
from PIL import Image

from aipgan_hf.driving import drive_crops, landmark_tensor
from aipgan_hf.errors import AIPGANError
from aipgan_hf.evaluation.identity import SAME_PERSON_THRESHOLD, descriptor_distance
from aipgan_hf.evaluation.landmark_fidelity import region_fidelities
from aipgan_hf.faces import FaceProcessor, image_to_tensor, tensor_to_image
from aipgan_hf.pipeline import AIPGANPipeline
from training.checkpointing import ema_generator
from training.pairs import PairDataset

logger = get_logger(__name__)


def transfer_grid(*rows_of_images: torch.Tensor) -> np.ndarray:
    """One row per (N, 3, R, R) batch in [-1, 1] (e.g. sources, targets, outputs), one column per pair; uint8 (kR, NR, 3)."""
    rows = [
        np.concatenate([tensor_to_image(image.float().cpu()) for image in batch], axis=1) for batch in rows_of_images
    ]
    return np.concatenate(rows, axis=0)


def validation_measures(
    processor: FaceProcessor,
    sources: torch.Tensor,
    targets: torch.Tensor,
    outputs: torch.Tensor,
    driving_landmarks: torch.Tensor,
) -> dict[str, float]:
    """Identity kept and the driving shape followed, on cross-person validation pairs.

    * ``identity_distance``: dlib descriptor distance output <-> target (mean); ``same_person_rate``: share < 0.6.
    * ``source_distance``: output <-> source (identity leakage; higher is better).
    * ``driving_fidelity``: displacement fidelity (aipgan_hf.evaluation) of brows/eyes/mouth of the output's dlib
      landmarks against the driving landmarks the network was given (1: moved exactly as asked, 0: not at all).
      Whether the driving landmarks are the right expression is the shape model's part, measured by
      ``python -m aipgan_hf.evaluation`` against the source's own change.
    * ``faces_found``: share of outputs in which a face (and so the measures) could be found.
    """
    identity, leakage, fidelity, found = [], [], [], 0
    for source, target, output, driving in zip(sources, targets, outputs, driving_landmarks.cpu().numpy()):
        crops = [tensor_to_image(t.float().cpu()) for t in (source, target, output)]
        try:
            faces = [processor.align(crop) for crop in crops]
        except AIPGANError:
            continue
        found += 1
        source_descriptor, target_descriptor, output_descriptor = (
            processor.descriptor(c, a) for c, a in zip(crops, faces)
        )
        identity.append(descriptor_distance(output_descriptor, target_descriptor))
        leakage.append(descriptor_distance(output_descriptor, source_descriptor))
        regions = region_fidelities(faces[2].landmarks, faces[1].landmarks, driving)
        values = [v for v in regions.values() if not math.isnan(v)]
        if values:
            fidelity.append(float(np.mean(values)))
    nan = float("nan")
    return {
        "identity_distance": float(np.mean(identity)) if identity else nan,
        "same_person_rate": float(np.mean(np.asarray(identity) < SAME_PERSON_THRESHOLD)) if identity else nan,
        "source_distance": float(np.mean(leakage)) if leakage else nan,
        "driving_fidelity": float(np.mean(fidelity)) if fidelity else nan,
        "faces_found": found / max(len(outputs), 1),
    }


def validation_batch(validation_split, pairs: list[tuple[int, int]], resolution: int) -> dict[str, torch.Tensor]:
    """The fixed validation pairs as (N, 3, R, R) source and target tensors and (N, 68, 2) landmarks."""
    crops = PairDataset(validation_split, resolution=resolution, cross_person_prob=1.0, augment_source=False)
    batch = {}
    for role, rows in (("source", [s for s, _ in pairs]), ("target", [t for _, t in pairs])):
        loaded = [crops.load_crop(row) for row in rows]
        batch[role] = torch.stack([image_to_tensor(crop) for crop, _ in loaded])  # (N, 3, R, R)
        batch[f"{role}_landmarks"] = torch.stack([torch.from_numpy(landmarks) for _, landmarks in loaded])  # (N, 68, 2)
    return batch


def log_validation(
    accelerator, generator, ema, batch: dict[str, torch.Tensor], shape_model, step: int, output_dir: Path
) -> dict[str, float]:
    """Run the EMA generator through the real pipeline on the fixed pairs; log a grid and identity/expression figures."""
    pipe = AIPGANPipeline(ema_generator(accelerator.unwrap_model(generator), ema), shape_model=shape_model)
    # the network's own paint is what training changes: no mouth inside from the photos
    driving = pipe.shape_model.drive(batch["target_landmarks"].numpy(), batch["source_landmarks"].numpy())
    output = drive_crops(
        pipe.generator,
        batch["target"],
        batch["target_landmarks"],
        landmark_tensor(driving, len(driving)),
        mouth="network",
        lines=pipe.lines,
    )
    # rows: source / target / warp / output
    grid = transfer_grid(batch["source"], batch["target"], output.network.warped_target, output.image)
    figures = validation_measures(
        pipe.processor, batch["source"], batch["target"], output.image, output.driving_landmarks
    )
    folder = output_dir / "validation"
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(folder / f"step-{step:06d}.png")
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_image("validation/grid", grid, step, dataformats="HWC")
    accelerator.log({f"val/{k}": v for k, v in figures.items()}, step=step)
    logger.info(f"validation at step {step}: {figures}")
    return figures
