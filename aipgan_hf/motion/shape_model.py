"""A linear 68-point expression model: what a face is doing, without who it is.

After a similarity alignment on the points that expressions barely move (nose, eye corners), a face's
expression is the displacement of its landmarks from that person's own neutral face. From one photo it is
estimated by a linear (ridge) regressor trained on pairs whose neutral is known (a clip's most neutral frame,
London neutral vs smiling, a neutral LFW photo of the same person; ``training/fit_shape_model.py``), and
expressed as coefficients on the principal directions of those displacements. Transfer moves the target's
own landmarks by the source's coefficients, so the source's face shape never reaches the driving landmarks.
A discriminative regressor rather than a generative identity + pose + expression model, because it followed
expressions better (docs/design.md, "Motion").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from .. import landmarks as scheme
from ..errors import CheckpointError, ConfigError
from ..faces.align import similarity_transform
from ..landmarks import NUM_LANDMARKS

SHAPE_MODEL_NAME = "shape_model.safetensors"
MAX_EXPRESSION_STRENGTH = 1.5
"""The largest expression strength and slider value (either sign) the pipeline and video driving accept."""
STABLE_POINTS = np.array(scheme.STABLE_POINTS)
"""Nose and the four eye corners: the alignment frame of the model (they move least with expression)."""


def _as_batch(landmarks: np.ndarray) -> tuple[np.ndarray, bool]:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape[-2:] != (NUM_LANDMARKS, 2) or points.ndim not in (2, 3) or not np.isfinite(points).all():
        raise ValueError(f"expected finite (68, 2) or (N, 68, 2) landmarks, got shape {points.shape}")
    return (points[None], True) if points.ndim == 2 else (points, False)


GROWTH_RANGE = (0.84, 1.25)
"""How far a one-photo estimate may shrink and grow the face's outline (jaw line and brows), as an area ratio on the
mean face: about the 1st and 99th percentiles (0.84, 1.253) of 2,050 true changes within one session (clip frames,
grimaces and London's smiles against their neutral, train split; ``benchmarks/benchmark_retargeting.py --split
train``). Photos of another day carry the camera too, and the regressor learnt some of it: 8.3 % of its estimates
grow the face past 1.25 (train split), which balloons the target, and 13.5 % shrink it below 0.84, which pinches it
(docs/design.md, "A face that balloons")."""
OUTLINE = np.r_[0:17, 26:16:-1]
"""The jaw line, then the brows back across: the face's outline as a polygon."""


def _outline_area(shapes: np.ndarray) -> np.ndarray:
    """(N, 68, 2) -> (N,) the signed area (shoelace) of each face's :data:`OUTLINE`."""
    x, y = shapes[:, OUTLINE, 0], shapes[:, OUTLINE, 1]
    return 0.5 * (x * np.roll(y, 1, axis=1) - y * np.roll(x, 1, axis=1)).sum(axis=1)


MOUTH_KEPT_BY = ("AU25_lips_part", "AU12_lip_corner_puller", "AU20_lip_stretcher")
"""The slider directions that give an estimate scaled up to ``growth_range``'s bottom its mouth back
(:meth:`ShapeModel.estimate`): none of them moves the outline."""


def mouth_measures(motion: np.ndarray) -> np.ndarray:
    """(N, 68, 2) motion in the model frame -> (N, 3) how far it parts the inner lips, widens the mouth and lifts its
    corners towards the nose: the evaluation's first three measures, read in the model frame. The evaluation aligns
    the moved face on its nose and eye corners first, so the two differ where a motion moves those points as well."""
    upper, lower = (list(points) for points in zip(*scheme.INNER_LIP_GAPS))
    corners = list(scheme.MOUTH_CORNERS)
    return np.stack(
        [
            (motion[:, lower, 1] - motion[:, upper, 1]).mean(axis=1),
            motion[:, corners[1], 0] - motion[:, corners[0], 0],
            motion[:, scheme.NOSE_BASE, 1] - motion[:, corners, 1].mean(axis=1),
        ],
        axis=1,
    )


OPPOSING_POINTS = np.array(scheme.LID_GAPS + scheme.INNER_LIP_GAPS)
"""(upper, lower) eyelid and inner-lip points: an upper point never passes below its lower partner."""


def align_shapes(shapes: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of (N, 68, 2) shapes mapped onto ``reference`` (68, 2) by the similarity fitted on the stable points:
    ((N, 68, 2) aligned shapes, (N, 2, 2) linear parts of the maps)."""
    aligned, linears = np.empty_like(shapes, dtype=np.float64), np.empty((len(shapes), 2, 2))
    for index, shape in enumerate(shapes):
        matrix = similarity_transform(shape[STABLE_POINTS], reference[STABLE_POINTS])  # (2, 3)
        aligned[index] = shape @ matrix[:, :2].T + matrix[:, 2]
        linears[index] = matrix[:, :2]
    return aligned, linears


def _keep_lids_and_lips_apart(aligned: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """Limit a motion (model frame, y down) so that no eyelid or inner lip crosses its partner: closing an eye
    that is already closed, or a mouth that is already shut, stops at closed instead of folding the face."""
    moved = aligned + motion
    upper, lower = OPPOSING_POINTS[:, 0], OPPOSING_POINTS[:, 1]
    already = np.maximum(aligned[:, upper, 1] - aligned[:, lower, 1], 0.0)  # a closed eye's landmark noise stays
    crossing = np.maximum(moved[:, upper, 1] - moved[:, lower, 1] - already, 0.0)  # (N, 7) how far the motion crossed
    motion = motion.copy()
    motion[:, upper, 1] -= crossing / 2
    motion[:, lower, 1] += crossing / 2
    return motion


@dataclass
class ShapeModel:
    """Attributes (shapes in the model's normalised frame: outer-eye-corner distance 1):
    mean: (68, 2) mean neutral shape, the alignment reference.
    expression_basis: (k, 68, 2) orthonormal directions of expression displacement.
    estimator: (k, 136) and bias (k,): coefficients = estimator @ (aligned - mean).ravel() + bias.
    directions: named coefficient directions for sliders (one slider unit each).
    presets: mean coefficient change from neutral, per expression label.
    head_turn: (68, 2) unit direction of a head turning left or right, as the fit found it (None in files
        fitted without it). A record, not applied here: the fit removed it from what the basis and the estimator
        were learnt from, so a source photographed from the side drives the target as the same face from the
        front would.
    growth_range: :data:`GROWTH_RANGE`, not stored in the file (``(0, math.inf)``: estimates as before 0.22.0).
    """

    mean: np.ndarray
    expression_basis: np.ndarray
    estimator: np.ndarray
    bias: np.ndarray
    directions: dict[str, np.ndarray] = field(default_factory=dict)
    presets: dict[str, np.ndarray] = field(default_factory=dict)
    head_turn: np.ndarray | None = None
    growth_range: tuple[float, float] = GROWTH_RANGE

    def __post_init__(self) -> None:
        low, high = self.growth_range
        if not 0 <= low < 1 < high:
            raise ValueError(f"growth_range must hold 1 inside it (area ratios, low >= 0), got {self.growth_range}")

    @property
    def num_expression(self) -> int:
        return len(self.expression_basis)

    # ------------------------------------------------------------------ frames
    def align(self, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks in any pixel frame -> ((N, 68, 2) normalised shapes, (N, 2, 2) linear parts of the maps)."""
        return align_shapes(_as_batch(landmarks)[0], self.mean)

    def preset(self, name: str, what: str = "expression") -> np.ndarray:
        """The (k,) preset ``name``; ConfigError naming the presets the model has where it has no such one (``what``
        names the argument that asked)."""
        if name not in self.presets:
            known = ", ".join(sorted(self.presets)) or "none"
            neutral = (
                "; 'neutral' is no preset: to make a face neutral, transfer from a neutral photo of anyone with "
                "replace_target_expression=True (with read_emotion=False the source's landmarks alone are followed)"
                if name == "neutral"
                else ""
            )
            raise ConfigError(f"unknown {what} {name!r}; this checkpoint has: {known}{neutral}")
        return self.presets[name]

    # ------------------------------------------------------------------ coefficients
    def expression(self, landmarks: np.ndarray) -> np.ndarray:
        """Expression coefficients (change from the person's neutral): (k,) for (68, 2), (N, k) for (N, 68, 2), as the
        regressor estimates them. A transfer from one photo takes :meth:`estimate`, which scales down those that
        balloon or pinch the face."""
        _, single = _as_batch(landmarks)
        shapes, _ = self.align(landmarks)
        values = (shapes - self.mean).reshape(len(shapes), 2 * NUM_LANDMARKS) @ self.estimator.T + self.bias
        return values[0] if single else values

    def outline_growth(self, changes: np.ndarray) -> np.ndarray:
        """(N, k) changes -> (N,) how much each grows the face's outline (:data:`OUTLINE`) on the mean face: its area
        moved by the change over its area unmoved (1: no growth)."""
        return _outline_area(self.mean + self._motion(changes)) / _outline_area(self.mean[None])

    def _motion(self, changes: np.ndarray) -> np.ndarray:
        """(N, k) changes -> (N, 68, 2) their landmark motion in the model frame."""
        return np.einsum("nk,kpd->npd", changes, self.expression_basis)

    def mouth_part(self, changes: np.ndarray) -> np.ndarray:
        """(N, k) changes -> (N, k) the change along :data:`MOUTH_KEPT_BY` that parts, widens and lifts the mouth as
        each one does (:func:`mouth_measures`), and moves nothing else of the face (KeyError without those
        directions). Width and lift that disagree take a corner puller and a stretcher of opposite signs."""
        directions = np.stack([self.directions[name] for name in MOUTH_KEPT_BY])  # (3, k)
        system = mouth_measures(self._motion(directions))  # (3 directions, 3 measures)
        return np.linalg.solve(system.T, mouth_measures(self._motion(changes)).T).T @ directions

    def growth_scale(self, changes: np.ndarray) -> np.ndarray:
        """(N, k) changes -> (N,) the factor in (0, 1] that brings each one's :meth:`outline_growth` into
        ``growth_range`` (1 where it is inside). The growth is quadratic in the factor s, 1 + b s + a s^2, so the
        factor is exact: the first s where it meets the bound it passes, written so that it holds at a = 0 too."""
        return self._growth_and_scale(changes)[1]

    def _growth_and_scale(self, changes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, k) changes -> ((N,) :meth:`outline_growth`, (N,) :meth:`growth_scale`)."""
        growth = forward = self.outline_growth(changes)  # (N,): at s = 1
        bound = np.clip(forward, *self.growth_range)
        scale = np.ones(len(changes))
        out = bound != forward
        if not out.any():  # nearly every face: nothing more to compute
            return growth, scale
        forward, backward = forward[out], self.outline_growth(-changes[out])  # at s = 1 and s = -1
        a, b = (forward + backward) / 2 - 1, (forward - backward) / 2
        c = 1 - bound[out]  # a s^2 + b s + c = 0: c < 0 past the top, > 0 below the bottom; crossed in (0, 1)
        discriminant = np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))
        scale[out] = 2 * np.abs(c) / (np.sign(-c) * b + discriminant)  # the crossing nearest 0: a denominator > 0
        return growth, scale

    def estimate(self, landmarks: np.ndarray) -> np.ndarray:
        """:meth:`expression`, scaled down where it would grow or shrink the face's outline past ``growth_range``:
        what a transfer from one photo drives the target by, at strength 1. Such an estimate holds the photo's
        camera (a face seen from below or near the lens, from above or far from it), so it is trusted less: one
        that balloons the face as a whole (taking out only the jaw's widening left faces long and narrow); one that
        pinches it all but its mouth (:meth:`mouth_part`), since a pinched smile scaled as a whole lost the smile
        observers named (docs/design.md, "A face that balloons"). A model without the :data:`MOUTH_KEPT_BY`
        directions (no action units) scales a pinching estimate as a whole too."""
        values = self.expression(landmarks)
        changes = np.atleast_2d(values)
        growth, scale = self._growth_and_scale(changes)  # (N,) each
        estimates = changes * scale[:, None]
        pinched = np.flatnonzero((scale < 1) & (growth < 1))
        if pinched.size and all(name in self.directions for name in MOUTH_KEPT_BY):
            estimates[pinched] += (1 - scale[pinched, None]) * self.mouth_part(changes[pinched])
        return estimates[0] if values.ndim == 1 else estimates

    def change(self, landmarks: np.ndarray, reference_landmarks: np.ndarray) -> np.ndarray:
        """A face's expression change from a neutral ``reference`` of the same person, (k,) or (N, k): the
        difference of their :meth:`projection`, read exactly instead of estimated."""
        return self.projection(landmarks) - self.projection(reference_landmarks)

    def projection(self, landmarks: np.ndarray) -> np.ndarray:
        """Coefficients of the aligned shape's offset from the mean along the expression basis, (k,) or (N, k).
        Not an expression by itself (the offset holds the person's face shape too); the difference of two faces
        of one person is their expression change, read exactly instead of estimated. Only the directions the
        estimator reads are read here too: the ones added for the action-unit sliders alone (estimator rows of 0)
        hold what a real face pair's change has little of besides landmark noise (docs/design.md)."""
        _, single = _as_batch(landmarks)
        shapes, _ = self.align(landmarks)
        observed = np.any(self.estimator != 0, axis=1)  # (k,)
        basis = self.expression_basis.reshape(self.num_expression, -1) * observed[:, None]
        values = (shapes - self.mean).reshape(len(shapes), 2 * NUM_LANDMARKS) @ basis.T
        return values[0] if single else values

    def apply(self, target_landmarks: np.ndarray, change: np.ndarray) -> np.ndarray:
        """Move the target's landmarks by an expression-coefficient change ((k,) or (N, k)), in the target's frame."""
        points, single = _as_batch(target_landmarks)
        change = np.atleast_2d(np.asarray(change, dtype=np.float64))
        single = single and len(change) == 1
        count = max(len(points), len(change))
        aligned, linears = self.align(points)  # once per target given: one target driven by N changes aligns once
        points, aligned = (np.broadcast_to(p, (count, NUM_LANDMARKS, 2)) for p in (points, aligned))
        to_target = np.broadcast_to(np.linalg.inv(linears), (count, 2, 2))
        change = np.broadcast_to(change, (count, self.num_expression))
        motion = self._motion(change)  # (N, 68, 2) in the model frame
        motion = _keep_lids_and_lips_apart(aligned, motion)
        motion = np.einsum("nij,npj->npi", to_target, motion)  # back to the target's pixels
        driven = points + motion
        return driven[0] if single else driven

    def drive(
        self,
        target_landmarks: np.ndarray,
        source_landmarks: np.ndarray,
        reference_landmarks: np.ndarray | None = None,
        strength: float = 1.0,
        offset: np.ndarray | None = None,
        replace_target_expression: bool = False,
        source_expression: np.ndarray | None = None,
    ) -> np.ndarray:
        """Driving landmarks: the target's own shape and pose, moved by the source's expression change.

        ``target + B change * strength + B offset``. The change is, in order:
        - with ``reference_landmarks`` (a neutral face of the source person: a video's reference frame, a neutral
          photo): the source's own change from it, projected on the basis (``projection(source) -
          projection(reference)``). Both are the same person, so no identity needs removing, and a projection
          does not shrink motion towards neutral as the regressor does (docs/design.md, "Motion");
        - with ``replace_target_expression``: ``e(source) - e(target)``, the target's own estimated expression
          removed first (for a smiling target driven by a neutral source);
        - else ``e(source)``: the source's estimated change from its own neutral (:meth:`estimate`), added to the
          target's face as it is (what measures best on unseen people from one photo).
        ``source_expression``: the change as the caller read it otherwise ((k,) or (N, k); an emotion reading,
        ``motion.emotion``), in place of the source's change of whichever case (the target's own expression is
        still taken away with ``replace_target_expression``). Strength 0 without an offset returns
        ``target_landmarks`` exactly.
        """
        if reference_landmarks is not None and replace_target_expression:
            raise ConfigError(
                "give either a neutral face of the source (reference_landmarks, a pipeline's source_reference: "
                "the change from it) or replace_target_expression (the change from the target's own "
                "expression), not both"
            )
        if strength == 0 and offset is None:
            return np.array(target_landmarks, dtype=np.float64, copy=True)
        if source_expression is not None:
            change = source_expression
        elif reference_landmarks is not None:
            change = self.change(source_landmarks, reference_landmarks)
        else:
            change = self.estimate(source_landmarks)
        if replace_target_expression:
            change = change - self.expression(target_landmarks)
        change = change * float(strength)
        if offset is not None:
            change = change + np.asarray(offset, dtype=np.float64)
        return self.apply(target_landmarks, change)

    def offset(self, sliders: dict[str, float] | None) -> np.ndarray | None:
        """Sum of named directions times their slider values; None when no slider is set."""
        if not sliders or not any(sliders.values()):
            return None
        unknown = sorted(set(sliders) - set(self.directions))
        if unknown:
            raise ValueError(f"unknown expression slider(s) {unknown}; this model has {sorted(self.directions)}")
        return sum(float(value) * self.directions[name] for name, value in sliders.items())

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        tensors = {
            "mean": self.mean,
            "expression_basis": self.expression_basis,
            "estimator": self.estimator,
            "bias": self.bias,
        }
        tensors.update({f"direction.{k}": v for k, v in self.directions.items()})
        tensors.update({f"preset.{k}": v for k, v in self.presets.items()})
        if self.head_turn is not None:
            tensors["head_turn"] = self.head_turn
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(path))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ShapeModel":
        """Read a shape model; a missing, corrupt or inconsistent file raises CheckpointError naming it."""
        try:
            raw = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise CheckpointError(
                f"{path} is not a readable shape model (missing, truncated or corrupt?): {error}"
            ) from None
        not_float = sorted(k for k, v in raw.items() if v.dtype.kind != "f")
        if not_float:
            raise CheckpointError(f"{path}: tensors {not_float} are not floating point (was the file cast or damaged?)")
        with np.errstate(over="ignore", invalid="ignore"):
            tensors = {k: v.astype(np.float64) for k, v in raw.items()}
        return cls._from_tensors(path, tensors)

    @classmethod
    def _from_tensors(cls, path, tensors: dict[str, np.ndarray]) -> "ShapeModel":
        missing = [k for k in ("mean", "expression_basis", "estimator", "bias") if k not in tensors]
        if missing:
            raise CheckpointError(f"{path} lacks the tensors {missing}")
        bad = [k for k, v in tensors.items() if not np.isfinite(v).all()]
        if bad:
            raise CheckpointError(f"{path} has non-finite values in {bad}")
        k = len(tensors["expression_basis"])
        expected = {
            "mean": (NUM_LANDMARKS, 2),
            "expression_basis": (k, NUM_LANDMARKS, 2),
            "estimator": (k, 2 * NUM_LANDMARKS),
            "bias": (k,),
        }
        expected.update({name: (k,) for name in tensors if name.startswith(("direction.", "preset."))})
        expected.update({"head_turn": (NUM_LANDMARKS, 2)} if "head_turn" in tensors else {})
        wrong = {name: tensors[name].shape for name, shape in expected.items() if tensors[name].shape != shape}
        unknown = sorted(set(tensors) - set(expected))
        if wrong or unknown or k == 0:
            raise CheckpointError(f"{path}: tensors of wrong shape {wrong} or unknown {unknown} (expected {expected})")
        return cls(
            mean=tensors["mean"],
            expression_basis=tensors["expression_basis"],
            estimator=tensors["estimator"],
            bias=tensors["bias"],
            directions={n.split(".", 1)[1]: v for n, v in tensors.items() if n.startswith("direction.")},
            presets={n.split(".", 1)[1]: v for n, v in tensors.items() if n.startswith("preset.")},
            head_turn=tensors.get("head_turn"),
        )
