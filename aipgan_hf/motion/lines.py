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

from dataclasses import dataclass, field

import numpy as np
import torch

from ..faces.align import five_points, similarity_transform, template_points
from .action_units import ACTION_UNITS, MAX_LINE_INTENSITY, motion_intensities
from .flow import landmark_flow, warp
from .shape_model import ShapeModel

SKIN_SHADE = (0.8, 1.0, 1.2)
"""Per-channel (RGB) power of the ratio: a crease's shadow in skin is redder than a grey darkening (light that
enters skin scatters back reddened), so blue darkens most and red least."""

ONE_PHOTO_FLOOR: dict[str, float] = {
    "AU1": 0.80,
    "AU2": 0.57,
    "AU4": 0.91,
    "AU6": 1.00,
    "AU7": 1.00,
    "AU9": 0.31,
    "AU10": 0.76,
    "AU12": 0.82,
    "AU15": 0.91,
    "AU17": 1.00,
    "AU20": 0.59,
    "AU26": 1.00,
}
"""Per unit, the line intensity a motion estimated from one photo reaches on a face that does nothing: the 90th
percentile over the train split's 5,122 neutral-labelled photos, each side of the face read apart as the lines are
drawn, capped at 1.0 so that the strongest reading still
draws (``training/fit_line_reading.py``). The estimator's landmark noise on a neutral face read as cheek raisers,
jaw drops and lip-corner depressors of 0.5 on average; below the floor it draws nothing."""


@dataclass(frozen=True)
class LineStrength:
    """How the units' line intensities read from a motion become the drawn ones: less the unit's ``floor`` (0
    where absent), stretched so that :data:`~aipgan_hf.motion.action_units.MAX_LINE_INTENSITY` stays itself, then
    times ``scale``. A float given where a strength is asked for is a scale without floor."""

    scale: float = 1.0
    floor: dict[str, float] = field(default_factory=dict)

    def __call__(self, intensities: np.ndarray) -> np.ndarray:
        """(N, U) drawn intensities for (N, U) read ones (:data:`ACTION_UNITS` order); (N, U, 2) for both sides."""
        floor = np.array([self.floor.get(unit, 0.0) for unit in ACTION_UNITS])
        floor = floor.reshape(floor.shape + (1,) * (np.ndim(intensities) - 2))
        floored = (intensities - floor) * MAX_LINE_INTENSITY / (MAX_LINE_INTENSITY - floor)
        # a unit without a floor keeps its reading exactly: exact motions read exactly as before
        return self.scale * np.where(floor > 0, floored.clip(0.0, MAX_LINE_INTENSITY), intensities)


EXACT = LineStrength()
"""Lines of a motion known exactly: presets, sliders, video driving, a source's change from its neutral photo."""
ESTIMATED = LineStrength(scale=0.5, floor=ONE_PHOTO_FLOOR)
"""Lines of a motion estimated from one photo of the source: nothing below the noise floor
(:data:`ONE_PHOTO_FLOOR`), and at half strength, as the estimate is uncertain and drawn lines read as identity
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
    side_log_ratios: (U, 2, R, R) the same, split into the image's left and right half of the face (summing to
        ``log_ratios``; a ramp 2 px wide across the midline, where a furrow's pair blends): what each side's
        intensity weighs.
    """

    model: ShapeModel
    landmarks: np.ndarray
    log_ratios: np.ndarray
    side_log_ratios: np.ndarray

    @classmethod
    def draw(cls, model: ShapeModel, resolution: int) -> "ExpressionLines":
        """The lines of every unit for the shape model's mean face placed in a ``resolution`` crop as the face
        aligner places faces."""
        matrix = similarity_transform(five_points(model.mean), template_points(resolution))
        frame = model.mean @ matrix[:, :2].T + matrix[:, 2]
        log_ratios = draw_lines(frame, resolution).astype(np.float32)
        left = np.clip((frame[27:36, 0].mean() - np.arange(resolution) - 0.5) / 2.0 + 0.5, 0.0, 1.0)  # (R,) columns
        halves = np.stack([left, 1.0 - left])[:, None, :].astype(np.float32)  # (2, 1, R)
        return cls(model, frame, log_ratios, log_ratios[:, None] * halves[None])

    def shade(
        self,
        target_landmarks: torch.Tensor,
        driving_landmarks: torch.Tensor,
        strength: LineStrength | float = EXACT,
    ) -> torch.Tensor | None:
        """(B, 3, R, R) factor for the skin of (B, 68, 2) targets driven to ``driving_landmarks`` (crop pixels):
        the lines of the units their motion shows, at ``strength`` (:class:`LineStrength`; a float: that scale,
        no floor); None where it shows none."""
        intensities = motion_intensities(
            self.model,
            target_landmarks.detach().double().cpu().numpy(),
            driving_landmarks.detach().double().cpu().numpy(),
            sides=True,
        )
        if not isinstance(strength, LineStrength):
            strength = LineStrength(scale=float(strength))
        intensities = torch.as_tensor(strength(intensities), dtype=torch.float32, device=driving_landmarks.device)
        return self.ratio(driving_landmarks, intensities)

    def ratio(self, driving_landmarks: torch.Tensor, intensities: torch.Tensor) -> torch.Tensor | None:
        """(B, 3, R, R) per-channel factor for the skin of faces at (B, 68, 2) driving landmarks with (B, U) unit
        intensities (or (B, U, 2): the image's left and right half of the face apart), or None where every
        intensity is 0 (no expression changes no pixel)."""
        intensities = intensities.float().clamp(min=0.0)
        if not bool((intensities > 0).any()):
            return None
        sides = intensities.dim() == 3  # each side's lines weighed by its own intensity
        basis = torch.as_tensor(self.side_log_ratios if sides else self.log_ratios, device=intensities.device)
        # one row at a time: a batched product may round differently, and a video's frame must not depend on its batch
        log_ratio = torch.stack([torch.tensordot(row, basis, dims=row.dim()) for row in intensities])  # (B, R, R)
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
