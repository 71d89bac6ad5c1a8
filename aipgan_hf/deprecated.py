"""The pipeline's method names before 0.8.0, kept for one version: each warns and calls the new API.

Delete this module (and :class:`DeprecatedPipelineMethods` from the pipeline's bases) in 0.10.0; CHANGELOG.md lists
the replacements.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .compositing import DrivenBatch, DrivingFaces, MouthFill, TransferResult, check_mouth, compose, source_reader
from .driving import PreparedTarget, check_range, drive_crops, landmark_tensor
from .encoders import EncoderOutput
from .errors import ConfigError
from .modeling import GeneratorOutput
from .motion import MAX_EXPRESSION_STRENGTH


@dataclass
class LegacyGeneratorOutput(GeneratorOutput):
    """What ``decode_driven`` and ``transfer_aligned`` returned: the network's output with the pipeline's mouth
    fill in ``image`` and its state beside it (0.8.0 keeps them apart: :class:`~aipgan_hf.compositing.DrivenBatch`)."""

    driving_landmarks: torch.Tensor | None = None
    flow: torch.Tensor | None = None
    mouth_fill: MouthFill | None = None
    painted: torch.Tensor | None = None


def _legacy(output: DrivenBatch) -> LegacyGeneratorOutput:
    network = output.network
    return LegacyGeneratorOutput(
        image=output.image,
        mask=network.mask,
        warped_target=network.warped_target,
        intrinsic_image=network.intrinsic_image,
        expression_attention=network.expression_attention,
        identity_attention=network.identity_attention,
        landmark_heatmaps=network.landmark_heatmaps,
        colour=network.colour,
        driving_landmarks=output.driving_landmarks,
        flow=output.flow,
        mouth_fill=output.mouth,
        painted=network.image,
    )


def _warn(old: str, new: str) -> None:
    warnings.warn(
        f"AIPGANPipeline.{old} is deprecated and will be removed in 0.10.0; use {new}", DeprecationWarning, stacklevel=3
    )


class DeprecatedPipelineMethods:
    """Old entry points of :class:`~aipgan_hf.pipeline.AIPGANPipeline`, each a thin wrapper that warns."""

    def synthesize(
        self,
        target: Any,
        expression: str,
        strength: float = 1.0,
        paste_back: bool = True,
        target_face_index: int | None = None,
        expression_offsets: dict[str, float] | None = None,
        return_intrinsic: bool = False,
        mouth: str = "source",
    ) -> TransferResult:
        """Deprecated: ``pipe(target, expression=..., expression_strength=...)``."""
        _warn("synthesize", "pipe(target, expression=..., expression_strength=...)")
        return self(
            target,
            expression=expression,
            expression_strength=strength,
            paste_back=paste_back,
            target_face_index=target_face_index,
            expression_offsets=expression_offsets,
            return_intrinsic=return_intrinsic,
            mouth=mouth,
        )

    def prepare_target(
        self, target: Any, face_index: int | None = None, return_intrinsic: bool = False, photo_texture: bool = True
    ) -> PreparedTarget:
        """Deprecated: :meth:`prepare`."""
        _warn("prepare_target", "pipe.prepare(target)")
        return self.prepare(target, face_index, return_intrinsic=return_intrinsic, photo_texture=photo_texture)

    def render_batch(
        self, prepared: PreparedTarget, driving_landmarks: np.ndarray, paste_back: bool = True
    ) -> list[np.ndarray]:
        """Deprecated: ``pipe.render(prepared, (N, 68, 2) landmarks)``, whose results' images these are."""
        _warn("render_batch", "pipe.render(prepared, driving_landmarks) with (N, 68, 2) landmarks")
        # it took no mouth from any other face: "own"
        results = self.render(prepared, np.asarray(driving_landmarks), paste_back, "own")
        return [np.asarray(result.image) for result in results]

    def drive_batch(
        self,
        prepared: PreparedTarget,
        driving_landmarks: np.ndarray,
        sources: DrivingFaces | None = None,
        mouth: str = "source",
    ) -> DrivenBatch:
        """Deprecated: the network half of ``pipe.render(prepared, (N, 68, 2) landmarks, sources=...)``."""
        _warn("drive_batch", "pipe.render(prepared, driving_landmarks, sources=...)")
        count = len(driving_landmarks)
        target_landmarks = torch.as_tensor(prepared.landmarks, dtype=torch.float32)[None].expand(count, -1, -1)
        found = None if sources is None else torch.as_tensor(sources.found)
        return drive_crops(
            self.generator,
            prepared.tensor.expand(count, -1, -1, -1),
            target_landmarks,
            landmark_tensor(np.asarray(driving_landmarks), count),
            identity=prepared.identity_for(count),
            mouth=check_mouth(mouth),
            source=None if sources is None else sources.crops,
            source_found=found,
            source_landmarks=None if sources is None else landmark_tensor(sources.landmarks, count),
            lines=self.lines,
        )

    def compose_frame(
        self,
        prepared: PreparedTarget,
        output: DrivenBatch,
        index: int,
        paste_back: bool = True,
        sources: DrivingFaces | None = None,
    ) -> np.ndarray:
        """Deprecated: the picture half of ``pipe.render``; frame ``index`` of a :meth:`drive_batch` output."""
        _warn("compose_frame", "pipe.render(prepared, driving_landmarks, sources=...)")
        reader = None
        if paste_back and sources is not None and sources.found[index]:
            reader = source_reader(
                output, index, sources.frames[index], sources.matrices[index], prepared.photo, prepared.face
            )
        warper = prepared.photo_warper(self.resolution) if paste_back else None
        return compose(output, index, prepared.face, prepared.photo, warper, prepared.photo_texture, reader)[0]

    def decode_driven(
        self,
        target: torch.Tensor,
        target_landmarks: torch.Tensor,
        driving_landmarks: torch.Tensor,
        source: torch.Tensor | None = None,
        identity_mix: float = 0.0,
        identity: EncoderOutput | None = None,
        return_intrinsic: bool = True,
        mouth: str = "own",
        source_landmarks: torch.Tensor | None = None,
        source_found: torch.Tensor | None = None,
    ) -> LegacyGeneratorOutput:
        """Deprecated: :func:`aipgan_hf.driving.drive_crops`."""
        _warn("decode_driven", "aipgan_hf.driving.drive_crops(pipe.generator, ...)")
        return _legacy(
            drive_crops(
                self.generator,
                target,
                target_landmarks,
                driving_landmarks,
                source=source,
                source_landmarks=source_landmarks,
                source_found=source_found,
                identity=identity,
                identity_mix=identity_mix,
                return_intrinsic=return_intrinsic,
                mouth=mouth,
                lines=self.lines,
            )
        )

    def transfer_aligned(
        self,
        source: torch.Tensor,
        target: torch.Tensor,
        source_landmarks: Any,
        target_landmarks: Any,
        expression_strength: float = 1.0,
        identity_mix: float = 0.0,
        driving_landmarks: Any = None,
        expression_offsets: dict[str, float] | None = None,
        replace_target_expression: bool = False,
        return_intrinsic: bool = True,
        reference_landmarks: Any = None,
        mouth: str = "source",
    ) -> LegacyGeneratorOutput:
        """Deprecated: ``pipe.shape_model.drive`` then :func:`aipgan_hf.driving.drive_crops`."""
        _warn("transfer_aligned", "pipe.shape_model.drive(...) and aipgan_hf.driving.drive_crops(pipe.generator, ...)")
        expression_strength = check_range("expression_strength", expression_strength, 0.0, MAX_EXPRESSION_STRENGTH)
        identity_mix = check_range("identity_mix", identity_mix, 0.0, 1.0)
        batch = target.shape[0]
        mouth = check_mouth(mouth)
        target_landmarks = landmark_tensor(target_landmarks, batch)
        source_landmarks = None if source_landmarks is None else landmark_tensor(source_landmarks, batch)
        if driving_landmarks is None and source_landmarks is None:
            raise ConfigError("give the source's landmarks (or the driving landmarks) to transfer between crops")
        if driving_landmarks is None:
            driving_landmarks = self.shape_model.drive(
                target_landmarks.numpy(),
                source_landmarks.numpy(),
                strength=expression_strength,
                offset=self.expression_offset(expression_offsets),
                replace_target_expression=replace_target_expression,
                reference_landmarks=None
                if reference_landmarks is None
                else landmark_tensor(reference_landmarks, batch).numpy(),
            )
        return _legacy(
            drive_crops(
                self.generator,
                target,
                target_landmarks,
                landmark_tensor(driving_landmarks, batch),
                source=source,
                source_landmarks=source_landmarks,
                identity_mix=identity_mix,
                return_intrinsic=return_intrinsic,
                mouth=mouth,
                lines=self.lines,
            )
        )
