"""Warping a whole photo by a crop's flow and pasting the new face in, at the photo's own resolution; reading
another photo (the source's mouth) at its own resolution."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..faces.geometry import invert_affine
from ..faces.pixels import LUMA
from ..motion.flow import identity_grid

READ_MARGIN = 0.25
"""How far outside the crop's square a warp may read, as a fraction of the crop side (landmark motions stay
well inside: a wide-open mouth moves the chin by about 0.1)."""


def _crop_box_in_photo(
    photo_to_crop: np.ndarray, resolution: int, width: int, height: int, margin: float = 0.0
) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the crop square grown by ``margin`` crop sides, clipped to the photo."""
    low, high = -0.5 - margin * resolution, resolution - 0.5 + margin * resolution
    return _photo_box(photo_to_crop, (low, low), (high, high), width, height)


def _photo_box(
    photo_to_crop: np.ndarray, low: tuple[float, float], high: tuple[float, float], width: int, height: int
) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) in the photo of the crop-space rectangle from ``low`` to ``high`` (x, y),
    clipped to the photo."""
    corners = np.array([[low[0], low[1]], [high[0], low[1]], [low[0], high[1]], [high[0], high[1]]])
    photo = (corners - photo_to_crop[:, 2]) @ np.linalg.inv(photo_to_crop[:, :2]).T
    x0, y0 = max(0, math.floor(photo[:, 0].min())), max(0, math.floor(photo[:, 1].min()))
    x1, y1 = min(width, math.ceil(photo[:, 0].max()) + 1), min(height, math.ceil(photo[:, 1].max()) + 1)
    return x0, y0, x1, y1


TEXTURE_SCALE = 3.0
"""How coarse, in crop pixels, the photo's own texture kept under the pasted face may be. The network paints from
the crop and its paint is smoother than the crop itself: at one crop pixel, wrinkles, lashes and the lips' lines two
or three crop pixels wide were lost. On the validation split's studio portraits the fine band's energy under the
pasted face went from 0.87 of the photo's to 0.98 (docs/design.md); the same-person distance did not move."""

GRID_CELL = 8
"""Spacing, in photo pixels, of the points where the read position is computed exactly; between them it is
interpolated bilinearly. The flow itself is bilinear between the points of a 32^2 grid over the crop (4 crop
pixels, 16 photo pixels for a face 512 px wide), so a finer spacing would add time, not accuracy."""


class PhotoWarper:
    """Moves a photo's face as a crop's flow moves the crop; what depends only on the photo is computed once
    (a video drives one photo for hundreds of frames).

    Each photo pixel p inside the crop's square maps to crop coordinates c = M p; the flow's displacement at c
    gives the crop point c' to read, and the photo is sampled at M^-1 c' (bilinear). The flow is zero at the
    crop's border (fixed anchors), so the warped region joins the untouched photo without a seam. The read
    positions are computed on a :data:`GRID_CELL`-pixel lattice and upsampled, and the photo is sampled once.

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
        left, top, right, bottom = _crop_box_in_photo(photo_to_crop, resolution, width, height, READ_MARGIN)
        # lattice over the box, first and last pixel included (pixel-index photo coordinates)
        xs = np.linspace(x0, x1 - 1, max(2, math.ceil((x1 - x0 - 1) / GRID_CELL) + 1))
        ys = np.linspace(y0, y1 - 1, max(2, math.ceil((y1 - y0 - 1) / GRID_CELL) + 1))
        lattice = np.stack(np.meshgrid(xs, ys), -1)  # (ny, nx, 2)
        crop = lattice @ photo_to_crop[:, :2].T + photo_to_crop[:, 2]
        self.photo_to_crop = photo_to_crop
        self.lattice_in_crop = torch.from_numpy(
            ((crop + 0.5) * (2.0 / resolution) - 1.0)[None]
        ).float()  # (1, ny, nx, 2)
        scale = np.array([2.0 / (right - left), 2.0 / (bottom - top)])
        self.lattice_read = torch.from_numpy((lattice - [left, top] + 0.5) * scale - 1.0).float()  # unmoved, read box
        # a crop displacement (normalised crop units) -> a displacement in normalised read-box units
        self.to_read = torch.from_numpy((np.linalg.inv(photo_to_crop[:, :2]) * (resolution / 2.0)).T * scale).float()
        # a copy: a read-only photo (np.asarray of a PIL image) cannot back a tensor
        self.image = torch.tensor(photo[top:bottom, left:right]).permute(2, 0, 1)[None].float()
        self._face_grid: torch.Tensor | None = None  # every box pixel's crop position, made at the first composite

    def __call__(self, flow: torch.Tensor) -> np.ndarray:
        """The photo warped by a (R, R, 2) grid_sample flow of the crop: (H, W, 3) uint8, unchanged outside the crop."""
        if self.empty:
            return self.photo.copy()
        return self._into_photo(self._warped_region(flow))

    def composite(
        self,
        flow: torch.Tensor,
        face: np.ndarray,
        alpha: np.ndarray,
        detail: np.ndarray | None = None,
        fill: tuple[np.ndarray, "PhotoReader"] | None = None,
        shade: np.ndarray | None = None,
    ) -> np.ndarray:
        """Warp and paste-back in one pass: the photo warped by ``flow``, with ``face`` ((S, S, 3) uint8, the
        canonical crop) blended in through ``alpha`` ((S, S) float in [0, 1], crop space). (H, W, 3) uint8;
        outside the crop's square the photo is unchanged.

        ``detail`` ((S, S) float in [0, 1], crop space; None = 0): how much of the warped photo's own fine texture
        (what is finer than :data:`TEXTURE_SCALE` crop pixels: pores, wrinkles, lashes, the lips' lines) to keep
        under the pasted face. A 128-px face pasted into a photo whose face is 500 px wide is a 4x enlargement:
        where the network repaints skin or lips that the warp has already put in place, the photo's texture is the
        right texture, and without it the repainted area is a smooth patch. Where the network paints something new
        (an opened mouth's inside) the caller gives 0: the warped photo has only stretched lips there.

        ``fill`` ((S, S) float weight in crop space, a :class:`PhotoReader`): laid over the result at the photo's
        resolution where its weight is above 0 (an opened mouth's inside read from the source photo).

        ``shade`` ((S, S, 3) float factor in crop space; None = 1): multiplies the result last, at the photo's
        resolution (the expression lines, drawn into the photo's own skin and texture)."""
        if self.empty:
            return self.photo.copy()
        region = self._warped_region(flow)  # (1, 3, h, w)
        window = self._window(alpha)  # only the photo pixels that the face's alpha reaches are pasted on
        if window is not None:
            left, top, right, bottom = window
            layers = [face.astype(np.float32), np.asarray(alpha, dtype=np.float32)]
            if detail is not None:
                layers.append(np.asarray(detail, dtype=np.float32))
            painted = torch.from_numpy(np.dstack(layers)).permute(2, 0, 1)[None]
            painted = F.grid_sample(
                painted,
                self._face_positions()[:, top:bottom, left:right],
                mode="bilinear",
                padding_mode="zeros",
                align_corners=False,
            )
            face_layer = painted[:, :3]
            if detail is not None:
                face_layer = face_layer + painted[:, 4:5].clamp(0.0, 1.0) * self._texture(region, window)
            under = region[:, :, top:bottom, left:right]
            region[:, :, top:bottom, left:right] = under + painted[:, 3:4].clamp(0.0, 1.0) * (face_layer - under)
        if fill is not None:
            region = self._fill(region, *fill)
        if shade is not None:
            region = self._shade(region, shade)
        return self._into_photo(region)

    def _window(self, weight: np.ndarray) -> tuple[int, int, int, int] | None:
        """(left, top, right, bottom) in the box's pixels: the bounding box of a crop-space ``weight``'s pixels above
        0 (one crop pixel more each way, for bilinear reads), or None where it has none."""
        rows, cols = np.nonzero(weight.max(axis=1) > 0)[0], np.nonzero(weight.max(axis=0) > 0)[0]
        if len(rows) == 0:
            return None
        x0, y0, x1, y1 = self.box
        left, top, right, bottom = _photo_box(
            self.photo_to_crop, (cols[0] - 1.5, rows[0] - 1.5), (cols[-1] + 1.5, rows[-1] + 1.5), x1, y1
        )
        left, top, right, bottom = max(left, x0) - x0, max(top, y0) - y0, right - x0, bottom - y0
        return (left, top, right, bottom) if right > left and bottom > top else None

    def _fill(self, region: torch.Tensor, weight: np.ndarray, reader: "PhotoReader") -> torch.Tensor:
        """``region`` with ``reader``'s colours laid over it through the crop-space ``weight``, only over the photo
        pixels of the weight's bounding box (a mouth is a small part of a face)."""
        window = self._window(weight)
        if window is None:
            return region
        left, top, right, bottom = window
        positions = self._face_positions()[:, top:bottom, left:right]
        weights = F.grid_sample(
            torch.as_tensor(np.asarray(weight, dtype=np.float32))[None, None],
            positions,
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )[0, 0].clamp(0.0, 1.0)  # (h', w')
        colours = reader(positions)  # (1, 3, h', w')
        under = region[:, :, top:bottom, left:right]
        region[:, :, top:bottom, left:right] = under + weights * (colours - under)
        return region

    def _shade(self, region: torch.Tensor, shade: np.ndarray) -> torch.Tensor:
        """``region`` times a crop-space (S, S, 3) factor, only over the photo pixels where it differs from 1."""
        change = torch.from_numpy(np.ascontiguousarray(shade, dtype=np.float32)).permute(2, 0, 1)[None] - 1.0
        window = self._window(change.abs().amax(dim=1)[0].numpy())
        if window is None:
            return region
        left, top, right, bottom = window
        factor = 1.0 + F.grid_sample(
            change,
            self._face_positions()[:, top:bottom, left:right],
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )  # (1, 3, h', w')
        region[:, :, top:bottom, left:right] = region[:, :, top:bottom, left:right] * factor
        return region

    def _texture(self, region: torch.Tensor, window: tuple[int, int, int, int]) -> torch.Tensor:
        """(1, 3, h', w'): the fine texture of the warped ``region`` over ``window`` (left, top, right, bottom), what
        is finer than :data:`TEXTURE_SCALE` crop pixels: the region minus its average over an odd box that wide. Taken
        after the warp (its flow is bilinear over 4 crop pixels), and only where the face is pasted (about a third of
        the pixels of the read box)."""
        left, top, right, bottom = window
        scale = 1.0 / math.sqrt(abs(np.linalg.det(self.photo_to_crop[:, :2])))  # photo px per crop px
        half = round(TEXTURE_SCALE * scale / 2)
        texture = torch.zeros(1, 3, bottom - top, right - left)
        if half < 1:
            return texture  # the photo is coarser than the paint: nothing finer to keep
        height, width = region.shape[-2:]
        outer = (
            max(0, top - half),
            max(0, left - half),
            min(height, bottom + half),
            min(width, right + half),
        )  # the filter's support
        around = region[:, :, outer[0] : outer[2], outer[1] : outer[3]]
        if min(around.shape[-2:]) <= half:
            return texture
        fine = around - _box_mean(around, half)
        return fine[:, :, top - outer[0] : bottom - outer[0], left - outer[1] : right - outer[1]]

    def _warped_region(self, flow: torch.Tensor) -> torch.Tensor:
        """(1, 3, h, w) float: the crop's box of the photo, warped."""
        displacement = (flow.float() - identity_grid(1, self.resolution)[0]).permute(2, 0, 1)[None]  # (1, 2, R, R)
        offsets = F.grid_sample(
            displacement, self.lattice_in_crop, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        read = self.lattice_read + offsets[0].permute(1, 2, 0) @ self.to_read  # (ny, nx, 2) in the read box
        x0, y0, x1, y1 = self.box
        grid = F.interpolate(read.permute(2, 0, 1)[None], size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=True)
        return F.grid_sample(
            self.image, grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=False
        )

    def _face_positions(self) -> torch.Tensor:
        """(1, h, w, 2): each box pixel's position in the crop, in grid_sample units (the same for any crop size)."""
        if self._face_grid is None:
            x0, y0, x1, y1 = self.box
            # crop = M p, affine: a column term plus a row term, summed by broadcasting (no (h, w, 2) matrix product)
            to_grid = torch.from_numpy(self.photo_to_crop * (2.0 / self.resolution)).float()  # photo px -> grid units
            xs = torch.arange(x0, x1, dtype=torch.float32)[None, :, None] * to_grid[:, 0]  # (1, w, 2)
            ys = torch.arange(y0, y1, dtype=torch.float32)[:, None, None] * to_grid[:, 1]  # (h, 1, 2)
            offset = to_grid[:, 2] + 1.0 / self.resolution - 1.0  # (crop + 0.5) * 2 / R - 1
            self._face_grid = (xs + ys + offset)[None]
        return self._face_grid

    def _into_photo(self, region: torch.Tensor) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        result = self.photo.copy()
        # rounded, then interleaved: converting before the permute moves a quarter of the bytes through the strided copy
        result[y0:y1, x0:x1] = region[0].clamp(0.0, 255.0).add_(0.5).to(torch.uint8).permute(1, 2, 0).numpy()
        return result


def _box_mean(image: torch.Tensor, half: int) -> torch.Tensor:
    """(1, C, H, W) mean over each pixel's (2 half + 1)^2 box, the border repeated: running sums along rows, then
    columns (about 3x faster on a CPU than avg_pool2d for a 1-MP photo)."""
    size = 2 * half + 1
    padded = F.pad(image, (half + 1, half, half + 1, half), mode="replicate")  # one more in front: sums start at 0
    rows = padded.cumsum_(-1)  # in place, as below: the same sums, a third faster than with fresh tensors
    rows = torch.sub(rows[..., size:], rows[..., :-size])  # (1, C, H + 2 half + 1, W): sums of `size` columns
    both = rows.cumsum_(-2)
    return torch.sub(both[..., size:, :], both[..., :-size, :]).div_(size * size)


class PhotoReader:
    """Reads another photo (the source) at the positions of a crop-space map into its crop: what the crop pixel
    at c shows, at that photo's own resolution, for ``read`` giving c -> a position in the photo's crop.

    Only the part of the photo that ``support`` reads is kept (a mouth, not the whole face). Where that photo is
    finer than the output (its face has more pixels than the target's), it is first averaged over blocks of
    about the ratio, so that reading it at single points does not alias.

    Args:
        photo: (H, W, 3) uint8, the photo the crop was taken from (or a reduced decode of it).
        photo_to_crop: (2, 3) similarity matrix from ``photo``'s pixel indices to its crop.
        resolution: crop side R.
        read: (1, R, R, 2) grid_sample positions in the photo's crop, one per crop pixel of the output.
        grey: give luma only (a grey target photo stays grey).
        gain: factor of what is read, one per channel or one for all (``compositing.mouth.lighting_gain``).
        support: (R, R) weights of the output's crop pixels; only those above 0 are read (default all).
        output_scale: output photo pixels per crop pixel (default: no pre-filter).
        cavity: (R, R) weights of the output's crop pixels where the mouth's dark cavity (``colour``, RGB in
            [0, 255]) replaces what is read (``compositing.mouth.mouth_read``), or None.
    """

    def __init__(
        self,
        photo: np.ndarray,
        photo_to_crop: np.ndarray,
        resolution: int,
        read: torch.Tensor,
        grey: bool = False,
        gain: float | np.ndarray = 1.0,
        support: np.ndarray | None = None,
        output_scale: float | None = None,
        cavity: np.ndarray | None = None,
        colour: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ):
        height, width = photo.shape[:2]
        crop_to_photo = invert_affine(photo_to_crop)
        scale = 1.0 / math.sqrt(abs(np.linalg.det(photo_to_crop[:, :2])))  # photo pixels per crop pixel
        reduce = max(1, int(scale / output_scale)) if output_scale else 1
        left, top, right, bottom = _crop_box_in_photo(photo_to_crop, resolution, width, height, READ_MARGIN)
        if support is not None and bool((support > 0).any()):
            points = read[0][torch.from_numpy(np.asarray(support) > 0)].double().numpy()  # (n, 2) grid units
            points = ((points + 1.0) * (resolution / 2.0) - 0.5) @ crop_to_photo[:, :2].T + crop_to_photo[
                :, 2
            ]  # photo px
            margin = math.ceil(2 * scale) + reduce  # 2 crop pixels (the fill reads 1.5 past its support), in its px
            left, top = (
                max(left, math.floor(points[:, 0].min()) - margin),
                max(top, math.floor(points[:, 1].min()) - margin),
            )
            right, bottom = (
                min(right, math.ceil(points[:, 0].max()) + margin + 1),
                min(bottom, math.ceil(points[:, 1].max()) + margin + 1),
            )
        if (right - left) < reduce or (bottom - top) < reduce or right <= left or bottom <= top:
            reduce = 1
        right, bottom = (
            left + max(1, (right - left) // reduce * reduce),
            top + max(1, (bottom - top) // reduce * reduce),
        )
        image = torch.from_numpy(np.ascontiguousarray(photo[top:bottom, left:right])).permute(2, 0, 1)[None].float()
        self.image = F.avg_pool2d(image, reduce) if reduce > 1 else image  # its pixels still cover the same extent
        # crop grid units -> read-box grid units: crop pixels, photo pixels, then the box's normalised coordinates
        box_scale = np.array([2.0 / (right - left), 2.0 / (bottom - top)])
        linear = crop_to_photo[:, :2] * (resolution / 2.0)
        offset = (
            crop_to_photo[:, :2] @ np.full(2, resolution / 2.0 - 0.5) + crop_to_photo[:, 2] - [left, top] + 0.5
        ) * box_scale - 1.0
        self.to_box = torch.from_numpy((linear.T * box_scale)).float(), torch.from_numpy(offset).float()
        self.read, self.grey = read.float().permute(0, 3, 1, 2), grey  # (1, 2, R, R)
        gain = np.broadcast_to(np.asarray(gain, dtype=np.float32), (3,))
        self.gain = None if (gain == 1.0).all() else torch.from_numpy(gain.copy()).view(1, 3, 1, 1)
        self.cavity = None
        if cavity is not None and bool((np.asarray(cavity) > 0).any()):
            self.cavity = torch.as_tensor(np.asarray(cavity, dtype=np.float32))[None, None]  # (1, 1, R, R)
        self.colour = torch.tensor(colour, dtype=torch.float32).view(1, 3, 1, 1)

    def __call__(self, positions: torch.Tensor) -> torch.Tensor:
        """(1, 3, h, w) colours at (1, h, w, 2) positions of the output's crop (grid_sample units)."""
        read = F.grid_sample(
            self.read, positions, mode="bilinear", padding_mode="border", align_corners=False
        )  # (1, 2, h, w)
        linear, offset = self.to_box
        grid = read[0].permute(1, 2, 0) @ linear + offset  # (h, w, 2) in the read box
        colours = F.grid_sample(self.image, grid[None], mode="bilinear", padding_mode="border", align_corners=False)
        if self.gain is not None:
            colours = (colours * self.gain).clamp(0.0, 255.0)
        if self.cavity is not None:
            weight = F.grid_sample(self.cavity, positions, mode="bilinear", padding_mode="zeros", align_corners=False)
            colours = colours + weight * (self.colour - colours)
        if self.grey:
            colours = (colours * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True).expand_as(colours)
        return colours
