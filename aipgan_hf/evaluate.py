"""Evaluate expression transfer against baselines on a dataset split, in one command.

    python -m aipgan_hf.evaluate --dataset data_build/aipgan-faces-128 --split test --baselines all \\
        [--checkpoint PATH | --no_model] [--output report.md] [--grid grid.png] [--max_pairs N] [--classifiers fer,facex]

The reference for a transfer is **the source's own expression change** (S - S0, S0 a neutral photo or frame of the
source person; pairs in :mod:`aipgan_hf.evaluation_pairs`), measured by the *expression response* of
:mod:`aipgan_hf.expression_measures`. Every method produces an aligned crop for each pair: the model
(``AIPGANPipeline.transfer_aligned`` with the dataset's landmarks) and the baselines "target unchanged",
"source pasted", the piecewise-affine warp of the target to retargeted landmarks (the shape model's
``drive(target, source)``), and an oracle warp by the source's true change. The target person's own photo with
the source's label is measured too, as a reference row. Each output is measured the same way (dlib landmarks and
descriptor through :class:`~aipgan_hf.processing.FaceProcessor`, the FER classifiers, Inception features; see
:mod:`aipgan_hf.metrics`); :mod:`aipgan_hf.evaluation_report` writes the tables.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics
from .errors import AIPGANError, ConfigError, FaceTooSmallError, NoFaceError
from .evaluation_pairs import CROSS_PERSON, PAIR_KINDS, SAME_PERSON, EvaluationPair, SplitColumns, build_pairs
from .expression_measures import MEASURE_NAMES, expression_change, expression_response
from .processing import AlignedFace, FaceProcessor, image_to_tensor, tensor_to_image

logger = logging.getLogger(__name__)

__all__ = [
    "CROSS_PERSON", "PAIR_KINDS", "SAME_PERSON", "EvaluationPair", "SplitColumns", "build_pairs",
    "evaluate", "main", "piecewise_affine_warp",
]

REQUIRED_COLUMNS = ("image", "landmarks", "identity", "expression", "clip", "frame")
BASELINES = {
    "target": "target unchanged",
    "source": "source pasted",
    "warp": "retargeted warp",
    "oracle": "oracle warp (source's true change)",
}
MODEL_METHOD = "AIP-GAN"
REFERENCE_METHOD = "target's own photo (reference)"
DEFAULT_CLASSIFIERS = ("fer", "facex")

Retarget = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(target landmarks (N, 68, 2), source landmarks (N, 68, 2)) -> driving landmarks (N, 68, 2) in the target's
crop frame, e.g. ``pipe.shape_model.drive``."""


# --------------------------------------------------------------------------------------------------
# Baselines


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
    return np.stack([metrics.align_landmarks(s, t) for t, s in zip(target_landmarks, source_landmarks)])


def oracle_landmarks(target: np.ndarray, source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The target's landmarks moved by the source's true change: ``T + (S - S0)``, S and S0 similarity-aligned
    onto the target's frame (stable points) first. (68, 2) each."""
    return target + metrics.align_landmarks(source, target) - metrics.align_landmarks(reference, target)


# --------------------------------------------------------------------------------------------------
# Split data and methods


@dataclass
class SplitData:
    """The rows of a split that the pairs use, decoded once."""

    images: dict[int, np.ndarray]  # row -> (R, R, 3) uint8
    landmarks: dict[int, np.ndarray]  # row -> (68, 2) float64 crop coordinates
    identities: list[str]
    resolution: int


Method = Callable[[list[EvaluationPair], SplitData], np.ndarray]
"""(pairs, data) -> (N, R, R, 3) uint8 outputs, one per pair."""


def _stacked(data: SplitData, rows: Sequence[int], what: str = "images") -> np.ndarray:
    table = data.images if what == "images" else data.landmarks
    return np.stack([table[row] for row in rows])


def model_method(pipeline: Any, batch_size: int = 16) -> Method:
    """The model as a method: ``pipeline.transfer_aligned(source, target, source_landmarks, target_landmarks)`` on
    batches of aligned crops, with the dataset's stored landmarks (crop px)."""
    import torch

    def run(pairs: list[EvaluationPair], data: SplitData) -> np.ndarray:
        outputs = []
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            sources = image_to_tensor(_stacked(data, [p.source for p in batch]))  # (B, 3, R, R) in [-1, 1]
            targets = image_to_tensor(_stacked(data, [p.target for p in batch]))  # (B, 3, R, R)
            source_landmarks = torch.from_numpy(_stacked(data, [p.source for p in batch], "landmarks")).float()  # (B, 68, 2)
            target_landmarks = torch.from_numpy(_stacked(data, [p.target for p in batch], "landmarks")).float()  # (B, 68, 2)
            with torch.inference_mode():
                result = pipeline.transfer_aligned(sources, targets, source_landmarks, target_landmarks)
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
        targets = _stacked(data, [p.target for p in pairs], "landmarks")  # (N, 68, 2)
        driving = np.asarray(retarget(targets, _stacked(data, [p.source for p in pairs], "landmarks")))  # (N, 68, 2)
        return np.stack([piecewise_affine_warp(data.images[p.target], t, d) for p, t, d in zip(pairs, targets, driving)])

    def oracle(pairs: list[EvaluationPair], data: SplitData) -> np.ndarray:
        return np.stack([
            piecewise_affine_warp(data.images[p.target], data.landmarks[p.target], oracle_landmarks(
                data.landmarks[p.target], data.landmarks[p.source], data.landmarks[p.reference]))
            for p in pairs
        ])

    table: dict[str, Method] = {
        "target": lambda pairs, data: _stacked(data, [p.target for p in pairs]),
        "source": lambda pairs, data: _stacked(data, [p.source for p in pairs]),
        "warp": warp,
        "oracle": oracle,
    }
    return {BASELINES[name]: table[name] for name in names}


def parse_baselines(text: str) -> list[str]:
    """``all``, ``none`` or a comma list of baseline keys (target, source, warp, oracle)."""
    text = text.strip().lower()
    if text == "all":
        return list(BASELINES)
    if text in ("", "none"):
        return []
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}, 'all' or 'none'")
    return names


def parse_classifiers(text: str) -> list[str]:
    """A comma list of expression classifier names (keys of :data:`aipgan_hf.metrics.CLASSIFIERS`)."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in metrics.CLASSIFIERS]
    if not names or unknown:
        raise ConfigError(f"unknown or no classifier(s) {unknown or text!r}; choose from {sorted(metrics.CLASSIFIERS)}")
    return names


# --------------------------------------------------------------------------------------------------
# Measuring crops


@dataclass
class CropMeasurement:
    """What is measured on one aligned face crop.

    Attributes:
        landmarks: (68, 2) crop coordinates, NaN when no face was found on the crop.
        descriptor: (128,) dlib identity descriptor.
        labels: classifier name -> top expression label.
        face_found: whether the face detector (with the processor's tight-crop fallbacks) found a face.
    """

    landmarks: np.ndarray
    descriptor: np.ndarray
    labels: dict[str, str]
    face_found: bool


class CropMeasurer:
    """Landmarks, identity descriptor and expression labels of aligned crops.

    Landmarks come from :meth:`FaceProcessor.detect` on the crop (it pads tight crops when the detector
    needs a border). When no face is found the crop's landmarks are left undefined (NaN), and the identity
    descriptor is computed with ``fallback_landmarks`` (the target's, as every method's output lives in the
    target's aligned frame), so a method that destroys the face is charged a large identity distance
    instead of being left out. Results are remembered by the crop's bytes: "target unchanged" and "source
    pasted" cost nothing after the dataset crops are measured (the descriptor is most of the time).
    """

    def __init__(self, processor: FaceProcessor, classifiers: dict[str, metrics.ExpressionClassifier]):
        self.processor = processor
        self.classifiers = classifiers
        self._seen: dict[bytes, tuple[np.ndarray | None, dict[str, str]]] = {}  # crop -> (landmarks, labels)
        self._descriptors: dict[tuple[bytes, bytes], np.ndarray] = {}  # (crop, landmarks) -> descriptor

    def _detect_and_classify(self, crop: np.ndarray) -> tuple[np.ndarray | None, dict[str, str]]:
        key = hashlib.sha1(crop.tobytes()).digest() + bytes(str(crop.shape), "ascii")
        if key not in self._seen:
            try:
                landmarks = np.asarray(self.processor.detect(crop)[0].landmarks, dtype=np.float64)
            except (NoFaceError, FaceTooSmallError):
                landmarks = None
            labels = {name: classifier.predict([crop])[0] for name, classifier in self.classifiers.items()}
            self._seen[key] = (landmarks, labels)
        return self._seen[key]

    def _descriptor(self, crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        key = (hashlib.sha1(crop.tobytes()).digest(), landmarks.astype(np.float32).tobytes())
        if key not in self._descriptors:
            aligned = AlignedFace(
                crop=crop, matrix=np.eye(2, 3), landmarks=landmarks.astype(np.float32),
                crop_landmarks=landmarks.astype(np.float32), box=(0.0, 0.0, float(crop.shape[1]), float(crop.shape[0])),
            )
            self._descriptors[key] = self.processor.descriptor(crop, aligned).astype(np.float64)
        return self._descriptors[key]

    def measure(self, crop: np.ndarray, fallback_landmarks: np.ndarray, trust_fallback: bool = False) -> CropMeasurement:
        """Measure one crop.

        Args:
            crop: (R, R, 3) uint8 aligned face.
            fallback_landmarks: (68, 2) landmarks to compute the descriptor with when no face is found.
            trust_fallback: report ``fallback_landmarks`` as the crop's landmarks when no face is found
                (for real dataset images, whose stored landmarks were fitted on the original photo).
        """
        crop = np.ascontiguousarray(crop)
        detected, labels = self._detect_and_classify(crop)
        found = detected is not None
        landmarks = detected if found else np.asarray(fallback_landmarks, dtype=np.float64)
        descriptor = self._descriptor(crop, landmarks)
        if not found and not trust_fallback:
            landmarks = np.full_like(landmarks, np.nan)
        return CropMeasurement(landmarks, descriptor, dict(labels), found)


# --------------------------------------------------------------------------------------------------
# Scores


@dataclass
class PairFaces:
    """The dataset faces of one pair, measured: target T, source S, its reference S0, and the truth G (or None)."""

    target: CropMeasurement
    source: CropMeasurement
    reference: CropMeasurement
    truth: CropMeasurement | None
    truth_image: np.ndarray | None


def _landmark_scores(output: np.ndarray, faces: PairFaces) -> dict[str, float]:
    """Motion fidelity against the source's own change, and the secondary landmark errors against the truth."""
    nan = float("nan")
    keys = [f"motion_{r}" for r in ("brows", "eyes", "mouth")]
    truth_keys = [f"truth_fidelity_{r}" for r in ("brows", "eyes", "mouth")]
    truth_keys += ["truth_nme", "truth_mar_error", "truth_ear_error"]
    scores = dict.fromkeys(keys + truth_keys, nan)
    sets = [output, faces.target.landmarks, faces.source.landmarks, faces.reference.landmarks]
    if not all(np.isfinite(points).all() for points in sets):
        return scores
    motion = metrics.region_fidelities(output, faces.target.landmarks, faces.source.landmarks, faces.reference.landmarks)
    scores.update({f"motion_{region}": value for region, value in motion.items()})
    if faces.truth is None or not np.isfinite(faces.truth.landmarks).all():
        return scores
    truth = faces.truth.landmarks
    fidelity = metrics.region_fidelities(output, faces.target.landmarks, truth)
    scores.update({f"truth_fidelity_{region}": value for region, value in fidelity.items()})
    scores["truth_nme"] = metrics.normalized_landmark_error(output, truth)
    scores["truth_mar_error"] = abs(metrics.mouth_aspect_ratio(output) - metrics.mouth_aspect_ratio(truth))
    scores["truth_ear_error"] = abs(metrics.eye_aspect_ratio(output) - metrics.eye_aspect_ratio(truth))
    return scores


def pair_scores(output: np.ndarray, measured: CropMeasurement, faces: PairFaces, kind: str) -> dict[str, float]:
    """Every per-pair measure of one output (NaN where undefined); see :mod:`aipgan_hf.evaluation_report`."""
    nan = float("nan")
    identity_target = metrics.descriptor_distance(measured.descriptor, faces.target.descriptor)
    scores = {
        "face_found": float(measured.face_found),
        "identity_target": identity_target,
        "same_person": float(identity_target < metrics.SAME_PERSON_THRESHOLD),
        # leakage only means something when source and target are different people
        "identity_source": metrics.descriptor_distance(measured.descriptor, faces.source.descriptor) if kind == CROSS_PERSON else nan,
        "ssim": metrics.ssim(output, faces.truth_image) if faces.truth_image is not None else nan,
        "psnr": metrics.psnr(output, faces.truth_image) if faces.truth_image is not None else nan,
    }
    for name, label in measured.labels.items():
        scores[f"agreement_{name}"] = float(label == faces.source.labels[name])
        scores[f"truth_agreement_{name}"] = float(label == faces.truth.labels[name]) if faces.truth is not None else nan
    scores.update(_landmark_scores(measured.landmarks, faces))
    return scores


# --------------------------------------------------------------------------------------------------
# Running the evaluation


@dataclass
class EvaluationResult:
    """Per-pair scores and landmark-measure changes of every method, and FID per method and pair kind.

    Attributes:
        pairs: the evaluation pairs.
        scores: method -> one dict of per-pair measures per pair.
        output_changes: method -> (N, 5) change of the landmark measures from the target to the output.
        source_changes: (N, 5) change of the landmark measures from the source's reference to the source.
        fid: method -> kind ("all" too) -> FID.
        classifiers: names of the expression classifiers used.
        reference_method: name of the reference row (the target's own photo; not a generated output).
    """

    pairs: list[EvaluationPair]
    scores: dict[str, list[dict[str, float]]]
    output_changes: dict[str, np.ndarray]
    source_changes: np.ndarray
    fid: dict[str, dict[str, float]]
    classifiers: tuple[str, ...]
    reference_method: str = REFERENCE_METHOD
    _cache: dict[tuple, Any] = field(default_factory=dict, repr=False, compare=False)

    def _mask(self, kind: str | None) -> np.ndarray:
        return np.array([kind is None or p.kind == kind for p in self.pairs])

    def estimate(self, method: str, key: str, kind: str | None = None) -> metrics.Estimate:
        """Mean and 95% CI of one per-pair measure for one method, over all pairs or one kind."""
        if ("estimate", method, key, kind) not in self._cache:
            values = [s.get(key, np.nan) for s, keep in zip(self.scores[method], self._mask(kind)) if keep]
            self._cache["estimate", method, key, kind] = metrics.bootstrap_mean(values)
        return self._cache["estimate", method, key, kind]

    def estimates(self, method: str, kind: str | None = None) -> dict[str, metrics.Estimate]:
        """:meth:`estimate` of every per-pair measure of one method."""
        keys = list(self.scores[method][0]) if self.scores[method] else []
        return {key: self.estimate(method, key, kind) for key in keys}

    def response(self, method: str, kind: str | None = CROSS_PERSON) -> dict[str, metrics.Estimate]:
        """Expression response (Pearson r per landmark measure and their mean, 95% CI) over one kind of pair."""
        if ("response", method, kind) not in self._cache:
            mask = self._mask(kind)
            self._cache["response", method, kind] = expression_response(self.output_changes[method][mask], self.source_changes[mask])
        return self._cache["response", method, kind]


def _measure_dataset(data: SplitData, pairs: list[EvaluationPair], measurer: CropMeasurer) -> dict[int, CropMeasurement]:
    rows = {r for p in pairs for r in (p.target, p.source, p.reference, p.truth) if r is not None}
    measured = {row: measurer.measure(data.images[row], data.landmarks[row], trust_fallback=True) for row in sorted(rows)}
    found = np.mean([m.face_found for m in measured.values()])
    logger.info("measured %d dataset crops (face found on %.0f%%)", len(measured), 100 * found)
    return measured


def _pair_faces(pair: EvaluationPair, data: SplitData, measured: dict[int, CropMeasurement]) -> PairFaces:
    truth = None if pair.truth is None else measured[pair.truth]
    truth_image = None if pair.truth is None else data.images[pair.truth]
    return PairFaces(measured[pair.target], measured[pair.source], measured[pair.reference], truth, truth_image)


def _fid_by_kind(features: np.ndarray, real: np.ndarray, pairs: list[EvaluationPair]) -> dict[str, float]:
    out = {}
    for kind in ("all", *PAIR_KINDS):
        mask = np.array([kind == "all" or p.kind == kind for p in pairs])
        if mask.sum() >= 2:
            out[kind] = metrics.frechet_distance(features[mask], real)
    return out


def _score_method(
    name: str, method: Method | None, data: SplitData, pairs: list[EvaluationPair], faces: list[PairFaces],
    measurer: CropMeasurer, measured: dict[int, CropMeasurement],
) -> tuple[np.ndarray | None, list[dict[str, float]], np.ndarray]:
    """Outputs, per-pair scores and (N, 5) measure changes of one method (``method`` None: the reference row,
    the target person's own photo, defined on cross-person pairs with a truth only)."""
    nan_change = np.full(len(MEASURE_NAMES), np.nan)
    outputs = method(pairs, data) if method is not None else None
    resolution = (data.resolution, data.resolution, 3)
    if outputs is not None and outputs.shape != (len(pairs), *resolution):
        raise ConfigError(f"{name} returned outputs of shape {outputs.shape}, expected {(len(pairs), *resolution)}")
    scores, changes = [], []
    for index, (pair, face) in enumerate(zip(pairs, faces)):
        if outputs is None and (pair.kind != CROSS_PERSON or pair.truth is None):
            scores.append(None)
            changes.append(nan_change)
            continue
        if outputs is None:
            output, measurement = data.images[pair.truth], measured[pair.truth]
        else:
            output = outputs[index]
            measurement = measurer.measure(output, face.target.landmarks)
        scores.append(pair_scores(output, measurement, face, pair.kind))
        changes.append(expression_change(measurement.landmarks, face.target.landmarks))
    keys = next((list(s) for s in scores if s is not None), [])
    scores = [s if s is not None else dict.fromkeys(keys, float("nan")) for s in scores]
    return outputs, scores, np.stack(changes)


def evaluate(
    data: SplitData,
    pairs: list[EvaluationPair],
    methods: dict[str, Method],
    measurer: CropMeasurer,
    fid_features: Callable[[np.ndarray], np.ndarray] | None,
    real_images: np.ndarray | None = None,
) -> EvaluationResult:
    """Run every method on every pair and score the outputs.

    Args:
        data: decoded rows of the split.
        pairs: the evaluation pairs.
        methods: name -> method (model and baselines); the target's own photo is added as a reference row.
        measurer: measures landmarks, descriptor and expression labels of each crop.
        fid_features: (N, R, R, 3) uint8 -> (N, D) features for FID (:class:`metrics.InceptionFeatures`),
            or None to skip FID.
        real_images: (M, R, R, 3) real crops FID compares with (default: the pairs' targets and sources).
    """
    if not pairs:
        raise ConfigError("no evaluation pairs: the split needs people with at least two images")
    measured = _measure_dataset(data, pairs, measurer)
    faces = [_pair_faces(pair, data, measured) for pair in pairs]
    source_changes = np.stack([expression_change(f.source.landmarks, f.reference.landmarks) for f in faces])  # (N, 5)
    real_features = None
    if fid_features is not None:
        if real_images is None:
            real_images = _stacked(data, sorted({r for p in pairs for r in (p.target, p.source)}))
        real_features = fid_features(real_images)
    scores, changes, fid = {}, {}, {}
    for name, method in {**methods, REFERENCE_METHOD: None}.items():
        logger.info("running %s on %d pairs", name, len(pairs))
        outputs, scores[name], changes[name] = _score_method(name, method, data, pairs, faces, measurer, measured)
        if real_features is not None and outputs is not None:
            fid[name] = _fid_by_kind(fid_features(outputs), real_features, pairs)
    return EvaluationResult(pairs, scores, changes, source_changes, fid, tuple(measurer.classifiers))


# --------------------------------------------------------------------------------------------------
# Loading a split


def load_split(dataset: str | os.PathLike, split: str) -> Any:
    """A split of a dataset saved with ``save_to_disk`` or written as parquet/imagefolder (``load_dataset``)."""
    import datasets

    path = Path(dataset)
    if not path.exists():
        raise ConfigError(f"dataset folder not found: {path}")
    try:
        if (path / "dataset_dict.json").is_file():
            splits = datasets.load_from_disk(str(path))
        else:
            splits = datasets.load_dataset(str(path))
    except (ValueError, FileNotFoundError, datasets.exceptions.DatasetGenerationError) as error:
        raise ConfigError(f"{path} is not a dataset datasets can load: {error}") from None
    if split not in splits:
        raise ConfigError(f"{path} has no split {split!r}; it has: {', '.join(splits)}")
    data = splits[split]
    missing = [column for column in REQUIRED_COLUMNS if column not in data.column_names]
    if missing:
        raise ConfigError(f"split {split!r} of {path} lacks the column(s) {missing}; it has {data.column_names}")
    return data


def split_columns(data: Any) -> SplitColumns:
    """The label columns and stored landmarks of a split (no image is decoded)."""
    landmarks = np.asarray(data.with_format("numpy", columns=["landmarks"])["landmarks"], dtype=np.float64)
    return SplitColumns(
        identities=list(data["identity"]),
        expressions=list(data["expression"]),
        clips=list(data["clip"]),
        frames=list(data["frame"]),
        sources=list(data["source"]) if "source" in data.column_names else None,
        landmarks=landmarks.reshape(len(data), -1, 2),
    )


def decode_rows(data: Any, rows: set[int]) -> SplitData:
    """Decode the images and landmarks of the given rows."""
    images, landmarks = {}, {}
    for row in sorted(rows):
        record = data[int(row)]
        images[row] = np.ascontiguousarray(np.asarray(record["image"].convert("RGB"), dtype=np.uint8))
        landmarks[row] = np.asarray(record["landmarks"], dtype=np.float64).reshape(-1, 2)
    sizes = {image.shape[:2] for image in images.values()}
    if len(sizes) != 1 or next(iter(sizes))[0] != next(iter(sizes))[1]:
        raise ConfigError(f"dataset crops must be square and all the same size, found sizes {sorted(sizes)}")
    return SplitData(images, landmarks, list(data["identity"]), next(iter(sizes))[0])


def fid_reference_rows(num_rows: int, pairs: list[EvaluationPair], count: int, seed: int = 0) -> list[int]:
    """Up to ``count`` rows of the split that no pair uses (real crops for FID, so no method's outputs are in the
    reference set); the pairs' targets and sources when the split has no unused row."""
    used = {r for p in pairs for r in (p.target, p.source, p.reference, p.truth) if r is not None}
    unused = np.array(sorted(set(range(num_rows)) - used), dtype=int)
    if len(unused) < 2:
        return sorted({r for p in pairs for r in (p.target, p.source)})
    chosen = np.random.default_rng(seed).choice(unused, size=min(count, len(unused)), replace=False)
    return sorted(int(r) for r in chosen)


# --------------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m aipgan_hf.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="dataset folder (parquet from training/prepare_dataset.py, or save_to_disk)")
    parser.add_argument("--split", default="test", help="split to evaluate on (default: test; select on validation)")
    parser.add_argument("--checkpoint", default=None, help="pipeline folder or Hub id (default: the bundled checkpoint)")
    parser.add_argument("--no_model", action="store_true", help="evaluate the baselines only (no checkpoint needed)")
    parser.add_argument("--shape_model", default=None, help="shape_model.safetensors for the retargeted warp "
                        "(default: the loaded pipeline's; without either, the source's aligned landmarks)")
    parser.add_argument("--baselines", default="all", help="'all', 'none' or a comma list of: " + ", ".join(BASELINES))
    parser.add_argument("--classifiers", default=",".join(DEFAULT_CLASSIFIERS),
                        help="comma list of expression classifiers: " + ", ".join(sorted(metrics.CLASSIFIERS)))
    parser.add_argument("--output", default="report.md", help="markdown report path (written atomically)")
    parser.add_argument("--json", default=None, help="also write the estimates as JSON here")
    parser.add_argument("--grid", default=None, help="write a sources x targets picture grid (PNG) here")
    parser.add_argument("--grid_size", type=int, default=4, help="sources and targets in the grid (default: 4)")
    parser.add_argument("--max_pairs", type=int, default=200, help="at most this many pairs (default: 200)")
    parser.add_argument("--pairs_per_identity", type=int, default=4, help="pairs of each kind per target person")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pair sampling")
    parser.add_argument("--no_fid", action="store_true", help="skip FID (saves the Inception pass)")
    parser.add_argument("--batch_size", type=int, default=16, help="model batch size")
    parser.add_argument("--device", default="cpu", help="torch device for the model and Inception (default: cpu)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; returns the exit status (0 ok, 2 user error)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return _run(args, argv)
    except AIPGANError as error:
        sys.stderr.write(f"error: {error}\n")  # the command's own message to its user, not a log line
        return 2


def write_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Write a file through a temporary sibling and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _load_model(args: argparse.Namespace, resolution: int) -> tuple[dict[str, Method], Retarget | None, dict[str, str]]:
    """The model method (unless ``--no_model``), the retarget of the warp baseline, and report lines naming both."""
    methods: dict[str, Method] = {}
    retarget: Retarget | None = None
    checkpoint = "none (baselines only)"
    retarget_name = "no shape model given: the source's landmarks aligned onto the target (carries its face shape)"
    if not args.no_model:
        from .pipeline import AIPGANPipeline

        pipeline = AIPGANPipeline.from_pretrained(args.checkpoint, device=args.device)
        if pipeline.resolution != resolution:
            raise ConfigError(f"the model works on {pipeline.resolution}px crops but the dataset has {resolution}px crops")
        methods[MODEL_METHOD] = model_method(pipeline, args.batch_size)
        shape_model = getattr(pipeline, "shape_model", None)
        checkpoint = args.checkpoint or "bundled (aipgan_hf/checkpoints/default)"
        if shape_model is not None:
            retarget, retarget_name = shape_model.drive, "the checkpoint's shape model: drive(target, source)"
    if args.shape_model:
        from .motion import ShapeModel

        retarget = ShapeModel.load(args.shape_model).drive
        retarget_name = f"`{args.shape_model}`: drive(target, source)"
    return methods, retarget, {"checkpoint": checkpoint, "retargeted warp": retarget_name}


def _write_grid(args: argparse.Namespace, data: SplitData, pairs: list[EvaluationPair], methods: dict[str, Method]) -> str:
    """Render and write the grid; returns its path relative to the report."""
    from PIL import Image

    from .evaluation_report import grid_cells, render_grid

    targets, sources = grid_cells(pairs, data.identities, args.grid_size)
    grid_method = methods.get(MODEL_METHOD) or methods.get(BASELINES["warp"]) or next(iter(methods.values()))
    buffer = io.BytesIO()
    Image.fromarray(render_grid(data, targets, sources, grid_method)).save(buffer, format="PNG")
    grid_path = write_atomically(args.grid, buffer.getvalue())
    logger.info("wrote %s", grid_path)
    return os.path.relpath(grid_path.resolve(), Path(args.output).resolve().parent)


def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    from .evaluation_report import format_report, result_to_json

    baseline_names = parse_baselines(args.baselines)
    classifier_names = parse_classifiers(args.classifiers)
    if args.no_model and not baseline_names:
        raise ConfigError("nothing to evaluate: --no_model with --baselines none")
    table = load_split(args.dataset, args.split)
    columns = split_columns(table)
    pairs = build_pairs(columns, max_pairs=args.max_pairs, pairs_per_identity=args.pairs_per_identity, seed=args.seed)
    if not pairs:
        raise ConfigError(f"split {args.split!r} has no usable pairs (people with two images, sources with a neutral reference)")
    real_rows = [] if args.no_fid else fid_reference_rows(len(table), pairs, len(pairs), args.seed)
    used = {r for p in pairs for r in (p.target, p.source, p.reference, p.truth) if r is not None}
    data = decode_rows(table, used | set(real_rows))
    methods, retarget, model_lines = _load_model(args, data.resolution)
    methods.update(baseline_methods(baseline_names, retarget))

    processor = FaceProcessor(resolution=data.resolution)
    measurer = CropMeasurer(processor, {name: metrics.ExpressionClassifier(name) for name in classifier_names})
    inception = None if args.no_fid else metrics.InceptionFeatures(device=args.device)
    real_images = _stacked(data, real_rows) if real_rows else None
    result = evaluate(data, pairs, methods, measurer, inception, real_images)
    grid_link = _write_grid(args, data, pairs, methods) if args.grid else None

    command = "python -m aipgan_hf.evaluate " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    header = {
        "dataset": f"`{args.dataset}`, split `{args.split}` ({len(table)} images, {len(set(columns.identities))} people)",
        **model_lines,
        "FID reference": f"{len(real_rows)} real crops of the split not used by any pair" if real_rows else "not computed",
        "crop": f"{data.resolution} px",
        "command": f"`{command}`",
    }
    report = format_report(result, header, grid_link)
    path = write_atomically(args.output, report.encode("utf-8"))
    if args.json:
        write_atomically(args.json, json.dumps(result_to_json(result), indent=2, allow_nan=False).encode("utf-8"))
    logger.info("wrote %s", path)
    sys.stdout.write(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
