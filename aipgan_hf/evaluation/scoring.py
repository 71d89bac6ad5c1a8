"""Scoring: every method run on every pair, each output measured like the dataset's faces and scored.

Per pair (:func:`pair_scores`): identity distance to the target and the source (and how much nearer the source
than other people's sources), classifier agreement, SSIM / PSNR against the truth, and the landmark measures
(motion fidelity against the source's own change, errors against the truth); per method
(:class:`EvaluationResult`): bootstrap means of those, the expression response of
:mod:`aipgan_hf.evaluation.measures`, and FID per kind of pair.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from .crops import CropMeasurement, CropMeasurer
from .data import SplitData, stacked
from .identity import SAME_PERSON_THRESHOLD, descriptor_distance
from .image_quality import frechet_distance, psnr, ssim
from .landmark_fidelity import eye_aspect_ratio, mouth_aspect_ratio, normalized_landmark_error, region_fidelities
from .measures import MEASURE_NAMES, expression_change, expression_response, response_slopes
from .methods import Method
from .pairs import CROSS_PERSON, PAIR_KINDS, EvaluationPair
from .statistics import Estimate, bootstrap_mean

logger = logging.getLogger(__name__)

REFERENCE_METHOD = "target's own photo (reference)"


# --------------------------------------------------------------------------------------------------
# Per-pair scores


@dataclass
class PairFaces:
    """The dataset faces of one pair, measured: target T, source S, its reference S0, and the truth G (or None);
    ``others``: (M, 128) descriptors of the other cross-person pairs' sources who are neither S's nor T's person."""

    target: CropMeasurement
    source: CropMeasurement
    reference: CropMeasurement
    truth: CropMeasurement | None
    truth_image: np.ndarray | None
    others: np.ndarray | None = None


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
    motion = region_fidelities(output, faces.target.landmarks, faces.source.landmarks, faces.reference.landmarks)
    scores.update({f"motion_{region}": value for region, value in motion.items()})
    if faces.truth is None or not np.isfinite(faces.truth.landmarks).all():
        return scores
    truth = faces.truth.landmarks
    fidelity = region_fidelities(output, faces.target.landmarks, truth)
    scores.update({f"truth_fidelity_{region}": value for region, value in fidelity.items()})
    scores["truth_nme"] = normalized_landmark_error(output, truth)
    scores["truth_mar_error"] = abs(mouth_aspect_ratio(output) - mouth_aspect_ratio(truth))
    scores["truth_ear_error"] = abs(eye_aspect_ratio(output) - eye_aspect_ratio(truth))
    return scores


def _source_nearness(descriptor: np.ndarray, faces: PairFaces) -> float:
    """How much nearer a cross-person output is to its source than to other people's sources: a face moved towards
    no one in particular (any expression moves dlib's descriptor) comes nearer to everyone, not to its source."""
    if faces.others is None or not len(faces.others):
        return float("nan")
    return float(np.mean(descriptor_distance(descriptor, faces.others))) - descriptor_distance(
        descriptor, faces.source.descriptor
    )


def pair_scores(output: np.ndarray, measured: CropMeasurement, faces: PairFaces, kind: str) -> dict[str, float]:
    """Every per-pair measure of one output (NaN where undefined); see :mod:`aipgan_hf.evaluation.report`."""
    nan = float("nan")
    identity_target = descriptor_distance(measured.descriptor, faces.target.descriptor)
    scores = {
        "face_found": float(measured.face_found),
        "identity_target": identity_target,
        "same_person": float(identity_target < SAME_PERSON_THRESHOLD),
        # leakage only means something when source and target are different people
        "identity_source": descriptor_distance(measured.descriptor, faces.source.descriptor)
        if kind == CROSS_PERSON
        else nan,
        "source_nearness": _source_nearness(measured.descriptor, faces) if kind == CROSS_PERSON else nan,
        "ssim": ssim(output, faces.truth_image) if faces.truth_image is not None else nan,
        "psnr": psnr(output, faces.truth_image) if faces.truth_image is not None else nan,
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

    def estimate(self, method: str, key: str, kind: str | None = None) -> Estimate:
        """Mean and 95% CI of one per-pair measure for one method, over all pairs or one kind."""
        if ("estimate", method, key, kind) not in self._cache:
            values = [s.get(key, np.nan) for s, keep in zip(self.scores[method], self._mask(kind)) if keep]
            self._cache["estimate", method, key, kind] = bootstrap_mean(values)
        return self._cache["estimate", method, key, kind]

    def estimates(self, method: str, kind: str | None = None) -> dict[str, Estimate]:
        """:meth:`estimate` of every per-pair measure of one method."""
        keys = list(self.scores[method][0]) if self.scores[method] else []
        return {key: self.estimate(method, key, kind) for key in keys}

    def response(self, method: str, kind: str | None = CROSS_PERSON) -> dict[str, Estimate]:
        """Expression response (Pearson r per landmark measure and their mean, 95% CI) over one kind of pair."""
        if ("response", method, kind) not in self._cache:
            mask = self._mask(kind)
            self._cache["response", method, kind] = expression_response(
                self.output_changes[method][mask], self.source_changes[mask]
            )
        return self._cache["response", method, kind]

    def slopes(self, method: str, kind: str | None = CROSS_PERSON) -> np.ndarray:
        """(5,) slope of each landmark measure's output change on the source's, over one kind of pair."""
        mask = self._mask(kind)
        return response_slopes(self.output_changes[method][mask], self.source_changes[mask])


def _measure_dataset(
    data: SplitData, pairs: list[EvaluationPair], measurer: CropMeasurer
) -> dict[int, CropMeasurement]:
    rows = {r for p in pairs for r in (p.target, p.source, p.reference, p.truth) if r is not None}
    measured = {
        row: measurer.measure(data.images[row], data.landmarks[row], trust_fallback=True) for row in sorted(rows)
    }
    found = np.mean([m.face_found for m in measured.values()])
    logger.info("measured %d dataset crops (face found on %.0f%%)", len(measured), 100 * found)
    return measured


def _pair_faces(
    pair: EvaluationPair, pairs: list[EvaluationPair], data: SplitData, measured: dict[int, CropMeasurement]
) -> PairFaces:
    truth = None if pair.truth is None else measured[pair.truth]
    truth_image = None if pair.truth is None else data.images[pair.truth]
    people = {data.identities[pair.source], data.identities[pair.target]}
    others = sorted({p.source for p in pairs if p.kind == CROSS_PERSON and data.identities[p.source] not in people})
    descriptors = np.stack([measured[row].descriptor for row in others]) if others else None
    return PairFaces(
        measured[pair.target], measured[pair.source], measured[pair.reference], truth, truth_image, descriptors
    )


def _fid_by_kind(features: np.ndarray, real: np.ndarray, pairs: list[EvaluationPair]) -> dict[str, float]:
    out = {}
    for kind in ("all", *PAIR_KINDS):
        mask = np.array([kind == "all" or p.kind == kind for p in pairs])
        if mask.sum() >= 2:
            out[kind] = frechet_distance(features[mask], real)
    return out


def _score_method(
    name: str,
    method: Method | None,
    data: SplitData,
    pairs: list[EvaluationPair],
    faces: list[PairFaces],
    measurer: CropMeasurer,
    measured: dict[int, CropMeasurement],
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
        fid_features: (N, R, R, 3) uint8 -> (N, D) features for FID (:class:`~aipgan_hf.evaluation.networks.InceptionFeatures`),
            or None to skip FID.
        real_images: (M, R, R, 3) real crops FID compares with (default: the pairs' targets and sources).
    """
    if not pairs:
        raise ConfigError("no evaluation pairs: the split needs people with at least two images")
    measured = _measure_dataset(data, pairs, measurer)
    faces = [_pair_faces(pair, pairs, data, measured) for pair in pairs]
    source_changes = np.stack([expression_change(f.source.landmarks, f.reference.landmarks) for f in faces])  # (N, 5)
    real_features = None
    if fid_features is not None:
        if real_images is None:
            real_images = stacked(data, sorted({r for p in pairs for r in (p.target, p.source)}))
        real_features = fid_features(real_images)
    scores, changes, fid = {}, {}, {}
    for name, method in {**methods, REFERENCE_METHOD: None}.items():
        logger.info("running %s on %d pairs", name, len(pairs))
        outputs, scores[name], changes[name] = _score_method(name, method, data, pairs, faces, measurer, measured)
        if real_features is not None and outputs is not None:
            fid[name] = _fid_by_kind(fid_features(outputs), real_features, pairs)
    return EvaluationResult(pairs, scores, changes, source_changes, fid, tuple(measurer.classifiers))
