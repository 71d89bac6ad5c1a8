"""The loss terms that the motion-guided model added: face-weighted reconstruction, image gradients, the
lips-and-eyes region and the painted-colour term."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aipgan_hf import losses


def test_reconstruction_inside_the_face_ignores_the_background():
    face = losses.face_weight(64)
    truth = torch.zeros(1, 3, 64, 64)
    other_background = truth.clone()
    other_background[..., :4, :] = 1.0  # the top rows: outside the face ellipse
    assert losses.reconstruction_loss(other_background, truth, spatial_weight=face) == 0
    assert losses.reconstruction_loss(other_background, truth) > 0
    other_face = truth.clone()
    other_face[..., 28:36, 28:36] = 1.0
    assert losses.reconstruction_loss(other_face, truth, spatial_weight=face) > 0


def test_gradient_loss_punishes_a_blur_that_plain_l1_forgives():
    torch.manual_seed(0)
    truth = (torch.rand(1, 3, 64, 64) > 0.5).float() * 2 - 1  # sharp texture
    blurred = F.avg_pool2d(truth, 3, stride=1, padding=1, count_include_pad=False)
    flat = torch.zeros_like(truth)
    assert losses.gradient_loss(blurred, truth) > 0.5 * losses.gradient_loss(flat, truth)
    assert losses.gradient_loss(truth, truth) == 0


def test_region_weight_rises_around_the_lips_and_eyes_only():
    face = losses.face_weight(128)
    landmarks = torch.zeros(1, 68, 2) + 64.0
    landmarks[0, 48:68] = torch.tensor([40.0, 100.0])  # all lip points at one spot, eyes in the middle
    weight = face * (1 + 4.0 * losses.expression_region(landmarks, 128))
    assert torch.isclose(weight[0, 0, 100, 40], face[0, 0, 100, 40] * 5, rtol=1e-3)
    assert torch.isclose(weight[0, 0, 20, 110], face[0, 0, 20, 110])  # far from every point: unchanged


def test_painted_region_loss_sees_the_colour_where_the_region_is():
    region = torch.zeros(1, 1, 32, 32)
    region[..., 10:20, 10:20] = 1.0
    truth = torch.zeros(1, 3, 32, 32)
    colour = torch.zeros(1, 3, 32, 32)
    colour[..., :5, :5] = 1.0  # wrong, but outside the region
    assert losses.painted_region_loss(colour, truth, region) == 0
    colour[..., 12, 12] = 1.0
    assert losses.painted_region_loss(colour, truth, region) > 0
    no_truth = torch.tensor([False])
    assert losses.painted_region_loss(colour, truth, region, weight=no_truth) == 0  # cross-person pairs: no term


def test_polygon_mask_fills_the_inside_only():
    square = torch.tensor([[[2.0, 2.0], [6.0, 2.0], [6.0, 6.0], [2.0, 6.0]]])
    mask = losses.polygon_mask(square, 8)[0, 0]
    assert mask.sum() == 16 and mask[2:6, 2:6].all() and mask[:2].sum() == 0 and mask[:, 6:].sum() == 0
    # pixel i's centre is at i (the landmarks' convention): a square from 2.25 to 5.75 holds the centres 3, 4, 5
    inner = losses.polygon_mask(torch.tensor([[[2.25, 2.25], [5.75, 2.25], [5.75, 5.75], [2.25, 5.75]]]), 8)[0, 0]
    assert inner.sum() == 9 and inner[3:6, 3:6].all()


def _mouth(gap: float) -> torch.Tensor:
    """68 points, all far left except the inner lips: an 8-point ring 24 px wide, ``gap`` px high, at (32, 40)."""
    points = torch.zeros(1, 68, 2)
    angles = torch.arange(8) * (2 * torch.pi / 8)
    points[0, 60:68, 0] = 32 + 12 * torch.cos(angles)
    points[0, 60:68, 1] = 40 + gap / 2 * torch.sin(angles)
    return points


def test_mouth_interior_is_the_inner_lips_with_a_soft_edge():
    from aipgan_hf.landmarks import mouth_interior

    interior = mouth_interior(_mouth(12.0), 64)[0, 0]
    assert interior[40, 32] == 1.0 and interior[40, 2] == 0.0 and interior[20, 32] == 0.0
    assert 0.0 < interior[40, 43] < 1.0 or 0.0 < interior[40, 44] < 1.0  # the edge is softened, not cut
    assert mouth_interior(_mouth(0.0), 64).sum() == 0  # a closed mouth has no inside


def test_mask_is_asked_to_paint_only_where_a_closed_mouth_opened():
    from aipgan_hf.motion import identity_grid

    still = identity_grid(1, 64)
    opened = losses.new_mouth_interior(_mouth(0.0), _mouth(10.0), still, 64)
    assert opened.sum() > 100 and opened[..., :30, :].sum() == 0  # inside the new mouth, nowhere else
    assert (
        losses.new_mouth_interior(_mouth(10.0), _mouth(10.0), still, 64).sum() == 0
    )  # it was open: the warp carries it
    painting, keeping = torch.ones(1, 1, 64, 64), torch.full((1, 1, 64, 64), 0.1)
    assert losses.mouth_mask_loss(painting, opened) < 1e-3 < losses.mouth_mask_loss(keeping, opened)


def test_loss_weights_total_weights_each_term_and_refuses_a_term_without_weight():
    weights = losses.LossWeights(reconstruction=2.0, mask=0.5)
    terms = {"reconstruction": torch.tensor(3.0), "mask": torch.tensor(4.0)}
    assert weights.total(terms) == 2.0 * 3.0 + 0.5 * 4.0
    try:
        weights.total({**terms, "reconstuction": torch.tensor(1.0)})  # a typo must not drop the term silently
    except KeyError as error:
        assert "reconstuction" in str(error)
    else:
        raise AssertionError("an unknown term was accepted")


def test_polygon_mask_is_the_even_odd_rule_at_each_pixel_centre():
    """A concave, self-crossing polygon partly outside the crop: the mask (tested within the polygon's box only) is
    the even-odd rule evaluated pixel by pixel."""
    points = torch.tensor([[[-3.0, 2.5], [9.5, 11.0], [4.2, 0.5], [6.0, 9.0], [11.7, 3.3], [2.0, 7.0]]])
    mask = losses.polygon_mask(points, 10)[0, 0]
    ring = points[0].tolist()
    for row in range(10):
        for column in range(10):
            inside = False
            for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]):
                if (y0 > row) != (y1 > row) and column < x0 + (row - y0) * (x1 - x0) / (y1 - y0):
                    inside = not inside
            assert bool(mask[row, column]) == inside, (row, column)
    assert 10 < mask.sum() < 90


def test_a_gaping_mouths_new_interior_is_its_rounded_opening():
    """new_mouth_interior draws the opening that the pipeline fills (landmarks.mouth_outline): in a gape, the smooth
    curve through the inner-lip points, which holds more than their octagon."""
    from aipgan_hf.landmarks import mouth_outline
    from aipgan_hf.motion import identity_grid

    gape = _mouth(20.0)
    opened = losses.new_mouth_interior(_mouth(0.0), gape, identity_grid(1, 64), 64)
    assert torch.equal(opened, losses.polygon_mask(mouth_outline(gape, 64), 64))
    assert opened.sum() > losses.polygon_mask(gape[:, 60:68], 64).sum() + 10
