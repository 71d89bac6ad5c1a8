"""aipgan_hf.evaluate: pairs, baselines, scores and the one-command report, on a tiny dataset of wheel faces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aipgan_hf import evaluate, metrics
from aipgan_hf.landmarks import EXPRESSION_REGIONS, region_indices

RESOLUTION = 128
LOWER_FACE = [5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 65, 66, 67]  # chin, lower lip: drop to open the mouth
BROWS = region_indices(EXPRESSION_REGIONS["brows"])


def _surprised(crop: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same face with the mouth opened and the brows raised, by a landmark-driven warp."""
    moved = landmarks.astype(np.float64).copy()
    moved[LOWER_FACE, 1] += 7.0
    moved[BROWS, 1] -= 4.0
    return evaluate.piecewise_affine_warp(crop, landmarks, moved), moved


@pytest.fixture(scope="module")
def tiny_rows(astronaut, grace_hopper):
    """Four aligned crops: two people, each with their own photo and a 'surprise' version of it."""
    from aipgan_hf.processing import FaceProcessor

    processor = FaceProcessor(resolution=RESOLUTION)
    rows = []
    for identity, photo, label in (("wheel/astronaut", astronaut, "happiness"), ("wheel/hopper", grace_hopper, "neutral")):
        face = processor.align(photo)
        surprised, moved = _surprised(face.crop, face.crop_landmarks)
        rows.append(dict(image=face.crop, landmarks=face.crop_landmarks, identity=identity, expression=label))
        rows.append(dict(image=surprised, landmarks=moved.astype(np.float32), identity=identity, expression="surprise"))
    return rows


def _write_dataset(rows: list[dict], folder: Path) -> Path:
    """The contract's columns as a parquet split, as training/prepare_dataset.py writes them."""
    import datasets

    features = datasets.Features({
        "image": datasets.Image(),
        "landmarks": datasets.Array2D(shape=(68, 2), dtype="float32"),
        "identity": datasets.Value("string"),
        "expression": datasets.Value("string"),
        "source": datasets.Value("string"),
        "clip": datasets.Value("string"),
        "frame": datasets.Value("int32"),
        "path": datasets.Value("string"),
    })
    columns = {
        "image": [Image.fromarray(r["image"]) for r in rows],
        "landmarks": [r["landmarks"] for r in rows],
        "identity": [r["identity"] for r in rows],
        "expression": [r["expression"] for r in rows],
        "source": ["wheel"] * len(rows),
        "clip": [""] * len(rows),
        "frame": [-1] * len(rows),
        "path": [f"{i}.png" for i in range(len(rows))],
    }
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    return folder


# ------------------------------------------------------------------------------------------ pairs


def _columns(rows):
    return [r["identity"] for r in rows], [r["expression"] for r in rows], [r.get("clip", "") for r in rows], [r.get("frame", -1) for r in rows]


def test_pairs_have_a_ground_truth_of_the_target_person():
    rows = (
        [dict(identity="a", expression=e) for e in ("neutral", "happiness", "surprise", "neutral")]
        + [dict(identity="b", expression=e) for e in ("neutral", "happiness")]
        + [dict(identity="c", expression="surprise")]  # a single photo: only ever a source
        + [dict(identity="d", expression="") for _ in range(3)]  # unlabelled: same-person pairs only
    )
    identities, expressions, clips, frames = _columns(rows)
    pairs = evaluate.build_pairs(identities, expressions, clips, frames, max_pairs=100, pairs_per_identity=6)
    same = [p for p in pairs if p.kind == evaluate.SAME_PERSON]
    cross = [p for p in pairs if p.kind == evaluate.CROSS_PERSON]
    assert same and cross
    for pair in same:
        assert pair.truth == pair.source != pair.target
        assert identities[pair.source] == identities[pair.target] != "c"
    for pair in cross:
        assert identities[pair.truth] == identities[pair.target] != identities[pair.source]
        assert pair.truth != pair.target
        assert expressions[pair.source] == expressions[pair.truth] != expressions[pair.target]
    assert {identities[p.target] for p in cross} <= {"a", "b"}
    assert any(identities[p.source] == "c" for p in cross)  # a's surprise can only come from c
    assert len(set(pairs)) == len(pairs)
    assert pairs == evaluate.build_pairs(identities, expressions, clips, frames, max_pairs=100, pairs_per_identity=6)


def test_pairs_are_capped_and_balanced():
    rows = [dict(identity=f"p{i}", expression=e) for i in range(30) for e in ("neutral", "happiness")]
    pairs = evaluate.build_pairs(*_columns(rows), max_pairs=10)
    kinds = [p.kind for p in pairs]
    assert len(pairs) == 10 and kinds.count(evaluate.SAME_PERSON) == 5 and kinds.count(evaluate.CROSS_PERSON) == 5
    assert evaluate.build_pairs(*_columns(rows), max_pairs=10, seed=1) != pairs


def test_small_sources_are_not_crowded_out():
    big = [dict(identity=f"lfw/{i}", expression=e) for i in range(40) for e in ("neutral", "happiness")]
    small = [dict(identity=f"london/{i}", expression=e) for i in range(2) for e in ("neutral", "happiness")]
    rows = big + small
    sources = [r["identity"].split("/")[0] for r in rows]
    pairs = evaluate.build_pairs(*_columns(rows), max_pairs=16, pairs_per_identity=1, sources=sources)
    from_small = [p for p in pairs if sources[p.target] == "london"]
    assert len(from_small) == 4  # every london pair (2 people x 2 kinds), 12 of 80 from lfw
    assert len(pairs) == 16


def test_neighbouring_video_frames_do_not_make_a_pair():
    close = [dict(identity="v", expression="", clip="v/clip1", frame=f) for f in range(5)]
    pairs = evaluate.build_pairs(*_columns(close))
    assert pairs == []
    apart = close + [dict(identity="v", expression="", clip="v/clip1", frame=200)]
    pairs = evaluate.build_pairs(*_columns(apart))
    assert pairs and all(5 in (p.target, p.source) for p in pairs)


def test_max_pairs_must_be_positive():
    with pytest.raises(evaluate.ConfigError):
        evaluate.build_pairs(["a"], [""], [""], [-1], max_pairs=0)


# ------------------------------------------------------------------------------------------ baselines


def test_warp_with_unmoved_landmarks_is_the_identity(tiny_rows):
    crop, landmarks = tiny_rows[0]["image"], tiny_rows[0]["landmarks"]
    np.testing.assert_array_equal(evaluate.piecewise_affine_warp(crop, landmarks, landmarks), crop)


def test_warp_baseline_moves_the_mouth_towards_the_source(tiny_rows):
    from aipgan_hf.processing import FaceProcessor

    processor = FaceProcessor(resolution=RESOLUTION)
    target, source = tiny_rows[0], tiny_rows[1]  # same person, source has the open mouth
    warped = evaluate.warp_baseline(target["image"], target["landmarks"], source["landmarks"])
    measured = processor.detect(warped)[0].landmarks
    before = metrics.mouth_aspect_ratio(processor.detect(target["image"])[0].landmarks)
    wanted = metrics.mouth_aspect_ratio(source["landmarks"])
    assert wanted > before + 0.05
    assert abs(metrics.mouth_aspect_ratio(measured) - wanted) < 0.5 * (wanted - before)


def test_parse_baselines():
    assert evaluate.parse_baselines("all") == ["target", "source", "warp"]
    assert evaluate.parse_baselines("none") == []
    assert evaluate.parse_baselines("warp, target") == ["warp", "target"]
    with pytest.raises(evaluate.ConfigError, match="blur"):
        evaluate.parse_baselines("warp,blur")


# ------------------------------------------------------------------------------------------ scores


@pytest.fixture(scope="module")
def baseline_result(tiny_rows):
    """Every baseline plus the reference, scored on all pairs of the tiny dataset.

    FID runs on 8x8 thumbnails instead of Inception features (tested in test_metrics.py), to keep this fast:
    what is checked here is which images evaluate() compares."""
    from aipgan_hf.processing import FaceProcessor

    identities, expressions, clips, frames = _columns(tiny_rows)
    pairs = evaluate.build_pairs(identities, expressions, clips, frames)
    data = evaluate.SplitData(
        images={i: r["image"] for i, r in enumerate(tiny_rows)},
        landmarks={i: r["landmarks"].astype(np.float64) for i, r in enumerate(tiny_rows)},
        identities=identities,
        resolution=RESOLUTION,
    )
    measurer = evaluate.CropMeasurer(FaceProcessor(resolution=RESOLUTION), metrics.ExpressionClassifier("fer"))
    methods = evaluate.baseline_methods(["target", "source", "warp"])
    return evaluate.evaluate(data, pairs, methods, measurer, _thumbnail_features)


def _thumbnail_features(images: np.ndarray) -> np.ndarray:
    thumbnails = images.reshape(len(images), 8, RESOLUTION // 8, 8, RESOLUTION // 8, 3).mean(axis=(2, 4))
    return thumbnails.reshape(len(images), -1)  # (N, 8 * 8 * 3)


def _per_kind(result, method, key, kind):
    return np.array([s[key] for s, p in zip(result.scores[method], result.pairs) if p.kind == kind])


def test_tiny_dataset_has_both_kinds_of_pairs(baseline_result):
    kinds = [p.kind for p in baseline_result.pairs]
    assert kinds.count(evaluate.SAME_PERSON) == 4  # both orders, both people
    assert kinds.count(evaluate.CROSS_PERSON) == 2  # each person's surprise, from the other's surprise


def test_target_unchanged_keeps_identity_and_moves_nothing(baseline_result):
    scores = baseline_result.scores[evaluate.BASELINES["target"]]
    assert all(s["identity_target"] == 0.0 and s["same_person"] == 1.0 for s in scores)
    fidelities = [s[f"fidelity_{r}"] for s in scores for r in ("brows", "eyes", "mouth")]
    defined = [f for f in fidelities if np.isfinite(f)]
    assert len(defined) >= 6
    np.testing.assert_allclose(defined, 0.0, atol=1e-9)


def test_ground_truth_reference_is_perfect_on_expression(baseline_result):
    scores = baseline_result.scores[evaluate.REFERENCE_METHOD]
    assert all(s["classifier_agreement"] == 1.0 and s["ssim"] == pytest.approx(1.0) for s in scores)
    assert all(s["landmark_nme"] == pytest.approx(0.0, abs=1e-9) for s in scores)
    mouth = [s["fidelity_mouth"] for s in scores if np.isfinite(s["fidelity_mouth"])]
    assert mouth and np.allclose(mouth, 1.0)
    assert evaluate.REFERENCE_METHOD not in baseline_result.fid


def test_source_pasted_leaks_the_source_identity(baseline_result):
    name = evaluate.BASELINES["source"]
    assert np.all(_per_kind(baseline_result, name, "identity_source", evaluate.CROSS_PERSON) == 0.0)
    assert np.all(np.isnan(_per_kind(baseline_result, name, "identity_source", evaluate.SAME_PERSON)))
    assert np.all(_per_kind(baseline_result, name, "psnr", evaluate.SAME_PERSON) == metrics.PSNR_CAP_DB)
    target_leak = _per_kind(baseline_result, evaluate.BASELINES["target"], "identity_source", evaluate.CROSS_PERSON)
    assert np.all(target_leak > 0.4)  # the target itself is far from the other person


def test_warp_moves_the_mouth_like_the_ground_truth(baseline_result):
    warp = _per_kind(baseline_result, evaluate.BASELINES["warp"], "fidelity_mouth", evaluate.SAME_PERSON)
    assert np.isfinite(warp).all()
    assert warp.mean() > 0.3  # target unchanged scores exactly 0 here
    mar_warp = _per_kind(baseline_result, evaluate.BASELINES["warp"], "mouth_ratio_error", evaluate.SAME_PERSON)
    mar_target = _per_kind(baseline_result, evaluate.BASELINES["target"], "mouth_ratio_error", evaluate.SAME_PERSON)
    assert mar_warp.mean() < mar_target.mean()


def test_fid_is_computed_for_every_method(baseline_result):
    for method in evaluate.BASELINES.values():
        fid = baseline_result.fid[method]
        assert set(fid) == {"all", evaluate.SAME_PERSON, evaluate.CROSS_PERSON}
        assert all(np.isfinite(v) and v >= 0 for v in fid.values())
    # FID compares sets, not pairs: the same-person truths are the sources, and on this tiny dataset the
    # cross-person sources (each person's surprise) are the truths too; the targets (own photos) are not.
    fid = baseline_result.fid
    assert fid[evaluate.BASELINES["source"]][evaluate.SAME_PERSON] == pytest.approx(0.0, abs=1e-6)
    assert fid[evaluate.BASELINES["source"]][evaluate.CROSS_PERSON] == pytest.approx(0.0, abs=1e-6)
    assert fid[evaluate.BASELINES["target"]][evaluate.CROSS_PERSON] > 1.0


def test_report_has_a_row_per_method_with_intervals(baseline_result):
    report = evaluate.format_report(baseline_result, {"dataset": "tiny"}, "fer", "grid.png")
    for method in (*evaluate.BASELINES.values(), evaluate.REFERENCE_METHOD):
        assert report.count(f"| {method} |") == 3  # all pairs, same person, cross person
    assert "## All pairs (n = 6)" in report and "(n = 4)" in report and "(n = 2)" in report
    assert "0.000 [0.000, 0.000]" in report  # target unchanged: identity distance to itself
    assert "![sources x targets](grid.png)" in report
    header = next(line for line in report.splitlines() if line.startswith("| method"))
    assert header.count("|") == len(evaluate.MEASURES) + 3


# ------------------------------------------------------------------------------------------ command line


@pytest.fixture(scope="module")
def tiny_dataset(tiny_rows, tmp_path_factory):
    return _write_dataset(tiny_rows, tmp_path_factory.mktemp("tiny-dataset"))


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory):
    """A randomly initialised, tiny pipeline saved like a release."""
    import torch

    from aipgan_hf import AIPGANConfig, AIPGANGenerator
    from aipgan_hf.pipeline import AIPGANPipeline

    torch.manual_seed(0)
    config = AIPGANConfig(resolution=RESOLUTION, base_channels=4, channel_multipliers=[1, 2, 2], intrinsic_channels=4)
    pipeline = AIPGANPipeline(AIPGANGenerator(**config.to_dict()))
    return pipeline.save_pretrained(tmp_path_factory.mktemp("checkpoint") / "random")


def test_command_writes_report_json_and_grid(tiny_dataset, random_checkpoint, tmp_path):
    report_path, json_path, grid_path = tmp_path / "out" / "report.md", tmp_path / "r.json", tmp_path / "out" / "grid.png"
    status = evaluate.main([
        "--dataset", str(tiny_dataset), "--split", "test", "--checkpoint", str(random_checkpoint),
        "--baselines", "target,warp", "--output", str(report_path), "--json", str(json_path),
        "--grid", str(grid_path), "--no_fid",
    ])
    assert status == 0
    report = report_path.read_text()
    for method in (evaluate.MODEL_METHOD, evaluate.BASELINES["target"], evaluate.BASELINES["warp"]):
        assert f"| {method} |" in report
    assert f"| {evaluate.BASELINES['source']} |" not in report
    assert "![sources x targets](grid.png)" in report
    assert not list(report_path.parent.glob(".report.md.*"))  # the temporary file was renamed away
    results = json.loads(json_path.read_text())
    assert results["pairs"] == 6
    model = results["methods"][evaluate.MODEL_METHOD]["all"]
    assert model["identity_target"]["n"] == 6 and model["identity_target"]["mean"] > 0.0  # untrained: not the target
    assert results["methods"][evaluate.BASELINES["target"]]["all"]["identity_target"]["mean"] == 0.0
    grid = np.asarray(Image.open(grid_path))
    side = 3 * RESOLUTION + 2 * 4  # 2 targets and 2 sources plus the header row/column, 4 px gaps
    assert grid.shape == (side, side, 3)
    np.testing.assert_array_equal(grid[:RESOLUTION, :RESOLUTION], 255)  # empty corner
    first_target = grid[RESOLUTION + 4 : 2 * RESOLUTION + 4, :RESOLUTION]
    first_output = grid[RESOLUTION + 4 : 2 * RESOLUTION + 4, RESOLUTION + 4 : 2 * RESOLUTION + 4]
    assert np.abs(first_output.astype(int) - first_target).mean() > 5  # the model's output, not a copy


def test_command_explains_user_errors(tiny_dataset, tmp_path, capsys):
    assert evaluate.main(["--dataset", str(tmp_path / "missing"), "--no_model"]) == 2
    assert "not found" in capsys.readouterr().err
    assert evaluate.main(["--dataset", str(tiny_dataset), "--split", "train", "--no_model"]) == 2
    assert "no split 'train'" in capsys.readouterr().err
    assert evaluate.main(["--dataset", str(tiny_dataset), "--no_model", "--baselines", "none"]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    assert evaluate.main(["--dataset", str(tiny_dataset), "--checkpoint", str(tmp_path), "--output", str(tmp_path / "r.md")]) == 2
    assert "generator config" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()
