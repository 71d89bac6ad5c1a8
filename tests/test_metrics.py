"""Measures of aipgan_hf.metrics on constructed cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aipgan_hf import metrics
from aipgan_hf.errors import InvalidImageError
from aipgan_hf.landmarks import EXPRESSION_REGIONS, INNER_LIPS, MOUTH, RIGHT_EYE, region_indices

MOUTH_POINTS = region_indices(EXPRESSION_REGIONS["mouth"])


@pytest.fixture(scope="module")
def astronaut_face(astronaut):
    """(68, 2) dlib landmarks of the astronaut photo and a face crop with a margin around the detector box."""
    import importlib.util

    import dlib

    models = importlib.util.find_spec("face_recognition_models").submodule_search_locations[0] + "/models/"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(models + "shape_predictor_68_face_landmarks.dat")
    box = detector(astronaut, 1)[0]
    shape = predictor(astronaut, box)
    landmarks = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
    x0, y0, x1, y1 = box.left(), box.top(), box.right(), box.bottom()
    margin = (x1 - x0) // 8
    crop = astronaut[max(0, y0 - margin) : y1 + margin, max(0, x0 - margin) : x1 + margin]
    return landmarks, crop


def _similarity(points: np.ndarray, scale: float, angle_deg: float, shift: tuple[float, float]) -> np.ndarray:
    angle = math.radians(angle_deg)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return scale * points @ rotation.T + np.array(shift)


def test_similarity_matrix_recovers_a_known_transform(astronaut_face):
    landmarks, _ = astronaut_face
    moved = _similarity(landmarks, 0.7, 25.0, (13.0, -4.0))
    matrix = metrics.similarity_matrix(landmarks, moved)
    np.testing.assert_allclose(metrics.apply_matrix(landmarks, matrix), moved, atol=1e-8)
    np.testing.assert_allclose(np.linalg.det(matrix[:, :2]), 0.49, rtol=1e-8)


def test_similarity_matrix_never_reflects(astronaut_face):
    landmarks, _ = astronaut_face
    mirrored = landmarks * np.array([-1.0, 1.0])
    matrix = metrics.similarity_matrix(landmarks, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0  # a mirror image cannot be fitted, only approximated


def test_similarity_transformed_landmarks_have_zero_error(astronaut_face):
    landmarks, _ = astronaut_face
    moved = _similarity(landmarks, 1.3, -12.0, (40.0, 7.0))
    assert metrics.normalized_landmark_error(moved, landmarks) == pytest.approx(0.0, abs=1e-9)
    fidelity = metrics.region_fidelities(moved, landmarks, landmarks)
    assert all(math.isnan(value) for value in fidelity.values())  # ground truth did not move: undefined
    np.testing.assert_allclose(metrics.align_landmarks(moved, landmarks), landmarks, atol=1e-8)


def test_fidelity_recovers_a_known_mouth_displacement(astronaut_face):
    target, _ = astronaut_face
    displacement = np.zeros_like(target)
    displacement[MOUTH] = np.random.default_rng(0).normal(0, 3.0, size=(MOUTH.stop - MOUTH.start, 2))
    truth = target + displacement
    pose = dict(scale=0.9, angle_deg=8.0, shift=(5.0, -3.0))  # the output may sit elsewhere in its frame

    def fidelity(output):
        return metrics.displacement_fidelity(_similarity(output, **pose), target, truth, MOUTH_POINTS)

    assert fidelity(target) == pytest.approx(0.0, abs=1e-9)  # did not move: as good as the target
    assert fidelity(truth) == pytest.approx(1.0, abs=1e-9)
    assert fidelity(target + 0.5 * displacement) == pytest.approx(0.5, abs=1e-9)
    assert fidelity(target + 2.0 * displacement) == pytest.approx(0.0, abs=1e-9)  # overshoot by 100%
    assert fidelity(target - displacement) == pytest.approx(-1.0, abs=1e-9)  # moved the wrong way
    regions = metrics.region_fidelities(truth, target, truth)
    assert regions["mouth"] == pytest.approx(1.0)
    assert math.isnan(regions["brows"]) and math.isnan(regions["eyes"])


def test_landmark_error_is_relative_to_interocular_distance(astronaut_face):
    truth, _ = astronaut_face
    output = truth.copy()
    output[MOUTH] += np.array([0.0, 2.0])  # 20 mouth points moved 2 px down; anchors untouched
    expected = 2.0 * 20 / 68 / metrics.interocular_distance(truth)
    assert metrics.normalized_landmark_error(output, truth) == pytest.approx(expected, rel=1e-9)


def test_mouth_aspect_ratio_measures_the_opening(astronaut_face):
    landmarks, _ = astronaut_face
    width = np.linalg.norm(landmarks[48] - landmarks[54])
    upper_inner = [INNER_LIPS.start + 1, INNER_LIPS.start + 2, INNER_LIPS.start + 3]  # 61, 62, 63
    lower_inner = [INNER_LIPS.start + 7, INNER_LIPS.start + 6, INNER_LIPS.start + 5]  # 67, 66, 65 facing them
    closed = landmarks.copy()
    closed[lower_inner] = closed[upper_inner]
    opened = closed.copy()
    opened[lower_inner, 1] += 6.0  # image y grows downwards: the lower lip drops 6 px
    assert metrics.mouth_aspect_ratio(closed) == pytest.approx(0.0, abs=1e-12)
    assert metrics.mouth_aspect_ratio(opened) == pytest.approx(6.0 / width, rel=1e-9)
    moved = _similarity(opened, 2.0, 30.0, (1.0, 1.0))  # a ratio: pose and scale do not change it
    assert metrics.mouth_aspect_ratio(moved) == pytest.approx(6.0 / width, rel=1e-9)


def test_eye_aspect_ratio_falls_when_eyes_close(astronaut_face):
    landmarks, _ = astronaut_face
    closed = landmarks.copy()
    for eye in (RIGHT_EYE, slice(42, 48)):
        upper, lower = [eye.start + 1, eye.start + 2], [eye.start + 5, eye.start + 4]
        closed[upper] = closed[lower] = (landmarks[upper] + landmarks[lower]) / 2
    assert metrics.eye_aspect_ratio(closed) == pytest.approx(0.0, abs=1e-9)
    assert 0.15 < metrics.eye_aspect_ratio(landmarks) < 0.45


def test_landmark_shapes_are_checked():
    with pytest.raises(ValueError, match="68"):
        metrics.mouth_aspect_ratio(np.zeros((5, 2)))


def test_descriptor_distance():
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=(4, 128)), rng.normal(size=(4, 128))
    assert metrics.descriptor_distance(first[0], first[0]) == 0.0
    assert metrics.descriptor_distance(first[0], second[0]) == pytest.approx(np.linalg.norm(first[0] - second[0]))
    assert metrics.descriptor_distance(first, second).shape == (4,)
    with pytest.raises(ValueError):
        metrics.descriptor_distance(first, second[:, :64])


def test_psnr_and_ssim(astronaut):
    image = astronaut[:128, :128]
    noisy = np.clip(image.astype(int) + np.random.default_rng(0).integers(-20, 21, image.shape), 0, 255).astype(np.uint8)
    assert metrics.psnr(image, image) == metrics.PSNR_CAP_DB
    assert metrics.ssim(image, image) == pytest.approx(1.0)
    assert 15.0 < metrics.psnr(noisy, image) < 40.0
    assert metrics.ssim(noisy, image) < 0.95
    noisier = np.clip(image.astype(int) + np.random.default_rng(1).integers(-60, 61, image.shape), 0, 255)
    assert metrics.ssim(noisier.astype(np.uint8), image) < metrics.ssim(noisy, image)
    assert metrics.psnr(noisier.astype(np.uint8), image) < metrics.psnr(noisy, image)
    with pytest.raises(InvalidImageError):
        metrics.psnr(image, image[:64])


def test_bootstrap_mean_interval():
    values = np.random.default_rng(3).normal(5.0, 1.0, size=400)
    estimate = metrics.bootstrap_mean(np.concatenate([values, [np.nan, np.inf]]))
    assert estimate.n == 400
    assert estimate.mean == pytest.approx(values.mean())
    assert estimate.low < estimate.mean < estimate.high
    assert 0.12 < estimate.high - estimate.low < 0.28  # about 2 * 1.96 / sqrt(400) = 0.196
    assert metrics.bootstrap_mean(values) == metrics.bootstrap_mean(values)  # seeded: reproducible
    assert metrics.bootstrap_mean([2.0, 2.0, 2.0]).format() == "2.000 [2.000, 2.000]"
    assert metrics.bootstrap_mean([np.nan]).n == 0
    assert metrics.bootstrap_mean([]).format() == "n/a"
    assert metrics.bootstrap_mean([0, 1, 1, 1]).mean == 0.75  # a binary agreement rate


@pytest.mark.parametrize("name", ["fer", "facex"])
def test_expression_classifier_sees_the_smile(name, astronaut_face, grace_hopper):
    _, smiling = astronaut_face
    classifier = metrics.ExpressionClassifier(name)
    probabilities = classifier.probabilities([smiling, grace_hopper[60:330, 130:380]])
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-3)
    labels = classifier.predict([smiling, grace_hopper[60:330, 130:380]])
    assert labels[0] == "happiness"
    assert labels[1] != "happiness"
    assert set(classifier.labels) == {"anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"}


def test_expression_classifier_rejects_unknown_names():
    with pytest.raises(ValueError, match="fer"):
        metrics.ExpressionClassifier("vgg")


def test_fid_features_and_distance(astronaut_face, grace_hopper):
    from skimage.transform import resize

    _, crop = astronaut_face
    faces = [resize(face, (64, 64), anti_aliasing=True) for face in (crop, grace_hopper[60:330, 130:380])]
    faces = (np.stack(faces) * 255).astype(np.uint8)  # (2, 64, 64, 3)
    rng = np.random.default_rng(0)
    jittered = np.clip(faces.astype(int) + rng.integers(-8, 9, faces.shape), 0, 255).astype(np.uint8)
    noise = rng.integers(0, 256, faces.shape, dtype=np.uint8)
    inception = metrics.InceptionFeatures()
    features = inception(np.concatenate([faces, jittered, noise]))
    assert features.shape == (6, 2048) and np.isfinite(features).all()
    real, near, far = features[:2], features[2:4], features[4:]
    assert metrics.frechet_distance(real, real) == pytest.approx(0.0, abs=1e-3)
    assert metrics.frechet_distance(real, near) < metrics.frechet_distance(real, far)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_distance(real[:1], near)


@pytest.mark.parametrize("sizes", [(6, 9, 20), (60, 50, 8)])  # fewer images than dimensions, and more
def test_frechet_distance_matches_the_sqrtm_formula(sizes):
    from scipy import linalg

    n_first, n_second, dims = sizes
    rng = np.random.default_rng(0)
    first = rng.normal(size=(n_first, dims))
    second = rng.normal(size=(n_second, dims)) * 1.5 + 0.3
    cov_first, cov_second = np.cov(first, rowvar=False), np.cov(second, rowvar=False)
    expected = np.sum((first.mean(0) - second.mean(0)) ** 2) + np.trace(
        cov_first + cov_second - 2 * np.real(linalg.sqrtm(cov_first @ cov_second))
    )
    assert metrics.frechet_distance(first, second) == pytest.approx(expected, rel=1e-6)


@pytest.mark.data
def test_classifier_tells_london_smiles_from_neutral_faces(data_dir):
    """On aligned 128 px crops (what the evaluation feeds it), smiling London faces read as happiness and the
    same people's neutral faces do not."""
    from aipgan_hf.processing import FaceProcessor

    processor = FaceProcessor(resolution=128)
    classifier = metrics.ExpressionClassifier("fer")
    people = sorted(p.name[:3] for p in (data_dir / "london" / "neutral").glob("*_03.jpg"))[:12]
    happy = {"neutral": 0, "smiling": 0}
    for person in people:
        for kind, suffix in (("neutral", "03"), ("smiling", "08")):
            face = processor.align(data_dir / "london" / kind / f"{person}_{suffix}.jpg")
            happy[kind] += classifier.predict([face.crop])[0] == "happiness"
    assert happy["smiling"] >= 0.75 * len(people)
    assert happy["neutral"] <= 0.25 * len(people)
