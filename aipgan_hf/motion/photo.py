"""Warping a whole photo by a crop's flow, at the photo's own resolution (for paste-back)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .flow import identity_grid

READ_MARGIN = 0.25
"""How far outside the crop's square a warp may read, as a fraction of the crop side (landmark motions stay
well inside: a wide-open mouth moves the chin by about 0.1)."""


def _crop_box_in_photo(photo_to_crop: np.ndarray, resolution: int, width: int, height: int, margin: float = 0.0) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the crop square grown by ``margin`` crop sides, clipped to the photo."""
    linear_inverse = np.linalg.inv(photo_to_crop[:, :2])
    low, high = -0.5 - margin * resolution, resolution - 0.5 + margin * resolution
    corners = np.array([[low, low], [high, low], [low, high], [high, high]])
    photo = (corners - photo_to_crop[:, 2]) @ linear_inverse.T
    x0, y0 = max(0, math.floor(photo[:, 0].min())), max(0, math.floor(photo[:, 1].min()))
    x1, y1 = min(width, math.ceil(photo[:, 0].max()) + 1), min(height, math.ceil(photo[:, 1].max()) + 1)
    return x0, y0, x1, y1


class PhotoWarper:
    """Moves a photo's face as a crop's flow moves the crop; what depends only on the photo is computed once
    (a video drives one photo for hundreds of frames).

    Each photo pixel p inside the crop's square maps to crop coordinates c = M p; the flow's displacement at c
    gives the crop point c' to read, and the photo is sampled at M^-1 c' (bilinear). The flow is zero at the
    crop's border (fixed anchors), so the warped region joins the untouched photo without a seam.

    Args:
        photo: (H, W, 3) uint8.
        photo_to_crop: (2, 3) similarity matrix of the alignment (pixel-index coordinates).
        resolution: crop side R.
    """

    def __init__(self, photo: np.ndarray, photo_to_crop: np.ndarray, resolution: int):
        height, width = photo.shape[:2]
        self.photo, self.resolution = photo, resolution
        self.box = _crop_box_in_photo(photo_to_crop, resolution, width, height)
        x0, y0, x1, y1 = self.box
        self.empty = x1 <= x0 or y1 <= y0
        if self.empty:
            return
        self.read_box = _crop_box_in_photo(photo_to_crop, resolution, width, height, READ_MARGIN)
        left, top, right, bottom = self.read_box
        matrix = torch.as_tensor(photo_to_crop, dtype=torch.float32)
        ys, xs = torch.meshgrid(torch.arange(y0, y1, dtype=torch.float32), torch.arange(x0, x1, dtype=torch.float32), indexing="ij")
        self.crop = torch.stack([xs, ys], -1) @ matrix[:, :2].T + matrix[:, 2]  # (h, w, 2) crop pixels
        self.crop_grid = ((self.crop + 0.5) * (2.0 / resolution) - 1.0)[None]  # (1, h, w, 2) to sample the flow
        self.crop_to_photo = torch.linalg.inv(matrix[:, :2]).T, matrix[:, 2]
        self.source_scale = torch.tensor([2.0 / (right - left), 2.0 / (bottom - top)])
        self.source_origin = torch.tensor([float(left), float(top)])
        self.image = torch.from_numpy(np.ascontiguousarray(photo[top:bottom, left:right])).permute(2, 0, 1)[None].float()

    def __call__(self, flow: torch.Tensor) -> np.ndarray:
        """The photo warped by a (R, R, 2) grid_sample flow of the crop: (H, W, 3) uint8, unchanged outside the crop."""
        if self.empty:
            return self.photo.copy()
        displacement = (flow.float() - identity_grid(1, self.resolution)[0]).permute(2, 0, 1)[None]  # (1, 2, R, R)
        offsets = F.grid_sample(displacement, self.crop_grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        read = self.crop + offsets[0].permute(1, 2, 0) * (self.resolution / 2.0)  # (h, w, 2) crop pixels to read
        linear_inverse, translation = self.crop_to_photo
        source = (read - translation) @ linear_inverse  # photo pixels
        grid = (source - self.source_origin + 0.5) * self.source_scale - 1.0  # within the read box
        region = F.grid_sample(self.image, grid[None], mode="bilinear", padding_mode="border", align_corners=False)
        x0, y0, x1, y1 = self.box
        result = self.photo.copy()
        result[y0:y1, x0:x1] = region[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
        return result


def warp_photo(photo: np.ndarray, photo_to_crop: np.ndarray, flow: torch.Tensor, resolution: int) -> np.ndarray:
    """One-off :class:`PhotoWarper`: (H, W, 3) uint8 ``photo`` warped by the crop's (R, R, 2) flow."""
    return PhotoWarper(photo, photo_to_crop, resolution)(flow)
