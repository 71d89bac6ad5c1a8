"""The emotion reader (fer's classifier converted to torch) and what a transfer from one photo does with its reading."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.transform import resize

from aipgan_hf import AIPGANConfig, AIPGANGenerator, CheckpointError
from aipgan_hf.checkpoint import BUNDLED_CHECKPOINT
from aipgan_hf.errors import ConfigError
from aipgan_hf.faces import FaceProcessor, image_to_tensor
from aipgan_hf.landmarks import mouth_opening
from aipgan_hf.motion import ShapeModel
from aipgan_hf.motion.action_units import ACTION_UNITS, line_intensities, motion_intensities, slider_name
from aipgan_hf.motion.emotion import (
    LIPS_CLOSED,
    MOUTH_SHUT_BY,
    READ_FROM,
    READ_GAIN,
    READER_LABELS,
    SHUT_FROM,
    SHUT_GAP,
    SMILE_FULL,
    SMILE_OFF,
    SMILE_OPEN,
    SMILE_TO,
    SMILE_UNITS,
    SMILING,
    EmotionRead,
    EmotionReader,
    _resized,
    acted_on,
    close_mouth,
    lips_closed,
    read_change,
    reading_note,
    unsure_note,
    worn_change,
)
from aipgan_hf.motion.lines import ESTIMATED, EXACT, EachFace
from aipgan_hf.pipeline import AIPGANPipeline
from aipgan_hf.pipeline_steps import expression_change, source_motion

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))


@pytest.fixture(scope="module")
def reader() -> EmotionReader:
    return EmotionReader.load(BUNDLED_CHECKPOINT)


@pytest.fixture(scope="module")
def shape_model() -> ShapeModel:
    return ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors")


@pytest.fixture(scope="module")
def faces(shape_model) -> tuple[np.ndarray, np.ndarray]:
    """A target (the mean face) and a source that opens its mouth and smiles a little, in crop pixels."""
    target = shape_model.mean * 60 + 64
    source = shape_model.apply(target, shape_model.directions["mouth_open"] + 0.3 * shape_model.directions["smile"])
    return target, source


def units_of(shape_model: ShapeModel, change: np.ndarray) -> dict[str, float]:
    basis = shape_model.expression_basis.reshape(shape_model.num_expression, -1)
    return dict(zip(ACTION_UNITS, line_intensities((change @ basis).reshape(1, -1, 2), shape_model.mean)[0]))


def test_the_readers_resize_is_scikit_images():
    image = np.random.default_rng(0).uniform(-1, 1, (128, 128))
    ours = _resized(torch.tensor(image)[None, None], 64)[0, 0].numpy()
    assert np.abs(ours - resize(image, (64, 64), anti_aliasing=True)).max() < 1e-9


def test_the_bundled_reader_reads_as_fers_tflite_model(reader):
    from convert_emotion_reader import agreement, check_faces

    top, largest = agreement(reader, check_faces(128, 30))
    assert top >= 0.95 and largest < 0.1


def test_the_reader_sees_the_astronauts_smile(reader, astronaut):
    crop = FaceProcessor(resolution=128).align(astronaut, quick_look=False).crop
    read = reader.read(image_to_tensor(crop)[None])[0]
    assert read.label == "happiness" and read.probability > SMILE_FULL


@pytest.mark.parametrize("read", [None, EmotionRead("anger", READ_FROM), EmotionRead("neutral", 0.99)])
def test_an_unsure_or_neutral_reading_leaves_the_68_points_motion(shape_model, faces, read):
    target, source = faces
    plain, lines = source_motion(shape_model, target, source)
    driving, read_lines = source_motion(shape_model, target, source, read=read)
    assert np.array_equal(driving, plain) and read_lines == lines


def test_a_sure_reading_gives_the_emotions_preset_and_its_lines_in_full(shape_model, faces):
    target, source = faces
    driving, lines = source_motion(shape_model, target, source, read=EmotionRead("anger", 0.8))
    smile = (
        units_of(shape_model, shape_model.expression(target))[SMILE_OFF]
        * shape_model.directions[slider_name(SMILE_OFF)]
    )
    expected = shape_model.apply(target, shape_model.presets["anger"] - smile)
    np.testing.assert_allclose(driving, expected, atol=1e-9)
    assert (
        lines == EXACT
        and source_motion(shape_model, target, source, read=EmotionRead("happiness", 0.8))[1] == ESTIMATED
    )
    brows = slice(17, 27)  # y grows downwards: anger lowers them, surprise raises them
    surprised, _ = source_motion(shape_model, target, source, read=EmotionRead("surprise", 0.8))
    plain, _ = source_motion(shape_model, target, source)
    assert driving[brows, 1].mean() - plain[brows, 1].mean() > 1.0
    assert surprised[brows, 1].mean() - plain[brows, 1].mean() < -1.0


def test_a_read_emotion_takes_away_the_targets_smile_and_sadness_gets_its_gain(shape_model, faces):
    neutral, source = faces
    smiling = shape_model.apply(neutral, shape_model.directions[slider_name(SMILE_OFF)])
    assert units_of(shape_model, shape_model.expression(smiling))[SMILE_OFF] > 0.5
    driving, _ = source_motion(shape_model, smiling, source, read=EmotionRead("sadness", 0.9))
    left = motion_intensities(shape_model, neutral[None], driving[None])[0, list(ACTION_UNITS).index(SMILE_OFF)]
    kept = shape_model.apply(smiling, shape_model.presets["sadness"] * READ_GAIN["sadness"])
    assert (
        left < 0.1 < motion_intensities(shape_model, neutral[None], kept[None])[0, list(ACTION_UNITS).index(SMILE_OFF)]
    )
    own = shape_model.expression(source)
    np.testing.assert_allclose(
        read_change(shape_model, EmotionRead("sadness", 0.9), own),
        shape_model.presets["sadness"] * READ_GAIN["sadness"],
    )
    assert READ_GAIN["sadness"] > 1


def test_a_reading_replaces_the_targets_own_expression_when_asked(shape_model, faces):
    target = shape_model.apply(faces[0], shape_model.directions["smile"])  # a target who smiles
    driving, _ = source_motion(
        shape_model, target, faces[1], read=EmotionRead("sadness", 0.9), replace_target_expression=True
    )
    expected = shape_model.apply(
        target, shape_model.presets["sadness"] * READ_GAIN["sadness"] - shape_model.expression(target)
    )
    np.testing.assert_allclose(driving, expected, atol=1e-9)


def test_a_read_smile_keeps_the_sources_mouth_and_completes_its_units(shape_model, faces):
    target, source = faces
    own = shape_model.expression(source)
    full = read_change(shape_model, EmotionRead("happiness", SMILE_FULL), own)
    has, gets = units_of(shape_model, own), units_of(shape_model, full)
    assert has["AU26"] > SMILE_OPEN[1] + 0.1  # this source laughs: its own jaw is kept
    added = sum(max(0.0, SMILE_TO - has[unit]) * shape_model.directions[slider_name(unit)] for unit in SMILE_UNITS)
    np.testing.assert_allclose(full - own, added, atol=1e-12)
    assert gets["AU12"] > has["AU12"] + 0.2 and gets["AU6"] > has["AU6"] + 0.2
    assert gets["AU26"] == pytest.approx(has["AU26"], abs=1e-6)  # the jaw the source opened
    unsure = read_change(shape_model, EmotionRead("happiness", READ_FROM), own)
    np.testing.assert_array_equal(unsure, own)


@pytest.mark.parametrize("amount", [0.4, -0.25])
def test_a_read_smile_completes_the_sources_estimate_scaled_into_the_growth_range(shape_model, ballooned, amount):
    """A read smile keeps the source's own motion: the one-photo estimate, scaled where it would balloon or pinch
    the face (ShapeModel.estimate), as every transfer from one photo takes it."""
    source, target = ballooned(shape_model, amount), shape_model.mean * 60 + 64
    estimate = shape_model.estimate(source)
    assert not np.allclose(estimate, shape_model.expression(source))  # the range acts on this source
    read = EmotionRead("happiness", SMILE_FULL)
    worn = worn_change(shape_model, read, source, target)
    own = shape_model.expression(target)
    np.testing.assert_array_equal(worn, read_change(shape_model, read, estimate, own, lips_closed(source)))
    driving, _ = source_motion(shape_model, target, source, read=EmotionRead("neutral", 0.9))
    np.testing.assert_allclose(driving, shape_model.apply(target, estimate))  # unworn: the scaled estimate


def test_a_preset_takes_away_the_targets_own_expression_as_read(shape_model, ballooned):
    """A preset replaces the target's own expression as the regressor reads it, camera and all: taken away as
    scaled into the range, presets were named less often (docs/design.md, "A face that balloons")."""
    target = ballooned(shape_model, -0.25)  # a face seen from above: its estimate is scaled
    raw = shape_model.expression(target)
    assert not np.allclose(shape_model.estimate(target), raw)
    change = expression_change(shape_model, "fear", 1.0, None, target)
    np.testing.assert_allclose(change, shape_model.presets["fear"] - raw)


def test_a_read_closed_lipped_smile_opens_to_show_teeth(shape_model, faces):
    target, parted = faces
    closed = shape_model.apply(target, 0.5 * shape_model.directions["smile"])
    closed[[65, 66, 67]] = closed[[63, 62, 61]]  # the mean face parts its lips a little: close them
    assert lips_closed(closed) and not lips_closed(parted)
    happy = EmotionRead("happiness", SMILE_FULL)
    opened, _ = source_motion(shape_model, target, closed, read=happy)
    own = shape_model.expression(closed)
    kept = shape_model.apply(target, read_change(shape_model, happy, own))  # the smile completed, its lips kept
    assert mouth_opening(opened) > mouth_opening(kept) + 2 * LIPS_CLOSED
    halfway = EmotionRead("happiness", (READ_FROM + SMILE_FULL) / 2)  # opened in proportion, as the units are

    def gap(read: EmotionRead, closed_lips: bool = True) -> float:
        return mouth_opening(shape_model.apply(target, read_change(shape_model, read, own, closed_lips=closed_lips)))

    assert gap(happy, False) + 0.3 * (gap(happy) - gap(happy, False)) < gap(halfway) < gap(happy)
    sad = EmotionRead("sadness", SMILE_FULL)
    assert gap(sad) == gap(sad, False)
    # lips the source parted itself keep its own jaw (test_a_read_smile_keeps_the_sources_mouth...)
    np.testing.assert_array_equal(
        source_motion(shape_model, target, parted, read=happy)[0],
        shape_model.apply(target, read_change(shape_model, happy, shape_model.expression(parted))),
    )


def test_a_read_sadness_closes_the_targets_open_mouth(shape_model, faces):
    talking, source = faces[0], faces[0]  # the mean face parts its lips
    sad, other = EmotionRead("sadness", 0.9), EmotionRead("anger", 0.9)
    worn = shape_model.apply(talking, read_change(shape_model, sad, shape_model.expression(source), None))
    assert mouth_opening(worn) > 2 * SHUT_FROM  # the preset alone leaves it open
    driving, _ = source_motion(shape_model, talking, source, read=sad)
    assert mouth_opening(driving) == pytest.approx(SHUT_GAP, abs=0.1 * SHUT_GAP)
    driving, _ = source_motion(shape_model, talking, source, read=sad, replace_target_expression=True)
    assert mouth_opening(driving) <= SHUT_FROM  # without the target's own expression its lips meet already
    assert "anger" not in MOUTH_SHUT_BY
    angry, _ = source_motion(shape_model, talking, source, read=other)
    np.testing.assert_allclose(
        angry,
        shape_model.apply(
            talking, read_change(shape_model, other, shape_model.expression(source), shape_model.expression(talking))
        ),
    )
    shut = talking.copy()
    shut[[65, 66, 67]] = shut[[63, 62, 61]]
    nothing = np.zeros(shape_model.num_expression)  # lips that meet already stay as they are
    np.testing.assert_array_equal(close_mouth(shape_model, shut, nothing), nothing)


def test_beside_a_neutral_reference_a_read_smile_is_the_exact_change_and_other_readings_are_worn(shape_model, faces):
    target, source = faces
    angry = EmotionRead("anger", 0.9)
    still, _ = source_motion(shape_model, target, source, read=angry, strength=0.0)
    assert np.array_equal(still, target)
    reference = shape_model.apply(source, -shape_model.presets["happiness"])  # the source smiles from it
    exact, exact_lines = source_motion(shape_model, target, source, reference)
    happy, happy_lines = source_motion(shape_model, target, source, reference, read=EmotionRead("happiness", 0.95))
    assert np.array_equal(happy, exact) and happy_lines == exact_lines == EXACT
    worn, lines = source_motion(shape_model, target, source, reference, read=angry)
    np.testing.assert_allclose(worn, source_motion(shape_model, target, source, read=angry)[0], atol=1e-9)
    assert lines == EXACT and np.abs(worn - exact).max() > 1.0
    still, _ = source_motion(shape_model, target, source, reference, read=angry, strength=0.0)
    assert np.array_equal(still, target)
    reads = [angry, None, EmotionRead("happiness", 0.95)]
    batch, lines = source_motion(
        shape_model, *(np.stack([points] * 3) for points in (target, source, reference)), read=reads
    )
    assert lines == EXACT
    for row, read in enumerate(reads):
        np.testing.assert_allclose(
            batch[row], source_motion(shape_model, target, source, reference, read)[0], atol=1e-9
        )
    one_read, _ = source_motion(shape_model, np.stack([target] * 2), np.stack([source] * 2), read=angry)
    np.testing.assert_allclose(one_read, np.stack([source_motion(shape_model, target, source, read=angry)[0]] * 2))


def test_a_smile_in_the_points_overrules_a_read_sadness_only(shape_model, faces):
    target, source = faces
    beaming = shape_model.apply(target, shape_model.presets["happiness"])
    assert units_of(shape_model, shape_model.expression(beaming))[SMILE_OFF] > SMILING
    assert units_of(shape_model, shape_model.expression(source))[SMILE_OFF] < SMILING
    plain, _ = source_motion(shape_model, target, beaming)
    sad, angry = (EmotionRead(label, 0.9, replaced="happiness") for label in ("sadness", "anger"))  # over a smile
    assert not acted_on(sad, shape_model, beaming) and acted_on(angry, shape_model, beaming)
    assert np.array_equal(source_motion(shape_model, target, beaming, read=sad)[0], plain)
    assert not np.array_equal(source_motion(shape_model, target, beaming, read=angry)[0], plain)
    for replaced in (None, "sadness"):  # FER2013's head read no smile: worn
        assert acted_on(EmotionRead("sadness", 0.9, replaced), shape_model, beaming)
    mild, _ = source_motion(shape_model, target, source, read=EmotionRead("sadness", 0.9, "happiness"))
    assert not np.array_equal(mild, source_motion(shape_model, target, source)[0])  # a slight smile: worn


def test_a_batch_reads_each_face_as_one_alone(shape_model, faces):
    target, source = faces
    reads = [EmotionRead("sadness", 0.7), None, EmotionRead("happiness", 0.95)]
    batch, lines = source_motion(shape_model, np.stack([target] * 3), np.stack([source] * 3), read=reads)
    assert lines == EachFace((EXACT, ESTIMATED, ESTIMATED))
    for row, read in enumerate(reads):
        np.testing.assert_allclose(batch[row], source_motion(shape_model, target, source, read=read)[0], atol=1e-9)
    intensities = np.full((3, len(ACTION_UNITS), 2), 0.5)
    np.testing.assert_array_equal(lines(intensities)[1], ESTIMATED(intensities[1:2])[0])
    np.testing.assert_array_equal(lines(intensities)[0], intensities[0])


def test_read_emotion_false_is_a_pipeline_without_reader(reader, astronaut, grace_hopper, monkeypatch):
    torch.manual_seed(0)
    generator = AIPGANGenerator(**AIPGANConfig(resolution=128, base_channels=8).to_dict())
    with_reader = AIPGANPipeline(generator, emotion_reader=reader)
    without = AIPGANPipeline(generator)
    off = with_reader(grace_hopper, source=astronaut, read_emotion=False)
    plain = without(grace_hopper, source=astronaut)
    assert np.array_equal(np.asarray(off.image), np.asarray(plain.image))
    on = with_reader(grace_hopper, source=astronaut)  # the astronaut reads as happy, her smile full already
    assert on.emotion.label == "happiness" and on.emotion.probability > SMILE_FULL  # the result says what it wears
    np.testing.assert_array_equal(on.driving_landmarks, plain.driving_landmarks)  # nothing to top up
    monkeypatch.setattr(reader, "read", lambda crops: [EmotionRead("sadness", 0.9, "happiness")])
    overruled = with_reader(grace_hopper, source=astronaut)  # her points smile broadly
    assert overruled.emotion is None
    np.testing.assert_array_equal(overruled.driving_landmarks, plain.driving_landmarks)
    unsure_read = EmotionRead("anger", READ_FROM)
    monkeypatch.setattr(reader, "read", lambda crops: [unsure_read])
    unsure = with_reader(grace_hopper, source=astronaut)  # not worn, but the user is told what was read
    assert unsure.emotion is None and unsure.reading == unsure_read
    assert unsure_note(unsure.reading).startswith("The reader is not sure of the source's emotion (at most anger, 50")
    assert off.reading is None and plain.reading is None and unsure_note(on.reading) is None
    monkeypatch.setattr(reader, "read", lambda crops: [EmotionRead("anger", 0.9)])
    angry = with_reader(grace_hopper, source=astronaut)
    assert angry.emotion == EmotionRead("anger", 0.9)
    assert not np.array_equal(angry.driving_landmarks, plain.driving_landmarks)
    assert off.emotion is None and plain.emotion is None
    beside = with_reader(grace_hopper, source=astronaut, source_reference=astronaut)
    assert beside.emotion == EmotionRead("anger", 0.9)  # worn beside a neutral reference as from one photo
    np.testing.assert_array_equal(beside.driving_landmarks, angry.driving_landmarks)
    monkeypatch.setattr(reader, "read", lambda crops: [EmotionRead("happiness", 0.95)])
    exact = with_reader(grace_hopper, source=astronaut, source_reference=astronaut)
    assert exact.emotion is None  # a smile is the source's exact change from its reference
    exact_off = with_reader(grace_hopper, source=astronaut, source_reference=astronaut, read_emotion=False)
    np.testing.assert_array_equal(exact.driving_landmarks, exact_off.driving_landmarks)
    assert with_reader(grace_hopper, source=astronaut, expression_strength=0.0).emotion is None


def test_a_named_source_emotion_is_worn_as_a_sure_reading_of_it(reader, astronaut, grace_hopper, monkeypatch):
    torch.manual_seed(0)
    generator = AIPGANGenerator(**AIPGANConfig(resolution=128, base_channels=8).to_dict())
    with_reader, without = AIPGANPipeline(generator, emotion_reader=reader), AIPGANPipeline(generator)
    named = with_reader(grace_hopper, source=astronaut, source_emotion="anger")  # the reader sees her smile
    assert named.emotion == EmotionRead("anger", 1.0, told=True) and named.reading is None  # nothing was read
    assert reading_note(named.emotion) == "The target wears anger, as named for the source"
    monkeypatch.setattr(reader, "read", lambda crops: [EmotionRead("anger", 0.9)])
    read = with_reader(grace_hopper, source=astronaut)
    np.testing.assert_array_equal(named.driving_landmarks, read.driving_landmarks)
    np.testing.assert_array_equal(np.asarray(named.image), np.asarray(read.image))
    no_reader = without(grace_hopper, source=astronaut, source_emotion="anger")  # naming needs no reader
    np.testing.assert_array_equal(no_reader.driving_landmarks, read.driving_landmarks)
    beside = with_reader(grace_hopper, source=astronaut, source_reference=astronaut, source_emotion="happiness")
    exact = with_reader(grace_hopper, source=astronaut, source_reference=astronaut, read_emotion=False)
    np.testing.assert_array_equal(beside.driving_landmarks, exact.driving_landmarks)  # a smile: the exact change
    angry = with_reader(grace_hopper, source=astronaut, source_reference=astronaut, source_emotion="anger")
    np.testing.assert_array_equal(angry.driving_landmarks, named.driving_landmarks)  # worn as from one photo
    assert not np.array_equal(angry.driving_landmarks, exact.driving_landmarks)
    with pytest.raises(ConfigError, match="unknown source_emotion 'joy'; this checkpoint has: anger, contempt"):
        with_reader(b"not a photo", source=astronaut, source_emotion="joy")  # before any photo is decoded
    with pytest.raises(ConfigError, match="read_emotion=False turns off"):
        with_reader(grace_hopper, source=astronaut, source_emotion="anger", read_emotion=False)
    with pytest.raises(ConfigError, match="give source="):
        with_reader(grace_hopper, expression="anger", source_emotion="anger")


def test_the_reader_saves_and_loads_strictly(reader, tmp_path):
    torch.manual_seed(0)
    generator = AIPGANGenerator(**AIPGANConfig(resolution=64, base_channels=8).to_dict())
    folder = AIPGANPipeline(generator, emotion_reader=reader).save_pretrained(tmp_path / "p", variant="fp16")
    loaded = AIPGANPipeline.from_pretrained(folder).emotion_reader
    for name, tensor in reader.state_dict().items():  # the bundled weights are fp16 already: no rounding
        assert torch.equal(loaded.state_dict()[name], tensor)
    assert loaded.config.labels == list(READER_LABELS)
    assert not AIPGANPipeline(generator).save_pretrained(tmp_path / "none").joinpath("emotion_reader").exists()
    weights = folder / "emotion_reader" / "diffusion_pytorch_model.fp16.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="emotion_reader.*truncated or corrupt"):
        AIPGANPipeline.from_pretrained(folder)


def test_the_corpus_head_reads_its_classes_in_place_of_fer2013s_where_sure(reader):
    crops = torch.zeros(1, 3, 128, 128)
    fer = reader.probabilities(crops)[0]
    corpus = EmotionReader.from_config({**reader.config, "corpus_reads": ["surprise"]}).eval()
    corpus.load_state_dict(
        {k: v for k, v in reader.state_dict().items() if not k.startswith("corpus_head")}, strict=False
    )
    with torch.no_grad():
        corpus.corpus_head.weight.zero_()
        corpus.corpus_head.bias.copy_(torch.tensor([0.0, 0, 0, 0, 0, 9, 0]))  # sure of surprise
    assert corpus.read(crops)[0] == EmotionRead(
        "surprise",
        pytest.approx(float(torch.softmax(corpus.corpus_head.bias.detach(), 0)[5])),
        replaced=READER_LABELS[int(fer.argmax())],  # what FER2013's head read in its place
    )
    with torch.no_grad():
        corpus.corpus_head.bias.copy_(torch.tensor([9.0, 0, 0, 0, 0, 0, 0]))  # sure of anger: not a corpus read
    assert corpus.read(crops)[0].label == READER_LABELS[int(fer.argmax())]
    assert reader.config.corpus_reads and reader.corpus_head is not None  # the bundled reader has one
    with pytest.raises(ValueError, match="corpus_reads"):
        EmotionReader(corpus_reads=["boredom"])


def test_the_corpus_head_fit_folds_into_a_head_that_reads_what_it_learnt():
    from fit_emotion_reader import fit_corpus_head, pooled_features

    torch.manual_seed(0)
    reader = EmotionReader().eval()
    rng = np.random.default_rng(0)
    classes = np.repeat([0, 5], 40)  # anger: a bright upper half; surprise: a bright lower half
    crops = torch.tensor(rng.uniform(-1, -0.6, (80, 3, 128, 128)), dtype=torch.float32)
    crops[classes == 0, :, :64] += 1.4
    crops[classes == 5, :, 64:] += 1.4
    head = fit_corpus_head(reader, {"crops": crops, "classes": classes, "clips": np.full(80, "")}, l2=1e-3)
    with torch.no_grad():
        features = reader.features(reader.grey(crops))
        read = head(features).mean(dim=(2, 3)).argmax(1).numpy()
        mirrored = head(reader.features(reader.grey(crops.flip(-1)))).mean(dim=(2, 3)).argmax(1).numpy()
    assert (read == classes).mean() > 0.95 and (mirrored == classes).mean() > 0.95
    pooled, _ = pooled_features(reader, crops[:2])
    assert pooled.shape == (2, reader.config.widths[-1])


def test_one_target_driven_by_several_read_sources_loses_its_smile_for_each(shape_model, faces):
    """A batch of sources onto one target: each read emotion takes the same target's smile away."""
    target, source = faces
    sources = np.stack([source, source])
    reads = [EmotionRead("anger", 0.8), EmotionRead("sadness", 0.9)]
    driving, _ = source_motion(shape_model, target, sources, read=reads)
    for row, one in enumerate(reads):
        alone, _ = source_motion(shape_model, target, source, read=one)
        np.testing.assert_allclose(driving[row], alone, atol=1e-9)
