"""The measures of aipgan_hf.evaluation (landmark fidelity, identity, image quality, networks, statistics,
expression measures) on constructed cases whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aipgan_hf.errors import InvalidImageError
from aipgan_hf.evaluation.identity import descriptor_distance
from aipgan_hf.evaluation.image_quality import PSNR_CAP_DB, frechet_distance, psnr, ssim
from aipgan_hf.evaluation.landmark_fidelity import (
    align_landmarks,
    apply_matrix,
    displacement_fidelity,
    eye_aspect_ratio,
    interocular_distance,
    motion_fidelity,
    mouth_aspect_ratio,
    normalized_landmark_error,
    region_fidelities,
    similarity_matrix,
)
from aipgan_hf.evaluation.networks import ExpressionClassifier, InceptionFeatures
from aipgan_hf.evaluation.statistics import bootstrap_mean, percentile_interval
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
    matrix = similarity_matrix(landmarks, moved)
    np.testing.assert_allclose(apply_matrix(landmarks, matrix), moved, atol=1e-8)
    np.testing.assert_allclose(np.linalg.det(matrix[:, :2]), 0.49, rtol=1e-8)


def test_similarity_matrix_never_reflects(astronaut_face):
    landmarks, _ = astronaut_face
    mirrored = landmarks * np.array([-1.0, 1.0])
    matrix = similarity_matrix(landmarks, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0  # a mirror image cannot be fitted, only approximated


def test_similarity_transformed_landmarks_have_zero_error(astronaut_face):
    landmarks, _ = astronaut_face
    moved = _similarity(landmarks, 1.3, -12.0, (40.0, 7.0))
    assert normalized_landmark_error(moved, landmarks) == pytest.approx(0.0, abs=1e-9)
    fidelity = region_fidelities(moved, landmarks, landmarks)
    assert all(math.isnan(value) for value in fidelity.values())  # ground truth did not move: undefined
    np.testing.assert_allclose(align_landmarks(moved, landmarks), landmarks, atol=1e-8)


def test_fidelity_recovers_a_known_mouth_displacement(astronaut_face):
    target, _ = astronaut_face
    displacement = np.zeros_like(target)
    displacement[MOUTH] = np.random.default_rng(0).normal(0, 3.0, size=(MOUTH.stop - MOUTH.start, 2))
    truth = target + displacement
    pose = dict(scale=0.9, angle_deg=8.0, shift=(5.0, -3.0))  # the output may sit elsewhere in its frame

    def fidelity(output):
        return displacement_fidelity(_similarity(output, **pose), target, truth, MOUTH_POINTS)

    assert fidelity(target) == pytest.approx(0.0, abs=1e-9)  # did not move: as good as the target
    assert fidelity(truth) == pytest.approx(1.0, abs=1e-9)
    assert fidelity(target + 0.5 * displacement) == pytest.approx(0.5, abs=1e-9)
    assert fidelity(target + 2.0 * displacement) == pytest.approx(0.0, abs=1e-9)  # overshoot by 100%
    assert fidelity(target - displacement) == pytest.approx(-1.0, abs=1e-9)  # moved the wrong way
    regions = region_fidelities(truth, target, truth)
    assert regions["mouth"] == pytest.approx(1.0)
    assert math.isnan(regions["brows"]) and math.isnan(regions["eyes"])


def test_landmark_error_is_relative_to_interocular_distance(astronaut_face):
    truth, _ = astronaut_face
    output = truth.copy()
    output[MOUTH] += np.array([0.0, 2.0])  # 20 mouth points moved 2 px down; anchors untouched
    expected = 2.0 * 20 / 68 / interocular_distance(truth)
    assert normalized_landmark_error(output, truth) == pytest.approx(expected, rel=1e-9)


def test_mouth_aspect_ratio_measures_the_opening(astronaut_face):
    landmarks, _ = astronaut_face
    width = np.linalg.norm(landmarks[48] - landmarks[54])
    upper_inner = [INNER_LIPS.start + 1, INNER_LIPS.start + 2, INNER_LIPS.start + 3]  # 61, 62, 63
    lower_inner = [INNER_LIPS.start + 7, INNER_LIPS.start + 6, INNER_LIPS.start + 5]  # 67, 66, 65 facing them
    closed = landmarks.copy()
    closed[lower_inner] = closed[upper_inner]
    opened = closed.copy()
    opened[lower_inner, 1] += 6.0  # image y grows downwards: the lower lip drops 6 px
    assert mouth_aspect_ratio(closed) == pytest.approx(0.0, abs=1e-12)
    assert mouth_aspect_ratio(opened) == pytest.approx(6.0 / width, rel=1e-9)
    moved = _similarity(opened, 2.0, 30.0, (1.0, 1.0))  # a ratio: pose and scale do not change it
    assert mouth_aspect_ratio(moved) == pytest.approx(6.0 / width, rel=1e-9)


def test_eye_aspect_ratio_falls_when_eyes_close(astronaut_face):
    landmarks, _ = astronaut_face
    closed = landmarks.copy()
    for eye in (RIGHT_EYE, slice(42, 48)):
        upper, lower = [eye.start + 1, eye.start + 2], [eye.start + 5, eye.start + 4]
        closed[upper] = closed[lower] = (landmarks[upper] + landmarks[lower]) / 2
    assert eye_aspect_ratio(closed) == pytest.approx(0.0, abs=1e-9)
    assert 0.15 < eye_aspect_ratio(landmarks) < 0.45


def test_landmark_shapes_are_checked():
    with pytest.raises(ValueError, match="68"):
        mouth_aspect_ratio(np.zeros((5, 2)))


def test_descriptor_distance():
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=(4, 128)), rng.normal(size=(4, 128))
    assert descriptor_distance(first[0], first[0]) == 0.0
    assert descriptor_distance(first[0], second[0]) == pytest.approx(np.linalg.norm(first[0] - second[0]))
    assert descriptor_distance(first, second).shape == (4,)
    with pytest.raises(ValueError):
        descriptor_distance(first, second[:, :64])


def test_psnr_and_ssim(astronaut):
    image = astronaut[:128, :128]
    noisy = np.clip(image.astype(int) + np.random.default_rng(0).integers(-20, 21, image.shape), 0, 255).astype(
        np.uint8
    )
    assert psnr(image, image) == PSNR_CAP_DB
    assert ssim(image, image) == pytest.approx(1.0)
    assert 15.0 < psnr(noisy, image) < 40.0
    assert ssim(noisy, image) < 0.95
    noisier = np.clip(image.astype(int) + np.random.default_rng(1).integers(-60, 61, image.shape), 0, 255)
    assert ssim(noisier.astype(np.uint8), image) < ssim(noisy, image)
    assert psnr(noisier.astype(np.uint8), image) < psnr(noisy, image)
    with pytest.raises(InvalidImageError):
        psnr(image, image[:64])


def test_bootstrap_mean_interval():
    values = np.random.default_rng(3).normal(5.0, 1.0, size=400)
    estimate = bootstrap_mean(np.concatenate([values, [np.nan, np.inf]]))
    assert estimate.n == 400
    assert estimate.mean == pytest.approx(values.mean())
    assert estimate.low < estimate.mean < estimate.high
    assert 0.12 < estimate.high - estimate.low < 0.28  # about 2 * 1.96 / sqrt(400) = 0.196
    assert bootstrap_mean(values) == bootstrap_mean(values)  # seeded: reproducible
    assert bootstrap_mean([2.0, 2.0, 2.0]).format() == "2.000 [2.000, 2.000]"
    assert bootstrap_mean([np.nan]).n == 0
    assert bootstrap_mean([]).format() == "n/a"
    assert bootstrap_mean([0, 1, 1, 1]).mean == 0.75  # a binary agreement rate


@pytest.mark.parametrize("name", ["fer", "facex"])
def test_expression_classifier_sees_the_smile(name, astronaut_face, grace_hopper):
    _, smiling = astronaut_face
    classifier = ExpressionClassifier(name)
    probabilities = classifier.probabilities([smiling, grace_hopper[60:330, 130:380]])
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-3)
    labels = classifier.predict([smiling, grace_hopper[60:330, 130:380]])
    assert labels[0] == "happiness"
    assert labels[1] != "happiness"
    assert set(classifier.labels) == {"anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"}


def test_expression_classifier_rejects_unknown_names():
    with pytest.raises(ValueError, match="fer"):
        ExpressionClassifier("vgg")


def test_fid_features_and_distance(astronaut_face, grace_hopper):
    from skimage.transform import resize

    _, crop = astronaut_face
    faces = [resize(face, (64, 64), anti_aliasing=True) for face in (crop, grace_hopper[60:330, 130:380])]
    faces = (np.stack(faces) * 255).astype(np.uint8)  # (2, 64, 64, 3)
    rng = np.random.default_rng(0)
    jittered = np.clip(faces.astype(int) + rng.integers(-8, 9, faces.shape), 0, 255).astype(np.uint8)
    noise = rng.integers(0, 256, faces.shape, dtype=np.uint8)
    inception = InceptionFeatures()
    features = inception(np.concatenate([faces, jittered, noise]))
    assert features.shape == (6, 2048) and np.isfinite(features).all()
    real, near, far = features[:2], features[2:4], features[4:]
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-3)
    assert frechet_distance(real, near) < frechet_distance(real, far)
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(real[:1], near)


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
    assert frechet_distance(first, second) == pytest.approx(expected, rel=1e-6)


@pytest.mark.data
def test_classifier_tells_london_smiles_from_neutral_faces(data_dir):
    """On aligned 128 px crops (what the evaluation feeds it), smiling London faces read as happiness and the
    same people's neutral faces do not."""
    from aipgan_hf.faces import FaceProcessor

    processor = FaceProcessor(resolution=128)
    classifier = ExpressionClassifier("fer")
    people = sorted(p.name[:3] for p in (data_dir / "london" / "neutral").glob("*_03.jpg"))[:12]
    happy = {"neutral": 0, "smiling": 0}
    for person in people:
        for kind, suffix in (("neutral", "03"), ("smiling", "08")):
            face = processor.align(data_dir / "london" / kind / f"{person}_{suffix}.jpg")
            happy[kind] += classifier.predict([face.crop])[0] == "happiness"
    assert happy["smiling"] >= 0.75 * len(people)
    assert happy["neutral"] <= 0.25 * len(people)


# ------------------------------------------------------------------------------------------ motion fidelity


def test_motion_fidelity_compares_with_the_sources_own_change(astronaut_face):
    """The wanted motion is S - S0 of another face in another pose; it is measured in the target's frame."""
    target, _ = astronaut_face
    change = np.zeros_like(target)
    change[MOUTH] = np.random.default_rng(4).normal(0, 3.0, size=(MOUTH.stop - MOUTH.start, 2))
    rest = _similarity(target * np.array([1.1, 0.95]), 0.6, -20.0, (30.0, 9.0))  # another face shape and pose
    moved = _similarity(target * np.array([1.1, 0.95]) + change / np.array([1.0, 1.0]), 0.6, -20.0, (30.0, 9.0))
    # the change, seen in the target's frame: S - S0 mapped back by the (known) pose, and the shape scaling
    wanted_in_target = align_landmarks(moved, target) - align_landmarks(rest, target)

    def fidelity(output):
        return motion_fidelity(output, target, moved, rest, MOUTH_POINTS)

    assert fidelity(target) == pytest.approx(0.0, abs=1e-9)
    assert fidelity(target + wanted_in_target) == pytest.approx(1.0, abs=1e-9)
    assert fidelity(target - wanted_in_target) == pytest.approx(-1.0, abs=1e-9)
    assert fidelity(target + 0.5 * wanted_in_target) == pytest.approx(0.5, abs=1e-9)
    assert math.isnan(motion_fidelity(target, target, rest, rest, MOUTH_POINTS))  # no wanted motion
    regions = region_fidelities(target + wanted_in_target, target, moved, rest)
    assert regions["mouth"] == pytest.approx(1.0, abs=1e-9)


def test_percentile_interval_ignores_undefined_resamples():
    low, high = percentile_interval(np.r_[np.linspace(0, 1, 101), np.nan, np.inf], 0.9)
    assert low == pytest.approx(0.05) and high == pytest.approx(0.95)
    assert all(math.isnan(v) for v in percentile_interval(np.array([np.nan])))


# ------------------------------------------------------------------------------------------ expression measures


def _moved(landmarks: np.ndarray, points, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    out = landmarks.copy()
    out[list(points)] += np.array([dx, dy])
    return out


def test_each_landmark_measure_reads_its_own_motion(astronaut_face):
    """Moving one feature by d pixels changes its measure by d / eye distance and leaves the others alone."""
    from aipgan_hf.evaluation import measures as em

    face, _ = astronaut_face
    unit = interocular_distance(face)
    lower_inner_lip, corners = [65, 66, 67], [48, 54]
    motions = {
        "mouth_open": (_moved(face, lower_inner_lip, dy=4.0), 4.0),
        "mouth_width": (_moved(_moved(face, [48], dx=-2.0), [54], dx=2.0), 4.0),
        "corner_lift": (_moved(face, corners, dy=-3.0), 3.0),  # image y grows downwards: -3 = up
        "brow_raise": (_moved(face, range(17, 27), dy=-5.0), 5.0),
        "eye_open": (_moved(face, [37, 38, 43, 44], dy=2.0), -2.0),  # upper lids drop: eyes close
    }
    for name, (moved, pixels) in motions.items():
        change = dict(zip(em.MEASURE_NAMES, em.expression_change(moved, face)))
        assert change[name] == pytest.approx(pixels / unit, rel=0.02), name
        others = [abs(v) for k, v in change.items() if k != name and not (name == "mouth_width" and k == "corner_lift")]
        assert max(others) < 0.02 * abs(pixels / unit), (name, change)


def test_landmark_measures_ignore_pose_and_scale(astronaut_face):
    from aipgan_hf.evaluation import measures as em

    face, _ = astronaut_face
    expressive = _moved(_moved(face, [65, 66, 67], dy=5.0), range(17, 27), dy=-3.0)
    change = em.expression_change(expressive, face)
    posed = em.expression_change(_similarity(expressive, 0.5, 30.0, (7.0, 2.0)), face)  # the face elsewhere, turned
    np.testing.assert_allclose(posed, change, atol=1e-9)
    both = em.expression_change(
        _similarity(expressive, 2.0, -15.0, (1.0, 1.0)), _similarity(face, 2.0, -15.0, (1.0, 1.0))
    )
    np.testing.assert_allclose(both, change, atol=1e-9)  # eye-distance units: scale-free
    np.testing.assert_array_equal(em.expression_change(face, face), 0.0)
    assert np.isnan(em.landmark_measures(np.full((68, 2), np.nan), face)).all()


def test_neutrality_prefers_a_closed_typical_face(astronaut_face):
    from aipgan_hf.evaluation import measures as em

    face, _ = astronaut_face
    closed = face.copy()
    closed[[65, 66, 67]] = closed[[63, 62, 61]]  # lips together
    rng = np.random.default_rng(0)
    frames = [closed + rng.normal(0, 0.1, face.shape) for _ in range(5)]  # a resting face with landmark noise
    frames[2] = _moved(closed, [65, 66, 67, 56, 57, 58], dy=8.0)  # open mouth
    frames[3] = _moved(closed, range(17, 27), dy=-6.0)  # brows up, mouth closed
    frames.append(_similarity(closed, 1.3, 10.0, (5.0, 5.0)))  # the resting face, closer and turned: most neutral
    scores = em.neutrality_scores(np.stack(frames))
    assert scores.argmin() == 5
    assert scores[2] > max(scores[[0, 1, 4]]) and scores[3] > max(scores[[0, 1, 4]])


def test_pearson_conventions():
    from aipgan_hf.evaluation import measures as em

    rng = np.random.default_rng(0)
    source = rng.normal(size=(40, 5))
    np.testing.assert_allclose(em.pearson(2.0 * source + 1.0, source), 1.0)
    np.testing.assert_allclose(em.pearson(-source, source), -1.0)
    np.testing.assert_array_equal(em.pearson(np.zeros_like(source), source), 0.0)  # never moves: no response
    assert np.isnan(em.pearson(source, np.ones_like(source))).all()  # the source never changes: undefined
    batched = em.pearson(np.stack([source, -source]), np.stack([source, source]))  # (2, 5): resamples axis first
    np.testing.assert_allclose(batched, [[1.0] * 5, [-1.0] * 5])


def test_expression_response_of_copy_noise_and_stillness():
    from aipgan_hf.evaluation import measures as em

    rng = np.random.default_rng(1)
    source = rng.normal(size=(60, 5))
    copy = em.expression_response(source + rng.normal(0, 0.05, source.shape), source)
    assert all(copy[m].mean > 0.99 and copy[m].low > 0.98 for m in (*em.MEASURE_NAMES, "mean"))
    still = em.expression_response(np.zeros_like(source), source)
    assert still["mean"].mean == 0.0 and (still["mean"].low, still["mean"].high) == (0.0, 0.0)
    many = rng.normal(size=(400, 5))
    noise = em.expression_response(rng.normal(size=many.shape), many)
    assert noise["mean"].low < 0.0 < noise["mean"].high  # unrelated motion: no response
    assert abs(noise["mean"].mean) < 0.1 and noise["mean"].high - noise["mean"].low < 0.15
    half = source.copy()
    half[:, :2] = rng.normal(size=(60, 2))  # two measures answered with noise, three copied
    mixed = em.expression_response(half, source)
    assert mixed["mean"].mean == pytest.approx(np.mean([mixed[m].mean for m in em.MEASURE_NAMES]))
    assert 0.4 < mixed["mean"].mean < 0.8
    with_gaps = source.copy()
    with_gaps[:10] = np.nan  # landmarks not found on 10 outputs: those pairs are left out
    assert em.expression_response(with_gaps, source)["mean"].n == 50
    assert em.expression_response(source[:2], source[:2])["mean"].n == 0  # too few pairs for an r


def test_response_slopes_say_how_far_the_output_moves_against_the_source():
    from aipgan_hf.evaluation.measures import response_slopes

    rng = np.random.default_rng(0)
    source = rng.normal(size=(50, 5))
    output = source * np.array([1.0, 0.5, 0.25, 2.0, 0.0]) + 0.3  # an offset does not change a slope
    output[:, 4] = rng.normal(size=50) * 1e-3  # unrelated to the source
    slopes = response_slopes(output, source)
    assert np.allclose(slopes[:4], [1.0, 0.5, 0.25, 2.0]) and abs(slopes[4]) < 0.01
    source[:, 0] = 1.0  # a constant source change: no slope to speak of
    assert np.isnan(response_slopes(output, source)[0])
