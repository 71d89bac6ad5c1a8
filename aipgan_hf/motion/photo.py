"""Warping a whole photo by a crop's flow, at the photo's own resolution (for paste-back)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .flow import identity_grid


def _crop_box_in_photo(photo_to_crop: np.ndarray, resolution: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the crop square in the photo, clipped to the photo."""
    linear_inverse = np.linalg.inv(photo_to_crop[:, :2])
    corners = np.array([[-0.5, -0.5], [resolution - 0.5, -0.5], [-0.5, resolution - 0.5], [resolution - 0.5, resolution - 0.5]])
    photo = (corners - photo_to_crop[:, 2]) @ linear_inverse.T
    x0, y0 = max(0, math.floor(photo[:, 0].min())), max(0, math.floor(photo[:, 1].min()))
    x1, y1 = min(width, math.ceil(photo[:, 0].max()) + 1), min(height, math.ceil(photo[:, 1].max()) + 1)
    return x0, y0, x1, y1


def warp_photo(photo: np.ndarray, photo_to_crop: np.ndarray, flow: torch.Tensor, resolution: int) -> np.ndarray:
    """The photo with its face region moved as the crop's flow moves the crop.

    Each photo pixel p inside the crop's square maps to crop coordinates c = M p; the flow's displacement at c
    gives the crop point c' to read, and the photo is sampled at M^-1 c' (bilinear). The flow is zero at the
    crop's border (fixed anchors), so the warped region joins the untouched photo without a seam.

    Args:
        photo: (H, W, 3) uint8.
        photo_to_crop: (2, 3) similarity matrix of the alignment (pixel-index coordinates).
        flow: (R, R, 2) grid_sample flow of the crop (motion.landmark_flow).
        resolution: crop side R.

    Returns:
        (H, W, 3) uint8, equal to ``photo`` outside the crop's square.
    """
    height, width = photo.shape[:2]
    x0, y0, x1, y1 = _crop_box_in_photo(photo_to_crop, resolution, width, height)
    if x1 <= x0 or y1 <= y0:
        return photo.copy()
    ys, xs = torch.meshgrid(torch.arange(y0, y1, dtype=torch.float32), torch.arange(x0, x1, dtype=torch.float32), indexing="ij")
    matrix = torch.as_tensor(photo_to_crop, dtype=torch.float32)
    crop = torch.stack([xs, ys], -1) @ matrix[:, :2].T + matrix[:, 2]  # (h, w, 2) crop pixels
    normalised = (crop + 0.5) * (2.0 / resolution) - 1.0
    displacement = (flow - identity_grid(1, resolution, dtype=flow.dtype)[0]).permute(2, 0, 1)[None]  # (1, 2, R, R)
    offsets = F.grid_sample(displacement, normalised[None], mode="bilinear", padding_mode="zeros", align_corners=False)
    read = crop + offsets[0].permute(1, 2, 0) * (resolution / 2.0)  # (h, w, 2) crop pixels to read
    source = (read - matrix[:, 2]) @ torch.linalg.inv(matrix[:, :2]).T  # back to photo pixels
    # only the part of the photo that is read is converted to float (a 1-MP photo is 12 MB as float)
    left, top = max(0, int(source[..., 0].min().floor()) - 1), max(0, int(source[..., 1].min().floor()) - 1)
    right, bottom = min(width, int(source[..., 0].max().ceil()) + 2), min(height, int(source[..., 1].max().ceil()) + 2)
    if right <= left or bottom <= top:
        return photo.copy()
    source = source - torch.tensor([left, top], dtype=source.dtype)
    span_x, span_y = right - left, bottom - top
    grid = torch.stack([(source[..., 0] + 0.5) * (2.0 / span_x) - 1.0, (source[..., 1] + 0.5) * (2.0 / span_y) - 1.0], -1)
    image = torch.from_numpy(np.ascontiguousarray(photo[top:bottom, left:right])).permute(2, 0, 1)[None].float()  # (1, 3, h, w)
    region = F.grid_sample(image, grid[None].float(), mode="bilinear", padding_mode="border", align_corners=False)
    result = photo.copy()
    result[y0:y1, x0:x1] = region[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    return result
