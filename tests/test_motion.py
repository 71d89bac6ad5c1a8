"""Motion: the shape model (fit, coefficients, driving, files), the landmark flow and warping."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from aipgan_hf import CheckpointError
from aipgan_hf.checkpoint import BUNDLED_CHECKPOINT
from aipgan_hf.evaluation.measures import expression_change
from aipgan_hf.landmarks import MOUTH, MOUTH_CORNERS, NUM_LANDMARKS
from aipgan_hf.motion import ShapeModel, identity_grid, keep_inside, landmark_flow, warp
from aipgan_hf.motion.shape_model import GROWTH_RANGE, MOUTH_KEPT_BY, OUTLINE, mouth_measures
from training.fit_shape_model import _measure_gradients, fit

MOUTH_OPENING = np.zeros((68, 2))
MOUTH_OPENING[[5, 6, 7, 8, 9, 10, 11], 1] = 0.12  # chin down
MOUTH_OPENING[[55, 56, 57, 58, 59, 65, 66, 67], 1] = 0.15  # lower lip down
SMILE = np.zeros((68, 2))
SMILE[[48, 60], 0], SMILE[[54, 64], 0] = -0.06, 0.06
SMILE[[48, 54, 60, 64], 1] = -0.05  # corners out and up
TURN = np.zeros((68, 2))
TURN[:, 0] = 0.02
TURN[27:36, 0] = 0.07  # the nose, nearest the camera, moves most
TURN[0:8, 0], TURN[9:17, 0] = 0.05, -0.02  # one cheek comes into view, the other goes out of it


def synthetic_columns(people: int = 40, frames: int = 12, seed: int = 0, turned: bool = False) -> dict[str, np.ndarray]:
    """Faces = a base shape + a per-person shape change + a known amount of mouth opening and smile, placed in
    the image by a random similarity; every person has one neutral photo (``turned``: and a second one, the
    head turned by a random amount of :data:`TURN`)."""
    rng = np.random.default_rng(seed)
    mean = ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors").mean
    rows, identity, expression = [], [], []
    for person in range(people):
        face = mean + rng.normal(0, 0.03, (68, 2)) * np.linspace(0.5, 1.5, 68)[:, None]
        for frame in range(frames + int(turned)):
            amounts = (0.0, 0.0) if frame in (0, frames) else rng.uniform(0, 1, 2)
            points = face + amounts[0] * MOUTH_OPENING + amounts[1] * SMILE + rng.normal(0, 0.004, (68, 2))
            points += rng.uniform(-1, 1) * TURN if frame == frames else 0.0
            angle, scale, shift = rng.uniform(-0.2, 0.2), rng.uniform(30, 40), rng.uniform(40, 80, 2)
            rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            rows.append(points @ (scale * rotation).T + shift)
            identity.append(f"p{person}")
            expression.append("neutral" if frame in (0, frames) else ("happiness" if amounts[1] > 0.5 else ""))
    n = len(rows)
    return {
        "landmarks": np.stack(rows),
        "identity": np.array(identity),
        "expression": np.array(expression),
        "source": np.array(["london"] * n),
        "clip": np.array([""] * n),
    }


@pytest.fixture(scope="module")
def fitted() -> tuple[ShapeModel, dict]:
    columns = synthetic_columns(turned=True)
    return fit(**columns, expression_count=8), columns


def test_without_pairs_of_neutral_photos_no_turn_is_removed():
    model = fit(**synthetic_columns(people=12, frames=4), expression_count=4)  # one neutral photo per person
    assert model.head_turn is None


def test_a_turned_head_is_not_an_expression(fitted):
    """The fit finds the head-turn direction from the pairs of neutral photos, keeps it out of the basis and the
    estimator: a source turned to the side drives the target as the same source from the front."""
    model, _ = fitted
    assert model.head_turn is not None
    turn = model.head_turn.ravel()
    aligned_turn = (model.align(model.mean + 0.5 * TURN)[0] - model.align(model.mean)[0]).ravel()
    assert abs(turn @ aligned_turn) / np.linalg.norm(aligned_turn) > 0.95  # the synthetic turn was found
    assert np.abs(model.expression_basis.reshape(model.num_expression, -1) @ turn).max() < 1e-6
    assert np.abs(model.estimator @ turn).max() < 1e-6 * np.abs(model.estimator).max()
    test = synthetic_columns(people=2, frames=6, seed=1)
    target, source = test["landmarks"][6], test["landmarks"][1:6]  # person 1 neutral; person 0 expressive
    scale_rotation = np.array([[30.0, 4.0], [-4.0, 30.0]])  # the pixel frame of person 0's photo (any similarity)
    turned = source + (0.8 * TURN) @ scale_rotation.T
    from_front, from_side = model.drive(target, source), model.drive(target, turned)
    size = np.abs(turned - source).max()
    assert np.abs(from_side - from_front).max() < 0.2 * size  # without the removal: 1.5 x
    relative = model.drive(target, turned, reference_landmarks=source)  # only the turn differs: no motion
    assert np.abs(relative - target).max() < 0.4 * size  # without the removal: 1.7 x


def test_fit_recovers_the_expression_change_without_the_face_shape(fitted):
    model, _ = fitted
    test = synthetic_columns(people=6, frames=6, seed=1)  # people never seen in the fit
    landmarks = test["landmarks"]
    neutral, expressive = landmarks[0], landmarks[1:6]  # person 0 of the test set
    target = landmarks[6]  # person 1, neutral
    aligned_target, (aligned_source, aligned_neutral) = (
        model.align(target)[0],
        (model.align(expressive)[0], model.align(neutral)[0]),
    )
    true_motion = (aligned_source - aligned_neutral).reshape(5, -1)
    for reference in (neutral, None):  # relative to the source's neutral photo; from the single photo alone
        driven = model.align(model.drive(target, expressive, reference_landmarks=reference))[0]
        motion = (driven - aligned_target).reshape(5, -1)  # measured in the target's own frame
        cosine = (motion * true_motion).sum(1) / np.linalg.norm(motion, axis=1) / np.linalg.norm(true_motion, axis=1)
        ratio = np.linalg.norm(motion, axis=1) / np.linalg.norm(true_motion, axis=1)
        assert cosine.mean() > 0.75 and 0.5 < ratio.mean() < 1.4
        assert (
            np.corrcoef(motion[:, 66 * 2 + 1], true_motion[:, 66 * 2 + 1])[0, 1] > 0.9
        )  # the lower lip drops as the source's


def test_relative_driving_carries_the_sources_own_change_at_full_size(fitted):
    """With the source's neutral face given, the target moves by the source's change as it is (projected on the
    basis), not by the shrunken difference of two single-photo estimates."""
    model, _ = fitted
    test = synthetic_columns(people=6, frames=6, seed=1)
    landmarks = test["landmarks"]
    neutral, expressive, target = landmarks[0], landmarks[1:6], landmarks[6]
    basis = model.expression_basis.reshape(model.num_expression, -1)
    true_motion = (
        (model.align(expressive)[0] - model.align(neutral)[0]).reshape(5, -1) @ basis.T @ basis
    )  # on the basis
    driven = model.align(model.drive(target, expressive, reference_landmarks=neutral))[0]
    motion = (driven - model.align(target)[0]).reshape(5, -1)
    np.testing.assert_allclose(motion, true_motion, atol=0.02 * np.abs(true_motion).max())
    estimated = model.align(model.drive(target, expressive))[0].reshape(5, -1) - model.align(target)[0].reshape(1, -1)
    assert (
        np.abs(estimated - true_motion).max() > np.abs(motion - true_motion).max()
    )  # the exact change beats the estimate
    from aipgan_hf import ConfigError

    with pytest.raises(ConfigError, match="not both"):  # two references for one change
        model.drive(target, expressive, reference_landmarks=neutral, replace_target_expression=True)


def test_strength_zero_returns_the_target_landmarks_exactly(fitted):
    model, columns = fitted
    target, source = columns["landmarks"][0], columns["landmarks"][15]
    assert np.array_equal(model.drive(target, source, strength=0.0), target)
    assert not np.allclose(model.drive(target, source, strength=1.0), target)
    half = model.drive(target, source, strength=0.5) - target
    assert np.allclose(model.drive(target, source, strength=1.0) - target, 2 * half)


def test_a_source_expression_read_otherwise_takes_the_estimates_place(fitted):
    """drive(source_expression=) moves the target by that expression (less the target's own when replacing), with
    strength and offsets as for the estimate; given the estimate itself, it is the plain drive."""
    model, columns = fitted
    target, source = columns["landmarks"][0], columns["landmarks"][5]
    own = model.estimate(source)
    np.testing.assert_array_equal(model.drive(target, source, source_expression=own), model.drive(target, source))
    other = np.zeros_like(own)
    other[0] = 0.3
    offset = np.zeros_like(own)
    offset[1] = 0.1
    driven = model.drive(
        target, source, strength=0.5, offset=offset, replace_target_expression=True, source_expression=other
    )
    np.testing.assert_allclose(driven, model.apply(target, 0.5 * (other - model.expression(target)) + offset))


@pytest.mark.parametrize("amount", [0.4, -0.25])
def test_an_estimate_that_balloons_or_pinches_the_face_is_scaled_into_the_growth_range(ballooned, amount):
    """One photo's estimate may grow or shrink the face's outline no more than ``growth_range`` lets it: the change
    is scaled until the outline's area on the mean face is at the bound it passed, by the smallest such factor (a
    ballooning one as a whole; a pinching one keeps its mouth, next test); an estimate inside is returned as it is,
    and drive from that photo moves the target by it."""
    model = ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors")
    growth = lambda change: float(model.outline_growth(change[None])[0])
    bound = model.growth_range[amount > 0]
    calm, outside = ballooned(model, 0.02), ballooned(model, amount)
    assert model.growth_range[0] < growth(model.expression(calm)) < model.growth_range[1]
    assert (growth(model.expression(outside)) - bound) * np.sign(amount) > 0
    np.testing.assert_array_equal(model.estimate(calm), model.expression(calm))
    raw, contained = model.expression(outside), model.estimate(outside)
    assert growth(contained) == pytest.approx(bound, abs=1e-9)
    scale = model.growth_scale(raw[None])[0]
    assert 0.2 < scale < 0.95
    assert (growth(scale * 0.99 * raw) - bound) * np.sign(amount) < 0  # the smallest factor
    mouth = 0.0 if amount > 0 else (1 - scale) * model.mouth_part(raw[None])[0]
    np.testing.assert_allclose(contained, scale * raw + mouth, atol=1e-12)
    np.testing.assert_allclose(model.estimate(np.stack([calm, outside])), [model.expression(calm), contained])
    target = model.mean * 50 + 70
    np.testing.assert_allclose(model.drive(target, outside), model.apply(target, contained))
    before = dataclasses.replace(model, growth_range=(0.0, math.inf))  # as before 0.22.0
    np.testing.assert_array_equal(before.estimate(outside), raw)
    for wrong in ((0.9, 1.0), (1.0, 1.2), (-0.1, 1.2)):
        with pytest.raises(ValueError, match="growth_range"):
            dataclasses.replace(model, growth_range=wrong)


def test_a_pinching_estimate_keeps_its_mouth_and_scales_the_rest(ballooned):
    """Scaled up to the range's bottom, a smile photographed from above keeps the parting, width and corner lift of
    its mouth (what observers named the smile by); every point outside the mouth moves by the scaled change, and the
    outline sits at the bound."""
    model = ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors")
    face = ballooned(model, -0.25)
    share = np.array([1.0, 1.0, 0.5, 0.5])[:, None]  # the outer and inner corners, then the lips beside them
    face[[MOUTH_CORNERS[0], 60, 49, 59]] += share * [-3.0, -10.0]  # out and up: a smile, in crop pixels
    face[[MOUTH_CORNERS[1], 64, 53, 55]] += share * [3.0, -10.0]
    raw, contained = model.expression(face), model.estimate(face)
    scale = model.growth_scale(raw[None])[0]
    assert 0.2 < scale < 0.95
    motion = lambda change: np.einsum("k,kpd->pd", change, model.expression_basis)
    wanted, kept, whole = (mouth_measures(motion(c)[None])[0] for c in (raw, contained, scale * raw))
    assert wanted[2] > 0.05  # the estimate does lift the corners
    np.testing.assert_allclose(kept, wanted, atol=1e-12)
    assert kept[2] - whole[2] > 0.1 * kept[2]  # scaled as a whole, the smile would have lost its lift
    outside = np.setdiff1d(np.arange(NUM_LANDMARKS), np.arange(NUM_LANDMARKS)[MOUTH])
    np.testing.assert_allclose(motion(contained)[outside], scale * motion(raw)[outside], atol=1e-9)
    assert model.outline_growth(contained[None])[0] == pytest.approx(model.growth_range[0], abs=1e-9)
    ballooning, calm = ballooned(model, 0.4), ballooned(model, 0.02)  # a batch mixes the three cases row by row
    batch = model.estimate(np.stack([face, calm, ballooning]))
    np.testing.assert_allclose(batch, [contained, model.expression(calm), model.estimate(ballooning)], atol=1e-12)
    assert model.estimate(np.zeros((0, NUM_LANDMARKS, 2))).shape == (0, model.num_expression)  # an empty batch


def test_the_kept_mouth_measures_are_the_evaluations_where_the_frame_points_stay():
    """mouth_measures reads the evaluation's mouth opening, width and corner lift (in the model frame): for motions of
    the mouth alone, such as the three directions that give a mouth back, the two agree."""
    model = ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors")
    rng = np.random.default_rng(0)
    directions = np.stack([model.directions[name] for name in MOUTH_KEPT_BY])
    changes = np.concatenate([directions, rng.normal(size=(5, 3)) @ directions]) * 0.3
    motions = np.einsum("nk,kpd->npd", changes, model.expression_basis)
    assert np.abs(np.delete(motions, np.arange(NUM_LANDMARKS)[MOUTH], axis=1)).max() < 1e-8
    evaluated = [expression_change(model.mean + motion, model.mean)[:3] for motion in motions]
    np.testing.assert_allclose(mouth_measures(motions), evaluated, atol=1e-8)
    for name in MOUTH_KEPT_BY:
        assert model.outline_growth(model.directions[name][None])[0] == pytest.approx(1.0, abs=1e-8)


def test_the_outline_growth_is_the_area_ratio_and_its_scale_is_exact_for_any_change():
    """outline_growth is the outline polygon's area ratio: the jaw line and the brows (a face 1.1 times larger
    grows it by 1.21, a chin moved down adds its triangle, brows raised add theirs); growth_scale lands each change
    that leaves the range on the bound it passes, whether the area grows faster or slower than linearly with the
    scale, and no smaller factor does."""
    model = ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors")
    assert OUTLINE.tolist() == [*range(17), *range(26, 16, -1)]
    x, y = model.mean[OUTLINE].T
    area = 0.5 * abs((x * np.roll(y, -1) - y * np.roll(x, -1)).sum())
    larger = ShapeModel(model.mean, ((model.mean - model.mean.mean(0)) * 0.1)[None], np.zeros((1, 136)), np.ones(1))
    assert larger.outline_growth(np.ones((1, 1)))[0] == pytest.approx(1.21)
    chin = np.zeros((1, 68, 2))
    chin[0, 8, 1] = 1.0  # the chin alone, down: the area grows linearly with it
    base = np.linalg.norm(model.mean[7] - model.mean[9])  # the triangle's base, (7, 9)
    far = 2 * (GROWTH_RANGE[1] - 1) * area / (0.5 * base)  # the chin's drop that grows the outline twice past the top
    pulled = ShapeModel(model.mean, chin, np.zeros((1, 136)), np.full(1, far))  # estimates that drop for any face
    assert pulled.outline_growth(np.full((1, 1), 0.1))[0] == pytest.approx(1 + 0.5 * base * 0.1 / area, rel=1e-3)
    assert pulled.estimate(model.mean)[0] == pytest.approx(far / 2, rel=1e-3)
    pushed = ShapeModel(model.mean, chin, np.zeros((1, 136)), np.full(1, -far / 2), growth_range=(0.9, 1.25))
    assert pushed.outline_growth(pushed.estimate(model.mean)[None])[0] == pytest.approx(0.9)  # the chin up: shrinks
    brows = np.zeros((1, 68, 2))
    brows[0, 17:27, 1] = -0.05  # raised
    assert ShapeModel(model.mean, brows, np.zeros((1, 136)), np.ones(1)).outline_growth(np.ones((1, 1)))[0] > 1.01
    assert model.growth_range[0] > 0  # both bounds
    changes = np.random.default_rng(0).normal(0, 0.6, (400, model.num_expression))
    forward, backward = model.outline_growth(changes), model.outline_growth(-changes)
    curvature = (forward + backward) / 2 - 1  # the quadratic term of the area in the scale
    bound = np.clip(forward, *model.growth_range)
    for side in (forward > bound, forward < bound):
        assert (curvature[side] > 0).any() and (curvature[side] < 0).any()
    out = forward != bound
    scale = model.growth_scale(changes)
    np.testing.assert_array_equal(scale[~out], 1.0)
    np.testing.assert_allclose(model.outline_growth(changes[out] * scale[out, None]), bound[out], atol=1e-9)
    nearer = model.outline_growth(changes[out] * 0.999 * scale[out, None])
    assert ((nearer > model.growth_range[0]) & (nearer < model.growth_range[1])).all()


def test_save_load_round_trip_and_corrupt_files(fitted, tmp_path):
    model, columns = fitted
    path = tmp_path / "shape_model.safetensors"
    model.save(path)
    loaded = ShapeModel.load(path)
    x = columns["landmarks"][:5]
    assert np.allclose(loaded.expression(x), model.expression(x), atol=1e-4)
    assert sorted(loaded.directions) == ["brows_up", "eyes_closed", "mouth_open", "smile"]
    assert "happiness" in loaded.presets
    assert np.allclose(loaded.head_turn, model.head_turn, atol=1e-6)
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(path))
    save_file({k: v for k, v in tensors.items() if k != "head_turn"}, str(path))  # a file from before 0.5.0
    assert ShapeModel.load(path).head_turn is None
    save_file({**tensors, "head_turn": np.zeros((68, 3), np.float32)}, str(path))
    with pytest.raises(CheckpointError, match=r"wrong shape \{'head_turn'"):
        ShapeModel.load(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="shape_model.safetensors"):
        ShapeModel.load(path)
    save_file({"mean": np.zeros((68, 2), np.float32)}, str(path))
    with pytest.raises(CheckpointError, match="lacks"):
        ShapeModel.load(path)


def test_sliders_move_the_measure_they_name(fitted):
    model, columns = fitted
    target = columns["landmarks"][0]
    opened = model.apply(target, model.directions["mouth_open"])
    gap = lambda points: points[[65, 66, 67], 1].mean() - points[[61, 62, 63], 1].mean()
    assert gap(opened) > gap(target) + 0.5
    with pytest.raises(ValueError, match="unknown"):
        model.offset({"wink": 1.0})


def test_each_slider_moves_its_own_measure_and_holds_the_other_three(fitted):
    """Closing the eyes must not open the mouth (before 0.7.0 the bundled "eyes_closed" moved the mouth opening by
    2.4 times its own measure): each direction's change of the other measures is zero, of its own positive."""
    for model in (fitted[0], ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors")):
        basis = model.expression_basis.reshape(model.num_expression, -1)
        sensitivities = {name: basis @ gradient.ravel() for name, gradient in _measure_gradients(model.mean).items()}
        assert set(sensitivities) <= set(model.directions)  # the rest are action units (tests/test_action_units.py)
        for name, direction in ((name, model.directions[name]) for name in sensitivities):
            moves = {measure: float(sensitivity @ direction) for measure, sensitivity in sensitivities.items()}
            assert moves[name] > 0
            assert all(abs(move) < 1e-5 * moves[name] for measure, move in moves.items() if measure != name), (
                name,
                moves,
            )
    with pytest.raises(ValueError, match="need at least 4 expression components"):  # 3 cannot hold 4 measures apart
        fit(**fitted[1], expression_count=3)


def test_identity_flow_leaves_features_unchanged():
    features = torch.randn(2, 5, 16, 16)
    assert torch.equal(warp(features, identity_grid(2, 64)), features)
    landmarks = torch.rand(2, 68, 2) * 40 + 12
    flow = landmark_flow(landmarks, landmarks, 64)
    assert (flow - identity_grid(2, 64)).abs().max() < 1e-5
    assert torch.allclose(warp(features, flow), features, atol=1e-4)


def test_a_point_sent_past_the_crop_edge_stops_inside_it_and_a_motion_inside_is_left_alone():
    """The flow pins the crop's border: a chin sent past it folded the neck into the face (the astronaut driven by an
    angry shout). It stops 2 px inside; every other point moves as it was sent, and a motion inside is not touched."""
    model = ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors")
    face = model.mean * 45.0 + [64.0, 62.0]  # a face low in its crop: the chin about 14 px above the bottom edge
    assert 110 < face[8, 1] < 118
    target = torch.as_tensor(face, dtype=torch.float32)[None]
    shout = torch.as_tensor(model.apply(face, 3.0 * model.directions["AU26_jaw_drop"]), dtype=torch.float32)[None]
    past = shout[0, :, 1] > 125.5
    assert bool(past.any()) and float(shout[0, :, 1].max()) > 127.5  # past the edge as asked
    kept = keep_inside(target, shout, 128)
    assert torch.equal(kept[0, past, 1], torch.full((int(past.sum()),), 125.5))
    assert torch.equal(kept[0, ~past], shout[0, ~past]) and torch.equal(kept[0, :, 0], shout[0, :, 0])
    smile = torch.as_tensor(model.apply(face, model.directions["AU12_lip_corner_puller"]), dtype=torch.float32)[None]
    assert keep_inside(target, smile, 128) is smile
    edge = target.clone()
    edge[0, 0, 0] = -3.0  # a jaw point already outside the crop in the target is free to move
    moved = edge + torch.tensor([-2.0, 0.0])
    assert torch.equal(keep_inside(edge, moved, 128)[0, 0], moved[0, 0])


def test_a_motion_that_folds_one_spline_is_made_in_steps_and_lands_its_points():
    """A wide-open laugh (jaw drop and smile at 1.5, as the sliders allow) folds one thin-plate spline: the cheek shows
    twice. The stepped flow has no fold and still reads each target point where its driving point is; a motion that
    does not fold keeps the one spline's flow (0.10.0's formula), in a batch beside a folding one too (to float
    rounding, 1e-5 of the half crop: a batched solve may sum in another order on another CPU)."""
    from aipgan_hf.motion.flow import (
        FLOW_GRID,
        _border_anchors,
        evaluate_thin_plate,
        fit_thin_plate,
        pixels_to_normalised,
        smallest_area,
        upsample_flow,
    )

    model = ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors")
    face = model.mean * 45.0 + [64.0, 62.0]
    target = torch.as_tensor(face, dtype=torch.float32)[None]

    def one_spline(driving: torch.Tensor) -> torch.Tensor:  # (1, 32, 32, 2), as landmark_flow made it before 0.11.0
        controls = torch.cat([pixels_to_normalised(driving, 128), _border_anchors(None, torch.float32)[None]], dim=1)
        values = torch.cat([pixels_to_normalised(target, 128), _border_anchors(None, torch.float32)[None]], dim=1)
        grid = identity_grid(1, FLOW_GRID).reshape(1, -1, 2)
        return evaluate_thin_plate(fit_thin_plate(controls, values), controls, grid).view(1, FLOW_GRID, FLOW_GRID, 2)

    def shape(sliders: dict[str, float]) -> torch.Tensor:
        return torch.as_tensor(model.apply(face, model.offset(sliders)), dtype=torch.float32)[None]

    laugh = shape({"AU26_jaw_drop": 1.5, "AU12_lip_corner_puller": 1.5})
    assert float(smallest_area(one_spline(laugh))) < 0
    coarse = landmark_flow(target * FLOW_GRID / 128, laugh * FLOW_GRID / 128, FLOW_GRID)  # the spline's own grid
    assert float(smallest_area(coarse)) > 0.05
    flow = landmark_flow(target, laugh, 128)
    read = torch.nn.functional.grid_sample(
        flow.permute(0, 3, 1, 2), pixels_to_normalised(laugh, 128)[:, None], align_corners=False
    )[0, :, 0].T  # (68, 2): where each driving point reads the target
    assert float(((read - pixels_to_normalised(target, 128)[0]) * 64).norm(dim=1).max()) < 1.0
    smile = shape({"AU12_lip_corner_puller": 0.5})
    assert float(smallest_area(one_spline(smile))) > 0.05
    batch = landmark_flow(target.expand(3, -1, -1), torch.cat([smile, laugh, smile]), 128)
    same = {"rtol": 0.0, "atol": 1e-5}
    torch.testing.assert_close(batch[0], upsample_flow(one_spline(smile), 128)[0], **same)
    torch.testing.assert_close(batch[2], batch[0], **same)
    torch.testing.assert_close(batch[1], flow[0], **same)


def test_a_fold_at_any_corner_of_a_cell_counts():
    """A bilinear cell is fold-free only if its area is positive at all four corners: a grid with one node pushed
    across its neighbours folds at the corners that node's edges meet, whichever they are."""
    from aipgan_hf.motion.flow import smallest_area

    grid = identity_grid(1, 8)
    assert float(smallest_area(grid)) == pytest.approx(1.0)
    for row, column in ((3, 3), (0, 0), (7, 7)):
        pushed = grid.clone()
        pushed[0, row, column, 0] += 0.4 if column < 7 else -0.4  # past the next node in x
        assert float(smallest_area(pushed)) < 0


def test_known_displacement_moves_a_pattern_where_it_should():
    """A bright dot at landmark 57 (lower lip) moves with it by (+0, +6) px; a dot far from the face stays."""
    size = 64
    landmarks = torch.tensor(ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors").mean, dtype=torch.float32)
    landmarks = (landmarks - landmarks.mean(0)) * 18 + size / 2  # a face in the middle of a 64-px crop
    driving = landmarks.clone()
    driving[55:60, 1] += 6
    driving[65:68, 1] += 6
    image = torch.zeros(1, 1, size, size)
    lip = landmarks[57].round().long()
    image[0, 0, lip[1] - 1 : lip[1] + 2, lip[0] - 1 : lip[0] + 2] = 1.0
    image[0, 0, 1:4, 1:4] = 1.0  # corner dot: the border is anchored
    warped = warp(image, landmark_flow(landmarks[None], driving[None], size))[0, 0]

    def centroid(patch, y0, x0):
        ys, xs = torch.meshgrid(torch.arange(patch.shape[0]), torch.arange(patch.shape[1]), indexing="ij")
        return torch.stack([(ys * patch).sum() / patch.sum() + y0, (xs * patch).sum() / patch.sum() + x0])

    moved = centroid(warped[lip[1] - 2 : lip[1] + 12, lip[0] - 4 : lip[0] + 5], lip[1] - 2, lip[0] - 4)
    assert abs(moved[0] - (lip[1] + 6)) < 1.0 and abs(moved[1] - lip[0]) < 1.0
    assert warped[lip[1], lip[0]] < 0.5  # the dot left its old place
    assert torch.allclose(warped[:6, :6], image[0, 0, :6, :6], atol=0.05)


def test_measure_calibration_scales_each_measure_to_its_target_slope():
    """``targets`` of 2 double every gain that the default target of 1 set above 1 (within ``max_gain``)."""
    from training.fit_shape_model import measure_calibration

    model = ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors")
    rng = np.random.default_rng(0)
    references = model.mean + rng.normal(0.0, 0.01, (200, 68, 2))  # people's own neutral shapes
    change = rng.normal(0.0, 0.3, (200, model.num_expression))
    shapes = references + np.einsum("nk,kpd->npd", change, model.expression_basis)
    weights = np.ones(len(shapes))
    _, unit = measure_calibration(model, shapes, references, weights, max_gain=1e3)
    _, doubled = measure_calibration(model, shapes, references, weights, max_gain=1e3, targets=np.full(5, 2.0))
    above = unit > 1.0
    assert above.any() and np.allclose(doubled[above], 2.0 * unit[above])
