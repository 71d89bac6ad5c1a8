"""The opened mouth's inside: where it comes from (motion.mouth), how it is read from the source photo
(motion.photo.PhotoReader), and the pipeline's ``mouth=`` choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from aipgan_hf import AIPGANConfig, AIPGANGenerator, ConfigError
from aipgan_hf.landmarks import INNER_LIPS, MOUTH, mouth_interior
from aipgan_hf.motion import ShapeModel, identity_grid
from aipgan_hf.motion.flow import pixels_to_normalised
from aipgan_hf.motion.mouth import inner_lip_gap, lighting_gain, mouth_read, plan_mouth
from aipgan_hf.motion.photo import PhotoReader
from aipgan_hf.pipeline import BUNDLED_CHECKPOINT, AIPGANPipeline

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


def test_a_closed_photo_is_never_copied_into_an_open_mouth():
    fill = plan_mouth(face(), face(8.0), SIZE, source_landmarks=face())
    assert fill.own.max() == 0 and fill.source.max() == 0 and fill.source_read is None


def test_the_first_open_photo_fills_the_driving_mouth():
    interior = mouth_interior(face(8.0), SIZE)
    from_source = plan_mouth(face(), face(8.0), SIZE, source_landmarks=face(7.0))
    assert torch.equal(from_source.source, interior) and from_source.own.max() == 0
    own_first = plan_mouth(face(7.0), face(8.0), SIZE, source_landmarks=face(7.0))  # the target's own teeth first
    assert torch.equal(own_first.own, interior) and own_first.source.max() == 0
    share = float(inner_lip_gap(face(4.0)) / inner_lip_gap(face(8.0)))  # the mean face's mouth is a little open
    half = plan_mouth(face(), face(8.0), SIZE, source_landmarks=face(4.0))  # part way up the ramp
    assert 0.3 < share < 0.7 and half.source.max() == pytest.approx((share - 0.3) / 0.4, abs=0.01)


def test_the_choice_limits_where_the_inside_may_come_from():
    assert plan_mouth(face(7.0), face(8.0), SIZE, source_landmarks=face(7.0), mouth="network").own.max() == 0
    own = plan_mouth(face(), face(8.0), SIZE, source_landmarks=face(7.0), mouth="own")
    assert own.source.max() == 0 and own.source_read is None
    with pytest.raises(ConfigError, match="mouth must be one of"):
        plan_mouth(face(), face(8.0), SIZE, mouth="teeth")


def test_the_read_sends_the_driving_mouth_onto_the_sources():
    driving, source = face(8.0), face(5.0, shift=3.0)
    read = mouth_read(driving, source, SIZE)  # (1, R, R, 2)
    at_points = F.grid_sample(read.permute(0, 3, 1, 2), pixels_to_normalised(driving[:, None, MOUTH], SIZE), align_corners=False)
    assert torch.allclose(at_points[0, :, 0].T, pixels_to_normalised(source[0, MOUTH], SIZE), atol=2e-3)


def test_the_sources_inside_lands_inside_the_driving_mouth():
    driving, source = face(8.0), face(6.0, shift=4.0)
    inside_source = mouth_interior(source, SIZE)
    source_crop = (inside_source * 2 - 1).expand(1, 3, SIZE, SIZE)  # +1 inside the source's mouth, -1 elsewhere
    fill = plan_mouth(face(), driving, SIZE, source_landmarks=source)
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
    fill = plan_mouth(face(), driving, SIZE, source_landmarks=source, target=teeth, source=dim)
    assert fill.source_gain == pytest.approx(torch.tensor([2.5]))
    output = fill.apply(torch.zeros(1, 3, SIZE, SIZE), torch.zeros(1, 3, SIZE, SIZE), dim)
    assert output[0, 0][fill.source[0, 0] == 1].mean() == pytest.approx(0.8, abs=1e-4)
    assert lighting_gain(dim, source, teeth, source) == pytest.approx(torch.tensor([0.9]))  # bounded below too


def test_the_photo_reader_reads_the_photo_at_its_own_resolution():
    """A photo twice the crop's size: reading it at the crop's pixel positions, moved 3 crop px right, gives the
    photo's pixels 6 px right, not a crop-resolution copy."""
    photo = np.random.default_rng(0).integers(0, 255, (2 * SIZE, 2 * SIZE, 3), dtype=np.uint8)
    photo_to_crop = np.array([[0.5, 0.0, -0.25], [0.0, 0.5, -0.25]])  # photo pixel i -> crop pixel (i - 0.5) / 2
    read = identity_grid(1, SIZE) + torch.tensor([3.0 * 2 / SIZE, 0.0])
    reader = PhotoReader(photo, photo_to_crop, SIZE, read)
    pixels = np.arange(10, 2 * SIZE - 20)
    crop_positions = (pixels - 0.5) / 2  # where photo pixels fall in the crop
    grid = torch.from_numpy(np.stack(np.meshgrid(crop_positions, crop_positions), -1)).float()
    colours = reader(pixels_to_normalised(grid, SIZE)[None])  # (1, 3, n, n)
    expected = photo[10 : 2 * SIZE - 20, 16 : 2 * SIZE - 14].transpose(2, 0, 1)
    assert np.abs(colours[0].numpy() - expected).max() < 1e-2


@pytest.fixture(scope="module")
def pipe() -> AIPGANPipeline:
    torch.manual_seed(0)
    return AIPGANPipeline(AIPGANGenerator(**AIPGANConfig(resolution=SIZE, base_channels=8).to_dict()))


def _painted_mouth(photo: np.ndarray, points: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    image = Image.fromarray(photo)
    ImageDraw.Draw(image).polygon([tuple(p) for p in points], fill=colour)
    return np.asarray(image)


def test_the_pipeline_takes_the_mouths_inside_from_the_source_photo_unless_told_not_to(pipe, astronaut, grace_hopper):
    """The astronaut's open mouth painted green: with mouth="source" Hopper's opened mouth turns green, with
    mouth="own" it does not (the bitwise independence from the source's pixels: test_pipeline)."""
    green = _painted_mouth(astronaut, pipe.processor.align(astronaut).landmarks[INNER_LIPS], (0, 255, 0))
    result = pipe(source=green, target=grace_hopper)
    hopper = pipe.processor.align(grace_hopper)
    to_photo = np.linalg.inv(np.vstack([hopper.matrix, [0, 0, 1]]))[:2]
    mouth_in_photo = result.driving_landmarks[INNER_LIPS] @ to_photo[:, :2].T + to_photo[:, 2]
    inside = _painted_mouth(np.zeros_like(grace_hopper), mouth_in_photo, (1, 1, 1))[..., 0] == 1
    assert inside.sum() > 100  # the driving mouth is open
    pixels = np.asarray(result.image, dtype=int)[inside]
    assert np.mean(pixels[:, 1] - pixels[:, 0]) > 100  # green: the source's inside
    own = np.asarray(pipe(source=green, target=grace_hopper, mouth="own").image, dtype=int)[inside]
    assert np.mean(own[:, 1] - own[:, 0]) < 30  # no green: nothing of the source's pixels
    with pytest.raises(ConfigError, match="mouth must be one of"):
        pipe(source=astronaut, target=grace_hopper, mouth="teeth")
