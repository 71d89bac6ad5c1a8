"""The methods compared: the model, and the baselines "target unchanged", "source pasted", the retargeted warp
and the oracle warp.

A :data:`Method` turns the pairs into one aligned output crop per pair. The two warps move the target's crop
piecewise-affinely (:func:`piecewise_affine_warp`) to driving landmarks: retargeted from the source alone (the
shape model's ``drive(target, source)``, or :func:`aligned_source_retarget`), or the target moved by the
source's true change (:func:`oracle_landmarks`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..driving import drive_crops, landmark_tensor
from ..faces import image_to_tensor, tensor_to_image
from ..pipeline import AIPGANPipeline
from ..pipeline_steps import source_motion
from .data import SplitData, stacked
from .landmark_fidelity import align_landmarks
from .pairs import EvaluationPair

BASELINES = {
    "target": "target unchanged",
    "source": "source pasted",
    "warp": "retargeted warp",
    "oracle": "oracle warp (source's true change)",
}
MODEL_METHOD = "AIP-GAN"
RELATIVE_METHOD = "AIP-GAN given the source's neutral (S0)"
"""The model told the source's neutral photo too (``pipe(..., source_reference=...)``): the source's exact change
from it (as video driving's relative motion), or a sure reading other than a smile worn as from one photo. Not a
single-photo transfer: the photo it is given is the one the wanted change is measured from."""

Retarget = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(target landmarks (N, 68, 2), source landmarks (N, 68, 2)) -> driving landmarks (N, 68, 2) in the target's
crop frame, e.g. ``pipe.shape_model.drive``."""

Method = Callable[[list[EvaluationPair], SplitData], np.ndarray]
"""(pairs, data) -> (N, R, R, 3) uint8 outputs, one per pair."""


# --------------------------------------------------------------------------------------------------
# Warps


def piecewise_affine_warp(image: np.ndarray, landmarks: np.ndarray, destination: np.ndarray) -> np.ndarray:
    """Warp an image so that its landmarks move to ``destination`` (classical landmark-driven warp).

    The destination points plus 8 fixed points on the image border are triangulated (Delaunay) and each
    output triangle is filled by the affine map from its counterpart around ``landmarks``: the model of
    ``skimage.transform.PiecewiseAffineTransform``, vectorised here (skimage maps a 128 px crop in ~1 s, this
    in ~10 ms). Points are clipped to the image; sampling is bilinear.

    Args:
        image: (H, W, 3) uint8.
        landmarks: (68, 2) (x, y) landmarks of ``image``.
        destination: (68, 2) where they should end up.

    Returns:
        (H, W, 3) uint8 warped image.
    """
    from scipy.ndimage import map_coordinates
    from scipy.spatial import Delaunay

    height, width = image.shape[:2]
    xs, ys = (0.0, (width - 1) / 2, width - 1.0), (0.0, (height - 1) / 2, height - 1.0)
    border = np.array([(x, y) for x in xs for y in ys if x in (xs[0], xs[2]) or y in (ys[0], ys[2])])  # (8, 2)
    limits = np.array([width - 1.0, height - 1.0])
    input_points = np.concatenate([np.clip(landmarks, 0, limits), border])  # (76, 2)
    output_points = np.concatenate([np.clip(destination, 0, limits), border])  # (76, 2)
    triangulation = Delaunay(output_points)
    rows, cols = np.mgrid[0:height, 0:width]
    pixels = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)  # (H*W, 2) as (x, y)
    # (H*W,), -1 outside every triangle; the brute-force search is ~1000x faster than scipy's directed walk here
    simplex = triangulation.find_simplex(pixels, bruteforce=True)
    inside = simplex >= 0
    affine = triangulation.transform[simplex[inside]]  # (P, 3, 2): barycentric map per pixel's triangle
    partial = np.einsum("pij,pj->pi", affine[:, :2], pixels[inside] - affine[:, 2])  # (P, 2)
    barycentric = np.concatenate([partial, 1.0 - partial.sum(axis=1, keepdims=True)], axis=1)  # (P, 3)
    corners = input_points[triangulation.simplices[simplex[inside]]]  # (P, 3, 2)
    sample_at = pixels.copy()
    sample_at[inside] = (barycentric[:, :, None] * corners).sum(axis=1)  # (P, 2) input (x, y)
    coordinates = [sample_at[:, 1], sample_at[:, 0]]  # (row, col) order for map_coordinates
    channels = [
        map_coordinates(image[..., channel].astype(np.float64), coordinates, order=1, mode="nearest")
        for channel in range(image.shape[2])
    ]
    warped = np.stack(channels, axis=1).reshape(height, width, image.shape[2])  # (H*W, C) -> (H, W, C)
    return np.clip(np.rint(warped), 0, 255).astype(np.uint8)


def aligned_source_retarget(target_landmarks: np.ndarray, source_landmarks: np.ndarray) -> np.ndarray:
    """The classical retarget without a shape model: the source's landmarks similarity-aligned onto the target's
    frame (on the stable points). It carries the source's face shape along with its expression.

    Args:
        target_landmarks, source_landmarks: (N, 68, 2).

    Returns:
        (N, 68, 2) driving landmarks.
    """
    return np.stack([align_landmarks(s, t) for t, s in zip(target_landmarks, source_landmarks)])


def oracle_landmarks(target: np.ndarray, source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The target's landmarks moved by the source's true change: ``T + (S - S0)``, S and S0 similarity-aligned
    onto the target's frame (stable points) first. (68, 2) each."""
    return target + align_landmarks(source, target) - align_landmarks(reference, target)


# --------------------------------------------------------------------------------------------------
# Methods


def model_method(
    pipeline: AIPGANPipeline,
    batch_size: int = 16,
    relative: bool = False,
    mouth: str = "source",
    replace_target_expression: bool = False,
    read_emotion: bool = True,
) -> Method:
    """The model as a method on batches of aligned crops, with the dataset's stored landmarks (crop px): the shape
    model retargets the source's expression, then :func:`~aipgan_hf.driving.drive_crops`; ``relative``: also given
    the landmarks of the source's neutral reference S0 (:data:`RELATIVE_METHOD`); ``mouth``: where an opened
    mouth's inside comes from (as ``pipe(..., mouth=)``); ``replace_target_expression``: as the pipeline's, for a
    one-photo transfer; ``read_emotion``: as the pipeline's (the source's emotion read, with or without S0)."""
    reader = pipeline.emotion_reader if read_emotion else None

    def run(pairs: list[EvaluationPair], data: SplitData) -> np.ndarray:
        outputs = []
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            sources = image_to_tensor(stacked(data, [p.source for p in batch]))  # (B, 3, R, R) in [-1, 1]
            targets = image_to_tensor(stacked(data, [p.target for p in batch]))  # (B, 3, R, R)
            source_landmarks = torch.from_numpy(
                stacked(data, [p.source for p in batch], "landmarks")
            ).float()  # (B, 68, 2)
            target_landmarks = torch.from_numpy(
                stacked(data, [p.target for p in batch], "landmarks")
            ).float()  # (B, 68, 2)
            references = (
                torch.from_numpy(stacked(data, [p.reference for p in batch], "landmarks")).float() if relative else None
            )
            driving, line_strength = source_motion(  # as the pipeline drives and draws a transfer
                pipeline.shape_model,
                target_landmarks.numpy(),
                source_landmarks.numpy(),
                reference_landmarks=None if references is None else references.numpy(),
                read=None if reader is None else reader.read(sources),
                replace_target_expression=replace_target_expression and not relative,
            )
            lender, lender_landmarks = sources, source_landmarks
            if mouth == "exemplar" and pipeline.mouth_exemplar is not None:  # the checkpoint's, not the source's
                crop, landmarks = pipeline.mouth_exemplar.tensors()
                lender, lender_landmarks = crop.expand(len(batch), -1, -1, -1), landmarks.expand(len(batch), -1, -1)
            result = drive_crops(
                pipeline.generator,
                targets,
                target_landmarks,
                landmark_tensor(driving, len(batch)),
                source=lender,
                source_landmarks=lender_landmarks,
                return_intrinsic=False,
                mouth=mouth,
                lines=pipeline.lines,
                line_strength=line_strength,
            )
            outputs.append(tensor_to_image(result.image.float().cpu()))  # (B, R, R, 3)
        return np.concatenate(outputs)

    return run


def baseline_methods(names: Sequence[str], retarget: Retarget | None = None) -> dict[str, Method]:
    """The named baselines (keys of :data:`BASELINES`) as methods.

    Args:
        names: baseline keys.
        retarget: driving landmarks of the "warp" baseline (``pipe.shape_model.drive``); default
            :func:`aligned_source_retarget`.
    """
    retarget = retarget or aligned_source_retarget

    def warp(pairs: list[EvaluationPair], data: SplitData) -> np.ndarray:
        targets = stacked(data, [p.target for p in pairs], "landmarks")  # (N, 68, 2)
        driving = np.asarray(retarget(targets, stacked(data, [p.source for p in pairs], "landmarks")))  # (N, 68, 2)
        return np.stack(
            [piecewise_affine_warp(data.images[p.target], t, d) for p, t, d in zip(pairs, targets, driving)]
        )

    def oracle(pairs: list[EvaluationPair], data: SplitData) -> np.ndarray:
        return np.stack(
            [
                piecewise_affine_warp(
                    data.images[p.target],
                    data.landmarks[p.target],
                    oracle_landmarks(data.landmarks[p.target], data.landmarks[p.source], data.landmarks[p.reference]),
                )
                for p in pairs
            ]
        )

    table: dict[str, Method] = {
        "target": lambda pairs, data: stacked(data, [p.target for p in pairs]),
        "source": lambda pairs, data: stacked(data, [p.source for p in pairs]),
        "warp": warp,
        "oracle": oracle,
    }
    return {BASELINES[name]: table[name] for name in names}
