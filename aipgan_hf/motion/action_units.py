"""FACS action units as landmark motions, and the seven emotion prototypes built from them.

Each unit is a displacement of the 68 points in the shape model's frame (outer-eye-corner distance 1, y down),
written from the FACS manual's description of what the unit does to the brows, lids, nose and lips. Intensity 1
is a strong (FACS "D"-"E") unit on an average face; the jaw drop follows the corpus's own opened mouths. ``dx`` is
towards the face's side (away from the midline), so each unit is symmetric unless it is made one-sided (contempt).
The units are data-free on purpose: a slider must do what its name says on every face, and no labelled corpus here
has enough fear, disgust or contempt to fit them. ``docs/design.md`` gives the sources, the choices and the figures.
"""

from __future__ import annotations

import numpy as np

from ..landmarks import NUM_LANDMARKS
from .shape_model import ShapeModel

# (points, outward dx, dy) rows per unit. Brows: 17-21 and 26-22 run outer to inner; lids: 37, 38 / 43, 44 upper,
# 41, 40 / 47, 46 lower; lips: 48 / 54 outer corners, 60 / 64 inner corners, 51 / 57 outer middles.
_MOTIONS: dict[str, list[tuple[tuple[int, ...], float, float]]] = {
    "AU1": [((21, 22), 0.0, -0.10), ((20, 23), 0.0, -0.065), ((19, 24), 0.0, -0.03), ((18, 25), 0.0, -0.01)],
    "AU2": [((17, 26), 0.0, -0.10), ((18, 25), 0.0, -0.085), ((19, 24), 0.0, -0.05), ((20, 23), 0.0, -0.02)],
    "AU4": [
        ((21, 22), -0.06, 0.09),
        ((20, 23), -0.045, 0.075),
        ((19, 24), -0.025, 0.055),
        ((18, 25), -0.01, 0.035),
        ((17, 26), 0.0, 0.02),
        ((37, 38, 43, 44), 0.0, 0.012),
    ],
    "AU5": [((37, 38, 43, 44), 0.0, -0.035), ((36, 39, 42, 45), 0.0, -0.004)],
    "AU6": [((41, 40, 47, 46), 0.0, -0.022), ((36, 45), 0.0, -0.008), ((48, 54), 0.0, -0.01)],
    "AU7": [((41, 40, 47, 46), 0.0, -0.03), ((37, 38, 43, 44), 0.0, 0.015)],
    "AU9": [
        ((31, 35), 0.0, -0.03),
        ((32, 33, 34), 0.0, -0.02),
        ((21, 22), -0.02, 0.035),
        ((20, 23), 0.0, 0.02),
        ((50, 51, 52, 61, 62, 63), 0.0, -0.025),
        ((49, 53), 0.0, -0.015),
        ((41, 40, 47, 46), 0.0, -0.012),
    ],
    "AU10": [
        ((50, 51, 52), 0.0, -0.045),
        ((49, 53), 0.0, -0.035),
        ((61, 62, 63), 0.0, -0.04),
        ((48, 54), 0.0, -0.01),
        ((31, 35), 0.0, -0.01),
    ],
    "AU12": [
        ((48, 54), 0.07, -0.06),
        ((60, 64), 0.06, -0.055),
        ((49, 53, 59, 55), 0.04, -0.035),
        ((61, 63, 67, 65), 0.025, -0.025),
        ((50, 52, 58, 56), 0.015, -0.015),
    ],
    "AU14": [((48, 54), 0.02, -0.012), ((60, 64), 0.02, -0.012), ((49, 53, 59, 55), 0.008, -0.005)],
    "AU15": [
        ((48, 54), 0.01, 0.05),
        ((60, 64), 0.01, 0.045),
        ((49, 53, 59, 55), 0.005, 0.025),
        ((61, 63, 67, 65), 0.0, 0.015),
    ],
    "AU16": [((57, 66), 0.0, 0.045), ((56, 58, 65, 67), 0.0, 0.04), ((55, 59), 0.0, 0.02)],
    "AU17": [
        ((7, 8, 9), 0.0, -0.035),
        ((6, 10), 0.0, -0.02),
        ((56, 57, 58), 0.0, -0.03),
        ((65, 66, 67), 0.0, -0.02),
        ((55, 59), 0.0, -0.015),
    ],
    "AU20": [
        ((48, 54), 0.07, 0.012),
        ((60, 64), 0.06, 0.01),
        ((49, 53, 59, 55), 0.04, 0.006),
        ((50, 52, 58, 56), 0.015, 0.0),
    ],
    "AU23": [
        ((48, 54), -0.03, 0.0),
        ((60, 64), -0.025, 0.0),
        ((49, 53, 59, 55), -0.015, 0.0),
        ((50, 51, 52), 0.0, 0.012),
        ((56, 57, 58), 0.0, -0.012),
    ],
    "AU24": [
        ((61, 62, 63), 0.0, 0.012),
        ((65, 66, 67), 0.0, -0.012),
        ((50, 51, 52), 0.0, 0.015),
        ((56, 57, 58), 0.0, -0.015),
    ],
    "AU25": [((61, 62, 63), 0.0, -0.012), ((65, 66, 67), 0.0, 0.04), ((56, 57, 58), 0.0, 0.025)],
    "AU26": [
        ((8,), 0.0, 0.13),
        ((7, 9), 0.0, 0.12),
        ((6, 10), 0.0, 0.1),
        ((5, 11), 0.0, 0.08),
        ((4, 12), 0.0, 0.065),
        ((3, 13), 0.0, 0.03),
        ((56, 57, 58), 0.0, 0.15),
        ((65, 66, 67), 0.0, 0.145),
        ((55, 59), 0.0, 0.1),
        ((48, 54, 60, 64), 0.0, 0.01),
        ((61, 62, 63), 0.0, -0.035),
        ((50, 51, 52), 0.0, -0.025),
    ],
}

ACTION_UNITS: dict[str, str] = {
    "AU1": "inner_brow_raiser",
    "AU2": "outer_brow_raiser",
    "AU4": "brow_lowerer",
    "AU5": "upper_lid_raiser",
    "AU6": "cheek_raiser",
    "AU7": "lid_tightener",
    "AU9": "nose_wrinkler",
    "AU10": "upper_lip_raiser",
    "AU12": "lip_corner_puller",
    "AU14": "dimpler",
    "AU15": "lip_corner_depressor",
    "AU16": "lower_lip_depressor",
    "AU17": "chin_raiser",
    "AU20": "lip_stretcher",
    "AU23": "lip_tightener",
    "AU24": "lip_pressor",
    "AU25": "lips_part",
    "AU26": "jaw_drop",
    "AU43": "eyes_closed",
}
"""FACS number -> name. A slider is called ``"AU4_brow_lowerer"`` (:func:`slider_name`)."""

EMOTIONS: dict[str, dict[str, float]] = {
    "happiness": {"AU6": 1.4, "AU12": 1.4, "AU25": 0.6},
    "sadness": {"AU1": 1.0, "AU4": 0.6, "AU15": 1.0, "AU17": 0.6},
    "surprise": {"AU1": 1.0, "AU2": 1.0, "AU5": 1.0, "AU20": -0.4, "AU26": 1.3},
    "fear": {
        "AU1": 1.6,
        "AU2": 1.0,
        "AU4": 0.8,
        "AU5": 1.8,
        "AU15": 1.0,
        "AU16": 1.0,
        "AU20": 1.0,
        "AU25": 0.5,
        "AU26": 0.15,
    },
    "anger": {"AU4": 1.5, "AU5": 1.0, "AU7": 0.5, "AU23": 1.0, "AU24": 0.8},
    "disgust": {"AU9": 1.3, "AU10": 0.8, "AU15": 0.4, "AU17": 0.8},
    "contempt": {"AU12_right": 0.9, "AU14_right": 5.0, "AU24": 0.4, "AU43": 0.6},
}
"""Emotion prototypes (EMFACS): unit -> intensity. ``_right`` is the unit on the face's right side only (the
image's left half). Rounds of blind naming set the intensities (``docs/evaluation.md``):
- surprise drops the jaw into an oval, its corners drawn in (a lip stretcher reversed; wide, it read as a laugh);
- anger glares (lids raised, not narrowed: narrowed, it read as disgust);
- fear's brows rise and draw together over a tense stretched mouth whose corners and lower lip drop (wider open, it
  read as surprise; with the corners up, as a smile);
- contempt is a one-sided pull and tightening of one lip corner, with its dimple, pressed lips and heavy lids (a
  one-sided smile alone read as happy; with a raised brow and upper lip, as neutral or disgust);
- disgust wrinkles the nose over a closed mouth with a raised chin, EMFACS's 9 + 17 (with a brow lowerer, or baring
  the upper teeth over a dropped lower lip, it read as anger)."""


def slider_name(unit: str) -> str:
    """``"AU4"`` -> ``"AU4_brow_lowerer"``."""
    return f"{unit}_{ACTION_UNITS[unit]}"


def _eyes_closed(mean: np.ndarray) -> np.ndarray:
    """Upper lids down onto the lower ones (whatever the mean face's eye opening), lower lids a little up."""
    field = np.zeros((NUM_LANDMARKS, 2))
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        gap = mean[lower, 1] - mean[upper, 1]
        field[upper, 1], field[lower, 1] = 0.9 * gap, -0.1 * gap
    return field


def unit_field(unit: str, mean: np.ndarray) -> np.ndarray:
    """(68, 2) displacement of one unit at intensity 1, for a face whose neutral shape is ``mean`` (model frame).
    ``"AU12_right"``: the unit on the face's right side only (points left of the midline in the image)."""
    name, _, side = unit.partition("_")
    if name == "AU43":
        field = _eyes_closed(mean)
    else:
        field = np.zeros((NUM_LANDMARKS, 2))
        centre = mean[27:36, 0].mean()  # the nose: the face's midline
        for points, outward, down in _MOTIONS[name]:
            for point in points:
                field[point] += (outward * np.sign(mean[point, 0] - centre), down)
    if side == "right":
        field[mean[:, 0] > mean[27:36, 0].mean() + 1e-6] = 0.0
    elif side:
        raise KeyError(unit)
    return field


LINE_SIGNATURES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "AU1": ((20, 21, 22, 23), (1,)),
    "AU2": ((17, 18, 25, 26), (1,)),
    "AU4": ((19, 20, 21, 22, 23, 24), (0, 1)),
    "AU6": ((40, 41, 46, 47), (1,)),
    "AU7": ((40, 41, 46, 47), (1,)),
    "AU9": ((31, 32, 33, 34, 35), (1,)),
    "AU10": ((50, 51, 52), (1,)),
    "AU12": ((48, 54), (0, 1)),
    "AU15": ((48, 54), (1,)),
    "AU17": ((7, 8, 9), (1,)),
    "AU20": ((48, 54), (0,)),
    "AU26": ((7, 8, 9), (1,)),
}
"""The units that draw lines, and the points and axes (0: x, 1: y) whose motion says how strongly: where the unit
moves its own points in its own way. Reading every unit from the whole motion at once (least squares) explains a
noisy estimate by large opposite units (a chin raiser against a jaw drop), each of which would draw its lines."""

ONE_SIDED: dict[str, str] = {"AU14": "AU12"}
"""Units read, per side of the face, as another unit's excess on that side over the other. A dimpler moves the lip
corners along nearly a smile's direction (read from its own points, every smile drew dimples); what tells it in a
face is a pull on one corner only, EMFACS's contempt (``docs/design.md``)."""

LINED_UNITS: tuple[str, ...] = (*LINE_SIGNATURES, *ONE_SIDED)
"""The units that draw lines."""

MAX_LINE_INTENSITY = 1.5

LIP_CORNERS, CHIN = (48, 54), (7, 8, 9)
JAW_CORNER_SLOPE = 0.56
"""How far the lip corners descend per unit of the chin's drop when no corner unit acts (model frame): the
least-squares slope through the origin of the corners' mean descent on the chin's, over the estimated motions of the
train split's neutral, surprised and angry photos (``training/fit_line_reading.py``; 0.57, 0.56 and 0.54 apart, 0.56
on its sad ones too). An open mouth drags its corners down with the jaw; read as they are, they are a lip-corner
depressor, and every open mouth drew sad marionette lines."""


def _corners_on_jaw(motion: np.ndarray) -> np.ndarray:
    """(N, 68, 2) ``motion`` with each lip corner's descent, as far as the chin's drop explains it
    (:data:`JAW_CORNER_SLOPE`), taken away. Only a descent is explained, and only up to that: a corner that stays
    level on an opening jaw (the jaw-drop unit's, which moves the corners 0.01 for a 0.12 drop) does not read as a
    raised one, and a corner that rises or sinks further than the jaw takes it keeps the difference."""
    drop = np.maximum(motion[:, CHIN, 1].mean(axis=1), 0.0)  # (N,)
    corners = motion[:, LIP_CORNERS, 1]  # (N, 2)
    motion = motion.copy()
    motion[:, LIP_CORNERS, 1] = corners - np.clip(corners, 0.0, JAW_CORNER_SLOPE * drop[:, None])
    return motion


def _sides(points: tuple[int, ...], mean: np.ndarray) -> tuple[list[int], list[int]]:
    """``points`` on the image's left half of the face and on its right (a point on the midline in both)."""
    centre, margin = mean[27:36, 0].mean(), 1e-3
    return [p for p in points if mean[p, 0] < centre + margin], [p for p in points if mean[p, 0] > centre - margin]


def line_intensities(motion: np.ndarray, mean: np.ndarray, sides: bool = False) -> np.ndarray:
    """(N, U) how strongly each unit of :data:`ACTION_UNITS` draws its lines for (N, 68, 2) model-frame motions:
    the motion of the unit's signature points (:data:`LINE_SIGNATURES`) projected on the unit's own, 1 for the
    unit alone at intensity 1, within 0 and :data:`MAX_LINE_INTENSITY`; 0 for units without lines. The lip corners
    are read against the jaw (:func:`_corners_on_jaw`): an open mouth alone reads no corner unit. With ``sides``,
    (N, U, 2): each half of the face read from its own points (image left, right), so that a one-sided smirk draws
    its fold on its own side only (read over both, it drew a smile's two folds at half strength), and the units of
    :data:`ONE_SIDED` read (0 without ``sides``)."""
    motion = _corners_on_jaw(np.asarray(motion, dtype=np.float64).reshape(-1, NUM_LANDMARKS, 2))
    values = np.zeros((len(motion), len(ACTION_UNITS), 2 if sides else 1))
    for index, unit in enumerate(ACTION_UNITS):
        if unit not in LINE_SIGNATURES:
            continue
        points, axes = LINE_SIGNATURES[unit]
        for side, chosen in enumerate(_sides(points, mean) if sides else (list(points),)):
            own = unit_field(unit, mean)[np.ix_(chosen, axes)].ravel()
            values[:, index, side] = motion[:, chosen][:, :, axes].reshape(len(motion), -1) @ own / (own @ own)
    if sides:
        units = list(ACTION_UNITS)
        for unit, excess_of in ONE_SIDED.items():
            pull = values[:, units.index(excess_of)].clip(min=0.0)  # (N, 2), before the bound: 2.0 against 1.6 is 0.4
            values[:, units.index(unit)] = pull - pull[:, ::-1]
    values = values.clip(0.0, MAX_LINE_INTENSITY)
    return values if sides else values[..., 0]


def motion_intensities(
    model: ShapeModel, target_landmarks: np.ndarray, driving_landmarks: np.ndarray, sides: bool = False
) -> np.ndarray:
    """(N, U) line intensities (:func:`line_intensities`; ``sides``: (N, U, 2)) of the motion from (N, 68, 2) target
    landmarks to driving ones (any pixel frame), read in the model frame through each target's own alignment
    (re-aligning the driving face would hide a unit that moves the alignment's points, the nose wrinkler's)."""
    targets = np.asarray(target_landmarks, dtype=np.float64).reshape(-1, NUM_LANDMARKS, 2)
    motion = np.asarray(driving_landmarks, dtype=np.float64).reshape(targets.shape) - targets
    _, linears = model.align(targets)
    return line_intensities(np.einsum("nij,npj->npi", linears, motion), model.mean, sides)


SIDED_UNITS = ("AU2_right", "AU10_right", "AU12_right", "AU14_right")
"""One-sided units the basis spans whether or not a preset uses them (0.8.0's to 0.11.0's contempt used all four,
0.12.0's two): each adds a direction, and a refit must give the shipped basis, onto which video driving projects."""


def with_action_units(model: ShapeModel) -> ShapeModel:
    """``model`` whose basis also spans every unit, with a slider per unit and the seven emotion presets.

    The units' motion outside the fitted basis (brows drawn together, a lid shut: the regressor's principal
    directions do not hold all of it) is added as extra orthonormal directions. The estimator gives them 0, so a
    transfer from one photo is unchanged; a driving with a neutral reference projects onto them too. The fitted
    sliders stay as they were; the label presets give way to the FACS prototypes."""
    used = {u for prototype in EMOTIONS.values() for u in prototype}
    units = [*ACTION_UNITS, *sorted((used | set(SIDED_UNITS)) - set(ACTION_UNITS))]
    fields = np.stack([unit_field(unit, model.mean).ravel() for unit in units])  # (U', 136)
    basis = model.expression_basis.reshape(model.num_expression, -1)  # (k, 136), orthonormal
    residual = fields - (fields @ basis.T) @ basis
    _, values, vectors = np.linalg.svd(residual, full_matrices=False)
    extra = vectors[values > 1e-6 * max(values.max(), 1e-12)]  # (r, 136)
    extended = np.concatenate([basis, extra])  # (k + r, 136)
    pad = np.zeros(len(extra))
    coefficients = dict(zip(units, fields @ extended.T))  # exact: every field lies in the extended span
    directions = {name: np.concatenate([value, pad]) for name, value in model.directions.items()}
    directions.update({slider_name(unit): coefficients[unit] for unit in ACTION_UNITS})
    presets = {
        emotion: sum(w * coefficients[u] for u, w in prototype.items()) for emotion, prototype in EMOTIONS.items()
    }
    return ShapeModel(
        mean=model.mean,
        expression_basis=extended.reshape(-1, NUM_LANDMARKS, 2),
        estimator=np.concatenate([model.estimator, np.zeros((len(extra), model.estimator.shape[1]))]),
        bias=np.concatenate([model.bias, pad]),
        directions=directions,
        presets=presets,
        head_turn=model.head_turn,
        growth_range=model.growth_range,
    )
