"""aipgan_hf.provenance: every image the pipeline makes says, once saved, that aipgan-hf edited it."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import ExifTags, Image

from aipgan_hf import __version__
from aipgan_hf.configuration import AIPGANConfig
from aipgan_hf.modeling import AIPGANGenerator
from aipgan_hf.pipeline import AIPGANPipeline
from aipgan_hf.provenance import description, edit_description, mark_edited, save_options


def _reopen(image: Image.Image, image_format: str, **options) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    buffer.seek(0)
    reopened = Image.open(buffer)
    reopened.load()
    return reopened


@pytest.fixture(scope="module")
def result(astronaut, grace_hopper):
    torch.manual_seed(0)
    pipe = AIPGANPipeline(AIPGANGenerator(**AIPGANConfig(resolution=64, base_channels=8).to_dict()))
    return pipe(source=astronaut, target=grace_hopper)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_a_saved_pipeline_result_says_it_was_edited(result, image_format):
    for image in (result.image, result.face):
        reopened = _reopen(image, image_format, quality=90) if image_format != "PNG" else _reopen(image, "PNG")
        exif = reopened.getexif()
        assert exif.get(ExifTags.Base.ImageDescription) == description()
        assert exif.get(ExifTags.Base.Software) == f"aipgan-hf {__version__}"
        assert "expression transfer" in edit_description(reopened)
    png = _reopen(result.image, "PNG")
    assert png.text["Description"] == description() and png.text["Software"].startswith("aipgan-hf")


def test_a_preset_or_the_sliders_alone_are_stamped_as_such(grace_hopper):
    pipe = AIPGANPipeline.from_pretrained()
    preset = pipe(grace_hopper, expression="surprise")
    sliders = pipe(grace_hopper, expression_offsets={"smile": 0.5}, paste_back=False)
    for image in (preset.image, preset.face):
        assert "(preset expression: surprise)" in edit_description(_reopen(image, "PNG"))
    assert "(expression sliders)" in edit_description(_reopen(sliders.image, "JPEG"))


def test_the_stamp_changes_no_pixel_and_survives_repeated_saves():
    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    plain, stamped = Image.fromarray(pixels), mark_edited(Image.fromarray(pixels), "preset expression")
    for image_format in ("PNG", "JPEG"):
        first, second = _reopen(stamped, image_format), _reopen(stamped, image_format)
        assert "preset expression" in edit_description(second)
        np.testing.assert_array_equal(np.asarray(first), np.asarray(_reopen(plain, image_format)))
    assert edit_description(_reopen(plain, "PNG")) is None and edit_description(_reopen(plain, "JPEG")) is None


def test_explicit_save_options_stamp_a_copy():
    copy = mark_edited(Image.new("RGB", (8, 8))).convert("RGB")  # a copy starts unstamped
    assert edit_description(_reopen(copy, "JPEG")) is None
    assert edit_description(_reopen(copy, "JPEG", **save_options())) == description()
