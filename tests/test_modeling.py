"""Generator and discriminator: shapes, gradients, mixing, configs, strict save/load, fp16, corrupt files."""

from __future__ import annotations

import json

import pytest
import torch

from aipgan_hf import AIPGANConfig, AIPGANDiscriminator, AIPGANGenerator, ConfigError
from aipgan_hf.faces.align import face_mask
from aipgan_hf.landmarks import heatmaps_to_landmarks, landmark_maps, landmarks_to_heatmaps
from aipgan_hf.motion import landmark_flow

TINY = dict(base_channels=8, intrinsic_channels=8, discriminator_channels=8)


def same_state(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    """The same tensor names, and equal tensors under each (zip over values alone passes when keys are missing)."""
    return first.keys() == second.keys() and all(torch.equal(value, second[name]) for name, value in first.items())


def make(resolution: int = 64, **overrides):
    config = AIPGANConfig(resolution=resolution, **{**TINY, **overrides})
    torch.manual_seed(0)
    return AIPGANGenerator(**config.to_dict()), AIPGANDiscriminator.from_aipgan_config(config)


def inputs(resolution: int, batch: int = 2, seed: int = 0):
    """A random target, plausible landmarks (a scaled template-like cloud) and driving landmarks moved a little."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.rand(batch, 3, resolution, resolution, generator=generator) * 2 - 1
    landmarks = (0.25 + 0.5 * torch.rand(batch, 68, 2, generator=generator)) * resolution
    driving = landmarks + torch.randn(batch, 68, 2, generator=generator) * resolution / 64
    return target, landmarks, driving, landmark_flow(landmarks, driving, resolution)


@pytest.mark.parametrize("resolution", [64, 128])
def test_output_shapes(resolution):
    generator, discriminator = make(resolution)
    target, landmarks, driving, flow = inputs(resolution)
    out = generator(target, landmarks, driving, flow, return_landmarks=True)
    r4 = resolution // 4
    assert out.image.shape == out.warped_target.shape == (2, 3, resolution, resolution)
    assert out.intrinsic_image.shape == (2, 3, resolution, resolution)
    assert out.landmark_heatmaps.shape == (2, 68, r4, r4)
    assert out.expression_attention.shape == out.identity_attention.shape == (2, 1, r4, r4)
    assert out.mask.shape == (2, 1, resolution, resolution)
    # the output is the mask's blend of the painted colour and the warped target, and outside the face mask (what
    # paste-back uses) exactly the warped target: a range check would hold by construction (tanh, sigmoid)
    assert torch.allclose(out.image, out.mask * out.colour + (1 - out.mask) * out.warped_target, atol=1e-6)
    outside = torch.from_numpy(face_mask(resolution) == 0)  # (R, R)
    assert outside.any() and (out.mask[:, :, outside] == 0).all()
    assert torch.equal(out.image[:, :, outside], out.warped_target[:, :, outside])
    assert (out.mask[:, :, ~outside] > 0).all()  # inside, the decoder may repaint anywhere
    d = discriminator(out.image)
    assert [tuple(logits.shape) for logits in d.logits] == [
        (2, 1, resolution // 8, resolution // 8),
        (2, 1, resolution // 16, resolution // 16),
    ]
    assert generator.predict_landmarks(target).shape == (2, 68, 2)


def test_resolution_256_runs():
    generator, _ = make(256)
    target, landmarks, driving, flow = inputs(256, batch=1)
    out = generator(target, landmarks, driving, flow, return_intrinsic=False)
    assert out.image.shape == (1, 3, 256, 256) and out.intrinsic_image is None


def test_every_parameter_gets_a_gradient_and_no_nan():
    generator, discriminator = make(64)
    target, landmarks, driving, flow = inputs(64)
    source = torch.rand(2, 3, 64, 64) * 2 - 1
    out = generator(target, landmarks, driving, flow, source=source, identity_mix=0.3, return_landmarks=True)
    loss = (
        out.image.mean()
        + out.intrinsic_image.mean()
        + out.landmark_heatmaps.mean()
        + out.expression_attention.mean()
        + out.identity_attention.mean()
    )
    d = discriminator(out.image)
    loss = loss + sum(logits.mean() for logits in d.logits)
    loss.backward()
    for model in (generator, discriminator):
        for name, parameter in model.named_parameters():
            assert parameter.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"
            assert parameter.grad.abs().sum() > 0, f"{name} got an all-zero gradient"
    assert torch.isfinite(out.image).all()


def test_output_does_not_read_the_source_at_identity_mix_zero():
    """With identity_mix 0 the source image is not an input at all: any source gives the same bits."""
    generator, _ = make(64)
    generator.eval()
    target, landmarks, driving, flow = inputs(64, batch=1)
    with torch.no_grad():
        first = generator(target, landmarks, driving, flow, source=torch.rand(1, 3, 64, 64)).image
        second = generator(target, landmarks, driving, flow, source=-torch.rand(1, 3, 64, 64)).image
        mixed = generator(target, landmarks, driving, flow, source=torch.rand(1, 3, 64, 64), identity_mix=0.5).image
    assert torch.equal(first, second)
    assert not torch.allclose(first, mixed)  # the source does matter once identity is mixed in


def test_driving_landmarks_change_the_output():
    generator, _ = make(64)
    generator.eval()
    target, landmarks, driving, flow = inputs(64, batch=1)
    with torch.no_grad():
        still = generator(target, landmarks, landmarks, landmark_flow(landmarks, landmarks, 64)).image
        moved = generator(target, landmarks, driving, flow).image
    assert not torch.allclose(still, moved)


def test_identity_mix_one_uses_source_identity_features():
    generator, _ = make(64)
    generator.eval()
    target, landmarks, driving, flow = inputs(64, batch=1)
    source = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        full = generator(target, landmarks, driving, flow, source=source, identity_mix=1.0)
        identity = generator.encode_identity(target)
        source_features = generator.encode_identity(source, return_intrinsic=False).features
        expression = generator.encode_expression(driving, landmarks, flow)
        decoded = generator.decode(identity, expression, target, flow, identity_features=source_features)
    assert torch.allclose(full.image, decoded.image)


def test_config_json_round_trip(tmp_path):
    config = AIPGANConfig(resolution=64, base_channels=12, channel_multipliers=[1, 2, 3], heatmap_sigma=1.5)
    generator = AIPGANGenerator(**config.to_dict())
    generator.save_config(tmp_path)
    loaded = json.loads((tmp_path / "config.json").read_text())
    assert AIPGANConfig.from_dict(loaded) == config
    assert AIPGANConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert generator.aipgan_config == config


def test_the_config_is_declared_once():
    """The Hub classes' __init__ take AIPGANConfig's fields with its defaults: a default built with no arguments
    is the default config, and adding a field to one without the other fails here."""
    import dataclasses
    import inspect

    fields = {
        f.name: f.default_factory() if f.default is dataclasses.MISSING else f.default
        for f in dataclasses.fields(AIPGANConfig)
    }
    parameters = dict(inspect.signature(AIPGANGenerator.__init__).parameters)
    parameters.pop("self")
    assert list(parameters) == list(fields)
    assert {
        name: list(p.default) if isinstance(p.default, tuple) else p.default for name, p in parameters.items()
    } == fields
    assert AIPGANGenerator().aipgan_config == AIPGANConfig()
    critic = dict(inspect.signature(AIPGANDiscriminator.__init__).parameters)
    assert {name: critic[name].default for name in critic if name not in ("self", "mouth_crop_size")} == {
        name: fields[name]
        for name in ("in_channels", "discriminator_channels", "discriminator_scales", "discriminator_layers")
    }


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(resolution=100), "divisible"),
        (dict(channel_multipliers=[1, 2]), "at least 3"),
        (dict(base_channels=0), "base_channels"),
        (dict(heatmap_sigma=-1), "heatmap_sigma"),
        (dict(architecture="appearance"), "architecture"),
        (dict(landmark_map_sigma=0), "landmark_map_sigma"),
    ],
)
def test_config_validation(bad, message):
    with pytest.raises(ConfigError, match=message):
        AIPGANConfig(**bad)


def test_heatmap_round_trip():
    points = torch.tensor([[[10.0, 20.0], [40.5, 33.25]]]).repeat(1, 34, 1)  # (1, 68, 2)
    heatmaps = landmarks_to_heatmaps(points, size=32, image_size=64, sigma=1.0)
    recovered = heatmaps_to_landmarks(heatmaps * 5, image_size=64)
    assert torch.allclose(recovered, points, atol=0.6)


def test_landmark_maps_hold_no_denormal_floats(monkeypatch):
    """A map's far tails are zero, not denormal (a CPU convolution over denormals runs four times slower), and
    nothing that matters moved: the maps match the unfloored ones to 1e-14."""
    import aipgan_hf.landmarks as landmark_module

    _, landmarks, _, _ = inputs(128)
    maps = landmark_maps(landmarks, 64, 128, sigma=2.0)
    monkeypatch.setattr(landmark_module, "PROFILE_FLOOR", 0.0)
    unfloored = landmark_maps(landmarks, 64, 128, sigma=2.0)
    tiny = torch.finfo(torch.float32).tiny
    assert ((unfloored != 0) & (unfloored < tiny)).any()  # the inputs do reach denormal tails
    assert not ((maps != 0) & (maps < tiny)).any() and (maps == 0).sum() > (unfloored == 0).sum()
    assert (maps - unfloored).abs().max() < 1e-14


def test_diffusers_from_pretrained_round_trip(tmp_path):
    """diffusers' own loader gives the same weights; outputs agree to float rounding (its tensors come from a
    memory-mapped file whose alignment can pick other SIMD paths). Bitwise equality is tested through
    ``aipgan_hf.checkpoint.load_generator`` in test_pipeline.py."""
    generator, discriminator = make(64)
    generator.eval()
    generator.save_pretrained(tmp_path / "g")
    discriminator.save_pretrained(tmp_path / "d")
    loaded = AIPGANGenerator.from_pretrained(tmp_path / "g", low_cpu_mem_usage=False).eval()
    target, landmarks, driving, flow = inputs(64, batch=1)
    assert same_state(generator.state_dict(), loaded.state_dict())
    with torch.no_grad():
        assert torch.allclose(
            generator(target, landmarks, driving, flow).image, loaded(target, landmarks, driving, flow).image, atol=1e-5
        )
    d2 = AIPGANDiscriminator.from_pretrained(tmp_path / "d", low_cpu_mem_usage=False)
    assert same_state(discriminator.state_dict(), d2.state_dict())
    assert (tmp_path / "g" / "diffusion_pytorch_model.safetensors").is_file()


def mouth_at(centre_x: float, centre_y: float, width: float, batch: int = 1) -> torch.Tensor:
    """(B, 68, 2) landmarks whose 20 mouth points sit on a horizontal ellipse of ``width`` around the centre."""
    landmarks = torch.full((batch, 68, 2), 5.0)
    angles = torch.linspace(0, 2 * torch.pi, 21)[:-1]
    mouth = torch.stack([centre_x - width / 2 * torch.cos(angles), centre_y + width / 6 * torch.sin(angles)], dim=1)
    landmarks[:, 48:68] = mouth  # point 48 at the left corner, 54 at the right one
    return landmarks


def test_mouth_crop_follows_the_mouth():
    from aipgan_hf.modeling import mouth_crop

    image = -torch.ones(1, 3, 64, 64)
    image[..., 38:42, 18:22] = 1.0  # a bright 4-px square around (20, 40)
    crop = mouth_crop(image, mouth_at(19.5, 39.5, width=10.0), size=16)  # a 16-px window of side 16 px: 1:1
    assert crop.shape == (1, 3, 16, 16)
    assert crop[0, 0, 6:10, 6:10].min() > 0.9 and crop[0, 0, :4].max() < -0.9  # the square in the middle, dark above
    elsewhere = mouth_crop(image, mouth_at(44.5, 20.5, width=10.0), size=16)
    assert elsewhere.max() < -0.9


def test_mouth_critic_judges_only_the_mouth_and_needs_landmarks():
    _, discriminator = make(64, discriminator_scales=1)
    assert (
        discriminator.mouth is None and len(discriminator(torch.zeros(1, 3, 64, 64)).logits) == 1
    )  # the default: none
    config = AIPGANConfig(resolution=64, **{**TINY, "discriminator_scales": 1})
    torch.manual_seed(0)
    critic = AIPGANDiscriminator.from_aipgan_config(config, mouth_crop_size=16).eval()
    with pytest.raises(ValueError, match="landmarks"):
        critic(torch.zeros(1, 3, 64, 64))
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    landmarks = mouth_at(32.0, 44.0, width=10.0)
    with torch.no_grad():
        out = critic(image, landmarks)
        assert len(out.logits) == len(out.features) == 2
        far = image.clone()
        far[..., :20, :] = 0.0  # the forehead
        near = image.clone()
        near[..., 40:48, 28:36] = 0.0  # the lips
        assert torch.equal(critic(far, landmarks).logits[1], out.logits[1])
        assert not torch.equal(critic(near, landmarks).logits[1], out.logits[1])


def test_discriminator_config_without_a_mouth_field_has_no_mouth_critic(tmp_path):
    _, discriminator = make(64)
    discriminator.save_pretrained(tmp_path / "d")
    config_path = tmp_path / "d" / "config.json"
    config = json.loads(config_path.read_text())
    del config["mouth_crop_size"]  # as written before the mouth critic existed
    config_path.write_text(json.dumps(config))
    loaded = AIPGANDiscriminator.from_pretrained(tmp_path / "d", low_cpu_mem_usage=False)
    assert loaded.mouth is None and loaded.config.mouth_crop_size == 0
