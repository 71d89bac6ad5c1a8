"""FACS action units, emotion presets and expression lines (aipgan_hf.motion.action_units, .lines)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from aipgan_hf.checkpoint import BUNDLED_CHECKPOINT
from aipgan_hf.faces.align import crop_matrix
from aipgan_hf.faces.geometry import apply_affine
from aipgan_hf.landmarks import LEFT_EYE, MIRRORED, RIGHT_EYE, polygon_mask
from aipgan_hf.motion import SHAPE_MODEL_NAME, ShapeModel
from aipgan_hf.motion.action_units import (
    ACTION_UNITS,
    EMOTIONS,
    LINE_SIGNATURES,
    LINED_UNITS,
    line_intensities,
    motion_intensities,
    slider_name,
    unit_field,
    with_action_units,
)
from aipgan_hf.motion.flow import keep_eyeballs, landmark_flow, lid_gap, warp
from aipgan_hf.motion.lines import ESTIMATED, EXACT, ONE_PHOTO_FLOOR, ExpressionLines, draw_lines
from aipgan_hf.pipeline_steps import source_motion


@pytest.fixture(scope="module")
def model() -> ShapeModel:
    return ShapeModel.load(BUNDLED_CHECKPOINT / SHAPE_MODEL_NAME)


@pytest.fixture(scope="module")
def lines(model) -> ExpressionLines:
    return ExpressionLines(model, 128)


@pytest.fixture(scope="module")
def face(model) -> np.ndarray:
    """The average face placed in a 128-px crop as the aligner places faces."""
    return apply_affine(crop_matrix(model.mean, 128), model.mean)


def test_the_bundled_model_has_a_slider_per_unit_and_the_seven_emotions(model):
    assert {slider_name(unit) for unit in ACTION_UNITS} <= set(model.directions)
    assert {"mouth_open", "smile", "brows_up", "eyes_closed"} <= set(model.directions)
    assert set(model.presets) == set(EMOTIONS)


def test_the_bundled_presets_are_the_prototypes_in_the_code(model):
    """A prototype changed in EMOTIONS must reach the shipped shape model too (its presets are stored there)."""
    basis = model.expression_basis.reshape(len(model.expression_basis), -1)
    for emotion, prototype in EMOTIONS.items():
        built = sum(weight * (unit_field(unit, model.mean).ravel() @ basis.T) for unit, weight in prototype.items())
        np.testing.assert_allclose(model.presets[emotion], built, atol=1e-5, err_msg=emotion)


def test_the_units_added_to_the_fitted_basis_give_the_shipped_one(model, face):
    """A refit (``training/fit_shape_model.py``) appends the units to its fitted directions: from the shipped file's
    fitted rows (those the estimator reads) the code must rebuild its basis and presets, whatever the presets use."""
    fitted = int((np.abs(model.estimator).sum(1) > 0).sum())
    rows = slice(0, fitted)
    rebuilt = with_action_units(
        ShapeModel(model.mean, model.expression_basis[rows], model.estimator[rows], model.bias[rows])
    )
    assert rebuilt.num_expression == model.num_expression
    old, new = (m.expression_basis.reshape(m.num_expression, -1) for m in (model, rebuilt))
    np.testing.assert_allclose(new.T @ new, old.T @ old, atol=1e-5)  # the same span
    for emotion in EMOTIONS:
        np.testing.assert_allclose(
            rebuilt.apply(face, rebuilt.presets[emotion]), model.apply(face, model.presets[emotion]), atol=1e-3
        )


def test_each_unit_slider_moves_its_own_unit_and_holds_the_others(model, face):
    target = face
    _, linears = model.align(target)
    fields = np.stack([unit_field(unit, model.mean).ravel() for unit in ACTION_UNITS])  # (U, 136)
    for index, unit in enumerate(ACTION_UNITS):
        driven = model.apply(target, model.directions[slider_name(unit)])
        motion = (driven - target) @ linears[0].T  # back in the model frame
        weights = np.linalg.lstsq(fields.T, motion.ravel(), rcond=None)[0]
        assert np.allclose(motion, unit_field(unit, model.mean), atol=1e-5), (
            unit
        )  # float32 file: 1e-5 of an eye distance
        assert abs(weights[index] - 1) < 1e-3 and np.abs(np.delete(weights, index)).max() < 1e-3, unit
        read = motion_intensities(model, target[None], driven[None])[0]  # what the lines are drawn from
        if unit in LINE_SIGNATURES:
            assert abs(read[index] - 1.0) < 1e-3, (unit, read.round(2))


def test_the_unit_fields_are_independent(model):
    fields = np.stack([unit_field(unit, model.mean).ravel() for unit in ACTION_UNITS])
    assert np.linalg.matrix_rank(fields) == len(ACTION_UNITS)


def test_every_preset_is_distinct_from_every_other(model, face):
    target = face
    motions = {name: model.apply(target, change) - target for name, change in model.presets.items()}
    scale = np.mean([np.abs(m).max() for m in motions.values()])
    for first, second in itertools.combinations(motions, 2):
        assert np.abs(motions[first] - motions[second]).max() > 0.25 * scale, (first, second)


def test_surprise_raises_and_anger_lowers_the_brows(model, face):
    target = face
    brows = slice(17, 27)
    lift = {
        name: -(model.apply(target, model.presets[name]) - target)[brows, 1].mean() for name in ("surprise", "anger")
    }
    assert lift["surprise"] > 1.0 and lift["anger"] < -1.0, lift  # crop pixels, y down


def test_the_lid_closing_unit_closes_the_eyes(model, face):
    target = face
    closed = model.apply(target, model.directions[slider_name("AU43")])
    for eye in (RIGHT_EYE, LEFT_EYE):
        before, after = (float(lid_gap(torch.as_tensor(points[eye])[None])) for points in (target, closed))
        assert before > 3.0 and after < 0.15 * before, (before, after)


def test_a_closing_lid_covers_the_eyeball_instead_of_squeezing_it(model, face):
    size = 256  # the average face at twice the crop size: a narrowed eye still has pixels well inside it
    target = face * 2 + 0.5
    narrowed = model.apply(target, 0.4 * model.directions[slider_name("AU43")])
    points = [torch.as_tensor(p, dtype=torch.float32)[None] for p in (target, narrowed)]
    ramp = torch.arange(float(size)).view(1, 1, size, 1).expand(1, 3, size, size) / size  # each row its own value
    flow = landmark_flow(*points, size)
    covered, squeezed = warp(ramp, keep_eyeballs(flow, *points, size)), warp(ramp, flow)
    inside = torch.zeros(size, size, dtype=torch.bool)
    for eye in (RIGHT_EYE, LEFT_EYE):
        mask = polygon_mask(points[1][:, eye], size)
        inside |= torch.nn.functional.avg_pool2d(mask, 3, 1, 1)[0, 0] > 0.999  # away from the lids' edges
    assert int(inside.sum()) > 20
    # what still shows of the eye is the eye itself, unmoved; the warp alone reads it from squeezed rows
    assert float((covered - ramp)[0, 0][inside].abs().max()) < 1e-5
    assert float((squeezed - ramp)[0, 0][inside].abs().max()) > 0.5 / size
    unchanged = landmark_flow(points[0], points[0], size)
    assert torch.equal(keep_eyeballs(unchanged, points[0], points[0], size), unchanged)


def test_no_expression_draws_no_line_and_a_frown_draws_a_furrow(model, lines, face):
    target = torch.as_tensor(face, dtype=torch.float32)[None]
    assert lines.ratio(target, target, torch.zeros(1, len(ACTION_UNITS))) is None
    frown = torch.zeros(1, len(ACTION_UNITS))
    frown[0, list(ACTION_UNITS).index("AU4")] = 1.0
    ratio = lines.ratio(target, target, frown)[0]  # (3, R, R)
    inner_brows = face[[21, 22]].mean(0).round().astype(int)
    glabella = ratio[:, inner_brows[1] - 4 : inner_brows[1] + 6, inner_brows[0] - 6 : inner_brows[0] + 7]
    assert float(glabella.min()) < 0.85  # a dark crease between the brows
    assert float((ratio[:, 100:, :] - 1).abs().max()) < 1e-6  # nothing on the chin
    assert float(ratio[2].min()) < float(ratio[0].min())  # the shadow is redder than grey


CORNER_UNITS = ("AU12", "AU15", "AU20")


def _read(model, motion: np.ndarray) -> dict[str, float]:
    return dict(zip(ACTION_UNITS, line_intensities(motion[None], model.mean)[0]))


def test_an_open_mouth_alone_draws_no_lip_corner_lines(model):
    """The jaw-drop unit, and an open mouth as the one-photo estimate gives it (surprise's mean on the validation
    split: corners 0.134 down with the chin 0.243), read no corner unit: no sad marionette lines."""
    jaw = _read(model, unit_field("AU26", model.mean))
    estimated = np.zeros((68, 2))
    estimated[[48, 54], 1], estimated[[57, 66], 1], estimated[[7, 8, 9], 1] = 0.134, 0.233, 0.243
    gaping = _read(model, estimated)
    for unit in CORNER_UNITS:
        assert jaw[unit] < 1e-6 and gaping[unit] < 0.05, (unit, jaw[unit], gaping[unit])
    assert jaw["AU26"] == pytest.approx(1.0) and gaping["AU26"] > 1.0


def test_each_lip_corner_unit_still_reads_itself_and_rises_over_an_open_jaw(model):
    for unit in CORNER_UNITS:
        alone = _read(model, unit_field(unit, model.mean))
        assert alone[unit] == pytest.approx(1.0), unit
    smile_open = _read(model, unit_field("AU12", model.mean) + unit_field("AU26", model.mean))
    assert smile_open["AU12"] > 0.9 and smile_open["AU15"] == 0.0
    # corners that sink further than the jaw takes them still read as a depressor
    sinking = _read(model, 2 * unit_field("AU15", model.mean) + 0.5 * unit_field("AU26", model.mean))
    assert sinking["AU15"] > 1.0


def test_the_one_photo_strength_draws_no_line_for_landmark_noise_and_a_strong_unit_still(model, lines, face):
    """A neutral face's estimated motion is landmark noise: below the floor it draws nothing from one photo,
    while an exact motion (a preset's, a video's) keeps every reading as it was."""
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=0.005, size=(32, 68, 2))
    read = line_intensities(noise, model.mean)
    assert read.max() > 0.1  # read as it is, the noise is a set of units
    assert ESTIMATED(read).max() == 0.0
    assert np.array_equal(EXACT(read), read)
    strong = line_intensities(1.5 * unit_field("AU12", model.mean)[None], model.mean)
    assert ESTIMATED(strong)[0, list(ACTION_UNITS).index("AU12")] == pytest.approx(0.5 * 1.5)
    target = face
    _, linears = model.align(target)
    driven = torch.as_tensor(target + noise[0] @ np.linalg.inv(linears[0]).T, dtype=torch.float32)[None]
    target = torch.as_tensor(target, dtype=torch.float32)[None]
    assert lines.shade(target, driven, ESTIMATED) is None
    assert lines.shade(target, driven, EXACT) is not None and lines.shade(target, driven, 0.5) is not None


def test_a_transfer_from_one_photo_is_floored_and_one_given_a_neutral_photo_is_not(model, face):
    assert source_motion(model, face, face)[1] is ESTIMATED
    assert source_motion(model, face, face, reference_landmarks=face)[1] is EXACT


def test_with_action_units_keeps_the_one_photo_estimate_its_range_and_the_fitted_sliders():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(136, 6)))[0].T.reshape(6, 68, 2)
    mean = ShapeModel.load(BUNDLED_CHECKPOINT / SHAPE_MODEL_NAME).mean
    small = ShapeModel(
        mean=mean,
        expression_basis=basis,
        estimator=rng.normal(size=(6, 136)),
        bias=rng.normal(size=6),
        directions={"smile": rng.normal(size=6)},
        growth_range=(0.5, 2.0),
    )
    extended = with_action_units(small)
    assert extended.growth_range == (0.5, 2.0)
    shapes = mean + rng.normal(scale=0.01, size=(3, 68, 2))
    assert np.allclose(extended.expression(shapes)[:, :6], small.expression(shapes))
    assert np.allclose(extended.expression(shapes)[:, 6:], 0.0)
    assert np.allclose(extended.directions["smile"][:6], small.directions["smile"])
    flat = extended.expression_basis.reshape(extended.num_expression, -1)
    assert np.allclose(flat @ flat.T, np.eye(extended.num_expression), atol=1e-9)


@pytest.fixture(scope="module")
def tiny_pipe():
    from aipgan_hf import AIPGANPipeline
    from aipgan_hf.configuration import AIPGANConfig
    from aipgan_hf.modeling import AIPGANGenerator

    torch.manual_seed(0)
    return AIPGANPipeline(AIPGANGenerator(**AIPGANConfig(resolution=64, base_channels=8).to_dict()))


def test_zero_expression_gives_back_the_target_bit_for_bit(tiny_pipe, astronaut, grace_hopper):
    for result in (
        tiny_pipe(astronaut, source=grace_hopper, expression_strength=0.0),
        tiny_pipe(astronaut, expression="anger", expression_strength=0.0),
        tiny_pipe(
            astronaut, expression="surprise", expression_strength=0.0, expression_offsets={"AU4_brow_lowerer": 0.0}
        ),
    ):
        assert np.array_equal(np.asarray(result.image), astronaut)
        assert np.array_equal(np.asarray(result.face), np.asarray(result.target_face))


def test_the_lines_are_drawn_into_the_pasted_photo_where_the_unit_makes_them(tiny_pipe, astronaut):
    frown = {"AU4_brow_lowerer": 1.0}
    with_lines = np.asarray(tiny_pipe(astronaut, expression_offsets=frown).image, dtype=float)
    lines, tiny_pipe.lines = tiny_pipe.lines, None
    try:
        without = np.asarray(tiny_pipe(astronaut, expression_offsets=frown).image, dtype=float)
    finally:
        tiny_pipe.lines = lines
    darker = (without - with_lines).mean(axis=2)  # > 0 where the lines darken the photo
    landmarks = tiny_pipe(astronaut, expression_offsets=frown).target_landmarks  # photo pixels
    brows, chin = landmarks[[21, 22]].mean(0), landmarks[8]
    near = darker[int(brows[1]) - 25 : int(brows[1]) + 25, int(brows[0]) - 15 : int(brows[0]) + 15]
    assert near.max() > 8  # a crease between the brows, in photo pixels
    assert np.abs(darker[int(chin[1]) - 10 :, :]).max() == 0  # nothing below the chin


def test_a_one_sided_smirk_draws_its_fold_on_its_own_side_only(model, lines, face):
    """The lip-corner puller on the face's right side alone (the image's left half): its nasolabial fold is drawn
    there and not on the other side; read over both sides, a smirk drew a smile's two folds at half strength."""
    target = face
    _, linears = model.align(target)
    smirk = 1.2 * unit_field("AU12_right", model.mean)
    driven = torch.as_tensor(target + smirk @ np.linalg.inv(linears[0]).T, dtype=torch.float32)[None]
    ratio = lines.shade(torch.as_tensor(target, dtype=torch.float32)[None], driven)[0]  # (3, R, R)
    centre = int(round(float(target[27:36, 0].mean())))
    rows = slice(int(target[33, 1]), int(target[57, 1]))  # from under the nose to the lower lip
    own, other = ratio[:, rows, : centre - 2], ratio[:, rows, centre + 3 :]
    assert float(own.min()) < 0.85 and float((other - 1).abs().max()) < 1e-3


def test_a_pull_on_one_lip_corner_reads_a_dimple_on_its_side_and_a_smile_none(model, face):
    """A dimpler moves the corners nearly as a smile does; what tells it is a pull on one corner (contempt)."""
    dimple = list(ACTION_UNITS).index("AU14")
    smile = line_intensities(unit_field("AU12", model.mean)[None], model.mean, sides=True)[0]
    smirk = line_intensities(unit_field("AU12_right", model.mean)[None], model.mean, sides=True)[0]
    assert smile[dimple].max() == 0.0
    assert smirk[dimple, 0] == pytest.approx(1.0) and smirk[dimple, 1] == 0.0
    contempt = motion_intensities(model, face[None], model.apply(face, model.presets["contempt"])[None], sides=True)
    assert contempt[0, dimple, 0] > 1.0 and contempt[0, dimple, 1] == 0.0


def test_every_unit_that_draws_lines_has_a_one_photo_floor():
    """Without one, a one-photo estimate's landmark noise would draw that unit's lines on every face."""
    assert set(ONE_PHOTO_FLOOR) == set(LINED_UNITS)


def test_each_point_mirrors_onto_its_counterpart(face):
    mirrored = np.array(MIRRORED)
    assert sorted(MIRRORED) == list(range(68)) and np.array_equal(mirrored[mirrored], np.arange(68))
    centre = face[27:36, 0].mean()
    reflected = face[mirrored] * [-1, 1] + [2 * centre, 0]  # the average face is nearly symmetric
    assert np.abs(reflected - face).max() < 1.5


def test_a_crease_is_dark_with_its_lit_side_above_it(face):
    chin = draw_lines(face, 128, ("AU17",))[list(ACTION_UNITS).index("AU17")].sum(0)  # (R, R): one level crease
    profile = chin[:, int(round(float(face[27:36, 0].mean())))]  # down the middle of the face
    darkest = int(profile.argmin())
    assert profile[darkest] < -0.1
    assert profile[darkest - 6 : darkest - 3].max() > 0 > profile[darkest + 3]  # lit above, in shadow below


def test_lines_of_a_batch_of_different_faces_are_each_face_s_own(model, lines, face):
    """Each target's lines are drawn on it: a batch equals its faces alone (to float rounding: the batched
    convolutions may sum in another order on another CPU; a line drawn on the wrong face differs by 1e-2 and more),
    and one intensity for both sides equals giving it to each side."""
    faces = [face, face * 0.9 + 6.0, face + [3.0, -2.0]]
    targets = torch.as_tensor(np.stack(faces), dtype=torch.float32)
    driven = torch.as_tensor(np.stack([model.apply(f, model.presets["happiness"]) for f in faces]), dtype=torch.float32)
    intensities = torch.rand(3, len(ACTION_UNITS), generator=torch.Generator().manual_seed(0))
    together = lines.ratio(targets, driven, intensities)
    for index in range(3):
        alone = lines.ratio(targets[index : index + 1], driven[index : index + 1], intensities[index : index + 1])
        torch.testing.assert_close(together[index], alone[0], rtol=0.0, atol=1e-4)
    both_sides = intensities[..., None].expand(-1, -1, 2)
    assert torch.equal(lines.ratio(targets, driven, both_sides), together)
