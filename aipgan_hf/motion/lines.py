"""Expression lines: the creases each action unit makes in the skin, as a ratio image.

An expression ratio image (Liu, Shan & Zhang, SIGGRAPH 2001) is a face with an expression divided by the same
face at rest, both warped to one shape: the furrows and folds the expression made, without the person's own skin.
Here each FACS unit's ratio image is drawn, not fitted: creases (a dark line in a soft fold, lit on the side
that bulges) along curves anchored to the average face's landmarks. Ratio images fitted on this corpus's
same-person pairs carried those few people's own wrinkles and noise more than the units' lines
(``docs/design.md``). At run time the units' intensities weigh the images, the sum is warped onto
the driving landmarks and multiplies the target's own skin, so the lines sit in the target's light and colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..faces.align import five_points, similarity_transform, template_points
from .action_units import ACTION_UNITS, motion_intensities
from .flow import landmark_flow, warp
from .shape_model import ShapeModel

SKIN_SHADE = (0.8, 1.0, 1.2)
"""Per-channel (RGB) power of the ratio: a crease's shadow in skin is redder than a grey darkening (light that
enters skin scatters back reddened), so blue darkens most and red least."""

ESTIMATED = 0.5
"""Strength of the lines of a motion estimated from one photo of the source (presets, sliders and a source's own
change given its neutral photo draw them in full): the estimate is uncertain, and drawn lines read as identity
(``docs/design.md``)."""

MAX_LOG_RATIO = 0.6
"""Bound of the summed log ratio: lines never darken skin below 0.55 of its value nor lighten it past 1.8 x."""


@dataclass
class ExpressionLines:
    """Attributes:
    model: the shape model whose frame the units' motion is read in.
    landmarks: (68, 2) crop pixels of the frame the ratio images are drawn in (the average face's).
    log_ratios: (U, R, R) log ratio per unit of :data:`~aipgan_hf.motion.action_units.ACTION_UNITS` at
        intensity 1.
    """

    model: ShapeModel
    landmarks: np.ndarray
    log_ratios: np.ndarray

    @classmethod
    def draw(cls, model: ShapeModel, resolution: int) -> "ExpressionLines":
        """The lines of every unit for the shape model's mean face placed in a ``resolution`` crop as the face
        aligner places faces."""
        matrix = similarity_transform(five_points(model.mean), template_points(resolution))
        frame = model.mean @ matrix[:, :2].T + matrix[:, 2]
        return cls(model=model, landmarks=frame, log_ratios=draw_lines(frame, resolution).astype(np.float32))

    def shade(
        self, target_landmarks: torch.Tensor, driving_landmarks: torch.Tensor, strength: float = 1.0
    ) -> torch.Tensor | None:
        """(B, 3, R, R) factor for the skin of (B, 68, 2) targets driven to ``driving_landmarks`` (crop pixels):
        the lines of the units their motion shows, times ``strength``; None where it shows none."""
        intensities = motion_intensities(
            self.model,
            target_landmarks.detach().double().cpu().numpy(),
            driving_landmarks.detach().double().cpu().numpy(),
        )
        intensities = strength * torch.as_tensor(intensities, dtype=torch.float32, device=driving_landmarks.device)
        return self.ratio(driving_landmarks, intensities)

    def ratio(self, driving_landmarks: torch.Tensor, intensities: torch.Tensor) -> torch.Tensor | None:
        """(B, 3, R, R) per-channel factor for the skin of faces at (B, 68, 2) driving landmarks with (B, U) unit
        intensities, or None where every intensity is 0 (no expression changes no pixel)."""
        intensities = intensities.float().clamp(min=0.0)
        if not bool((intensities > 0).any()):
            return None
        basis = torch.as_tensor(self.log_ratios, dtype=torch.float32, device=intensities.device)
        # one row at a time: a batched product may round differently, and a video's frame must not depend on its batch
        log_ratio = torch.stack([torch.tensordot(row, basis, dims=1) for row in intensities])  # (B, R, R)
        log_ratio = log_ratio.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)[:, None]
        frame = torch.as_tensor(self.landmarks, dtype=torch.float32, device=intensities.device)
        flow = landmark_flow(
            frame.expand(len(driving_landmarks), -1, -1), driving_landmarks.float(), log_ratio.shape[-1]
        )
        shade = torch.tensor(SKIN_SHADE, device=intensities.device)[None, :, None, None]
        return (warp(log_ratio, flow) * shade).exp()  # (B, 3, R, R)


def _arc(start: np.ndarray, end: np.ndarray, bulge: np.ndarray, count: int = 8) -> np.ndarray:
    """``count`` points along the quadratic curve from ``start`` to ``end`` pulled towards ``bulge``."""
    t = np.linspace(0.0, 1.0, count)[:, None]
    return (1 - t) ** 2 * start + 2 * t * (1 - t) * bulge + t**2 * end


# Creases per unit, each (depth, points): a polyline through landmark-anchored points, in units of the frame's
# outer-eye-corner distance D from a named anchor. "mirror" creases are drawn on both sides of the face.
def _creases(points: np.ndarray) -> dict[str, list[tuple[float, list[np.ndarray], bool]]]:
    """Crease polylines per unit for frame landmarks ``points`` (68, 2) crop pixels: (depth, polyline, mirrored)."""
    d = np.linalg.norm(points[45] - points[36])
    centre_x = points[27:36, 0].mean()
    side = lambda p: np.array([centre_x - abs(p[0] - centre_x), p[1]])  # noqa: E731 -- the image's left half
    brow_y = points[17:27, 1].mean()
    inner = (points[21] + points[22]) / 2
    wing, corner = side(points[31]), side(points[48])
    eye = side(points[36])

    forehead = lambda height, half, lift: _arc(  # noqa: E731
        np.array([centre_x - half * d, brow_y - height * d]),
        np.array([centre_x + half * d, brow_y - height * d]),
        np.array([centre_x, brow_y - (height + lift) * d]),
    )
    furrow = lambda k: _arc(  # noqa: E731
        inner + [k * 0.075 * d, -0.08 * d],
        inner + [k * 0.045 * d, 0.1 * d],
        inner + [k * 0.07 * d, 0.01 * d],
        5,
    )
    nasolabial = _arc(wing + [-0.06 * d, -0.04 * d], corner + [-0.07 * d, 0.06 * d], wing + [-0.2 * d, 0.22 * d])
    crow = [np.array([eye + [-0.04 * d, 0.0], eye + [-0.17 * d, dy * d]]) for dy in (-0.07, 0.0, 0.07)]
    under_eye = _arc(
        side(points[41]) + [-0.04 * d, 0.09 * d],
        side(points[40]) + [0.02 * d, 0.08 * d],
        (side(points[41]) + side(points[40])) / 2 + [0.0, 0.12 * d],
    )
    bridge = lambda y: np.array([[centre_x - 0.11 * d, y], [centre_x + 0.11 * d, y]])  # noqa: E731
    chin_y = points[57, 1] + 0.42 * (points[8, 1] - points[57, 1])
    chin = lambda half, lift: _arc(  # noqa: E731
        np.array([centre_x - half * d, chin_y]),
        np.array([centre_x + half * d, chin_y]),
        np.array([centre_x, chin_y - lift * d]),
    )
    return {
        "AU1": [(0.30, [forehead(h, 0.22, 0.03)], False) for h in (0.16, 0.27, 0.38)],
        "AU2": [(0.25, [forehead(h, 0.55, 0.06)], False) for h in (0.18, 0.30)],
        "AU4": [(0.45, [furrow(k)], False) for k in (-1, 1)] + [(0.25, [bridge(points[27, 1] + 0.02 * d)], False)],
        "AU6": [(0.35, crow, True), (0.35, [under_eye], True), (0.25, [nasolabial], True)],
        "AU7": [(0.25, [under_eye], True)],
        "AU9": [
            (0.40, [bridge(points[27, 1] + k * 0.07 * d) for k in (0.3, 1.0, 1.7)], False),
            (0.35, [nasolabial[:4]], True),
            (0.3, [furrow(k) for k in (-1, 1)], False),
        ],
        "AU10": [(0.40, [nasolabial[:6]], True)],
        "AU12": [
            (0.45, [nasolabial], True),
            (0.2, [np.array([corner + [-0.05 * d, -0.03 * d], corner + [-0.06 * d, 0.04 * d]])], True),
        ],
        "AU14": [(0.35, [np.array([corner + [-0.05 * d, -0.04 * d], corner + [-0.05 * d, 0.04 * d]])], True)],
        "AU15": [(0.35, [np.array([corner + [-0.02 * d, 0.04 * d], corner + [-0.06 * d, 0.22 * d]])], True)],
        "AU17": [(0.35, [chin(0.16, 0.06)], False)],
        "AU20": [(0.25, [np.array([corner + [-0.04 * d, 0.0], corner + [-0.16 * d, 0.03 * d]])], True)],
        "AU23": [(0.15, [chin(0.12, 0.04)], False)],
        "AU24": [(0.2, [np.array([corner + [-0.03 * d, -0.02 * d], corner + [-0.03 * d, 0.03 * d]])], True)],
        "AU26": [(0.15, [nasolabial], True)],
    }


def _distance_to_polyline(grid: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(R, R) distance of every pixel centre (grid (R, R, 2)) to a polyline (n, 2)."""
    best = np.full(grid.shape[:2], np.inf)
    for start, end in zip(line[:-1], line[1:]):
        segment = end - start
        t = np.clip(((grid - start) @ segment) / max(segment @ segment, 1e-9), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(grid - (start + t[..., None] * segment), axis=-1))
    return best


def draw_lines(points: np.ndarray, size: int, width: float = 1.2) -> np.ndarray:
    """(U, R, R) log ratios of :data:`ACTION_UNITS` drawn in the frame of (68, 2) crop-pixel landmarks: each
    crease a dark Gaussian line ``width`` px wide (at 128 px) beside a fainter light one, the fold's lit side."""
    scale = size / 128.0
    grid = np.stack(np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64)), axis=-1)
    centre_x = points[27:36, 0].mean()
    creases = _creases(np.asarray(points, dtype=np.float64))
    out = np.zeros((len(ACTION_UNITS), size, size))
    for index, unit in enumerate(ACTION_UNITS):
        for depth, lines, mirrored in creases.get(unit, []):
            for line in lines:
                for copy in [line, line * [-1, 1] + [2 * centre_x, 0]] if mirrored else [line]:
                    distance = _distance_to_polyline(grid, copy)
                    shifted = _distance_to_polyline(grid, copy + [0.0, -2.0 * scale])  # light above the crease
                    out[index] -= 0.2 * depth * np.exp(-0.5 * (distance / (width * scale)) ** 2)
                    out[index] -= 0.35 * depth * np.exp(-0.5 * (distance / (2.5 * width * scale)) ** 2)  # the fold
                    out[index] += 0.2 * depth * np.exp(-0.5 * (shifted / (2.5 * width * scale)) ** 2)
    return out.clip(-MAX_LOG_RATIO, MAX_LOG_RATIO)
