"""The 68-point landmark scheme (iBUG 300-W / dlib order), named groups and heatmap rendering.

Shared by the model (attention supervision), training (heatmap targets) and evaluation
(per-region displacement), so the three cannot disagree on what "mouth" means.
"""

from __future__ import annotations

import numpy as np
import torch

LANDMARK_SCHEME = "ibug-68"
"""The name of the scheme the networks, the shape model and alignment are built for: a face detector plugged into
:class:`~aipgan_hf.faces.FaceProcessor` must give its landmarks in it."""
NUM_LANDMARKS = 68

JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)  # the subject's right: left side of the image
LEFT_BROW = slice(22, 27)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)
OUTER_LIPS = slice(48, 60)
INNER_LIPS = slice(60, 68)

STABLE_POINTS: tuple[int, ...] = (
    *range(NOSE.start, NOSE.stop),
    RIGHT_EYE.start,
    RIGHT_EYE.start + 3,
    LEFT_EYE.start,
    LEFT_EYE.start + 3,
)
"""Nose (27-35) and the four eye corners (36, 39, 42, 45): the points expressions move least, on which every
similarity alignment of the project is fitted."""

LID_GAPS: tuple[tuple[int, int], ...] = ((37, 41), (38, 40), (43, 47), (44, 46))
"""(upper, lower) eyelid points that face each other: their distance is how open an eye is."""

INNER_LIP_GAPS: tuple[tuple[int, int], ...] = ((61, 67), (62, 66), (63, 65))
"""(upper, lower) inner-lip points that face each other: their distance is how open the mouth is."""

NOSE_BASE: int = NOSE.start + 6
"""Point 33, under the nose tip: what the mouth corners' lift is measured from."""
MOUTH_CORNERS: tuple[int, int] = (OUTER_LIPS.start, OUTER_LIPS.start + 6)
"""The outer lip corners, 48 and 54."""

MIRRORED: tuple[int, ...] = (
    *range(16, -1, -1),  # jaw
    *range(26, 16, -1),  # brows
    *(27, 28, 29, 30, 35, 34, 33, 32, 31),  # nose
    *(45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40),  # eyes
    *(54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55),  # outer lips
    *(64, 63, 62, 61, 60, 67, 66, 65),  # inner lips
)
"""For each point, its counterpart on the other side of the face (a midline point is its own)."""


def inner_lip_gap(landmarks):
    """(...) how open the mouth of (..., 68, 2) landmarks (numpy or torch) is: the mean distance of the facing
    inner-lip points (:data:`INNER_LIP_GAPS`), in the landmarks' units."""
    upper, lower = [list(points) for points in zip(*INNER_LIP_GAPS)]
    return (((landmarks[..., upper, :] - landmarks[..., lower, :]) ** 2).sum(-1) ** 0.5).mean(-1)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Gap between the inner lips over the distance between the eye centres (0 = closed, ~0.5 = wide open).

    Args:
        landmarks: (..., 68, 2) in any pixel frame.

    Returns:
        (...) float.
    """
    gap = inner_lip_gap(np.asarray(landmarks, dtype=np.float64))
    eyes = np.linalg.norm(
        landmarks[..., RIGHT_EYE, :].mean(axis=-2) - landmarks[..., LEFT_EYE, :].mean(axis=-2), axis=-1
    )
    return gap / np.maximum(eyes, 1e-6)


# Regions that carry expression; evaluation reports displacement fidelity on these.
EXPRESSION_REGIONS: dict[str, list[slice]] = {
    "brows": [RIGHT_BROW, LEFT_BROW],
    "eyes": [RIGHT_EYE, LEFT_EYE],
    "mouth": [MOUTH],
}


LANDMARK_GROUPS: tuple[slice, ...] = (JAW, RIGHT_BROW, LEFT_BROW, NOSE, RIGHT_EYE, LEFT_EYE, OUTER_LIPS, INNER_LIPS)
"""The eight groups the expression encoder sees as separate maps."""


def region_indices(slices: list[slice]) -> list[int]:
    """Flatten a list of landmark slices to point indices."""
    return [i for s in slices for i in range(s.start, s.stop)]


def polygon_mask(points: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 1, R, R) in {0, 1}: pixels inside the closed polygon ``points`` (B, N, 2) in pixels (even-odd rule).
    Pixel (i, j)'s centre is the point (j, i), as for landmarks and ``motion.flow.pixels_to_normalised``."""
    mask = torch.zeros(points.shape[0], 1, size, size, dtype=points.dtype, device=points.device)
    # only the polygons' bounding box is tested: a pixel outside it crosses an even number of edges (or none), and
    # all edges at once, so that a 48-edge mouth outline costs a few tensor operations rather than hundreds
    (x0, y0), (x1, y1) = (0, 0), (size, size)
    if bool(torch.isfinite(points).all()) and points.shape[1] > 0:
        (x0, y0), (x1, y1) = points.amin(dim=(0, 1)).floor().tolist(), (points.amax(dim=(0, 1)).ceil() + 1).tolist()
        x0, y0, x1, y1 = max(0, int(x0)), max(0, int(y0)), min(size, int(x1)), min(size, int(y1))
    if x1 <= x0 or y1 <= y0:
        return mask
    y = torch.arange(y0, y1, dtype=points.dtype, device=points.device)[:, None]  # (h, 1)
    x = torch.arange(x0, x1, dtype=points.dtype, device=points.device)[None, :]  # (1, w)
    (xa, ya), (xb, yb) = points[:, :, None, None].unbind(-1), points.roll(-1, dims=1)[:, :, None, None].unbind(-1)
    crosses = (ya > y) != (yb > y)  # (B, N, h, 1): edge a -> b crosses the row
    at_x = xa + (y - ya) * (xb - xa) / torch.where(yb == ya, torch.ones_like(yb), yb - ya)  # (B, N, h, 1)
    inside = (crosses & (x < at_x)).sum(1) % 2  # (B, h, w)
    mask[:, 0, y0:y1, x0:x1] = inside.to(points.dtype)
    return mask


OVAL = (0.062, 0.081)
"""A mouth's inner-lip gap as a share of the crop side from which its opening is a smooth curve through the eight
inner-lip points rather than their polygon, in full from the second. A jaw drop's polygon is a V or a trapezoid
(three points a lip), which with lent teeth reads as a snarl. These are the bundled mouth exemplar's jaw-drop ramp
(``compositing.mouth.JAW_DROP`` times its gap, 6.1 px of 128; a test holds them together): a mouth that shows the
exemplar's smile keeps its polygon, bit for bit, and the opening rounds as the dark cavity comes in."""

OVAL_SAMPLES = 6
"""Points of :func:`inner_lip_outline` per pair of neighbouring inner-lip points."""


def mouth_roundness(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) in [0, 1]: how far the opening of (B, 68, 2) landmarks in an R-px crop is a smooth curve (:data:`OVAL`)."""
    return ((inner_lip_gap(landmarks) / size - OVAL[0]) / (OVAL[1] - OVAL[0])).clamp(0.0, 1.0)


def inner_lip_outline(landmarks: torch.Tensor, size: int, samples: int = OVAL_SAMPLES) -> torch.Tensor:
    """(B, 8 * samples, 2): the opening of (B, 68, 2) landmarks in an R-px crop, ``samples`` points from each
    inner-lip point (60, 61, ... 67) towards the next: on the polygon's edges for a slit, on a periodic Catmull-Rom
    spline through the eight points for a gape, in between as :func:`mouth_roundness` says. Point 60 is first, 64 at
    ``4 * samples``.

    The spline's tangent at a corner is half the chord between its two neighbours (61 and 67), vertical in a gape:
    the opening's ends are round. A shut mouth (each lower point on its upper one) gives the same curve twice, no area.
    """
    ring = landmarks[:, INNER_LIPS]  # (B, 8, 2)
    before, after, next_after = ring.roll(1, dims=1), ring.roll(-1, dims=1), ring.roll(-2, dims=1)
    t = torch.arange(samples, dtype=ring.dtype, device=ring.device).div(samples)[None, None, :, None]  # (1, 1, S, 1)
    start, end = ring[:, :, None], after[:, :, None]  # (B, 8, 1, 2)
    tangent_start, tangent_end = ((after - before) / 2)[:, :, None], ((next_after - ring) / 2)[:, :, None]
    curve = (  # cubic Hermite basis: (B, 8, S, 2)
        (2 * t**3 - 3 * t**2 + 1) * start
        + (t**3 - 2 * t**2 + t) * tangent_start
        + (-2 * t**3 + 3 * t**2) * end
        + (t**3 - t**2) * tangent_end
    )
    straight = start + t * (end - start)
    roundness = mouth_roundness(landmarks, size)[:, None, None, None]
    return (straight + roundness * (curve - straight)).flatten(1, 2)


def mouth_outline(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """(B, N, 2): the polygon of the opening that :func:`mouth_interior` fills: the eight inner-lip points where no
    mouth of the batch gapes (:data:`OVAL`: the polygon as it always was), else :func:`inner_lip_outline`."""
    if bool((mouth_roundness(landmarks, size) > 0).any()):
        return inner_lip_outline(landmarks, size)
    return landmarks[:, INNER_LIPS]


def mouth_interior(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 1, R, R) in [0, 1]: inside the opening of (B, 68, 2) crop-pixel landmarks (:func:`inner_lip_outline`:
    the inner lips' polygon, rounded in a gape), edges softened over a pixel (3 x 3 box)."""
    inside = polygon_mask(mouth_outline(landmarks, size), size)
    return torch.nn.functional.avg_pool2d(torch.nn.functional.pad(inside, (1, 1, 1, 1), mode="replicate"), 3, 1)


def landmarks_to_heatmaps(landmarks: torch.Tensor, size: int, image_size: int, sigma: float = 1.0) -> torch.Tensor:
    """Render one Gaussian heatmap per landmark.

    Args:
        landmarks: (B, 68, 2) pixel coordinates (x, y) in an aligned crop of ``image_size`` pixels.
        size: side of the heatmap grid.
        image_size: side of the crop the coordinates refer to.
        sigma: Gaussian standard deviation in heatmap cells.

    Returns:
        (B, 68, size, size) float heatmaps with peak value 1 at each landmark.
    """
    scale = size / image_size
    points = (landmarks.float() + 0.5) * scale - 0.5  # (B, K, 2) in heatmap cell coordinates
    grid = torch.arange(size, device=landmarks.device, dtype=torch.float32)
    dx = (grid.view(1, 1, 1, size) - points[..., 0, None, None]) ** 2  # (B, K, 1, S)
    dy = (grid.view(1, 1, size, 1) - points[..., 1, None, None]) ** 2  # (B, K, S, 1)
    return torch.exp(-(dx + dy) / (2 * sigma**2))  # (B, K, S, S)


def heatmaps_to_landmarks(heatmaps: torch.Tensor, image_size: int, window: int = 5) -> torch.Tensor:
    """Decode heatmaps to crop pixel coordinates: the arg-max cell refined by the centroid of the
    (non-negative) scores in a ``window`` x ``window`` neighbourhood, which gives sub-cell accuracy.

    Args:
        heatmaps: (B, 68, S, S) scores (peaks where the landmarks are).
        image_size: side of the crop to express coordinates in.

    Returns:
        (B, 68, 2) (x, y) coordinates.
    """
    b, k, h, w = heatmaps.shape
    half = window // 2
    flat = heatmaps.reshape(b * k, 1, h, w).float()
    peak = flat.view(b * k, -1).argmax(dim=1)  # (B*K,)
    peak_y, peak_x = peak // w, peak % w
    padded = torch.nn.functional.pad(flat, (half, half, half, half))  # (B*K, 1, S+2h, S+2h)
    offsets = torch.arange(-half, half + 1, device=heatmaps.device)
    rows = peak_y[:, None] + offsets[None] + half  # (B*K, window)
    cols = peak_x[:, None] + offsets[None] + half
    patch = padded[
        torch.arange(b * k, device=heatmaps.device)[:, None, None], 0, rows[:, :, None], cols[:, None, :]
    ]  # (B*K, win, win)
    patch = patch.clamp(min=0) + 1e-8
    total = patch.sum(dim=(1, 2))
    y = peak_y.float() + (patch.sum(2) * offsets.float()).sum(1) / total
    x = peak_x.float() + (patch.sum(1) * offsets.float()).sum(1) / total
    cells = torch.stack([x, y], dim=-1).view(b, k, 2)
    return (cells + 0.5) * (image_size / w) - 0.5


PROFILE_FLOOR = 1e-15
"""Gaussian profile values below this are zero in :func:`landmark_maps` (beyond 8.3 sigma): the product of two tails
would otherwise be a denormal float, over which a CPU convolution runs several times slower (docs/benchmarks.md,
0.6.0). Every product left is at least 1e-30, a normal float."""


def landmark_maps(landmarks: torch.Tensor, size: int, image_size: int, sigma: float) -> torch.Tensor:
    """One map per :data:`LANDMARK_GROUPS` group: the sum of Gaussians (``sigma`` crop pixels) at its points.

    Gaussians are separable, so each group's map is one (S x n) @ (n x S) product instead of n full maps.

    Args:
        landmarks: (B, 68, 2) crop pixels of a crop of ``image_size`` pixels.
        size: side of the maps.

    Returns:
        (B, 8, size, size), ~1 at each point.
    """
    scale = size / image_size
    points = (landmarks.float() + 0.5) * scale - 0.5  # (B, K, 2) in map cells
    grid = torch.arange(size, device=landmarks.device, dtype=torch.float32)
    profiles = torch.exp(
        -((grid.view(1, 1, 1, size) - points[..., None]) ** 2) / (2 * (sigma * scale) ** 2)
    )  # (B, K, 2, S)
    profiles = profiles.masked_fill(profiles < PROFILE_FLOOR, 0.0)  # products of two tails would be denormal
    maps = [
        profiles[:, group, 1].transpose(1, 2) @ profiles[:, group, 0] for group in LANDMARK_GROUPS
    ]  # (B, S, S) each
    return torch.stack(maps, dim=1)
