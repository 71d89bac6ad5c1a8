"""Compositing: the photo warped by the crop's flow and the face pasted in at the photo's resolution
(compositing.photo.PhotoWarper), as the pipeline's paste-back does it. The mouth's inside is tested in test_mouth."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from aipgan_hf.compositing import photo as photo_module
from aipgan_hf.compositing.paste import as_photo
from aipgan_hf.compositing.photo import PhotoWarper, _box_mean
from aipgan_hf.faces import FaceProcessor, apply_affine, face_mask, invert_affine, is_grey, load_image, load_photo
from aipgan_hf.motion import identity_grid


@pytest.fixture(scope="module")
def processor() -> FaceProcessor:
    return FaceProcessor(resolution=128)


def paste(photo: np.ndarray, face: np.ndarray, matrix: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """The pipeline's paste-back with the identity flow (nothing moved): ``face`` blended in through the face mask
    times ``weight``."""
    size = len(face)
    alpha = face_mask(size) * (1.0 if weight is None else weight)
    return PhotoWarper(photo, matrix, size).composite(identity_grid(1, size)[0], face, alpha)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_paste_back_changes_only_pixels_inside_the_crop_and_the_face(processor, astronaut, grace_hopper, name):
    photo = {"astronaut": astronaut, "grace_hopper": grace_hopper}[name]
    before = photo.copy()
    aligned = processor.align(photo)
    result = paste(photo, 255 - aligned.crop, aligned.matrix)
    np.testing.assert_array_equal(photo, before)  # the input is not modified
    assert result.shape == photo.shape and result.dtype == np.uint8
    changed = np.abs(result.astype(int) - photo).max(axis=2) > 1  # the unmoved warp resamples by under a level
    assert changed.sum() > 2000  # the face really was replaced
    # nothing changes outside the crop square mapped back into the photo, bit for bit
    rows, cols = np.mgrid[0 : photo.shape[0], 0 : photo.shape[1]]
    crop_xy = apply_affine(aligned.matrix, np.stack([cols.ravel(), rows.ravel()], axis=1)).reshape(*rows.shape, 2)
    inside_crop = ((crop_xy > -1) & (crop_xy < 128)).all(axis=2)
    assert np.array_equal(result[~inside_crop], photo[~inside_crop])
    # nor where the face mask reaches no photo pixel (a white face pasted on black shows where it does)
    reach = paste(np.zeros_like(photo), np.full((128, 128, 3), 255, np.uint8), aligned.matrix)[..., 0]
    assert not changed[reach == 0].any() and (reach == 0).sum() > changed.size / 2
    centre = apply_affine(invert_affine(aligned.matrix), np.array([[64.0, 70.0]]))[0].round().astype(int)
    assert changed[centre[1], centre[0]]  # and the middle of the face did change


def test_pasting_the_unchanged_crop_back_restores_the_photo(processor, astronaut):
    aligned = processor.align(astronaut)
    inside = paste(np.zeros_like(astronaut), np.full((128, 128, 3), 255, np.uint8), aligned.matrix)[..., 0] > 128

    def error_inside_mask(face: np.ndarray, matrix: np.ndarray = aligned.matrix) -> float:
        result = paste(astronaut, face, matrix)
        return float(np.abs(result.astype(int) - astronaut.astype(int))[inside].mean())

    correct = error_inside_mask(aligned.crop)
    assert correct < 5.0  # only resampling blur
    assert error_inside_mask(np.roll(aligned.crop, 2, axis=1)) > 2 * correct  # a 2-pixel misplacement shows
    large = FaceProcessor(resolution=256).align(astronaut)  # a face of another size is mapped to the same place
    assert error_inside_mask(large.crop, large.matrix) < 5.0


def test_paste_back_weight_keeps_photo_where_zero(astronaut):
    aligned = FaceProcessor(resolution=64).align(astronaut)
    face = np.full((64, 64, 3), 255, dtype=np.uint8)
    warped = PhotoWarper(astronaut, aligned.matrix, 64)(identity_grid(1, 64)[0])  # the photo, resampled in place
    assert np.abs(warped.astype(int) - astronaut).max() <= 1
    assert np.array_equal(paste(astronaut, face, aligned.matrix, np.zeros((64, 64), np.float32)), warped)
    half = np.zeros((64, 64), dtype=np.float32)
    half[:, 32:] = 1.0  # only the crop's right half (the subject's left) may change
    partial = paste(astronaut, face, aligned.matrix, half)
    changed = np.argwhere((partial != warped).any(-1))
    centre_x = aligned.landmarks[27:36, 0].mean()  # nose line in the photo
    assert len(changed) and (changed[:, 1] > centre_x - 4).all()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_photo_decoded_at_reduced_scale_is_pasted_at_full_resolution(astronaut, processor, fmt):
    canvas = Image.new("RGB", (3001, 2003), (90, 100, 110))
    canvas.paste(Image.fromarray(astronaut).resize((1200, 1200)), (1500, 300))
    buffer = io.BytesIO()
    canvas.save(buffer, format=fmt)
    photo = load_photo(buffer.getvalue())
    assert photo.reduced
    reduced = processor.align(photo)
    full = photo.full_resolution()  # decoded only now, as the pipeline's paste-back does
    pasted = paste(full, 255 - reduced.crop, reduced.matrix)
    assert pasted.shape == (2003, 3001, 3)
    changed = (pasted != load_image(buffer.getvalue())).any(axis=2)
    rows, cols = np.nonzero(changed)
    face = apply_affine(invert_affine(reduced.matrix), np.array([[0.0, 0.0], [127.0, 127.0]]))  # the crop's corners
    assert changed.sum() > 20000 and rows.min() >= face[0, 1] - 1 and cols.max() <= face[1, 0] + 1


def test_a_grey_photo_gets_a_grey_face(astronaut, processor):
    buffer = io.BytesIO()
    Image.fromarray(astronaut).convert("L").save(buffer, format="JPEG", quality=90)
    photo = load_photo(buffer.getvalue())
    assert photo.grey and not load_photo(astronaut).grey
    colour_face = processor.align(astronaut).crop  # what a colour generator paints
    assert is_grey(as_photo(photo)(colour_face)) and not is_grey(as_photo(load_photo(astronaut))(colour_face))
    result = paste(photo.pixels, as_photo(photo)(colour_face), processor.align(photo).matrix)
    assert is_grey(result) and (result != photo.pixels).any()


def test_the_photo_warp_is_identity_for_an_identity_flow_and_moves_inside_the_crop(astronaut):
    matrix = np.array([[0.25, 0.0, -40.0], [0.0, 0.25, -20.0]])  # photo -> 64-px crop
    warper = PhotoWarper(astronaut, matrix, 64)
    same = warper(identity_grid(1, 64)[0])
    assert np.abs(same.astype(int) - astronaut).max() <= 1
    shift = identity_grid(1, 64)[0].clone()
    shift[..., 0] += 4 / 32  # read 4 crop pixels to the right everywhere
    moved = warper(shift)
    y, x = 200, 250  # inside the crop square (photo 160..416, 80..336)
    assert np.abs(moved[y, x].astype(int) - astronaut[y, x + 16]).max() <= 2
    assert np.array_equal(moved[:60], astronaut[:60])  # outside the crop nothing changes


def test_paste_back_keeps_the_photos_fine_texture_where_asked():
    """A face repainted as the crop saw it (4x coarser than the photo) loses the photo's fine texture; with
    ``detail`` the texture finer than a crop pixel comes back, and with detail 0 the result is the plain paste."""
    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.uniform(60, 190, (1, 3, 16, 16)))
    base = (
        torch.nn.functional.interpolate(coarse, size=(256, 256), mode="bicubic")[0].permute(1, 2, 0).numpy()
    )  # smooth
    texture = rng.uniform(-30, 30, (256, 256, 3))  # pores: finer than a crop pixel
    photo = np.clip(base + texture, 0, 255).astype(np.uint8)
    matrix = np.array([[0.25, 0.0, 0.0], [0.0, 0.25, 0.0]])  # photo -> 64-px crop
    face = photo.reshape(64, 4, 64, 4, 3).mean(axis=(1, 3)).round().astype(np.uint8)  # the crop's view of the photo
    alpha, flow = np.ones((64, 64), np.float32), identity_grid(1, 64)[0]
    warper = PhotoWarper(photo, matrix, 64)
    plain, none = warper.composite(flow, face, alpha), warper.composite(flow, face, alpha, np.zeros((64, 64)))
    kept = warper.composite(flow, face, alpha, np.ones((64, 64)))
    inner = (slice(16, 240), slice(16, 240))  # away from the crop border
    error = lambda image: np.abs(image[inner].astype(int) - photo[inner].astype(int)).mean()
    assert np.array_equal(plain, none)
    assert error(plain) > 12 and error(kept) < 0.45 * error(
        plain
    )  # the plain paste is the smooth crop; with detail, the photo
    half = np.zeros((64, 64))
    half[:, 32:] = 1.0  # texture only on the right half
    mixed = warper.composite(flow, face, alpha, half)
    left, right = (slice(16, 240), slice(16, 100)), (slice(16, 240), slice(156, 240))
    assert np.abs(mixed[left].astype(int) - plain[left].astype(int)).max() == 0
    assert np.abs(mixed[right].astype(int) - kept[right].astype(int)).max() <= 1


def test_paste_back_keeps_lines_a_few_crop_pixels_wide(monkeypatch):
    """The network's paint is smoother than its crop: lines 2.5 crop pixels apart (wrinkles, the lips' lines) are
    lost from it, and paste-back brings them back from the photo up to TEXTURE_SCALE crop pixels (not at 1)."""
    rng = np.random.default_rng(0)
    coarse = torch.from_numpy(rng.uniform(60, 190, (1, 3, 8, 8)))
    base = torch.nn.functional.interpolate(coarse, size=(256, 256), mode="bicubic")[0].permute(1, 2, 0).numpy()
    lines = 25 * np.sin(2 * np.pi * np.arange(256)[:, None, None] / 10)  # 10 photo px apart: 2.5 crop px
    photo = np.clip(base + lines, 0, 255).astype(np.uint8)
    matrix = np.array([[0.25, 0.0, 0.0], [0.0, 0.25, 0.0]])  # photo -> 64-px crop
    crop = torch.from_numpy(photo.reshape(64, 4, 64, 4, 3).mean(axis=(1, 3))).permute(2, 0, 1)[None]
    paint = F.avg_pool2d(crop, 3, 1, 1, count_include_pad=False)[0].permute(1, 2, 0).numpy().round().astype(np.uint8)
    alpha, detail, flow = np.ones((64, 64), np.float32), np.ones((64, 64)), identity_grid(1, 64)[0]
    inner = (slice(16, 240), slice(16, 240))
    error = lambda image: np.abs(image[inner].astype(int) - photo[inner].astype(int)).mean()
    plain = error(PhotoWarper(photo, matrix, 64).composite(flow, paint, alpha))
    kept = error(PhotoWarper(photo, matrix, 64).composite(flow, paint, alpha, detail))
    monkeypatch.setattr(photo_module, "TEXTURE_SCALE", 1.0)
    one_pixel = error(PhotoWarper(photo, matrix, 64).composite(flow, paint, alpha, detail))
    assert plain > 15 and kept < 0.3 * plain and one_pixel > 0.6 * plain


def test_the_texture_box_mean_equals_a_padded_average_pool():
    """The running-sum box filter of the paste-back texture is avg_pool2d over a replicate-padded photo."""
    photo = torch.rand(1, 3, 37, 52, generator=torch.Generator().manual_seed(0)) * 255
    for half in (1, 2, 4):
        expected = F.avg_pool2d(F.pad(photo, (half,) * 4, mode="replicate"), 2 * half + 1, stride=1)
        assert torch.allclose(_box_mean(photo, half), expected, atol=1e-3)
