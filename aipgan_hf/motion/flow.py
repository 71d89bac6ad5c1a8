"""Dense flow from sparse landmark motion (thin-plate spline), and warping by it.

Coordinates: landmarks are (x, y) crop pixels with pixel centres at integers (0 .. R-1); flows are
``grid_sample`` grids in normalised coordinates with ``align_corners=False`` (-1 and 1 are the crop's outer
edges). A flow is *backward*: ``flow[b, i, j]`` says where in the target to read output pixel (i, j).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..landmarks import LEFT_EYE, RIGHT_EYE, polygon_mask

ANCHORS_PER_SIDE = 5
"""Fixed points on the crop border (16 in all): the background and the crop's edges never move, so a warped
crop pastes back into its photo without a seam."""

TPS_REGULARISATION = 1e-5
"""Thin-plate smoothing (in normalised units). > 0 so that coinciding driving points (an open mouth closing)
stay solvable; small enough that landmarks land within ~0.5 px of where they are sent."""

FLOW_GRID = 32
"""The spline is evaluated on a 32 x 32 grid and resampled bilinearly: it is smooth at that scale, and 16 x
fewer kernel evaluations than at 128 px keep the flow under a millisecond."""

FOLD_STEPS = 4
"""Splines a folding flow is made of (:func:`landmark_flow`). 2 steps left about twice as many random one-photo
transfers folded over more than 1 % of the crop; 4 cost 2-3 ms a flow (docs/design.md, "A flow that folds";
docs/benchmarks.md)."""
FOLD_GUARD = 0.05
"""The smallest share of a grid cell's area a one-spline flow may read before the stepped one blends in (its weight
rises linearly from 0 at this share to 1 at 0, a fold)."""

EDGE_MARGIN = 2.0
"""Crop pixels a driving landmark keeps from the crop's edge (:func:`keep_inside`)."""

NARROWING = 0.05
"""Crop pixels an eye must close by (mean lid gap) before its lids slide over the eyeball (:func:`keep_eyeballs`)."""


def lid_gap(eye: torch.Tensor) -> torch.Tensor:
    """(B,) mean distance between the facing lid points of (B, 6, 2) eye landmarks (corner, two upper, corner,
    two lower, in the 68-point order)."""
    return (eye[:, [1, 2]] - eye[:, [5, 4]]).norm(dim=-1).mean(-1)


def pixels_to_normalised(points: torch.Tensor, size: int) -> torch.Tensor:
    """(..., 2) crop pixels -> grid_sample coordinates (align_corners=False)."""
    return (points + 0.5) * (2.0 / size) - 1.0


def identity_grid(batch: int, size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(B, size, size, 2) grid that samples every pixel at its own centre."""
    axis = (torch.arange(size, device=device, dtype=dtype) + 0.5) * (2.0 / size) - 1.0
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([x, y], dim=-1).expand(batch, size, size, 2)


def _border_anchors(device, dtype) -> torch.Tensor:
    """(16, 2) points evenly spaced on the square of the crop's outer edge, in normalised coordinates."""
    t = torch.linspace(-1.0, 1.0, ANCHORS_PER_SIDE, device=device, dtype=dtype)
    inner = t[1:-1]
    ones, inner_ones = torch.ones_like(t), torch.ones_like(inner)
    ring = torch.cat(
        [
            torch.stack([t, -ones], 1),
            torch.stack([t, ones], 1),
            torch.stack([-inner_ones, inner], 1),
            torch.stack([inner_ones, inner], 1),
        ]
    )
    return ring  # (4 * n - 4, 2)


def _radial(squared_distance: torch.Tensor) -> torch.Tensor:
    """The thin-plate kernel U(r) = r^2 log r^2 (0 at r = 0)."""
    return squared_distance * torch.log(squared_distance.clamp(min=1e-12))


def fit_thin_plate(
    controls: torch.Tensor, values: torch.Tensor, regularisation: float = TPS_REGULARISATION
) -> torch.Tensor:
    """Solve the thin-plate spline f with f(controls[i]) ~ values[i].

    Args:
        controls: (B, N, 2) control points.
        values: (B, N, 2) their images.

    Returns:
        (B, N + 3, 2) coefficients: N kernel weights, then the affine part (constant, x, y).
    """
    batch, count, _ = controls.shape
    kernel = _radial(torch.cdist(controls, controls).square())  # (B, N, N)
    kernel = kernel + regularisation * torch.eye(count, device=controls.device, dtype=controls.dtype)
    affine = torch.cat([torch.ones_like(controls[..., :1]), controls], dim=-1)  # (B, N, 3)
    zeros = controls.new_zeros(batch, 3, 3)
    system = torch.cat(
        [torch.cat([kernel, affine], 2), torch.cat([affine.transpose(1, 2), zeros], 2)], 1
    )  # (B, N+3, N+3)
    rhs = torch.cat([values, controls.new_zeros(batch, 3, 2)], dim=1)  # (B, N+3, 2)
    return torch.linalg.solve(system, rhs)


def evaluate_thin_plate(coefficients: torch.Tensor, controls: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Evaluate a fitted spline at (B, M, 2) points; returns (B, M, 2)."""
    count = controls.shape[1]
    kernel = _radial(torch.cdist(points, controls).square())  # (B, M, N)
    affine = torch.cat([torch.ones_like(points[..., :1]), points], dim=-1)  # (B, M, 3)
    return kernel @ coefficients[:, :count] + affine @ coefficients[:, count:]


def _spline_grid(source: torch.Tensor, destination: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """The backward spline that reads ``source`` (B, 68, 2) where ``destination`` is, with the border fixed, evaluated
    at (B, M, 2) normalised ``points``: (B, M, 2)."""
    anchors = _border_anchors(source.device, source.dtype).expand(source.shape[0], -1, -1)
    controls = torch.cat([destination, anchors], dim=1)  # (B, 68 + 16, 2): where output points are
    coefficients = fit_thin_plate(controls, torch.cat([source, anchors], dim=1))  # read there in the source
    return evaluate_thin_plate(coefficients, controls, points)


def smallest_area(flow: torch.Tensor) -> torch.Tensor:
    """(B,) the smallest area a grid cell of a (B, h, h, 2) flow reads, as a share of the cell's own (identity: 1),
    taken at each of the cell's four corners (a bilinear cell is fold-free only if it is positive at all four): at or
    below 0 the flow folds, and the output shows a stretch of the target twice, once mirrored."""
    along_x = flow[:, :, 1:] - flow[:, :, :-1]  # (B, h, h-1, 2): a cell's top and bottom edges
    along_y = flow[:, 1:] - flow[:, :-1]  # (B, h-1, h, 2): its left and right edges
    corners = [
        along_x[:, rows, :, 0] * along_y[:, :, columns, 1] - along_y[:, :, columns, 0] * along_x[:, rows, :, 1]
        for rows in (slice(None, -1), slice(1, None))  # top, bottom edge
        for columns in (slice(None, -1), slice(1, None))  # left, right edge
    ]  # 4 x (B, h-1, h-1)
    return torch.stack(corners, dim=1).flatten(1).amin(dim=1) / (2.0 / flow.shape[1]) ** 2


def landmark_flow(target_landmarks: torch.Tensor, driving_landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """Backward flow that moves the target's landmarks to the driving landmarks.

    A thin-plate spline through the 68 landmark pairs and the fixed crop border, evaluated at every pixel:
    output pixel p reads the target at f(p), with f(driving_i) = target_i. Where one spline squeezes a cell of the
    grid below :data:`FOLD_GUARD` of its area (a large motion overshoots between its points, a face turned from the
    camera driven by a wide-open mouth), the path of the motion in :data:`FOLD_STEPS` splines, composed, is blended
    into that face's whole flow: fully where the one spline folds, linearly less up to the guard (so that a video does
    not jump where folding starts).

    Args:
        target_landmarks: (B, 68, 2) crop pixels of the target.
        driving_landmarks: (B, 68, 2) where those points must go.
        size: crop side R the landmarks refer to.

    Returns:
        (B, R, R, 2) grid for ``F.grid_sample(target, flow, align_corners=False)``.
    """
    target = pixels_to_normalised(target_landmarks.float(), size)
    driving = pixels_to_normalised(driving_landmarks.float(), size)
    coarse = min(size, FLOW_GRID)
    grid = identity_grid(target.shape[0], coarse, target.device, target.dtype).reshape(target.shape[0], -1, 2)
    flow = _spline_grid(target, driving, grid).view(-1, coarse, coarse, 2)  # (B, c, c, 2)
    weight = ((FOLD_GUARD - smallest_area(flow)) / FOLD_GUARD).clamp(0.0, 1.0)  # (B,): 1 where it folds
    stepped = weight > 0
    if stepped.any():
        start, end, points = target[stepped], driving[stepped], grid[stepped]  # (S, 68, 2), (S, 68, 2), (S, c*c, 2)
        for step in range(FOLD_STEPS, 0, -1):  # from the driving shape back to the target's: f = g_1(g_2(...g_K))
            points = _spline_grid(
                start + (end - start) * (step - 1) / FOLD_STEPS, start + (end - start) * step / FOLD_STEPS, points
            )  # (S, c*c, 2)
        # the composition's Jacobian is the product of the steps': it folds only where one short step does
        blend = weight[stepped].view(-1, 1, 1, 1)  # (S, 1, 1, 1)
        flow[stepped] = (1 - blend) * flow[stepped] + blend * points.view(-1, coarse, coarse, 2)
    return upsample_flow(flow, size)


def upsample_flow(flow: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resampling of a (B, h, h, 2) flow to (B, size, size, 2); identity grids stay identity grids."""
    if flow.shape[1] == size:
        return flow
    offsets = flow - identity_grid(flow.shape[0], flow.shape[1], flow.device, flow.dtype)
    offsets = F.interpolate(offsets.permute(0, 3, 1, 2), size=(size, size), mode="bilinear", align_corners=False)
    return identity_grid(flow.shape[0], size, flow.device, flow.dtype) + offsets.permute(0, 2, 3, 1)


def resize_flow(flow: torch.Tensor, size: int) -> torch.Tensor:
    """A (B, R, R, 2) flow at (B, size, size, 2): area averaging keeps an identity grid an identity grid."""
    if flow.shape[1] == size:
        return flow
    return F.interpolate(flow.permute(0, 3, 1, 2), size=(size, size), mode="area").permute(0, 2, 3, 1)


def warp(features: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Resample (B, C, H, W) features (or images) by a flow of any resolution (resized to H x W).

    Outside the crop the border is repeated; the flow is cast to the features' dtype.
    """
    grid = resize_flow(flow, features.shape[-1]).to(features.dtype)  # (B, H, W, 2)
    return F.grid_sample(features, grid, mode="bilinear", padding_mode="border", align_corners=False)


def keep_eyeballs(
    flow: torch.Tensor, target_landmarks: torch.Tensor, driving_landmarks: torch.Tensor, size: int
) -> torch.Tensor:
    """``flow`` with each narrowing eye's opening read from the target unmoved: a lid closes over the eyeball.

    A landmark warp squeezes the iris into a narrowing eye (an eyeball cannot be warped shut); a lid slides over
    it. Inside the driving eye outline of an eye that opens less than the target's, the target is read at the same
    place relative to the eye's corners, so the iris keeps its size and the lids, carried by the warp to their new
    place, cover the rest. A widening eye keeps the warp (what it shows was under the lid: the warp's stretch of
    the eye is the better guess). Unchanged landmarks leave the flow unchanged.
    """
    batch = flow.shape[0]
    grid = identity_grid(batch, size, flow.device, flow.dtype)
    for eye in (RIGHT_EYE, LEFT_EYE):
        opening = [lid_gap(points[:, eye].float()) for points in (target_landmarks, driving_landmarks)]
        narrows = (opening[1] < opening[0] - NARROWING).to(flow.dtype)  # (B,)
        if not bool(narrows.any()):
            continue
        corners = [
            points[:, [eye.start, eye.start + 3]].float().mean(1) for points in (target_landmarks, driving_landmarks)
        ]
        still = grid + ((corners[0] - corners[1]) * (2.0 / size)).to(flow.dtype)[:, None, None, :]  # (B, R, R, 2)
        inside = F.avg_pool2d(
            F.pad(polygon_mask(driving_landmarks[:, eye].float(), size), (1, 1, 1, 1), mode="replicate"), 3, 1
        )
        weight = inside[:, 0, :, :, None].to(flow.dtype) * narrows[:, None, None, None]
        flow = flow + weight * (still - flow)
    return flow


def keep_inside(
    target_landmarks: torch.Tensor, driving_landmarks: torch.Tensor, size: int, margin: float = EDGE_MARGIN
) -> torch.Tensor:
    """(B, 68, 2) driving landmarks with every point that is inside the crop in the target kept ``margin`` px inside
    it (each coordinate stopped at that bound); a motion that stays inside is returned as it is (the same tensor).

    The flow pins the crop's border (:data:`ANCHORS_PER_SIDE`): a chin sent past it, a big jaw drop on a face low in
    its crop, folded the neck into the face. Shortening the whole motion instead would take the expression from a
    face whose jaw line touches the crop's side (it cannot move out at all); points outside in the target are free.
    """
    low, high = margin - 0.5, size - 0.5 - margin  # pixel centres are at integers: the crop spans -0.5 to size - 0.5
    target = target_landmarks.to(driving_landmarks.dtype)
    inside = (target >= low) & (target <= high)
    kept = torch.where(inside, driving_landmarks.clamp(low, high), driving_landmarks)
    return driving_landmarks if torch.equal(kept, driving_landmarks) else kept
