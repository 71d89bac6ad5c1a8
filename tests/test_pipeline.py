"""AIPGANPipeline: one call (a source photo, a preset, sliders or landmarks), prepare and render, the network step on
crops (driving.drive_crops), the old names' removal, strict save/load, fp16 variant, corrupt and foreign
checkpoints."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from PIL import Image

from aipgan_hf import AIPGANConfig, AIPGANGenerator, CheckpointError, ConfigError
from aipgan_hf.checkpoint import load_generator
from aipgan_hf.compositing import DEFAULT_MOUTH, DrivenBatch
from aipgan_hf.driving import drive_crops
from aipgan_hf.modeling import GeneratorOutput
from aipgan_hf.pipeline import AIPGANPipeline


@pytest.fixture(scope="module")
def pipe() -> AIPGANPipeline:
    torch.manual_seed(0)
    return AIPGANPipeline(AIPGANGenerator(**AIPGANConfig(resolution=64, base_channels=8).to_dict()))


def crops(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 64-px crops and plausible landmarks (the bundled shape model's mean face placed in the crop)."""
    from aipgan_hf.checkpoint import BUNDLED_CHECKPOINT
    from aipgan_hf.motion import ShapeModel

    generator = torch.Generator().manual_seed(seed)
    mean = torch.as_tensor(ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors").mean, dtype=torch.float32)
    landmarks = (mean - mean.mean(0)) * 18 + 32 + torch.randn(batch, 68, 2, generator=generator)
    return torch.rand(batch, 3, 64, 64, generator=generator) * 2 - 1, landmarks


def transfer_crops(
    pipe: AIPGANPipeline,
    source: torch.Tensor,
    target: torch.Tensor,
    source_landmarks: torch.Tensor,
    target_landmarks: torch.Tensor,
    mouth: str = DEFAULT_MOUTH,
) -> DrivenBatch:
    """The model on crops, as evaluation runs it: the shape model's retargeting, then ``drive_crops``."""
    driving = pipe.shape_model.drive(target_landmarks.numpy(), source_landmarks.numpy())
    return drive_crops(
        pipe.generator,
        target,
        target_landmarks,
        torch.as_tensor(np.asarray(driving, dtype=np.float32)),
        source=source,
        source_landmarks=source_landmarks,
        mouth=mouth,
        lines=pipe.lines,
    )


def test_bundled_checkpoint_loads():
    bundled = AIPGANPipeline.from_pretrained()
    assert bundled.resolution == 128
    assert not bundled.generator.training
    assert bundled.dtype == torch.float32


def test_transfer_on_real_photos(pipe, astronaut, grace_hopper):
    result = pipe(astronaut, source=grace_hopper)
    assert result.image.size == (astronaut.shape[1], astronaut.shape[0])
    assert result.face.size == (64, 64) and result.intrinsic is None  # not rendered unless asked for
    with_intrinsic = pipe(astronaut, source=grace_hopper, return_intrinsic=True)
    assert with_intrinsic.intrinsic.size == (64, 64)
    assert np.array_equal(np.asarray(with_intrinsic.image), np.asarray(result.image))  # the transfer itself is the same
    assert result.source_landmarks.shape == result.target_landmarks.shape == (68, 2)
    assert result.expression_attention.shape == (16, 16)
    # landmarks are in photo coordinates: the target's lie inside the astronaut photo's face region
    assert 150 < result.target_landmarks[:, 0].mean() < 300 and 50 < result.target_landmarks[:, 1].mean() < 250
    crop_only = pipe(astronaut, source=grace_hopper, paste_back=False)
    assert crop_only.image.size == (64, 64)
    assert np.array_equal(np.asarray(crop_only.image), np.asarray(result.face))


def test_strength_zero_is_the_targets_own_landmarks_and_gives_its_crop_back(pipe, astronaut, grace_hopper):
    """Strength 0 drives the target to exactly its own landmarks, and a face driven nowhere is given back as it is
    (no network repaint, whatever the mouth): the same bits as the aligned target crop."""
    zero = pipe(astronaut, source=grace_hopper, expression_strength=0.0, paste_back=False)
    moved = pipe(astronaut, source=grace_hopper, paste_back=False)
    target = pipe.processor.align(astronaut)
    assert np.array_equal(zero.driving_landmarks, target.crop_landmarks.astype(np.float32))  # exactly the target's own
    for mouth in ("exemplar", "network"):
        still = pipe(astronaut, source=grace_hopper, expression_strength=0.0, paste_back=False, mouth=mouth)
        assert np.array_equal(np.asarray(still.face), target.crop)
    assert not np.array_equal(np.asarray(moved.face), np.asarray(zero.face))
    assert not np.array_equal(moved.driving_landmarks, zero.driving_landmarks)


def test_output_does_not_depend_on_the_source_pixels(pipe):
    """identity_mix 0, mouth "own" and the source's landmarks given: two different source images give the same
    bits, even when the source's mouth is open (by default its inside would be taken)."""
    (source, source_landmarks), (target, target_landmarks) = crops(1, seed=1), crops(1, seed=2)
    source_landmarks[:, [55, 56, 57, 58, 59, 65, 66, 67], 1] += 6.0  # an open source mouth
    first = transfer_crops(pipe, source, target, source_landmarks, target_landmarks, mouth="own").image
    second = transfer_crops(
        pipe, torch.flip(source, [-1]) * 0.5, target, source_landmarks, target_landmarks, mouth="own"
    ).image
    assert torch.equal(first, second)
    by_default = [
        transfer_crops(pipe, s, target, source_landmarks, target_landmarks, mouth="source").image
        for s in (source, torch.flip(source, [-1]))
    ]
    assert not torch.equal(*by_default)  # with mouth="source" the open mouth's inside is the source's


def test_render_of_a_prepared_target_matches_the_transfer(pipe, astronaut, grace_hopper):
    """The same driving landmarks give the same picture either way; a transfer from one photo draws its lines at
    half strength (``motion.lines.ESTIMATED``), landmarks given draw them in full."""
    prepared = pipe.prepare(astronaut)
    lines, pipe.lines = pipe.lines, None
    try:
        result = pipe(astronaut, source=grace_hopper)
        again = pipe.render(prepared, result.driving_landmarks)
    finally:
        pipe.lines = lines
    assert np.abs(np.asarray(again.image, dtype=int) - np.asarray(result.image, dtype=int)).max() <= 1
    given = pipe(astronaut, driving_landmarks=result.driving_landmarks)
    rendered = pipe.render(prepared, result.driving_landmarks)
    assert np.abs(np.asarray(given.image, dtype=int) - np.asarray(rendered.image, dtype=int)).max() <= 1


def test_a_batch_of_frames_matches_frame_by_frame_rendering(pipe, astronaut, grace_hopper):
    prepared = pipe.prepare(astronaut)
    driving = np.stack([pipe(astronaut, source=source).driving_landmarks for source in (grace_hopper, astronaut)])
    batch = [np.asarray(result.image) for result in pipe.render(prepared, np.concatenate([driving, driving[:1]]))]
    assert len(batch) == 3 and all(frame.shape == astronaut.shape for frame in batch)
    for frame, landmarks in zip(batch, np.concatenate([driving, driving[:1]])):
        alone = np.asarray(pipe.render(prepared, landmarks).image, dtype=int)
        assert np.abs(frame.astype(int) - alone).max() <= 2
    assert np.abs(batch[0].astype(int) - batch[1]).max() > 30  # two different expressions, two different frames


def test_photo_texture_is_kept_unless_turned_off(pipe, grace_hopper, astronaut):
    """Paste-back adds the photo's fine texture under the repainted face; video driving may turn it off."""
    prepared = pipe.prepare(grace_hopper)
    driving = pipe(grace_hopper, source=astronaut).driving_landmarks
    textured = pipe.render(prepared, driving).image
    plain = np.asarray(pipe.render(pipe.prepare(grace_hopper, photo_texture=False), driving).image, dtype=float)
    textured = np.asarray(textured, dtype=float)
    assert np.abs(textured - plain).max() > 10  # the texture is there
    high = lambda image: np.abs(np.diff(image, axis=1)).mean()  # fine detail: neighbouring-pixel differences
    assert high(textured) > high(plain)


def test_sliders_and_presets(pipe, astronaut):
    assert {"brows_up", "eyes_closed", "mouth_open", "smile", "AU4_brow_lowerer", "AU43_eyes_closed"} <= set(
        pipe.sliders
    )
    assert pipe.expressions == ["anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise"]
    plain = pipe(astronaut, expression="happiness", paste_back=False)
    opened = pipe(astronaut, expression="happiness", paste_back=False, expression_offsets={"mouth_open": 1.0})
    gap = lambda points: points[[65, 66, 67], 1].mean() - points[[61, 62, 63], 1].mean()
    assert gap(opened.driving_landmarks) > gap(plain.driving_landmarks) + 1.0
    with pytest.raises(ConfigError, match="unknown expression slider"):
        pipe(astronaut, expression="happiness", expression_offsets={"wink": 1.0})
    with pytest.raises(ConfigError, match="expression_offsets"):
        pipe(astronaut, expression="happiness", expression_offsets={"smile": 9.0})


def test_a_first_version_checkpoint_is_refused_clearly(pipe, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "old")
    config = json.loads((folder / "generator" / "config.json").read_text())
    del config["architecture"], config["landmark_map_sigma"]  # as aipgan-hf 0.1 wrote it
    (folder / "generator" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="aipgan-hf 0.1.*appearance-only"):
        AIPGANPipeline.from_pretrained(folder)
    fresh = pipe.save_pretrained(tmp_path / "no-shape")
    (fresh / "shape_model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="shape_model.safetensors"):
        AIPGANPipeline.from_pretrained(fresh)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(expression_strength=2.0), "expression_strength"),
        (dict(identity_mix=-0.1), "identity_mix"),
        (dict(expression_strength=float("nan")), "expression_strength"),
    ],
)
def test_out_of_range_controls(pipe, astronaut, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        pipe(astronaut, source=astronaut, **kwargs)


def test_save_load_is_bitwise_equal_and_strict(pipe, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "p")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "generator",
        "processor_config.json",
        "shape_model.safetensors",
    ]
    loaded = AIPGANPipeline.from_pretrained(folder)
    x, landmarks = crops(2)
    a = transfer_crops(pipe, x, x.flip(0), landmarks, landmarks.flip(0)).image
    b = transfer_crops(loaded, x, x.flip(0), landmarks, landmarks.flip(0)).image
    assert torch.equal(a, b)
    assert json.loads((folder / "processor_config.json").read_text())["resolution"] == 64
    assert (folder / "README.md").read_text().startswith("---\nlibrary_name")


def test_fp16_variant(pipe, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "half", variant="fp16")
    weights = folder / "generator" / "diffusion_pytorch_model.fp16.safetensors"
    assert weights.is_file() and not (folder / "generator" / "diffusion_pytorch_model.safetensors").exists()
    full_size = sum(p.numel() * 4 for p in pipe.generator.parameters())
    assert weights.stat().st_size < 0.6 * full_size  # really half precision
    loaded = AIPGANPipeline.from_pretrained(folder, variant="fp16")
    also = AIPGANPipeline.from_pretrained(folder)  # falls back to the fp16 file when it is the only one
    x, landmarks = crops(1)
    args = (x, x.flip(-1), landmarks + 1, landmarks)
    reference = transfer_crops(pipe, *args).image
    assert torch.allclose(transfer_crops(loaded, *args).image, reference, atol=3e-2)  # half-precision weights
    assert torch.equal(transfer_crops(also, *args).image, transfer_crops(loaded, *args).image)


def test_truncated_weights_name_the_file(pipe, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "t")
    weights = folder / "generator" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="diffusion_pytorch_model.safetensors.*truncated or corrupt"):
        AIPGANPipeline.from_pretrained(folder)


def test_foreign_weights_name_the_file(pipe, tmp_path):
    from safetensors.torch import save_file

    folder = pipe.save_pretrained(tmp_path / "f")
    weights = folder / "generator" / "diffusion_pytorch_model.safetensors"
    save_file({"encoder.weight": torch.zeros(3, 3)}, str(weights))
    with pytest.raises(
        CheckpointError, match=r"diffusion_pytorch_model.safetensors does not fit.*missing.*1 unexpected"
    ):
        load_generator(folder)


def test_shape_mismatch_and_missing_folder(pipe, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "m")
    config = json.loads((folder / "generator" / "config.json").read_text())
    config["base_channels"] = 16
    (folder / "generator" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="of wrong shape"):
        AIPGANPipeline.from_pretrained(folder)
    with pytest.raises(CheckpointError, match="pipeline folder not found"):
        AIPGANPipeline.from_pretrained(tmp_path / "does-not-exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no generator config"):
        AIPGANPipeline.from_pretrained(tmp_path / "empty")


def test_failed_save_keeps_the_previous_folder(pipe, tmp_path, monkeypatch):
    folder = pipe.save_pretrained(tmp_path / "keep")
    before = (folder / "generator" / "diffusion_pytorch_model.safetensors").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("aipgan_hf.checkpoint.save_file", broken)
    with pytest.raises(OSError):
        pipe.save_pretrained(folder)
    assert (folder / "generator" / "diffusion_pytorch_model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no staging folder left behind


def test_saving_into_a_folder_keeps_what_else_it_holds(pipe, tmp_path, monkeypatch):
    """A pipeline saved into a training run's folder (or ".") replaces its own files only."""
    run = tmp_path / "run"
    (run / "checkpoint-20").mkdir(parents=True)
    (run / "checkpoint-20" / "state.bin").write_bytes(b"state")
    (run / "notes.txt").write_text("lr 2e-4\n")
    bundled = AIPGANPipeline.from_pretrained()  # with an emotion reader
    bundled.save_pretrained(run)
    assert (run / "checkpoint-20" / "state.bin").read_bytes() == b"state"
    assert (run / "notes.txt").read_text() == "lr 2e-4\n"
    assert AIPGANPipeline.from_pretrained(run).emotion_reader is not None
    assert pipe.emotion_reader is None
    pipe.save_pretrained(run)  # a stale reader left behind would be loaded with the new weights
    assert not (run / "emotion_reader").exists() and AIPGANPipeline.from_pretrained(run).emotion_reader is None
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []
    monkeypatch.chdir(run)
    bundled.save_pretrained(".")  # the folder itself is never renamed
    assert (run / "notes.txt").exists() and (run / "emotion_reader").is_dir()


def test_pil_and_path_inputs(pipe, astronaut, grace_hopper, tmp_path):
    path = tmp_path / "hopper.png"
    Image.fromarray(grace_hopper).save(path)
    result = pipe(Image.fromarray(astronaut), source=str(path), paste_back=False)
    ref = pipe(astronaut, source=grace_hopper, paste_back=False)
    assert np.abs(np.asarray(result.face, dtype=int) - np.asarray(ref.face, dtype=int)).max() <= 2  # PNG is lossless


def test_a_source_reference_drives_by_the_sources_own_change(pipe, astronaut, grace_hopper):
    from aipgan_hf import ConfigError

    target = pipe.processor.align(grace_hopper)
    alone = pipe(grace_hopper, source=astronaut, paste_back=False)
    # the source as its own neutral: no change at all (the estimate from the smiling photo alone moves the mouth)
    still = pipe(grace_hopper, source=astronaut, source_reference=astronaut, paste_back=False)
    np.testing.assert_allclose(still.driving_landmarks, target.crop_landmarks, atol=1e-4)
    assert np.abs(alone.driving_landmarks - target.crop_landmarks).max() > 1.0
    # a reference of another face: the change is the source's minus that face's, the same as the aligned crops give
    source, reference = pipe.processor.align(astronaut), pipe.processor.align(grace_hopper)
    relative = pipe(grace_hopper, source=astronaut, source_reference=grace_hopper, paste_back=False)
    expected = pipe.shape_model.drive(
        target.crop_landmarks, source.crop_landmarks, reference_landmarks=reference.crop_landmarks
    )
    np.testing.assert_allclose(relative.driving_landmarks, expected, atol=1e-4)
    with pytest.raises(ConfigError, match="not both"):
        pipe(grace_hopper, source=astronaut, source_reference=astronaut, replace_target_expression=True)


def test_face_errors_name_the_photo_and_keep_their_type(pipe, astronaut):
    from aipgan_hf import FaceIndexError, NoFaceError

    blank = np.full((200, 200, 3), 128, dtype=np.uint8)
    with pytest.raises(NoFaceError, match="^the identity target photo: "):
        pipe(blank, source=astronaut)
    with pytest.raises(NoFaceError, match="^the expression source photo: "):
        pipe(astronaut, source=blank)
    with pytest.raises(FaceIndexError, match="^the expression source photo: face index 3"):
        pipe(astronaut, source=astronaut, source_face_index=3)
    with pytest.raises(NoFaceError, match="^the source person's neutral photo: "):
        pipe(astronaut, source=astronaut, source_reference=blank)
    with pytest.raises(NoFaceError, match="^the identity target photo: "):
        pipe(blank, expression="happiness")


def test_a_photos_rgb_colour_profile_is_carried_to_its_results(pipe, astronaut, grace_hopper, tmp_path):
    """A phone's photo in Display P3 (here an sRGB profile stands in) comes back in its own colour space."""
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = tmp_path / "tagged.jpg"
    Image.fromarray(grace_hopper).save(tagged, quality=95, icc_profile=profile)
    result = pipe(tagged, source=astronaut)
    assert result.image.info["icc_profile"] == profile == result.face.info["icc_profile"]
    result.image.save(tmp_path / "plain.jpg")  # a plain save writes it
    with Image.open(tmp_path / "plain.jpg") as saved:
        assert saved.info["icc_profile"] == profile
    assert "icc_profile" not in pipe(grace_hopper, expression="happiness").image.info
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not the RGB pixels' space
    Image.fromarray(grace_hopper).save(tagged, quality=95, icc_profile=lab)
    assert "icc_profile" not in pipe(tagged, expression="happiness").image.info


def test_a_smiling_target_that_keeps_its_smile_is_said_to(astronaut, grace_hopper):
    from aipgan_hf.motion.emotion import smiles

    bundled = AIPGANPipeline.from_pretrained()  # its shape model reads the smile
    aligned = [bundled.processor.align(photo).crop_landmarks for photo in (astronaut, grace_hopper)]
    assert [smiles(bundled.shape_model, points) for points in aligned] == [True, False]
    assert bundled(astronaut, source=grace_hopper, paste_back=False).kept_smile
    assert not bundled(astronaut, source=grace_hopper, paste_back=False, replace_target_expression=True).kept_smile
    assert not bundled(astronaut, source=grace_hopper, paste_back=False, expression_strength=0).kept_smile
    assert not bundled(grace_hopper, source=astronaut, paste_back=False).kept_smile


def test_a_result_counts_the_faces_of_its_photos_and_says_which_was_used(pipe, two_faces, astronaut):
    from aipgan_hf.pipeline_steps import faces_note

    both = pipe(two_faces, source=two_faces, source_face_index=1, paste_back=False)
    assert (both.target_faces, both.source_faces) == (2, 2)
    alone = pipe(astronaut, source=astronaut, paste_back=False)
    assert (alone.target_faces, alone.source_faces) == (1, 1)
    preset = pipe(two_faces, expression=pipe.expressions[0], paste_back=False)
    assert (preset.target_faces, preset.source_faces) == (2, 0)
    assert faces_note(both.target_face_boxes, None, "target") == (
        "2 faces were found in the target photo; the largest was used (from left to right: 0, 1)"
    )
    assert faces_note(both.source_face_boxes, 1, "source") == (
        "2 faces were found in the source photo; number 1 (0 is the largest) was used (from left to right: 0, 1)"
    )
    assert faces_note(alone.target_face_boxes, None, "target") is None
    mirrored = pipe(two_faces[:, ::-1], expression=pipe.expressions[0], paste_back=False)  # the larger face right
    assert faces_note(mirrored.target_face_boxes, None, "target").endswith("(from left to right: 1, 0)")


# ------------------------------------------------------------------------------------------ one call
def test_one_call_takes_a_source_a_preset_sliders_or_landmarks(pipe, astronaut, grace_hopper):
    """``pipe(target, ...)``: a preset with strength 0 plus sliders is the sliders alone; given landmarks are what
    a render of them gives; an expression given two ways, or none, is refused."""
    sliders = {"mouth_open": 1.0}
    alone = pipe(astronaut, expression_offsets=sliders, paste_back=False)
    with_preset = pipe(
        astronaut, expression="happiness", expression_strength=0.0, expression_offsets=sliders, paste_back=False
    )
    assert np.array_equal(np.asarray(alone.face), np.asarray(with_preset.face))
    driving = pipe(astronaut, source=grace_hopper).driving_landmarks
    given = pipe(astronaut, driving_landmarks=driving)
    assert np.array_equal(np.asarray(given.image), np.asarray(pipe.render(pipe.prepare(astronaut), driving).image))
    for controls, message in [
        (dict(source=grace_hopper, expression="happiness"), "one way"),
        (dict(expression="happiness", driving_landmarks=driving), "one way"),
        (dict(), "expression_offsets="),
        (dict(expression="frown"), "unknown expression"),
        (dict(expression="happiness", identity_mix=0.5), "need a source photo"),
    ]:
        with pytest.raises(ConfigError, match=message):
            pipe(astronaut, **controls)
    with pytest.raises(TypeError):
        pipe(grace_hopper, astronaut)  # the source is named: an old positional (source, target) call cannot swap them


def test_the_networks_output_holds_network_outputs_only(pipe):
    """drive_crops keeps the generator's output as it came (its image the decoder's alone) and puts the mouth's
    inside into its own ``image``."""
    (source, source_landmarks), (target, target_landmarks) = crops(1, seed=1), crops(1, seed=2)
    source_landmarks[:, [55, 56, 57, 58, 59, 65, 66, 67], 1] += 6.0  # an open source mouth
    target_landmarks = target_landmarks.clone()
    driving = target_landmarks.clone()
    driving[:, [55, 56, 57, 58, 59, 65, 66, 67], 1] += 6.0  # the target's mouth opens
    output = drive_crops(
        pipe.generator,
        target,
        target_landmarks,
        driving,
        source=source,
        source_landmarks=source_landmarks,
        mouth="source",
    )
    assert isinstance(output.network, GeneratorOutput) and output.mouth.origin(0) == "source"
    assert not {"driving_landmarks", "flow", "mouth_fill", "painted"} & set(GeneratorOutput.__dataclass_fields__)
    plain = pipe.generator(target, target_landmarks, driving, output.flow)
    assert torch.equal(output.network.image, plain.image) and not torch.equal(output.image, plain.image)


def test_the_pipeline_has_four_ways_in(pipe):
    """__call__, prepare, render and animate; the rest are loading, moving, saving and the sliders' conversion."""
    public = {
        name for name in dir(AIPGANPipeline) if not name.startswith("_") and callable(getattr(AIPGANPipeline, name))
    }
    assert public == {
        "prepare",
        "render",
        "animate",
        "expression_offset",
        "from_pretrained",
        "to",
        "save_pretrained",
        "push_to_hub",
        "processor_settings",
    }


def test_the_pre_0_8_0_names_are_gone():
    """Removed in 0.10.0 after warning for two versions; CHANGELOG.md 0.8.0 lists their replacements."""
    old = [
        "synthesize",
        "prepare_target",
        "render_batch",
        "drive_batch",
        "compose_frame",
        "decode_driven",
        "transfer_aligned",
    ]
    assert not [name for name in old if hasattr(AIPGANPipeline, name)]
    assert importlib.util.find_spec("aipgan_hf.deprecated") is None
