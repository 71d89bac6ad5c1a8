"""AIPGANPipeline: photos in and out, strict save/load, fp16 variant, corrupt and foreign checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from aipgan_hf import AIPGANConfig, AIPGANGenerator, CheckpointError, ConfigError
from aipgan_hf.pipeline import AIPGANPipeline, load_generator


@pytest.fixture(scope="module")
def pipe() -> AIPGANPipeline:
    torch.manual_seed(0)
    return AIPGANPipeline(AIPGANGenerator(**AIPGANConfig(resolution=64, base_channels=8).to_dict()))


def test_bundled_checkpoint_loads():
    bundled = AIPGANPipeline.from_pretrained()
    assert bundled.resolution == 128
    assert not bundled.generator.training
    assert bundled.dtype == torch.float32


def test_transfer_on_real_photos(pipe, astronaut, grace_hopper):
    result = pipe(source=grace_hopper, target=astronaut)
    assert result.image.size == (astronaut.shape[1], astronaut.shape[0])
    assert result.face.size == result.intrinsic.size == (64, 64)
    assert result.source_landmarks.shape == result.target_landmarks.shape == (68, 2)
    assert result.expression_attention.shape == (16, 16)
    # landmarks are in photo coordinates: the target's lie inside the astronaut photo's face region
    assert 150 < result.target_landmarks[:, 0].mean() < 300 and 50 < result.target_landmarks[:, 1].mean() < 250
    crop_only = pipe(source=grace_hopper, target=astronaut, paste_back=False)
    assert crop_only.image.size == (64, 64)
    assert np.array_equal(np.asarray(crop_only.image), np.asarray(result.face))


def test_strength_zero_equals_self_transfer(pipe, astronaut, grace_hopper):
    zero = pipe(source=grace_hopper, target=astronaut, expression_strength=0.0, paste_back=False)
    own = pipe(source=astronaut, target=astronaut, paste_back=False)
    moved = pipe(source=grace_hopper, target=astronaut, paste_back=False)
    assert np.array_equal(np.asarray(zero.face), np.asarray(own.face))
    assert not np.array_equal(np.asarray(moved.face), np.asarray(own.face))


@pytest.mark.parametrize("kwargs, message", [(dict(expression_strength=2.0), "expression_strength"),
                                             (dict(identity_mix=-0.1), "identity_mix"),
                                             (dict(expression_strength=float("nan")), "expression_strength")])
def test_out_of_range_controls(pipe, astronaut, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        pipe(source=astronaut, target=astronaut, **kwargs)


def test_save_load_is_bitwise_equal_and_strict(pipe, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "p")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "generator", "processor_config.json"]
    loaded = AIPGANPipeline.from_pretrained(folder)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    a = pipe.transfer_aligned(x, x.flip(0)).image
    b = loaded.transfer_aligned(x, x.flip(0)).image
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
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    reference = pipe.transfer_aligned(x, x.flip(-1)).image
    assert torch.allclose(loaded.transfer_aligned(x, x.flip(-1)).image, reference, atol=2e-2)
    assert torch.equal(also.transfer_aligned(x, x.flip(-1)).image, loaded.transfer_aligned(x, x.flip(-1)).image)


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
    with pytest.raises(CheckpointError, match=r"diffusion_pytorch_model.safetensors does not fit.*missing.*1 unexpected"):
        load_generator(folder)


def test_shape_mismatch_and_missing_folder(pipe, tmp_path):
    folder = pipe.save_pretrained(tmp_path / "m")
    config = json.loads((folder / "generator" / "config.json").read_text())
    config["base_channels"] = 16
    (folder / "generator" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="of wrong shape"):
        AIPGANPipeline.from_pretrained(folder)
    with pytest.raises(CheckpointError, match="neither a pipeline folder"):
        AIPGANPipeline.from_pretrained(tmp_path / "does-not-exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no generator config"):
        AIPGANPipeline.from_pretrained(tmp_path / "empty")


def test_failed_save_keeps_the_previous_folder(pipe, tmp_path, monkeypatch):
    folder = pipe.save_pretrained(tmp_path / "keep")
    before = (folder / "generator" / "diffusion_pytorch_model.safetensors").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("aipgan_hf.pipeline.save_file", broken)
    with pytest.raises(OSError):
        pipe.save_pretrained(folder)
    assert (folder / "generator" / "diffusion_pytorch_model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep"]  # no staging folder left behind


def test_pil_and_path_inputs(pipe, astronaut, grace_hopper, tmp_path):
    path = tmp_path / "hopper.png"
    Image.fromarray(grace_hopper).save(path)
    result = pipe(source=str(path), target=Image.fromarray(astronaut), paste_back=False)
    ref = pipe(source=grace_hopper, target=astronaut, paste_back=False)
    assert np.abs(np.asarray(result.face, dtype=int) - np.asarray(ref.face, dtype=int)).max() <= 2  # PNG is lossless


def test_face_errors_name_the_photo_and_keep_their_type(pipe, astronaut):
    from aipgan_hf import FaceIndexError, NoFaceError

    blank = np.full((200, 200, 3), 128, dtype=np.uint8)
    with pytest.raises(NoFaceError, match="^the identity target photo: "):
        pipe(source=astronaut, target=blank)
    with pytest.raises(NoFaceError, match="^the expression source photo: "):
        pipe(source=blank, target=astronaut)
    with pytest.raises(FaceIndexError, match="^the expression source photo: face index 3"):
        pipe(source=astronaut, target=astronaut, source_face_index=3)
    features = pipe.generator.encode_expression(torch.zeros(1, 3, 64, 64)).features
    presets = {f"{label}.{i}": torch.zeros_like(f[0]) for label in ("neutral", "happiness") for i, f in enumerate(features)}
    with_presets = AIPGANPipeline(pipe.generator, presets=presets)
    with pytest.raises(NoFaceError, match="^the identity target photo: "):
        with_presets.synthesize(blank, expression="happiness")
