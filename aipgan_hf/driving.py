"""The network step on aligned crops: landmark flow, generator, then the opened mouth's inside.

    (target crops, their landmarks, driving landmarks) --motion.landmark_flow--> flow
    (target crops, driving landmarks, flow) --AIPGANGenerator--> GeneratorOutput
    (landmarks, the mouth's photos) --compositing.plan_mouth--> MouthFill --> DrivenBatch

It is what :class:`~aipgan_hf.pipeline.AIPGANPipeline` runs between faces in and paste-back; evaluation and
training validation call :func:`drive_crops` on stored crops and landmarks, with no photo. A target driven frame
after frame is encoded once (:class:`PreparedTarget`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from .compositing import DEFAULT_MOUTH, DrivenBatch, MouthFill, PhotoWarper, plan_mouth
from .encoders import EncoderOutput
from .errors import ConfigError
from .faces import AlignedFace, Photo
from .modeling import AIPGANGenerator, GeneratorOutput
from .motion import ExpressionLines, keep_eyeballs, keep_inside, landmark_flow
from .motion.lines import EXACT, EachFace, LineStrength


@dataclass
class PreparedTarget:
    """A target photo decoded, aligned and encoded once (for driving it frame after frame).

    Attributes:
        photo: the decoded photo (its full resolution is decoded once, at the first paste-back).
        face: its alignment. tensor: (1, 3, R, R) in [-1, 1].
        landmarks: (68, 2) float64 crop pixels. identity: the identity encoder's output for it.
        warper: the photo's paste-back, made at the first paste-back, then reused.
        photo_texture: paste-back keeps the photo's fine texture under the repainted face (off: a little faster,
            the repainted face as soft as the network's paint).
    """

    photo: Photo
    face: AlignedFace
    tensor: torch.Tensor
    landmarks: np.ndarray
    identity: EncoderOutput
    warper: PhotoWarper | None = field(default=None, repr=False)
    photo_texture: bool = True

    def photo_warper(self, resolution: int) -> PhotoWarper:
        """The photo's paste-back for ``resolution``-px crops, made at the first call, then reused."""
        if self.warper is None:
            self.warper = PhotoWarper(self.photo.full_resolution(), self.face.matrix, resolution)
        return self.warper

    def identity_for(self, count: int) -> EncoderOutput:
        """The identity encoder's output repeated for a batch of ``count`` frames (views, no copies)."""
        identity = self.identity
        intrinsic = identity.intrinsic_image
        repeat = lambda tensor: tensor.expand(count, *tensor.shape[1:])  # noqa: E731
        return EncoderOutput(
            features=[repeat(f) for f in identity.features],
            attention=repeat(identity.attention),
            intrinsic_image=None if intrinsic is None else repeat(intrinsic),
        )


def check_range(name: str, value: float, low: float, high: float) -> float:
    """``value`` as a float if it lies in [low, high]; else ConfigError naming it."""
    try:
        if isinstance(value, (str, bytes)):  # float("0.5") would pass
            raise TypeError
        value = float(value)
    except (TypeError, ValueError):  # None, a list, an array of several values
        raise ConfigError(f"{name} must be one number between {low} and {high}, got {value!r}") from None
    if not low <= value <= high or np.isnan(value):
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def landmark_tensor(landmarks: Any, batch: int) -> torch.Tensor:
    """(batch, 68, 2) float32 landmarks as a tensor; ConfigError for another shape or a value that is not finite."""
    values = torch.as_tensor(_numbers(landmarks))
    if values.shape != (batch, 68, 2) or batch == 0:
        raise ConfigError(f"landmarks must be ({batch or 'N'}, 68, 2) crop pixels, got {tuple(values.shape)}")
    if not torch.isfinite(values).all():
        raise ConfigError("landmarks must be finite crop pixels; some are NaN or infinite")
    return values


def landmark_rows(landmarks: Any) -> torch.Tensor:
    """(N, 68, 2) float32 landmarks from one face's (68, 2) or a batch's (N, 68, 2), checked as :func:`landmark_tensor`
    checks them."""
    values = _numbers(landmarks)
    rows = values[None] if values.ndim == 2 else values
    return landmark_tensor(rows, rows.shape[0] if rows.ndim == 3 else 1)


def _numbers(landmarks: Any) -> np.ndarray:
    """Landmarks as a float32 array; ConfigError for what is not numbers."""
    try:
        return np.asarray(landmarks, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"landmarks must be numbers, (68, 2) crop pixels: {error}") from None


def _driving_flow(target_landmarks: torch.Tensor, driving_landmarks: torch.Tensor, resolution: int) -> torch.Tensor:
    """(B, R, R, 2) flow sending the targets' landmarks to the driving ones; a closing lid covers the eyeball."""
    return keep_eyeballs(
        landmark_flow(target_landmarks, driving_landmarks, resolution), target_landmarks, driving_landmarks, resolution
    )


def _run_generator(
    generator: AIPGANGenerator,
    target: torch.Tensor,
    target_landmarks: torch.Tensor,
    driving_landmarks: torch.Tensor,
    flow: torch.Tensor,
    mixed: torch.Tensor | None,
    identity: EncoderOutput | None,
    identity_mix: float,
    return_intrinsic: bool,
) -> GeneratorOutput:
    """The generator on the batch: in full, or from a cached identity (video driving) when none is mixed in. Its
    images go in in its weights' dtype (``from_pretrained(torch_dtype=)``; landmarks and flow stay float32, as its
    encoders and warps take them); what it returns is float32, as compositing is."""
    dtype = next(generator.parameters()).dtype
    target = target.to(dtype)
    if identity is None or identity_mix != 0.0:
        output = generator(
            target,
            target_landmarks,
            driving_landmarks,
            flow,
            source=None if mixed is None else mixed.to(dtype),
            identity_mix=identity_mix,
            return_intrinsic=return_intrinsic,
        )
    else:
        expression = generator.encode_expression(driving_landmarks, target_landmarks, flow)
        output = generator.decode(identity, expression, target, flow)
    if dtype == torch.float32:
        return output
    tensors = {f.name: getattr(output, f.name) for f in fields(output)}
    return replace(output, **{name: value.float() for name, value in tensors.items() if torch.is_tensor(value)})


def _fill_mouth(
    network: GeneratorOutput,
    target: torch.Tensor,
    target_landmarks: torch.Tensor,
    driving_landmarks: torch.Tensor,
    resolution: int,
    mouth: str,
    source: torch.Tensor | None,
    source_landmarks: torch.Tensor | None,
    source_found: torch.Tensor | None,
) -> tuple[MouthFill, torch.Tensor]:
    """Where the driving mouth opens, its inside from the photo ``mouth`` names: the plan and the filled images."""
    fill = plan_mouth(
        target_landmarks,
        driving_landmarks,
        resolution,
        mouth=mouth,
        target=target,
        source=source,
        source_landmarks=None if source is None else source_landmarks,
        source_found=source_found,
    )
    return fill, fill.apply(network.image, network.warped_target, source)


def _keep_still(
    filled: torch.Tensor, target: torch.Tensor, target_landmarks: torch.Tensor, driving_landmarks: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows driven nowhere are their target as it is; returns the images and which rows those are ((B,) bool)."""
    still = (driving_landmarks == target_landmarks).flatten(1).all(1)
    return torch.where(still[:, None, None, None], target.to(filled.dtype), filled), still


@torch.inference_mode()
def drive_crops(
    generator: AIPGANGenerator,
    target: torch.Tensor,
    target_landmarks: torch.Tensor,
    driving_landmarks: torch.Tensor,
    source: torch.Tensor | None = None,
    source_landmarks: torch.Tensor | None = None,
    source_found: torch.Tensor | None = None,
    identity: EncoderOutput | None = None,
    identity_mix: float = 0.0,
    return_intrinsic: bool = True,
    mouth: str = DEFAULT_MOUTH,
    identity_source: torch.Tensor | None = None,
    lines: ExpressionLines | None = None,
    line_strength: LineStrength | EachFace | float = EXACT,
) -> DrivenBatch:
    """Drive aligned targets to new landmarks and fill their opened mouths.

    Args:
        generator: the network (its device and dtype are used).
        target: (B, 3, R, R) aligned targets in [-1, 1]; target_landmarks, driving_landmarks: (B, 68, 2) crop px.
        source: (B, 3, R, R) crops whose mouths may lend their inside (``mouth`` "source" or "exemplar": the
            caller hands in the face it names; read at ``source_landmarks`` (B, 68, 2); ``source_found`` (B,)
            bool: which show a face) and, unless ``identity_source`` is given, whose identity features are mixed
            in with ``identity_mix`` > 0.
        identity: a cached ``generator.encode_identity(target)`` (video driving); used when ``identity_mix`` is 0.
        return_intrinsic: also render the target's intrinsic face (without ``identity``).
        mouth: one of :data:`~aipgan_hf.compositing.MOUTH_SOURCES`.
        identity_source: (B, 3, R, R) crops for ``identity_mix`` when they are not ``source``.
        lines: the expression lines to draw where the motion makes them (None: none), at ``line_strength``
            (:class:`~aipgan_hf.motion.lines.LineStrength`: a one-photo estimate's is floored and halved).
    """
    parameter = next(generator.parameters())
    resolution = int(generator.config.resolution)
    target = target.to(parameter.device, torch.float32)  # compositing in float32, the network in its own dtype
    target_landmarks, driving_landmarks = target_landmarks.to(parameter.device), driving_landmarks.to(parameter.device)
    driving_landmarks = keep_inside(target_landmarks, driving_landmarks, resolution)
    source = None if source is None else source.to(parameter.device, torch.float32)
    mixed = source if identity_source is None else identity_source.to(parameter.device, torch.float32)
    flow = _driving_flow(target_landmarks, driving_landmarks, resolution)  # (B, R, R, 2)
    network = _run_generator(
        generator, target, target_landmarks, driving_landmarks, flow, mixed, identity, identity_mix, return_intrinsic
    )
    fill, filled = _fill_mouth(
        network, target, target_landmarks, driving_landmarks, resolution, mouth, source, source_landmarks, source_found
    )
    filled, still = _keep_still(filled, target, target_landmarks, driving_landmarks)
    shade = (
        None if lines is None else lines.shade(target_landmarks, driving_landmarks, line_strength, flow)
    )  # (B, 3, R, R) or None
    image = filled if shade is None else ((filled + 1.0) * shade.to(filled.dtype) - 1.0).clamp(-1.0, 1.0)
    return DrivenBatch(
        network=network,
        image=image,
        driving_landmarks=driving_landmarks,
        flow=flow,
        mouth=fill,
        filled=filled,
        shade=shade,
        still=still,
    )
