"""The 68-point landmark scheme (iBUG 300-W / dlib order), named groups and heatmap rendering.

Shared by the model (attention supervision), training (heatmap targets) and evaluation
(per-region displacement), so the three cannot disagree on what "mouth" means.
"""

from __future__ import annotations

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


def inner_lip_gap(landmarks):
    """(...) how open the mouth of (..., 68, 2) landmarks (numpy or torch) is: the mean distance of the facing
    inner-lip points (:data:`INNER_LIP_GAPS`), in the landmarks' units."""
    upper, lower = [list(points) for points in zip(*INNER_LIP_GAPS)]
    return (((landmarks[..., upper, :] - landmarks[..., lower, :]) ** 2).sum(-1) ** 0.5).mean(-1)


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
    centres = torch.arange(size, dtype=points.dtype, device=points.device)
    y, x = centres[:, None], centres[None, :]  # (R, 1), (1, R)
    inside = torch.zeros(points.shape[0], size, size, dtype=torch.bool, device=points.device)
    for start, end in zip(points.unbind(1), points.roll(-1, dims=1).unbind(1)):  # edges (B, 2) -> (B, 2)
        (x0, y0), (x1, y1) = [c[:, None, None] for c in start.unbind(-1)], [c[:, None, None] for c in end.unbind(-1)]
        crosses = (y0 > y) != (y1 > y)
        at_x = x0 + (y - y0) * (x1 - x0) / torch.where(y1 == y0, torch.ones_like(y1), y1 - y0)
        inside ^= crosses & (x < at_x)
    return inside[:, None].to(points.dtype)


def mouth_interior(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 1, R, R) in [0, 1]: inside the inner lips of (B, 68, 2) crop-pixel landmarks, edges softened over a
    pixel (3 x 3 box)."""
    inside = polygon_mask(landmarks[:, INNER_LIPS], size)
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
