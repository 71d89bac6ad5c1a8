"""Validation helpers of training/train.py: the fixed-pair image grid and quick identity/expression figures
measured with the project's own measures (aipgan_hf.evaluation) on the validation identities."""

from __future__ import annotations

import math

import numpy as np
import torch

from aipgan_hf.errors import AIPGANError
from aipgan_hf.evaluation.identity import SAME_PERSON_THRESHOLD, descriptor_distance
from aipgan_hf.evaluation.landmark_fidelity import region_fidelities
from aipgan_hf.faces import FaceProcessor, tensor_to_image


def transfer_grid(*rows_of_images: torch.Tensor) -> np.ndarray:
    """One row per (N, 3, R, R) batch in [-1, 1] (e.g. sources, targets, outputs), one column per pair; uint8 (kR, NR, 3)."""
    rows = [np.concatenate([tensor_to_image(image.float().cpu()) for image in batch], axis=1) for batch in rows_of_images]
    return np.concatenate(rows, axis=0)


def validation_measures(processor: FaceProcessor, sources: torch.Tensor, targets: torch.Tensor, outputs: torch.Tensor,
                        driving_landmarks: torch.Tensor) -> dict[str, float]:
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
        source_descriptor, target_descriptor, output_descriptor = (processor.descriptor(c, a) for c, a in zip(crops, faces))
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
