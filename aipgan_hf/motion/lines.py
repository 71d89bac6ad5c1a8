"""Expression lines: the creases each action unit makes in the skin, as a ratio image.

An expression ratio image (Liu, Shan & Zhang, SIGGRAPH 2001) is a face with an expression divided by the same
face at rest, both warped to one shape: the furrows and folds the expression made, without the person's own skin.
Here each FACS unit's ratio image is drawn, not fitted: creases (a dark line in a soft fold, lit on the side
that bulges) along curves anchored to the target's own landmarks. Ratio images fitted on this corpus's
same-person pairs carried those few people's own wrinkles and noise more than the units' lines
(``docs/design.md``). At run time the units' intensities weigh the images, the sum moves with the face (the
landmark flow from the target to the driving landmarks) and multiplies the target's own skin, so the lines sit in
the target's light and colour.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..landmarks import MIRRORED
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
    "AU14": 0.33,
    "AU15": 0.91,
    "AU17": 1.00,
    "AU20": 0.59,
    "AU26": 1.00,
}
"""Per unit, the line intensity a motion estimated from one photo reaches on a face that does nothing: the 90th
percentile over the train split's 5,122 neutral-labelled photos, each side of the face read apart as the lines are
drawn (a one-sided unit: each photo's larger side), capped at 1.0 so that the strongest reading still
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


@dataclass(frozen=True)
class EachFace:
    """One :class:`LineStrength` per face of a batch (a batch of transfers whose motions are known unequally well)."""

    strengths: tuple[LineStrength, ...]

    def __call__(self, intensities: np.ndarray) -> np.ndarray:
        return np.stack([strength(row[None])[0] for strength, row in zip(self.strengths, intensities, strict=True)])


EXACT = LineStrength()
"""Lines of a motion known exactly: presets, sliders, video driving, a source's change from its neutral photo."""
ESTIMATED = LineStrength(scale=0.5, floor=ONE_PHOTO_FLOOR)
"""Lines of a motion estimated from one photo of the source: nothing below the noise floor
(:data:`ONE_PHOTO_FLOOR`), and at half strength, as the estimate is uncertain and drawn lines read as identity
(``docs/design.md``)."""

MAX_LOG_RATIO = 0.6
"""Bound of the summed log ratio: lines never darken skin below 0.55 of its value nor lighten it past 1.8 x."""


@dataclass(frozen=True)
class ExpressionLines:
    """The units' creases, drawn on each target's own face and moved with it.

    Attributes:
        model: the shape model whose frame the units' motion is read in.
        resolution: side R of the crops the lines are drawn in.
    """

    model: ShapeModel
    resolution: int

    def shade(
        self,
        target_landmarks: torch.Tensor,
        driving_landmarks: torch.Tensor,
        strength: LineStrength | EachFace | float = EXACT,
        flow: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """(B, 3, R, R) factor for the skin of (B, 68, 2) targets driven to ``driving_landmarks`` (crop pixels):
        the lines of the units their motion shows, at ``strength`` (:class:`LineStrength` or :class:`EachFace`; a
        float: that scale, no floor); None where it shows none. ``flow``: the (B, R, R, 2) flow the faces move by, when the caller
        has it (else the landmark flow)."""
        intensities = motion_intensities(
            self.model,
            target_landmarks.detach().double().cpu().numpy(),
            driving_landmarks.detach().double().cpu().numpy(),
            sides=True,
        )
        if not isinstance(strength, (LineStrength, EachFace)):
            strength = LineStrength(scale=float(strength))
        intensities = torch.as_tensor(strength(intensities), dtype=torch.float32, device=driving_landmarks.device)
        return self.ratio(target_landmarks, driving_landmarks, intensities, flow)

    def ratio(
        self,
        target_landmarks: torch.Tensor,
        driving_landmarks: torch.Tensor,
        intensities: torch.Tensor,
        flow: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """(B, 3, R, R) per-channel factor for the skin of (B, 68, 2) targets driven to ``driving_landmarks``
        with (B, U, 2) unit intensities (the image's left and right half of the face; (B, U): both alike), or
        None where every intensity is 0 (no expression changes no pixel). The lines move with the face: by
        ``flow`` when given, else by the landmark flow."""
        intensities = intensities.float().clamp(min=0.0)
        if intensities.dim() == 2:
            intensities = intensities[..., None].expand(-1, -1, 2)
        if not bool((intensities > 0).any()):
            return None
        device = intensities.device
        units = tuple(list(ACTION_UNITS)[u] for u in np.flatnonzero(intensities.amax(dim=(0, 2)).cpu().numpy() > 0))
        drawn: dict[bytes, torch.Tensor] = {}  # a video drives one target: its lines are drawn once
        rows = []
        for target, row in zip(target_landmarks.detach().cpu().numpy().astype(np.float64), intensities, strict=True):
            key = target.tobytes()
            if key not in drawn:
                drawn[key] = torch.as_tensor(draw_lines(target, self.resolution, units), device=device)
            # one row at a time: a batched product may round differently, and a video's frame must not depend
            # on its batch
            rows.append(torch.tensordot(row, drawn[key], dims=2))
        log_ratio = torch.stack(rows).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)[:, None]  # (B, 1, R, R)
        if flow is None:
            flow = landmark_flow(
                target_landmarks.float().to(device), driving_landmarks.float().to(device), self.resolution
            )
        shade = torch.tensor(SKIN_SHADE, device=device)[None, :, None, None]
        return (warp(log_ratio, flow) * shade).exp()  # (B, 3, R, R)


def _arc(start: np.ndarray, end: np.ndarray, bulge: np.ndarray, count: int = 8) -> np.ndarray:
    """``count`` points along the quadratic curve from ``start`` to ``end`` pulled towards ``bulge``."""
    t = np.linspace(0.0, 1.0, count)[:, None]
    return (1 - t) ** 2 * start + 2 * t * (1 - t) * bulge + t**2 * end


Crease = tuple[str, float, np.ndarray, int | None]
"""(unit, depth, polyline (n, 2) crop pixels, side: 0 the image's left half of the face, 1 its right, None both)."""


def _creases(points: np.ndarray) -> list[Crease]:
    """The units' creases on a face with (68, 2) crop-pixel landmarks ``points``: polylines through points placed
    from landmarks, in units of the outer-eye-corner distance D. A crease of one side of the face is placed from
    that side's own landmarks (:data:`~aipgan_hf.landmarks.MIRRORED`), so a turned face keeps its lines on itself."""
    d = np.linalg.norm(points[45] - points[36])
    centre_x = points[27:36, 0].mean()
    brow_y = points[17:27, 1].mean()
    inner = (points[21] + points[22]) / 2
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
    bridge = lambda y: np.array([[centre_x - 0.11 * d, y], [centre_x + 0.11 * d, y]])  # noqa: E731
    chin_y = points[57, 1] + 0.42 * (points[8, 1] - points[57, 1])
    chin = lambda half, lift: _arc(  # noqa: E731
        np.array([centre_x - half * d, chin_y]),
        np.array([centre_x + half * d, chin_y]),
        np.array([centre_x, chin_y - lift * d]),
    )
    creases: list[Crease] = [
        *[("AU1", 0.30, forehead(h, 0.22, 0.03), None) for h in (0.16, 0.27, 0.38)],
        *[("AU2", 0.25, forehead(h, 0.55, 0.06), None) for h in (0.18, 0.30)],
        *[("AU4", 0.45, furrow(k), None) for k in (-1, 1)],
        ("AU4", 0.25, bridge(points[27, 1] + 0.02 * d), None),
        *[("AU9", 0.40, bridge(points[27, 1] + k * 0.07 * d), None) for k in (0.3, 1.0, 1.7)],
        *[("AU9", 0.3, furrow(k), None) for k in (-1, 1)],
        ("AU17", 0.35, chin(0.16, 0.06), None),
        ("AU23", 0.15, chin(0.12, 0.04), None),
    ]
    for side, (p, outward) in enumerate(((points, 1.0), (points[list(MIRRORED)], -1.0))):
        at = lambda anchor, x, y: anchor + np.array([outward * x * d, y * d])  # noqa: E731, B023
        wing, corner, eye = p[31], p[48], p[36]
        nasolabial = _arc(at(wing, -0.06, -0.04), at(corner, -0.07, 0.06), at(wing, -0.2, 0.22))
        under_eye = _arc(at(p[41], -0.04, 0.09), at(p[40], 0.02, 0.08), at((p[41] + p[40]) / 2, 0.0, 0.12))
        segment = lambda anchor, x0, y0, x1, y1: np.array([at(anchor, x0, y0), at(anchor, x1, y1)])  # noqa: E731
        creases += [
            *[("AU6", 0.35, segment(eye, -0.04, 0.0, -0.17, dy), side) for dy in (-0.07, 0.0, 0.07)],
            ("AU6", 0.35, under_eye, side),
            ("AU6", 0.25, nasolabial, side),
            ("AU7", 0.25, under_eye, side),
            ("AU9", 0.35, nasolabial[:4], side),
            ("AU10", 0.40, nasolabial[:6], side),
            ("AU12", 0.45, nasolabial, side),
            ("AU12", 0.2, segment(corner, -0.05, -0.03, -0.06, 0.04), side),
            ("AU14", 0.35, segment(corner, -0.05, -0.04, -0.05, 0.04), side),
            ("AU15", 0.35, segment(corner, -0.02, 0.04, -0.06, 0.22), side),
            ("AU20", 0.25, segment(corner, -0.04, 0.0, -0.16, 0.03), side),
            ("AU24", 0.2, segment(corner, -0.03, -0.02, -0.03, 0.03), side),
            ("AU26", 0.15, nasolabial, side),
        ]
    return creases


def _distance_to_polyline(columns: np.ndarray, rows: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(h, w) distance of the pixel centres of ``rows`` (h,) x ``columns`` (w,) to a polyline (n, 2)."""
    start, segment = line[:-1], np.diff(line, axis=0)  # (S, 2)
    x, y = columns[None, :, None] - start[:, 0], rows[:, None, None] - start[:, 1]  # (h, w, S) each
    t = np.clip((x * segment[:, 0] + y * segment[:, 1]) / np.maximum((segment**2).sum(-1), 1e-9), 0.0, 1.0)
    return np.sqrt(((x - t * segment[:, 0]) ** 2 + (y - t * segment[:, 1]) ** 2).min(axis=-1))


def _crease(line: np.ndarray, depth: float, size: int, width: float) -> tuple[tuple[slice, slice], np.ndarray]:
    """A crease's log ratio where it is not 0: (rows, columns) of the crop and the values there. A dark Gaussian
    line ``width`` px wide (at 128 px) beside a fainter light one a few px above it, the fold's lit side."""
    scale = size / 128.0
    lift = max(1, round(2.0 * scale))
    reach = 3.0 * 2.5 * width * scale  # the fold's profile is below 1 % of its depth beyond
    low = np.maximum(np.floor(line.min(0) - reach).astype(int) - [0, lift], 0)
    high = np.minimum(np.ceil(line.max(0) + reach + 1).astype(int), size)
    if (high <= low).any():
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0))
    columns = np.arange(low[0], high[0], dtype=np.float32)
    rows = np.arange(low[1], high[1] + lift, dtype=np.float32)  # the light line's rows too
    distance = _distance_to_polyline(columns, rows, line.astype(np.float32))
    dark, lit = distance[:-lift], distance[lift:]  # the light line: the dark one's map moved up by lift rows
    sigma, fold = width * scale, 2.5 * width * scale
    values = -0.2 * depth * np.exp(-0.5 * (dark / sigma) ** 2)
    values -= 0.35 * depth * np.exp(-0.5 * (dark / fold) ** 2)  # the fold
    values += 0.2 * depth * np.exp(-0.5 * (lit / fold) ** 2)
    return (slice(low[1], high[1]), slice(low[0], high[0])), values


def draw_lines(points: np.ndarray, size: int, units: tuple[str, ...] | None = None, width: float = 1.2) -> np.ndarray:
    """(U, 2, R, R) float32 log ratios of :data:`ACTION_UNITS` (``units`` only; others 0) on a face with (68, 2)
    crop-pixel landmarks: per unit, its creases on the image's left and right half of the face. A crease across the
    midline is split over a ramp 2 px wide (its two halves weighed by each side's intensity)."""
    points = np.asarray(points, dtype=np.float64)
    left = np.clip((points[27:36, 0].mean() - np.arange(size) - 0.5) / 2.0 + 0.5, 0.0, 1.0)  # (R,) columns
    out = np.zeros((len(ACTION_UNITS), 2, size, size), dtype=np.float32)
    index = {unit: i for i, unit in enumerate(ACTION_UNITS)}
    for unit, depth, line, side in _creases(points):
        if units is not None and unit not in units:
            continue
        window, values = _crease(line, depth, size, width)
        if side is None:
            halves = left[window[1]]
            out[index[unit], 0][window] += values * halves
            out[index[unit], 1][window] += values * (1.0 - halves)
        else:
            out[index[unit], side][window] += values
    return out.clip(-MAX_LOG_RATIO, MAX_LOG_RATIO)
