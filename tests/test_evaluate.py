"""aipgan_hf.evaluation (run as `python -m aipgan_hf.evaluation`): pairs and references, baselines, scores,
the expression response of known motions, and the one-command report, on faces built from the wheel photos."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from aipgan_hf.errors import ConfigError
from aipgan_hf.evaluation import methods as methods_module
from aipgan_hf.evaluation import run
from aipgan_hf.evaluation.crops import CropMeasurer
from aipgan_hf.evaluation.data import SplitData, load_split, split_columns
from aipgan_hf.evaluation.image_quality import PSNR_CAP_DB
from aipgan_hf.evaluation.landmark_fidelity import ANCHOR_POINTS, apply_matrix, similarity_matrix
from aipgan_hf.evaluation.measures import MEASURE_NAMES
from aipgan_hf.evaluation.methods import (
    BASELINES,
    MODEL_METHOD,
    RELATIVE_METHOD,
    aligned_source_retarget,
    baseline_methods,
    model_method,
    oracle_landmarks,
    piecewise_affine_warp,
)
from aipgan_hf.evaluation.networks import ExpressionClassifier
from aipgan_hf.evaluation.pairs import (
    CROSS_PERSON,
    SAME_PERSON,
    EvaluationPair,
    SplitColumns,
    build_pairs,
    choose_references,
)
from aipgan_hf.evaluation.report import format_report, grid_cells, result_to_json
from aipgan_hf.evaluation.scoring import REFERENCE_METHOD, evaluate

RESOLUTION = 128
LOWER_FACE = [5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 65, 66, 67]  # chin, lower lip: drop to open the mouth
LABELS = ("happiness", "surprise", "anger", "fear")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _express(crop: np.ndarray, landmarks: np.ndarray, amounts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face with a made-up expression, by a landmark-driven warp: (open, widen, lift corners, raise brows,
    lower lids) in pixels."""
    open_mouth, widen, lift, brows, lids = amounts
    moved = landmarks.astype(np.float64).copy()
    moved[LOWER_FACE, 1] += open_mouth
    moved[[48, 49, 59, 60], 0] -= widen
    moved[[54, 53, 55, 64], 0] += widen
    moved[[48, 54, 60, 64], 1] -= lift
    moved[17:27, 1] -= brows
    moved[[37, 38, 43, 44], 1] += lids
    return piecewise_affine_warp(crop, landmarks, moved), moved


@pytest.fixture(scope="module")
def people(astronaut, grace_hopper) -> list[dict]:
    """Two people, each a neutral photo and four made-up expressions of different strengths (each person's own:
    the astronaut's "anger" is not Hopper's)."""
    from aipgan_hf.faces import FaceProcessor

    processor = FaceProcessor(resolution=RESOLUTION)
    rows = []
    for seed, (identity, photo) in enumerate((("wheel/astronaut", astronaut), ("wheel/hopper", grace_hopper))):
        face = processor.align(photo, quick_look=False)  # the full face search (figures of 8 pairs move with the crop)
        rows.append(
            dict(
                image=face.crop,
                landmarks=face.crop_landmarks.astype(np.float64),
                identity=identity,
                expression="neutral",
            )
        )
        amounts = np.random.default_rng(seed).uniform([0, -3, 0, 0, 0], [12, 5, 6, 8, 4], size=(len(LABELS), 5))
        for label, amount in zip(LABELS, amounts):
            image, moved = _express(face.crop, face.crop_landmarks, amount)
            rows.append(dict(image=image, landmarks=moved, identity=identity, expression=label))
    return rows


def _columns(rows: list[dict], with_landmarks: bool = True) -> SplitColumns:
    return SplitColumns(
        identities=[r["identity"] for r in rows],
        expressions=[r.get("expression", "") for r in rows],
        clips=[r.get("clip", "") for r in rows],
        frames=[r.get("frame", -1) for r in rows],
        sources=[r["source"] for r in rows] if all("source" in r for r in rows) else None,
        landmarks=np.stack([r["landmarks"] for r in rows]) if with_landmarks else None,
    )


def _split_data(rows: list[dict]) -> SplitData:
    return SplitData(
        images={i: r["image"] for i, r in enumerate(rows)},
        landmarks={i: np.asarray(r["landmarks"], dtype=np.float64) for i, r in enumerate(rows)},
        identities=[r["identity"] for r in rows],
        resolution=RESOLUTION,
    )


# ------------------------------------------------------------------------------------------ references and pairs


def _with_mouth(base: np.ndarray, opening: float) -> np.ndarray:
    shape = base.copy()
    shape[[65, 66, 67]] = shape[[63, 62, 61]] + np.array([0.0, opening])
    return shape


def test_references_follow_the_rules(people):
    """Clip: most neutral frame; neutral-labelled photos: the most neutral of those; unlabelled photos: the most
    neutral photo; labelled photos without a neutral one: no reference."""
    base = people[0]["landmarks"]
    rows = [
        dict(identity="v", clip="v/c1", frame=f, landmarks=_with_mouth(base, abs(f - 30) / 3 + 1))
        for f in range(0, 61, 5)
    ]
    rows += [
        dict(identity="london/1", expression="neutral", landmarks=_with_mouth(base, 0.0)),
        dict(identity="london/1", expression="happiness", landmarks=_with_mouth(base, 4.0)),
    ]
    rows += [
        dict(identity="lfw/a", expression="neutral", landmarks=_with_mouth(base, 3.0)),
        dict(identity="lfw/a", expression="neutral", landmarks=_with_mouth(base, 0.5)),
        dict(identity="lfw/a", expression="surprise", landmarks=_with_mouth(base, 9.0)),
        dict(identity="lfw/a", expression="", landmarks=_with_mouth(base, 9.0)),
    ]
    rows += [dict(identity="lfw/b", expression="happiness", landmarks=base)] * 2
    rows += [dict(identity="grimace/g", expression="", landmarks=_with_mouth(base, m)) for m in (6.0, 0.2, 8.0, 3.0)]
    references = choose_references(_columns(rows))
    frame_30 = 6
    assert {s: r for s, r in references.items() if s < 13} == {
        s: frame_30 for s in range(13) if abs(s - frame_30) * 5 >= 15
    }
    assert references[14] == 13  # London smiling -> the same person's neutral
    assert (
        references[17] == 16 and 18 not in references and 15 not in references
    )  # most neutral neutral; unlabelled is no source
    assert 19 not in references and 20 not in references  # no neutral photo: no reference
    assert {references[r] for r in (21, 23, 24)} == {22} and 22 not in references
    first = choose_references(_columns(rows, with_landmarks=False))
    assert first[17] == 15 and first[14] == 13  # without landmarks: the first candidate


def _label_rows() -> list[dict]:
    rows = [
        dict(identity=f"lfw/{i}", expression=e, source="lfw")
        for i in range(6)
        for e in ("neutral", "happiness", "surprise")
    ]
    rows += [
        dict(identity=f"london/{i}", expression=e, source="london") for i in range(3) for e in ("neutral", "happiness")
    ]
    rows += [
        dict(identity="video/x", clip="x1", frame=f, expression="", source="video/pc-avs") for f in range(0, 200, 10)
    ]
    rows += [
        dict(identity="lfw/single", expression="sadness", source="lfw")
    ]  # a single photo, no neutral: a target only
    return rows


def test_cross_pairs_have_the_source_persons_reference():
    rows = _label_rows()
    columns = _columns(rows, with_landmarks=False)
    references = choose_references(columns)
    pairs = build_pairs(columns, max_pairs=200, pairs_per_identity=4)
    same = [p for p in pairs if p.kind == SAME_PERSON]
    cross = [p for p in pairs if p.kind == CROSS_PERSON]
    assert len(same) > 10 and len(cross) > 10
    identity = columns.identities
    for pair in same:
        assert pair.reference == pair.target != pair.source == pair.truth
        assert identity[pair.source] == identity[pair.target]
    for pair in cross:
        assert identity[pair.source] == identity[pair.reference] != identity[pair.target]
        assert references[pair.source] == pair.reference != pair.source
        assert columns.expressions[pair.source] != "neutral"
        if pair.truth is not None:
            assert identity[pair.truth] == identity[pair.target] and pair.truth != pair.target
            assert (
                columns.expressions[pair.truth] == columns.expressions[pair.source] != columns.expressions[pair.target]
            )
    assert any(p.truth is not None for p in cross) and any(p.truth is None for p in cross)
    assert {columns.family(p.source) for p in cross} == {"lfw", "london", "video"}
    assert any(identity[p.target] == "lfw/single" for p in cross)
    assert len(set(pairs)) == len(pairs)
    assert pairs == build_pairs(columns, max_pairs=200, pairs_per_identity=4)


def test_pairs_are_capped_and_balanced():
    rows = [dict(identity=f"p{i}", expression=e) for i in range(30) for e in ("neutral", "happiness")]
    pairs = build_pairs(_columns(rows, False), max_pairs=10)
    kinds = [p.kind for p in pairs]
    assert len(pairs) == 10 and kinds.count(SAME_PERSON) == 5 and kinds.count(CROSS_PERSON) == 5
    assert build_pairs(_columns(rows, False), max_pairs=10, seed=1) != pairs


def test_small_sources_are_not_crowded_out():
    big = [dict(identity=f"lfw/{i}", expression=e, source="lfw") for i in range(40) for e in ("neutral", "happiness")]
    small = [
        dict(identity=f"london/{i}", expression=e, source="london") for i in range(2) for e in ("neutral", "happiness")
    ]
    pairs = build_pairs(_columns(big + small, False), max_pairs=16, pairs_per_identity=1)
    from_small = [p for p in pairs if (big + small)[p.target]["source"] == "london"]
    assert len(from_small) == 4  # every london pair (2 people x 2 kinds), 12 of 80 from lfw
    assert len(pairs) == 16


def test_neighbouring_video_frames_do_not_make_a_pair():
    close = [dict(identity="v", clip="v/clip1", frame=f) for f in range(5)]
    assert build_pairs(_columns(close, False)) == []
    apart = close + [dict(identity="v", clip="v/clip1", frame=200)]
    pairs = build_pairs(_columns(apart, False))
    assert pairs and all(p.kind == SAME_PERSON and 5 in (p.target, p.source) for p in pairs)


def test_max_pairs_must_be_positive():
    with pytest.raises(ConfigError):
        build_pairs(_columns([dict(identity="a")], False), max_pairs=0)


# ------------------------------------------------------------------------------------------ baselines


def test_warp_with_unmoved_landmarks_is_the_identity(people):
    crop, landmarks = people[0]["image"], people[0]["landmarks"]
    np.testing.assert_array_equal(piecewise_affine_warp(crop, landmarks, landmarks), crop)


def test_the_warp_baseline_uses_the_injected_retarget(people):
    calls = []

    def still(target_landmarks: np.ndarray, source_landmarks: np.ndarray) -> np.ndarray:
        calls.append((target_landmarks.shape, source_landmarks.shape))
        return target_landmarks

    data = _split_data(people)
    pairs = [EvaluationPair(CROSS_PERSON, 5, 1, 0), EvaluationPair(CROSS_PERSON, 0, 7, 5)]
    outputs = baseline_methods(["warp"], still)[BASELINES["warp"]](pairs, data)
    assert calls == [((2, 68, 2), (2, 68, 2))]  # one batched call
    np.testing.assert_array_equal(outputs, np.stack([people[5]["image"], people[0]["image"]]))
    moved = baseline_methods(["warp"])[BASELINES["warp"]](pairs, data)  # default: aligned source
    assert np.abs(moved.astype(int) - outputs).mean() > 1.0


def test_oracle_moves_the_target_by_the_sources_own_change(people):
    target = people[0]["landmarks"]
    other = people[5]["landmarks"]
    change = np.zeros_like(other)
    change[LOWER_FACE, 1] = 5.0  # non-anchor points only
    pose = similarity_matrix(other, other * 0.5 + 20.0)  # S and S0 photographed smaller, elsewhere
    reference, source = apply_matrix(other, pose), apply_matrix(other + change, pose)
    oracle = oracle_landmarks(target, source, reference)
    anchors = list(ANCHOR_POINTS)
    to_target = similarity_matrix(other[anchors], target[anchors])[:, :2]  # Q's face onto T's, pose undone
    np.testing.assert_allclose(oracle - target, change @ to_target.T, atol=1e-6)
    np.testing.assert_allclose(oracle_landmarks(target, reference, reference), target, atol=1e-9)


class _FakePipeline:
    """Stands in for the pipeline and its generator: with :func:`fake_drive` it records what the model method hands
    the shape model and ``drive_crops``, and gives back the target."""

    def __init__(self):
        self.calls = []
        self.generator, self.shape_model, self.resolution, self.lines = self, _FakeShapeModel(), RESOLUTION, None
        self.emotion_reader = None


@pytest.fixture(autouse=True)
def fake_drive(monkeypatch):
    """``drive_crops`` of a :class:`_FakePipeline`: records (source shape, target shape, source landmarks, target
    landmarks, the reference landmarks its shape model was given, mouth) and returns the targets."""
    real = methods_module.drive_crops

    def drive_crops(
        generator,
        target,
        target_landmarks,
        driving_landmarks,
        source=None,
        source_landmarks=None,
        return_intrinsic=True,
        mouth="source",
        lines=None,
        line_strength=1.0,
    ):
        if not isinstance(generator, _FakePipeline):
            return real(
                generator,
                target,
                target_landmarks,
                driving_landmarks,
                source=source,
                source_landmarks=source_landmarks,
                return_intrinsic=return_intrinsic,
                mouth=mouth,
                lines=lines,
                line_strength=line_strength,
            )
        reference = generator.shape_model.references[-1]
        generator.calls.append((source.shape, target.shape, source_landmarks, target_landmarks, reference, mouth))
        return SimpleNamespace(image=target)

    monkeypatch.setattr(methods_module, "drive_crops", drive_crops)


def test_model_method_passes_crops_and_stored_landmarks(people):
    pipeline = _FakePipeline()
    data = _split_data(people)
    pairs = [
        EvaluationPair(CROSS_PERSON, 5, 1, 0),
        EvaluationPair(CROSS_PERSON, 0, 7, 5),
        EvaluationPair(SAME_PERSON, 6, 7, 6),
    ]
    outputs = model_method(pipeline, batch_size=2)(pairs, data)
    assert [c[0] for c in pipeline.calls] == [(2, 3, RESOLUTION, RESOLUTION), (1, 3, RESOLUTION, RESOLUTION)]
    np.testing.assert_allclose(
        pipeline.calls[0][2].numpy(), np.stack([people[1]["landmarks"], people[7]["landmarks"]]), atol=1e-4
    )
    np.testing.assert_allclose(pipeline.calls[1][3].numpy(), people[6]["landmarks"][None], atol=1e-4)
    assert np.abs(outputs.astype(int) - np.stack([people[i]["image"] for i in (5, 0, 6)])).max() <= 1

    assert all(call[4] is None for call in pipeline.calls)  # a single-photo transfer: no reference
    assert all(call[5] == "source" for call in pipeline.calls)  # the pipeline's default mouth fill
    model_method(pipeline, batch_size=2, mouth="network")(pairs, data)
    assert pipeline.calls[-1][5] == "network"


def test_the_relative_model_method_is_given_the_sources_neutral(people):
    pipeline = _FakePipeline()
    pairs = [EvaluationPair(CROSS_PERSON, 5, 1, 0), EvaluationPair(CROSS_PERSON, 0, 7, 5)]
    model_method(pipeline, batch_size=2, relative=True)(pairs, _split_data(people))
    np.testing.assert_allclose(
        pipeline.calls[0][4], np.stack([people[0]["landmarks"], people[5]["landmarks"]]), atol=1e-4
    )


def test_parse_baselines_and_classifiers():
    assert run.parse_baselines("all") == ["target", "source", "warp", "oracle"]
    assert run.parse_baselines("none") == []
    assert run.parse_baselines("oracle, target") == ["oracle", "target"]
    with pytest.raises(ConfigError, match="blur"):
        run.parse_baselines("warp,blur")
    assert run.parse_classifiers("fer, facex") == ["fer", "facex"]
    with pytest.raises(ConfigError, match="vgg"):
        run.parse_classifiers("fer,vgg")


# ------------------------------------------------------------------------------------------ scores


def _thumbnail_features(images: np.ndarray) -> np.ndarray:
    thumbnails = images.reshape(len(images), 8, RESOLUTION // 8, 8, RESOLUTION // 8, 3).mean(axis=(2, 4))
    return thumbnails.reshape(len(images), -1)  # (N, 8 * 8 * 3)


def _known_pairs() -> list[EvaluationPair]:
    """Each person's four expressions onto the other's neutral face (the reference = the source's neutral; the truth =
    the target person's own photo with that label), and two reconstructions."""
    cross = [
        EvaluationPair(CROSS_PERSON, 5 * (1 - p), 5 * p + k, 5 * p, 5 * (1 - p) + k)
        for p in (0, 1)
        for k in range(1, 5)
    ]
    cross[0] = EvaluationPair(CROSS_PERSON, cross[0].target, cross[0].source, cross[0].reference, None)  # no own photo
    same = [EvaluationPair(SAME_PERSON, 0, 2, 0, 2), EvaluationPair(SAME_PERSON, 5, 9, 5, 9)]
    return cross + same


@pytest.fixture(scope="module")
def known_result(people):
    """The baselines but the retargeted warp (tested on its own above) scored on :func:`_known_pairs`; fer only and
    FID on 8x8 thumbnails, to keep it fast."""
    from aipgan_hf.faces import FaceProcessor

    measurer = CropMeasurer(FaceProcessor(resolution=RESOLUTION), {"fer": ExpressionClassifier("fer")})
    methods = baseline_methods(["target", "source", "oracle"])
    return evaluate(_split_data(people), _known_pairs(), methods, measurer, _thumbnail_features)


def _per_kind(result, method, key, kind):
    return np.array([s[key] for s, p in zip(result.scores[method], result.pairs) if p.kind == kind])


def test_oracle_landmarks_respond_fully_and_copying_the_shape_does_not(people):
    """On landmarks alone (no detector): 30 other people (the Hopper shape, each reshaped and posed differently)
    each pull a random expression S from their neutral S0; T + (S - S0) has an expression response of about 1 on
    every measure, while the source's landmarks aligned onto T carry the other person's shape and respond less."""
    from aipgan_hf.evaluation.measures import expression_change, expression_response

    rng = np.random.default_rng(0)
    target, base = people[0]["landmarks"], people[5]["landmarks"]
    oracle_changes, copied_changes, source_changes = [], [], []
    for _ in range(30):
        neutral = base + rng.normal(0, 1.5, base.shape)  # another person's face shape
        _, expressive = _express(
            np.zeros((RESOLUTION, RESOLUTION, 3), np.uint8), neutral, rng.uniform([0, -3, 0, 0, 0], [12, 5, 6, 8, 4])
        )
        pose = similarity_matrix(base, base * rng.uniform(0.6, 1.4) + rng.uniform(-20, 20, 2))
        rest, moved = apply_matrix(neutral, pose), apply_matrix(expressive, pose)
        oracle_changes.append(expression_change(oracle_landmarks(target, moved, rest), target))
        copied_changes.append(expression_change(aligned_source_retarget(target[None], moved[None])[0], target))
        source_changes.append(expression_change(moved, rest))
    oracle = expression_response(np.array(oracle_changes), np.array(source_changes))
    assert all(oracle[m].mean > 0.97 for m in (*MEASURE_NAMES, "mean")), oracle
    copied = expression_response(np.array(copied_changes), np.array(source_changes))
    assert copied["mean"].mean < oracle["mean"].mean - 0.1


def test_oracle_responds_to_the_sources_own_change(known_result):
    """Through the images and dlib: the oracle's warps follow the sources' own changes (mouth opening and brows,
    which dlib tracks best on these warps) and beat the target person's own photo of the same label."""
    oracle = known_result.response(BASELINES["oracle"])
    assert oracle["mouth_open"].mean > 0.8 and oracle["mouth_open"].n == 8
    assert oracle["brow_raise"].mean > 0.5
    reference = known_result.response(known_result.reference_method)
    assert reference["mean"].n == 7  # the pairs where the target person has an own photo with the label
    assert reference["mean"].mean < oracle["mean"].mean - 0.2  # somebody else's own "anger" is not the source's


def test_target_unchanged_does_not_respond_and_keeps_identity(known_result):
    name = BASELINES["target"]
    response = known_result.response(name)
    for measure in (*MEASURE_NAMES, "mean"):
        assert (response[measure].mean, response[measure].low, response[measure].high) == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(known_result.output_changes[name], 0.0)
    scores = known_result.scores[name]
    assert all(s["identity_target"] == 0.0 and s["same_person"] == 1.0 for s in scores)
    motion = [s[f"motion_{r}"] for s in scores for r in ("brows", "eyes", "mouth")]
    defined = [f for f in motion if np.isfinite(f)]
    assert len(defined) >= 8
    np.testing.assert_allclose(defined, 0.0, atol=1e-9)


def test_source_pasted_is_a_leak(known_result):
    name = BASELINES["source"]
    assert np.all(_per_kind(known_result, name, "identity_source", CROSS_PERSON) == 0.0)
    assert np.all(_per_kind(known_result, name, "same_person", CROSS_PERSON) == 0.0)
    assert np.all(np.isnan(_per_kind(known_result, name, "identity_source", SAME_PERSON)))
    assert np.all(_per_kind(known_result, name, "psnr", SAME_PERSON) == PSNR_CAP_DB)
    assert np.all(_per_kind(known_result, name, "agreement_fer", CROSS_PERSON) == 1.0)  # reads as the source, trivially
    target_leak = _per_kind(known_result, BASELINES["target"], "identity_source", CROSS_PERSON)
    assert np.all(target_leak > 0.4)  # the target itself is far from the other person
    assert np.all(np.isnan(_per_kind(known_result, name, "source_nearness", CROSS_PERSON)))  # two people: no others


def test_the_others_are_the_other_cross_person_pairs_sources_of_other_people():
    from aipgan_hf.evaluation.crops import CropMeasurement
    from aipgan_hf.evaluation.scoring import _pair_faces

    people = ["a", "a", "b", "b", "c", "c", "d", "d"]  # rows 2k and 2k + 1 are one person
    data = SplitData(images=dict.fromkeys(range(8)), landmarks={}, identities=people, resolution=RESOLUTION)
    measured = {row: CropMeasurement(np.zeros((68, 2)), np.eye(128)[row], {}, True) for row in range(8)}
    pairs = [
        EvaluationPair(CROSS_PERSON, 0, 3, 2, None),  # a wears b's
        EvaluationPair(CROSS_PERSON, 2, 5, 4, None),  # b wears c's
        EvaluationPair(CROSS_PERSON, 4, 7, 6, None),  # c wears d's
        EvaluationPair(CROSS_PERSON, 6, 7, 6, None),  # d's again: one source, counted once
        EvaluationPair(SAME_PERSON, 0, 1, 0, 1),  # not a cross-person source
    ]
    others = [_pair_faces(pair, pairs, data, measured).others for pair in pairs]
    np.testing.assert_array_equal(others[0], np.eye(128)[[5, 7]])  # neither a nor b
    np.testing.assert_array_equal(others[1], np.eye(128)[[7]])  # neither b nor c
    np.testing.assert_array_equal(others[2], np.eye(128)[[3]])  # neither c nor d


def test_nearness_to_the_source_counts_only_what_exceeds_other_peoples_sources(people):
    from aipgan_hf.evaluation.crops import CropMeasurement
    from aipgan_hf.evaluation.scoring import PairFaces, pair_scores

    points = people[0]["landmarks"].astype(np.float64)
    axes = np.eye(128)

    def face(descriptor):
        return CropMeasurement(points, descriptor, {}, True)

    faces = PairFaces(face(axes[0]), face(axes[1]), face(axes[0]), None, None, others=axes[2:4])
    image = np.zeros((RESOLUTION, RESOLUTION, 3), np.uint8)

    def nearness(output, kind=CROSS_PERSON, pair_faces=faces):
        return pair_scores(image, face(output), pair_faces, kind)["source_nearness"]

    assert nearness(np.zeros(128)) == pytest.approx(0.0)  # moved towards everyone alike
    assert nearness(axes[1]) == pytest.approx(np.sqrt(2))  # the source itself
    assert nearness(0.5 * axes[1]) > 0.4 and nearness(0.5 * axes[2] + 0.5 * axes[3]) < -0.4  # towards the others
    assert np.isnan(nearness(axes[1], SAME_PERSON))
    assert np.isnan(nearness(axes[1], pair_faces=PairFaces(*(face(axes[i]) for i in range(3)), None, None)))


def test_reference_row_is_the_target_persons_own_photo(known_result):
    scores = known_result.scores[known_result.reference_method]
    for score, pair in zip(scores, known_result.pairs):
        defined = pair.kind == CROSS_PERSON and pair.truth is not None
        assert np.isfinite(score["identity_target"]) == defined
        if defined:
            assert score["ssim"] == pytest.approx(1.0) and score["truth_nme"] == pytest.approx(0.0, abs=1e-9)
    assert known_result.reference_method not in known_result.fid


def test_fid_is_computed_for_every_generated_method(known_result):
    for method in ("target", "source", "oracle"):
        method = BASELINES[method]
        fid = known_result.fid[method]
        assert set(fid) == {"all", SAME_PERSON, CROSS_PERSON}
        assert all(np.isfinite(v) and v >= 0 for v in fid.values())


def test_report_puts_the_main_table_first(known_result):
    report = format_report(known_result, {"dataset": "tiny"}, "grid.png")
    main, same, diagnostics, secondary = (
        report.index(h) for h in ("## Main", "## Same person", "## Cross person: motion", "## Cross person, secondary")
    )
    assert main < same < diagnostics < secondary
    header = report[main:].splitlines()[2]
    for title in (
        "r mouth opening",
        "r mouth width",
        "r corner lift",
        "r brow raise",
        "r eye openness",
        "**mean r**",
        "fer agreement",
        "same-person rate",
        "leakage",
        "FID",
        "SSIM (same person)",
        "PSNR dB (same person)",
    ):
        assert title in header
    assert "facex" not in header  # only the classifiers that ran
    for method in known_result.scores:
        assert f"| {method} |" in report[main:same]
    assert f"| {known_result.reference_method} |" not in report[same:diagnostics]
    assert "0.000 [0.000, 0.000]" in report  # target unchanged: no response
    assert "(n=7)" in report  # the reference row's response is defined on 7 of 8 cross pairs
    assert "about as much as each differs" in report[secondary:]
    assert "![sources x targets](grid.png)" in report


def test_json_has_the_expression_response(known_result):
    out = json.loads(json.dumps(result_to_json(known_result), allow_nan=False))
    oracle = out["methods"][BASELINES["oracle"]]
    expected = known_result.response(BASELINES["oracle"])["mouth_open"]
    assert oracle["expression_response"][CROSS_PERSON]["mouth_open"] == pytest.approx(
        {"mean": expected.mean, "low": expected.low, "high": expected.high, "n": 8}
    )
    assert oracle["expression_response"][CROSS_PERSON]["mean"]["n"] == 8
    assert out["methods"][BASELINES["target"]]["all"]["identity_target"]["mean"] == 0.0
    assert out["kinds"] == {SAME_PERSON: 2, CROSS_PERSON: 8}


def test_grid_cells_are_all_transfers_to_another_person():
    identities = ["a", "a", "b", "b", "c", "c", "d"]
    pairs = [
        EvaluationPair(SAME_PERSON, 0, 1, 0, 1),
        EvaluationPair(CROSS_PERSON, 0, 3, 2),
        EvaluationPair(CROSS_PERSON, 2, 1, 0),
        EvaluationPair(CROSS_PERSON, 4, 6, 6),
        EvaluationPair(CROSS_PERSON, 5, 3, 2),
    ]
    targets, sources = grid_cells(pairs, identities, size=2)
    assert targets == [0, 4] and sources == [(3, 2), (6, 6)]
    assert not {identities[t] for t in targets} & {identities[s] for s, _ in sources}


# ------------------------------------------------------------------------------------------ command line


def _write_dataset(rows: list[dict], folder: Path) -> Path:
    """The contract's columns as a parquet split, as training/prepare_dataset.py writes them."""
    import datasets

    from training.dataset.shards import dataset_features

    columns = {
        "image": [Image.fromarray(r["image"]) for r in rows],
        "landmarks": [r["landmarks"].astype(np.float32) for r in rows],
        "identity": [r["identity"] for r in rows],
        "expression": [r["expression"] for r in rows],
        "source": ["wheel"] * len(rows),
        "clip": [""] * len(rows),
        "frame": [-1] * len(rows),
        "path": [f"{i}.png" for i in range(len(rows))],
    }
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(columns, features=dataset_features()).to_parquet(
        str(folder / "data" / "test-00000-of-00001.parquet")
    )
    return folder


@pytest.fixture(scope="module")
def tiny_dataset(people, tmp_path_factory):
    return _write_dataset(people, tmp_path_factory.mktemp("tiny-dataset"))


def test_command_writes_report_json_and_grid_without_a_model(tiny_dataset, tmp_path):
    report_path, json_path, grid_path = (
        tmp_path / "out" / "report.md",
        tmp_path / "r.json",
        tmp_path / "out" / "grid.png",
    )
    status = run.main(
        [
            "--dataset",
            str(tiny_dataset),
            "--split",
            "test",
            "--no_model",
            "--baselines",
            "target,oracle",
            "--classifiers",
            "fer",
            "--max_pairs",
            "4",
            "--output",
            str(report_path),
            "--json",
            str(json_path),
            "--grid",
            str(grid_path),
            "--grid_size",
            "2",
            "--no_fid",
        ]
    )
    assert status == 0
    report = report_path.read_text()
    for method in (BASELINES["target"], BASELINES["oracle"], REFERENCE_METHOD):
        assert f"| {method} |" in report
    assert f"| {BASELINES['source']} |" not in report and f"| {MODEL_METHOD} |" not in report
    assert "no shape model given" in report
    assert not list(report_path.parent.glob(".report.md.*"))  # the temporary file was renamed away
    results = json.loads(json_path.read_text())
    assert results["pairs"] == 4 and results["kinds"] == {SAME_PERSON: 2, CROSS_PERSON: 2}
    assert results["classifiers"] == ["fer"]
    grid = np.asarray(Image.open(grid_path))
    side = 2 * RESOLUTION + 4  # two people: one target and one source of another person, plus the header row/column
    assert grid.shape == (side, side, 3)
    np.testing.assert_array_equal(grid[:RESOLUTION, :RESOLUTION], 255)  # empty corner


class _FakeShapeModel:
    """Retargets by returning the target's landmarks; counts its calls and keeps the reference landmarks given."""

    def __init__(self):
        self.calls = 0
        self.references: list[np.ndarray | None] = []

    def drive(self, target_landmarks, source_landmarks, reference_landmarks=None, **options) -> np.ndarray:
        self.calls += 1
        self.references.append(reference_landmarks)
        return np.asarray(target_landmarks, dtype=np.float64)


def test_command_runs_the_model_and_its_shape_model(tiny_dataset, tmp_path, monkeypatch):
    """The model rows come from ``drive_crops`` and the retargeted warp from the pipeline's shape model."""
    from aipgan_hf import pipeline as pipeline_module

    fake = _FakePipeline()
    monkeypatch.setattr(pipeline_module.AIPGANPipeline, "from_pretrained", classmethod(lambda cls, *a, **k: fake))
    report_path, json_path = tmp_path / "report.md", tmp_path / "r.json"
    status = run.main(
        [
            "--dataset",
            str(tiny_dataset),
            "--baselines",
            "target,warp",
            "--classifiers",
            "fer",
            "--max_pairs",
            "2",
            "--output",
            str(report_path),
            "--json",
            str(json_path),
            "--no_fid",
            "--relative",
            "--mouth",
            "own",
        ]
    )
    assert status == 0
    report = report_path.read_text()
    assert (
        f"| {MODEL_METHOD} |" in report
        and f"| {RELATIVE_METHOD} |" in report
        and "the checkpoint's shape model" in report
    )
    assert "`own` (where the model takes an opened mouth's inside from)" in report
    assert len(fake.calls) == 2  # 2 pairs: one batch for each model method
    assert fake.shape_model.calls == 3  # its retargeting for each model batch and for the warp baseline
    assert fake.calls[0][4] is None and fake.calls[1][4] is not None
    assert fake.calls[0][5] == fake.calls[1][5] == "own"
    results = json.loads(json_path.read_text())["methods"]
    for name in (MODEL_METHOD, RELATIVE_METHOD, BASELINES["warp"]):  # all give back the target here
        assert results[name]["all"]["identity_target"]["mean"] == pytest.approx(0.0, abs=0.05)


def test_the_package_runs_as_the_command(monkeypatch, capsys):
    """``python -m aipgan_hf.evaluation`` runs :func:`run.main` (here its --help, which exits 0)."""
    import runpy

    monkeypatch.setattr(sys, "argv", ["aipgan_hf.evaluation", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("aipgan_hf.evaluation", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 0
    assert "usage: python -m aipgan_hf.evaluation" in capsys.readouterr().out


def test_command_explains_user_errors(tiny_dataset, tmp_path, capsys):
    assert run.main(["--dataset", str(tmp_path / "missing"), "--no_model"]) == 2
    assert "not found" in capsys.readouterr().err
    assert run.main(["--dataset", str(tiny_dataset), "--split", "train", "--no_model"]) == 2
    assert "no split 'train'" in capsys.readouterr().err
    assert run.main(["--dataset", str(tiny_dataset), "--no_model", "--baselines", "none"]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    assert run.main(["--dataset", str(tiny_dataset), "--no_model", "--classifiers", "vgg"]) == 2
    assert "vgg" in capsys.readouterr().err
    for flag in (["--relative"], ["--mouth", "own"]):  # options of the model, with no model to run
        assert run.main(["--dataset", str(tiny_dataset), "--no_model", "--baselines", "target", *flag]) == 2
        assert "--no_model" in capsys.readouterr().err
    assert not (tmp_path / "report.md").exists()


# ------------------------------------------------------------------------------------------ the real dataset


@pytest.mark.data
def test_references_on_the_built_test_split(built_dataset):
    """London smiling takes the same person's neutral photo; references open the mouth less than their sources."""
    from aipgan_hf.evaluation.measures import landmark_measures

    columns = split_columns(load_split(built_dataset, "test"))
    references = choose_references(columns)
    assert len(references) > 50
    london = [s for s in references if columns.sources[s] == "london"]
    assert london and all(
        columns.expressions[references[s]] == "neutral" and columns.expressions[s] == "happiness" for s in london
    )
    assert all(columns.identities[s] == columns.identities[r] for s, r in references.items())
    opening = [
        (
            landmark_measures(columns.landmarks[r], columns.landmarks[r])[0],
            landmark_measures(columns.landmarks[s], columns.landmarks[r])[0],
        )
        for s, r in references.items()
    ]
    reference_open, source_open = np.array(opening).T
    assert np.median(reference_open) <= np.median(source_open)


@pytest.mark.data
def test_relative_driving_carries_the_sources_change_on_the_built_validation_split(built_dataset):
    """benchmarks/benchmark_retargeting.py: with S0 known, the driving landmarks follow the source's own change
    nearly as the oracle does, well above the single-photo estimate."""
    from benchmarks import benchmark_retargeting

    figures = benchmark_retargeting.main(
        ["--dataset", str(built_dataset), "--split", "validation", "--max_pairs", "200"]
    )
    single, relative, oracle = (
        figures[name]["mean_r"] for name in list(figures) if name != "replace the target's expression"
    )
    assert oracle > 0.95 and relative > 0.93 and relative > single + 0.1
    assert min(figures["relative to S0 (source_reference=, video)"]["slopes"]) > 0.8  # not shrunk
    # within one source person the single photo misses less (its error is largely one constant per person);
    # taking the group means out does not raise relative driving's r by itself
    groups = {name: values["groups"] for name, values in figures.items()}
    single_groups, relative_groups = (
        groups["single photo (pipe(source, target))"],
        groups["relative to S0 (source_reference=, video)"],
    )
    assert single_groups["pairs"] >= 40
    assert np.mean(single_groups["within_r"]) > np.mean(single_groups["r"]) + 0.03
    assert abs(np.mean(relative_groups["within_r"]) - np.mean(relative_groups["r"])) < 0.02
    no_group = benchmark_retargeting.within_groups(np.zeros((2, 5)), np.zeros((2, 5)), np.array([0, 1]), 5)
    assert np.isnan(no_group[0]).all() and no_group[2] == 0  # no group of 5: no figure, no crash


@pytest.mark.data
def test_the_classifier_benchmark_reads_the_evaluations_pairs_on_the_built_test_split(built_dataset):
    """benchmarks/benchmark_classifiers.py on the evaluation's 100 test cross-person pairs: every share is a share,
    fer's agreement is above the unchanged target's, a blur costs facex more of its own labels than fer, and the
    outputs are softer than the targets but sharper than a 0.8-px blur of them."""
    from benchmarks import benchmark_classifiers

    figures = benchmark_classifiers.main(["--dataset", str(built_dataset), "--split", "test"])
    assert figures["pairs"] == 100
    fer, facex = figures["fer"], figures["facex"]
    assert fer["strength 1"]["agrees_with_source"] > fer["target_agrees_with_source"]
    assert facex["source kept after a 0.8-px blur"] < fer["source kept after a 0.8-px blur"] <= 1.0
    sharpness = figures["sharpness against the targets"]
    assert sharpness["targets blurred 0.8 px"] < sharpness["outputs"] < 1.0
