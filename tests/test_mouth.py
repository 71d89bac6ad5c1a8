"""The opened mouth's inside: where it comes from (compositing.mouth), how it is read from the source photo
(compositing.photo.PhotoReader), and the pipeline's ``mouth=`` choice."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from aipgan_hf import AIPGANConfig, AIPGANGenerator, ConfigError
from aipgan_hf.checkpoint import BUNDLED_CHECKPOINT
from aipgan_hf.compositing.exemplar import ENLARGE, MouthExemplar
from aipgan_hf.compositing.mouth import lighting_gain, mouth_read, mouth_shares, plan_mouth
from aipgan_hf.compositing.photo import PhotoReader
from aipgan_hf.faces import image_to_tensor
from aipgan_hf.faces.align import warp_to_crop
from aipgan_hf.faces.geometry import IDENTITY, apply_affine
from aipgan_hf.landmarks import INNER_LIPS, MOUTH, inner_lip_gap, mouth_interior
from aipgan_hf.motion import ShapeModel, identity_grid
from aipgan_hf.motion.flow import pixels_to_normalised
from aipgan_hf.pipeline import AIPGANPipeline

SIZE = 64


def face(gap: float = 0.0, shift: float = 0.0) -> torch.Tensor:
    """(1, 68, 2): the shape model's mean face in a 64-px crop, its lower lip ``gap`` px lower, moved ``shift`` px right."""
    mean = torch.as_tensor(ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors").mean, dtype=torch.float32)
    points = (mean - mean.mean(0)) * 26 + SIZE / 2
    points[[55, 56, 57, 58, 59, 65, 66, 67], 1] += gap  # the lower lip, outer and inner
    points[:, 0] += shift
    return points[None]


def test_inner_lip_gap_measures_how_open_the_mouth_is():
    assert inner_lip_gap(face(8.0)) - inner_lip_gap(face(0.0)) == pytest.approx(torch.tensor([8.0]), abs=0.2)
    assert inner_lip_gap(face(8.0).numpy()) == pytest.approx(inner_lip_gap(face(8.0)).numpy())  # numpy too, the same


def test_a_closed_photo_is_never_copied_into_an_open_mouth():
    fill = plan_mouth(face(), face(8.0), SIZE, source_landmarks=face(), mouth="source")
    assert fill.own.max() == 0 and fill.source.max() == 0 and fill.source_read is None


def test_a_shut_driving_mouth_reads_no_photo():
    shut = face(-2.0)  # the mean face's inner lips are 2.2 px apart: 0.2 px, under MIN_GAP's 0.5 px
    own, share = mouth_shares(shut, shut, SIZE, face(7.0), mouth="source")  # a source whose mouth is wide open
    assert float(own) == 0 and float(share) == 0
    fill = plan_mouth(
        face(7.0), shut, SIZE, source_landmarks=face(7.0), mouth="source"
    )  # nor the target's own open mouth
    assert fill.own.max() == 0 and fill.source.max() == 0 and fill.source_read is None and fill.origin(0) == "closed"
    _, opened = mouth_shares(
        shut, face(7.0), SIZE, face(7.0), mouth="source"
    )  # the same photos, the driving mouth open
    assert float(opened) == 1
    ajar = face(0.75 - float(inner_lip_gap(face())))  # a driving gap of 0.75 px: half way up from 0.5 px to 1 px
    assert float(mouth_shares(shut, ajar, SIZE, face(7.0), mouth="source")[1]) == pytest.approx(
        0.5, abs=0.01
    )  # a ramp, not a flicker


def test_the_first_open_photo_fills_the_driving_mouth():
    interior = mouth_interior(face(8.0), SIZE)
    from_source = plan_mouth(face(), face(8.0), SIZE, source_landmarks=face(7.0), mouth="source")
    assert torch.equal(from_source.source, interior) and from_source.own.max() == 0
    own_first = plan_mouth(
        face(7.0), face(8.0), SIZE, source_landmarks=face(7.0), mouth="source"
    )  # the target's own teeth first
    assert torch.equal(own_first.own, interior) and own_first.source.max() == 0
    share = float(inner_lip_gap(face(4.0)) / inner_lip_gap(face(8.0)))  # the mean face's mouth is a little open
    half = plan_mouth(face(), face(8.0), SIZE, source_landmarks=face(4.0), mouth="source")  # part way up the ramp
    assert 0.3 < share < 0.7 and half.source.max() == pytest.approx((share - 0.3) / 0.4, abs=0.01)


def test_the_exemplar_fills_a_gape_of_any_width_a_source_photo_not():
    """A driving gap 10 times the lending photo's: the exemplar's teeth keep their size over the cavity, so it lends
    in full (it faded out from 2.5 times its gap, and a laugh's widest frames showed the network's blur); a source
    photo's teeth would be stretched ten times, so it lends nothing."""
    lending, gaping = face(1.0), face(20.0)
    assert float(inner_lip_gap(gaping) / inner_lip_gap(lending)) > 6
    assert float(mouth_shares(face(), gaping, SIZE, lending, mouth="exemplar")[1]) == 1
    assert float(mouth_shares(face(), gaping, SIZE, lending, mouth="source")[1]) == 0


def test_the_choice_limits_where_the_inside_may_come_from():
    assert plan_mouth(face(7.0), face(8.0), SIZE, source_landmarks=face(7.0), mouth="network").own.max() == 0
    own = plan_mouth(face(), face(8.0), SIZE, source_landmarks=face(7.0), mouth="own")
    assert own.source.max() == 0 and own.source_read is None
    with pytest.raises(ConfigError, match="mouth must be one of"):
        plan_mouth(face(), face(8.0), SIZE, mouth="teeth")


def test_the_read_sends_the_driving_mouth_onto_the_sources():
    driving, source = face(8.0), face(5.0, shift=3.0)
    read, cavity = mouth_read(driving, source, SIZE)  # (1, R, R, 2), and no cavity for a source photo
    assert float(cavity.abs().max()) == 0
    at_points = F.grid_sample(
        read.permute(0, 3, 1, 2), pixels_to_normalised(driving[:, None, MOUTH], SIZE), align_corners=False
    )
    assert torch.allclose(at_points[0, :, 0].T, pixels_to_normalised(source[0, MOUTH], SIZE), atol=2e-3)


def test_the_sources_inside_lands_inside_the_driving_mouth():
    driving, source = face(8.0), face(6.0, shift=4.0)
    inside_source = mouth_interior(source, SIZE)
    source_crop = (inside_source * 2 - 1).expand(1, 3, SIZE, SIZE)  # +1 inside the source's mouth, -1 elsewhere
    fill = plan_mouth(face(), driving, SIZE, source_landmarks=source, mouth="source")
    output = fill.apply(torch.zeros(1, 3, SIZE, SIZE), torch.zeros(1, 3, SIZE, SIZE), source_crop)
    core = fill.source[0, 0] == 1  # wholly inside the driving mouth
    assert core.sum() > 20 and output[0, 0][core].mean() > 0.8  # the source's inside, moved 4 px left and stretched
    assert torch.equal(output[0, 0][fill.source[0, 0] == 0], torch.zeros(int((fill.source[0, 0] == 0).sum())))


def test_a_dim_sources_inside_is_brightened_to_the_targets_light():
    """A source photo at 0.4 of the target's brightness: its teeth come out at the target's brightness, not black;
    the gain stays within its bounds."""
    driving, source = face(8.0), face(6.0)
    teeth = torch.full((1, 3, SIZE, SIZE), 0.8)  # the target's light: pixels at 0.9 of white
    dim = (teeth + 1.0) * 0.4 - 1.0
    fill = plan_mouth(face(), driving, SIZE, source_landmarks=source, target=teeth, source=dim, mouth="source")
    assert fill.source_gain == pytest.approx(torch.tensor([[2.5, 2.5, 2.5]]))
    output = fill.apply(torch.zeros(1, 3, SIZE, SIZE), torch.zeros(1, 3, SIZE, SIZE), dim)
    assert output[0, 0][fill.source[0, 0] == 1].mean() == pytest.approx(0.8, abs=1e-4)
    assert lighting_gain(dim, source, teeth, source) == pytest.approx(
        torch.tensor([[0.9, 0.9, 0.9]])
    )  # bounded below too


def test_a_grey_sources_inside_takes_the_colour_targets_tint():
    """A black-and-white source into a warm-skinned colour target: its teeth come out tinted the target's way
    (red > green > blue), as bright as before; a colour source's inside keeps its own colours (one gain for all
    channels)."""
    driving, source = face(8.0), face(6.0)
    target = torch.tensor([0.6, 0.2, -0.1]).view(1, 3, 1, 1).expand(1, 3, SIZE, SIZE)  # warm skin
    grey = torch.full((1, 3, SIZE, SIZE), 0.2)
    fill = plan_mouth(face(), driving, SIZE, source_landmarks=source, target=target, source=grey, mouth="source")
    output = fill.apply(torch.zeros(1, 3, SIZE, SIZE), torch.zeros(1, 3, SIZE, SIZE), grey)
    teeth = output[0, :, fill.source[0, 0] == 1].mean(1)  # (3,) in [-1, 1]
    luma = torch.tensor([0.299, 0.587, 0.114])
    target_luma = float((target[0, :, 0, 0] + 1.0) / 2.0 @ luma)  # the grey's brightness gain (1.07) brings it here
    assert teeth[0] > teeth[1] + 0.05 > teeth[2] + 0.1 and float((teeth + 1.0) / 2.0 @ luma) == pytest.approx(
        target_luma, abs=0.005
    )
    coloured = torch.tensor([0.1, 0.3, 0.5]).view(1, 3, 1, 1).expand(1, 3, SIZE, SIZE)
    gains = lighting_gain(
        target.expand(2, -1, -1, -1), source.expand(2, -1, -1), torch.cat([coloured, grey]), source.expand(2, -1, -1)
    )
    ratio = target_luma / float((coloured[0, :, 0, 0] + 1.0) / 2.0 @ luma)  # 1.01: inside GAIN_RANGE
    assert gains[0].tolist() == pytest.approx(
        [ratio] * 3, abs=1e-5
    )  # the colour source: the brightness ratio, every channel
    assert torch.equal(gains[1], fill.source_gain[0])  # its grey neighbour in the batch is tinted as on its own
    grey_into_grey = lighting_gain(torch.full_like(grey, 0.5), source, grey, source)[
        0
    ]  # a grey target: no tint to take
    assert grey_into_grey.tolist() == pytest.approx([0.75 / 0.6] * 3, abs=1e-5)


def _similarity(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([rotation, np.array(shift)[:, None]])


def test_the_photo_reader_reads_the_photo_at_its_own_resolution():
    """A photo twice the crop's size, rotated and shifted unequally in x and y: reading it at crop positions
    (moved 3 crop px right by ``read``) gives the photo bilinearly sampled where those positions fall in it."""
    from scipy.ndimage import map_coordinates

    photo = np.random.default_rng(0).integers(0, 255, (2 * SIZE, 2 * SIZE, 3), dtype=np.uint8)
    photo_to_crop = _similarity(0.3, 0.5, (9.0, -9.5))  # the crop's middle near the photo's
    read = identity_grid(1, SIZE) + torch.tensor([3.0 * 2 / SIZE, 0.0])
    reader = PhotoReader(photo, photo_to_crop, SIZE, read)
    crop = np.stack(np.meshgrid(np.linspace(20, 40, 9), np.linspace(18, 44, 7)), -1)  # (7, 9, 2) crop positions
    colours = reader(pixels_to_normalised(torch.from_numpy(crop).float(), SIZE)[None])[0].numpy()  # (3, 7, 9)
    inverse = np.linalg.inv(np.vstack([photo_to_crop, [0, 0, 1]]))[:2]
    at = (crop + [3.0, 0.0]) @ inverse[:, :2].T + inverse[:, 2]  # where the read crop positions lie in the photo
    assert (at > 2).all() and (at < 2 * SIZE - 3).all()
    expected = np.stack(
        [map_coordinates(photo[..., c].astype(float), [at[..., 1], at[..., 0]], order=1) for c in range(3)]
    )
    assert np.abs(colours - expected).max() < 0.05


def test_the_photo_reader_keeps_only_the_read_part_and_averages_a_finer_photo():
    """``support`` limits the copy to what is read; a source 4 x finer than the output is averaged first: a
    checkerboard of single photo pixels reads as its mean grey, not as black or white (aliasing)."""
    rows, cols = np.indices((4 * SIZE, 4 * SIZE))
    photo = np.repeat((((rows + cols) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    photo_to_crop = _similarity(0.0, 0.25, (-0.375, -0.375))  # photo pixel i -> crop pixel (i - 1.5) / 4
    support = np.zeros((SIZE, SIZE), np.float32)
    support[30:34, 20:28] = 1.0
    reader = PhotoReader(photo, photo_to_crop, SIZE, identity_grid(1, SIZE), support=support, output_scale=1.0)
    assert reader.image.shape[-2] * 4 < 40 and reader.image.shape[-1] * 4 < 60  # a mouth-sized part, reduced 4 x
    on_pixels = lambda first, count: (
        (torch.arange(first, first + count, dtype=torch.float32) - 1.5) / 4
    )  # at photo pixel centres
    positions = torch.stack(torch.meshgrid(on_pixels(86, 11), on_pixels(123, 5), indexing="xy"), -1)
    colours = reader(pixels_to_normalised(positions, SIZE)[None])[0].numpy()
    assert np.abs(colours - 127.5).max() < 0.5
    point_sampled = PhotoReader(photo, photo_to_crop, SIZE, identity_grid(1, SIZE), support=support)(
        pixels_to_normalised(positions, SIZE)[None]
    )
    assert np.abs(point_sampled[0].numpy() - 127.5).max() > 60  # without the pre-filter it aliases


def test_frames_without_a_face_give_no_inside():
    """A video frame without a face comes with the last good pose's (open) landmarks, or none (NaN): neither is read."""
    fill = plan_mouth(
        face().expand(3, -1, -1),
        face(8.0).expand(3, -1, -1),
        SIZE,
        source_found=torch.tensor([True, False, False]),
        source_landmarks=torch.cat([face(7.0), face(7.0), torch.full((1, 68, 2), float("nan"))]),
    )
    assert fill.source[0].max() == 1 and fill.source[1:].max() == 0 and torch.isfinite(fill.source_read).all()


@pytest.fixture(scope="module")
def pipe() -> AIPGANPipeline:
    torch.manual_seed(0)
    return AIPGANPipeline(AIPGANGenerator(**AIPGANConfig(resolution=SIZE, base_channels=8).to_dict()))


def _painted_mouth(photo: np.ndarray, points: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    image = Image.fromarray(photo)
    ImageDraw.Draw(image).polygon([tuple(p) for p in points], fill=colour)
    return np.asarray(image)


def _inside(pipe: AIPGANPipeline, photo: np.ndarray, driving: np.ndarray) -> np.ndarray:
    """(H, W) bool: the photo pixels inside the inner lips of ``driving`` (crop pixels of the photo's face)."""
    to_photo = np.linalg.inv(np.vstack([pipe.processor.align(photo).matrix, [0, 0, 1]]))[:2]
    mouth = driving[INNER_LIPS] @ to_photo[:, :2].T + to_photo[:, 2]
    inside = _painted_mouth(np.zeros_like(photo), mouth, (1, 1, 1))[..., 0] == 1
    assert inside.sum() > 40  # the driving mouth is open
    return inside


def _green(pixels: np.ndarray) -> float:
    return float(np.mean(pixels[..., 1].astype(int) - pixels[..., 0]))


@pytest.fixture(scope="module")
def green(pipe, astronaut) -> np.ndarray:
    """The astronaut with the inside of her open mouth painted green."""
    return _painted_mouth(astronaut, pipe.processor.align(astronaut).landmarks[INNER_LIPS], (0, 255, 0))


def test_the_pipeline_takes_the_mouths_inside_from_the_source_photo_unless_told_not_to(
    pipe, green, astronaut, grace_hopper
):
    """With mouth="source" Hopper's opened mouth turns green, with mouth="own" it does not (the bitwise
    independence from the source's pixels: test_pipeline)."""
    result = pipe(grace_hopper, source=green, mouth="source")
    inside = _inside(pipe, grace_hopper, result.driving_landmarks)
    assert _green(np.asarray(result.image)[inside]) > 100 and result.mouth == "source"  # green: the source's inside
    by_default = pipe(grace_hopper, source=green)  # "exemplar", and this pipeline has none: the network's paint
    assert _green(np.asarray(by_default.image)[inside]) < 30 and by_default.mouth == "network"
    own = pipe(grace_hopper, source=green, mouth="own")  # Hopper's closed mouth has no inside to lend
    assert _green(np.asarray(own.image)[inside]) < 30 and own.mouth == "network"
    still = pipe(grace_hopper, source=green, expression_strength=0.0, mouth="source")
    assert still.mouth == "closed"  # her own shut mouth: no photo's inside, not a sliver of it (before 0.7.0: green)
    assert np.array_equal(
        np.asarray(still.image),
        np.asarray(pipe(grace_hopper, source=green, expression_strength=0.0, mouth="own").image),
    )
    with pytest.raises(ConfigError, match="mouth must be one of"):
        pipe(grace_hopper, source=astronaut, mouth="teeth")


def test_a_large_jpeg_source_is_read_from_its_reduced_decode(pipe, green, grace_hopper):
    """A 6.8-MP JPEG is decoded at reduced scale: its mouth is still found where the reduced pixels have it."""
    buffer = io.BytesIO()
    Image.fromarray(green).resize((2600, 2600), Image.Resampling.BICUBIC).save(buffer, format="JPEG", quality=92)
    assert pipe.processor.load_photo(buffer.getvalue()).reduced
    result = pipe(grace_hopper, source=buffer.getvalue(), mouth="source")
    assert (
        _green(np.asarray(result.image)[_inside(pipe, grace_hopper, result.driving_landmarks)]) > 60
    )  # JPEG blurs its edge


def test_a_grey_target_gets_a_grey_inside(pipe, green, grace_hopper):
    grey = np.repeat(np.asarray(Image.fromarray(grace_hopper).convert("L"))[..., None], 3, axis=2)
    result = np.asarray(pipe(grey, source=green, mouth="source").image, dtype=int)
    assert (result[..., 0] == result[..., 1]).all() and (result[..., 1] == result[..., 2]).all()


def test_a_dim_source_photos_teeth_are_brightened_at_paste_back(pipe, green, grace_hopper):
    dim = (green.astype(float) * 0.35).astype(np.uint8)  # the green inside at 89 of 255
    result = pipe(grace_hopper, source=dim, mouth="source")
    pixels = np.asarray(result.image)[_inside(pipe, grace_hopper, result.driving_landmarks)]
    assert pixels[:, 1].mean() > 150  # lifted towards the target's light (the gain: 2.5 at most)


def test_the_targets_own_open_mouth_comes_from_its_photo(green, grace_hopper):
    """A small strength on the astronaut whose open mouth is painted green, with the bundled checkpoint: the inside stays
    her photo's (green); the network alone repaints half of it (mouth="network")."""
    trained = AIPGANPipeline.from_pretrained()
    own = trained(green, source=grace_hopper, expression_strength=0.05)  # 0 would give the photo back untouched
    inside = _inside(trained, green, own.driving_landmarks)
    assert _green(np.asarray(own.image)[inside]) > 170 and own.mouth == "own"
    assert (
        _green(np.asarray(trained(green, source=grace_hopper, expression_strength=0.05, mouth="network").image)[inside])
        < 140
    )


def test_each_video_frame_takes_its_own_frames_inside(pipe, green, astronaut, grace_hopper):
    """Two driving frames, the mouth painted green in one and blue in the other: frame i's output shows frame i's."""
    from aipgan_hf.video.frames import driving_faces

    blue = _painted_mouth(astronaut, pipe.processor.align(astronaut).landmarks[INNER_LIPS], (0, 0, 255))
    faces = [pipe.processor.align(frame) for frame in (green, blue)]
    prepared = pipe.prepare(grace_hopper)
    driving = np.stack([pipe.shape_model.drive(prepared.landmarks, face.crop_landmarks) for face in faces]).astype(
        np.float32
    )
    sources = driving_faces(
        pipe,
        [green, blue],
        np.stack([face.matrix for face in faces]),
        np.stack([face.crop_landmarks for face in faces]),
        np.ones(2, bool),
        driving,
    )
    frames = [np.asarray(result.image) for result in pipe.render(prepared, driving, mouth="source", sources=sources)]
    inside = _inside(pipe, grace_hopper, driving[0])
    assert _green(frames[0][inside]) > 100 and frames[1][inside][:, 2].mean() > frames[1][inside][:, 1].mean() + 100


def test_presets_take_an_opened_mouths_inside_from_the_exemplar(pipe, green, grace_hopper, tmp_path):
    """A preset on Hopper, with the green-mouthed astronaut as the checkpoint's exemplar: the opened mouth is green,
    unless mouth="own"; the exemplar is saved and loaded with the pipeline, strictly."""
    from aipgan_hf import CheckpointError
    from aipgan_hf.compositing.exemplar import MOUTH_EXEMPLAR_NAME, MouthExemplar

    face = pipe.processor.align(green)
    lending = AIPGANPipeline(
        pipe.generator, mouth_exemplar=MouthExemplar(crop=face.crop, landmarks=face.crop_landmarks)
    )
    sliders = {"mouth_open": 0.6}
    result = lending(grace_hopper, expression="happiness", expression_offsets=sliders)
    inside = _inside(lending, grace_hopper, result.driving_landmarks)
    assert _green(np.asarray(result.image)[inside]) > 50  # its upper teeth; below them the mouth's dark cavity
    assert (
        _green(
            np.asarray(lending(grace_hopper, expression="happiness", expression_offsets=sliders, mouth="own").image)[
                inside
            ]
        )
        < 30
    )
    assert pipe.mouth_exemplar is None  # a pipeline built from a generator has none unless given one
    with pytest.raises(ConfigError, match="mouth exemplar is a 128-px crop"):
        AIPGANPipeline(pipe.generator, mouth_exemplar=AIPGANPipeline.from_pretrained().mouth_exemplar)

    folder = lending.save_pretrained(tmp_path / "saved")
    loaded = AIPGANPipeline.from_pretrained(folder)
    assert np.array_equal(loaded.mouth_exemplar.crop, face.crop) and np.array_equal(
        loaded.mouth_exemplar.landmarks, face.crop_landmarks
    )
    (folder / MOUTH_EXEMPLAR_NAME).write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="mouth exemplar"):
        AIPGANPipeline.from_pretrained(folder)
    (folder / MOUTH_EXEMPLAR_NAME).unlink()
    assert AIPGANPipeline.from_pretrained(folder).mouth_exemplar is None  # an older folder: presets without teeth


def test_the_bundled_checkpoint_lends_presets_the_astronauts_mouth():
    from training.export_checkpoint import astronaut_exemplar

    bundled = AIPGANPipeline.from_pretrained()
    exemplar = astronaut_exemplar(bundled.resolution)  # how the shipped file is made
    assert np.abs(bundled.mouth_exemplar.crop.astype(int) - exemplar.crop).max() <= 1
    assert inner_lip_gap(torch.as_tensor(exemplar.landmarks)[None]) > 4  # an open mouth, with teeth


# ------------------------------------------------------------------------------------------ the default: exemplar
@pytest.fixture(scope="module")
def bundled() -> AIPGANPipeline:
    return AIPGANPipeline.from_pretrained()


def test_by_default_no_pixel_of_the_source_person_reaches_the_output(bundled, astronaut, grace_hopper, monkeypatch):
    """The astronaut's open smile drives Hopper's closed mouth open. A second source photo gives the same landmarks
    (its alignment is the first one's) and the same emotion reading but other pixels: the whole face, mouth
    included, is noise. By default (``mouth="exemplar"``) the two outputs are the same bits, and the opened mouth
    shows the exemplar's inside; with ``mouth="source"`` they differ. The source's pixels reach the output only
    through its 68 points and the reader's verdict, never as pixels."""
    face = bundled.processor.align(astronaut)
    noisy = astronaut.copy()
    x0, y0, x1, y1 = (int(v) for v in face.box)
    noisy[y0:y1, x0:x1] = np.random.default_rng(0).integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    align = bundled.processor.align

    def same_landmarks(image, face_index=None, **kwargs):
        pixels = getattr(image, "pixels", image)
        if isinstance(pixels, np.ndarray) and np.array_equal(pixels, noisy):  # detection as on the clean photo
            return dataclasses.replace(face, crop=warp_to_crop(noisy, face.matrix, bundled.resolution))
        return align(image, face_index=face_index, **kwargs)

    monkeypatch.setattr(bundled.processor, "align", same_landmarks)
    reading = bundled.emotion_reader.read(image_to_tensor(face.crop)[None])
    monkeypatch.setattr(bundled.emotion_reader, "read", lambda crops: reading)  # as read from the clean photo
    clean, noise = bundled(grace_hopper, source=astronaut), bundled(grace_hopper, source=noisy)
    assert clean.mouth == "exemplar"  # Hopper's own mouth is shut: the exemplar lends its inside
    assert np.array_equal(np.asarray(clean.image), np.asarray(noise.image))
    assert np.array_equal(clean.driving_landmarks, noise.driving_landmarks)
    lent = [bundled(grace_hopper, source=photo, mouth="source") for photo in (astronaut, noisy)]
    assert lent[0].mouth == "source" and not np.array_equal(np.asarray(lent[0].image), np.asarray(lent[1].image))
    # landmarks given instead (their lines in full, an estimate's at half): the source's pixels still count for nothing
    given = bundled(grace_hopper, source=noisy, driving_landmarks=clean.driving_landmarks)
    assert np.array_equal(
        np.asarray(given.image), np.asarray(bundled(grace_hopper, driving_landmarks=clean.driving_landmarks).image)
    )


def test_the_enlarged_exemplar_maps_onto_its_crop():
    """A bright spot at crop pixel (70, 40) is, through the enlarged exemplar's map, at (70, 40) (half a pixel off,
    teeth would slide against the lips), and the exemplar is :data:`ENLARGE` times finer."""
    crop = np.full((SIZE * 2, SIZE * 2, 3), 100, dtype=np.uint8)
    crop[39:42, 69:72] = 150
    pixels, to_crop = MouthExemplar(crop, np.zeros((68, 2), np.float32)).enlarged
    assert pixels.shape == (crop.shape[0] * ENLARGE, crop.shape[1] * ENLARGE, 3)
    weight = pixels[..., 0].astype(float) - 100.0  # the sharpening's ring is symmetric: it keeps the centre
    rows, columns = np.indices(weight.shape)
    centre = np.array([(columns * weight).sum(), (rows * weight).sum()]) / weight.sum()
    np.testing.assert_allclose(apply_affine(to_crop, centre[None])[0], [70.0, 40.0], atol=0.02)


def test_the_exemplars_teeth_are_sharp_at_paste_back(bundled, astronaut, grace_hopper):
    """Hopper's face is 2.2 times the crop: her lent teeth are read from the enlarged, sharpened exemplar, not
    blurred up from its crop (what paste-back read before)."""

    class CropOnly(MouthExemplar):
        @property
        def enlarged(self) -> tuple[np.ndarray, np.ndarray]:
            return self.crop, IDENTITY

    sharp = np.asarray(bundled(grace_hopper, source=astronaut).image)
    plain = CropOnly(bundled.mouth_exemplar.crop, bundled.mouth_exemplar.landmarks)
    pipe = AIPGANPipeline(bundled.generator, bundled.processor, bundled.shape_model, mouth_exemplar=plain)
    soft = np.asarray(pipe(grace_hopper, source=astronaut).image)
    lent = np.abs(sharp.astype(int) - soft).max(-1) > 3  # only the lent inside differs
    assert 300 < lent.sum() < 5000

    def edges(image: np.ndarray) -> float:
        luma = np.asarray(Image.fromarray(image).convert("L"), dtype=float)
        return float(np.abs(np.diff(luma, axis=1))[lent[:, 1:]].mean())

    assert edges(sharp) > 1.3 * edges(soft)


def test_presets_sliders_and_video_take_the_exemplars_mouth_by_default(bundled, grace_hopper):
    """A preset without ``mouth=`` is the exemplar's mouth, as ``mouth="exemplar"`` and ``mouth="source"`` (no source
    photo: its source is the exemplar) give it; the target's own photo still comes first."""
    preset = bundled(grace_hopper, expression="surprise")
    assert preset.mouth == "exemplar"
    for mouth in ("exemplar", "source"):
        assert np.array_equal(
            np.asarray(preset.image), np.asarray(bundled(grace_hopper, expression="surprise", mouth=mouth).image)
        )
    prepared = bundled.prepare(grace_hopper)
    rows = np.stack([preset.driving_landmarks, prepared.landmarks]).astype(np.float32)
    frames = bundled.render(prepared, rows)  # a video's batch: the same default
    assert [frame.mouth for frame in frames] == ["exemplar", "closed"]
    # the same picture; a batch of two may round the network's convolutions differently (within 2e-6)
    assert np.abs(np.asarray(frames[0].image, dtype=int) - np.asarray(preset.image)).max() <= 1


# ------------------------------------------------------------------------------------------ a gaping mouth
def _preset_mouth(emotion: str) -> torch.Tensor:
    """(1, 68, 2): the shape model's mean face in a 128-px crop (its mouth 29 px wide, as in aligned crops), driven
    by a preset."""
    model = ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors")
    mean = np.asarray(model.mean, dtype=np.float64)
    return torch.as_tensor(model.apply((mean - mean.mean(0)) * 52 + 64, model.presets[emotion]))[None].float()


def _exemplar_landmarks() -> torch.Tensor:
    from aipgan_hf.compositing.exemplar import MOUTH_EXEMPLAR_NAME, MouthExemplar

    return torch.as_tensor(MouthExemplar.load(BUNDLED_CHECKPOINT / MOUTH_EXEMPLAR_NAME).landmarks)[None]


def test_a_gaping_mouths_opening_is_round_at_its_corners():
    """The surprise preset's jaw drop: 1/8 of its width in from each corner the opening is at least 0.4 of its
    height at the middle (an ellipse's is 0.66). The inner lips' polygon, a wedge at each corner, gave 0.33."""
    driving = _preset_mouth("surprise")
    heights = mouth_interior(driving, 128)[0, 0].sum(0)  # (R,) the opening's height over each column
    left, right = float(driving[0, 60, 0]), float(driving[0, 64, 0])
    middle = float(heights[round((left + right) / 2)])
    assert middle > 10  # a gape
    for column in (left + (right - left) / 8, right - (right - left) / 8):
        assert float(heights[round(column)]) >= 0.4 * middle


def test_a_gaping_mouths_lent_teeth_are_a_band_over_the_cavity():
    """The exemplar's upper teeth in the surprise preset's jaw drop: as many rows of teeth (inside the opening, not
    the cavity) at the middle as at a quarter of the width from each corner, within a pixel, and the cavity below
    them. Stretched along the thin-plate spline, the teeth followed the gap: 1 row at the middle, 4 at the quarters.
    """
    driving = _preset_mouth("surprise")
    inside = mouth_interior(driving, 128)[0, 0] > 0.5
    _, cavity = mouth_read(driving, _exemplar_landmarks(), 128, teeth_only=True)
    teeth = (inside & (cavity[0, 0] < 0.5)).sum(0)  # (R,) rows of teeth over each column
    left, right = float(driving[0, 60, 0]), float(driving[0, 64, 0])
    middle = int(teeth[round((left + right) / 2)])
    quarters = [int(teeth[round(left + (right - left) / 4)]), int(teeth[round(right - (right - left) / 4)])]
    assert middle >= 2 and all(abs(quarter - middle) <= 1 for quarter in quarters)
    assert int((inside & (cavity[0, 0] >= 0.5)).sum()) > 4 * int(inside.sum()) // 10  # most of the gape is cavity


def test_a_smile_reads_the_exemplar_as_before():
    """A smile (the happiness preset, its gap within JAW_DROP of the exemplar's): no cavity, the exemplar read
    along the spline bit for bit, and its opening the inner lips' polygon."""
    from aipgan_hf.landmarks import INNER_LIPS, polygon_mask

    driving = _preset_mouth("happiness")
    read, cavity = mouth_read(driving, _exemplar_landmarks(), 128, teeth_only=True)
    plain, _ = mouth_read(driving, _exemplar_landmarks(), 128)
    assert torch.equal(read, plain) and float(cavity.abs().max()) == 0
    polygon = F.avg_pool2d(F.pad(polygon_mask(driving[:, INNER_LIPS], 128), (1, 1, 1, 1), mode="replicate"), 3, 1)
    assert torch.equal(mouth_interior(driving, 128), polygon)


def test_the_opening_rounds_as_the_exemplars_cavity_comes_in():
    """landmarks.OVAL is the bundled exemplar's JAW_DROP ramp in crop shares: a smile that keeps the exemplar's teeth
    keeps its polygon, a gape that shows the cavity is an oval."""
    from aipgan_hf.compositing.mouth import JAW_DROP
    from aipgan_hf.landmarks import OVAL

    share = float(inner_lip_gap(_exemplar_landmarks())) / 128
    assert OVAL[0] >= JAW_DROP[0] * share and OVAL == pytest.approx([ramp * share for ramp in JAW_DROP], abs=1e-3)


def test_a_gapes_teeth_follow_the_upper_lips_arch_not_its_notches():
    """An upper inner lip that dips at 61 and 63 (as the estimate from one photo often draws it): the teeth's edge
    (the top of the cavity) has no dip under 61 and 63 relative to the middle; hung from the lip curve itself it
    had one (two fangs)."""
    driving = _preset_mouth("surprise").clone()
    driving[0, [61, 63], 1] += 2.0  # 2 px lower than the middle of the upper lip
    inside = mouth_interior(driving, 128)[0, 0] > 0.5
    _, cavity = mouth_read(driving, _exemplar_landmarks(), 128, teeth_only=True)
    rows = torch.arange(128, dtype=torch.float32)[:, None].expand(128, 128)
    edge = torch.where(inside & (cavity[0, 0] >= 0.5), rows, torch.full_like(rows, 999.0)).amin(0)  # cavity top
    middle, sides = (
        int(edge[round(float(driving[0, 62, 0]))]),
        [int(edge[round(float(driving[0, p, 0]))]) for p in (61, 63)],
    )
    assert all(side <= middle + 1 for side in sides)  # the edge rises (or stays) towards the corners
