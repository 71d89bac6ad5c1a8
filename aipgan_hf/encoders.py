"""The two AIP-GAN encoders, bottom-up: a shared backbone shape, the expression encoder (driving landmarks in),
the identity encoder (target photo in, intrinsic image and landmarks out).

Shapes use R for the crop side and C_i for the width of level i (level i is at R / 2**(i+1)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.utils import BaseOutput
from torch import nn

from .configuration import AIPGANConfig
from .landmarks import LANDMARK_GROUPS, landmark_maps
from .layers import ChannelAttention, ConvNormAct, DownBlock, ResidualBlock, SpatialAttention, UpBlock
from .motion import identity_grid, warp
from .motion.flow import resize_flow

HEATMAP_LEVEL = 1
"""Encoder level at R/4: landmark heatmaps and the spatial attention live there."""

DISPLACEMENT_SCALE = 8.0
"""Flow displacements enter the expression encoder in units of 8 crop pixels (order 1 for real expressions)."""


@dataclass
class EncoderOutput(BaseOutput):
    """Multi-scale features of one encoder.

    Attributes:
        features: one (B, C_i, R/2**(i+1), R/2**(i+1)) tensor per level, finest first, attention applied.
        attention: (B, 1, R/4, R/4) spatial attention map in [0, 1].
        landmark_heatmaps: (B, 68, R/4, R/4) heatmap logits of the photo's landmarks (identity encoder, when asked).
        intrinsic_image: (B, 3, R, R) in [-1, 1] (identity encoder, when asked).
    """

    features: list[torch.Tensor]
    attention: torch.Tensor
    landmark_heatmaps: torch.Tensor | None = None
    intrinsic_image: torch.Tensor | None = None


class Backbone(nn.Module):
    """Stem and strided levels with channel-wise attention per level and a spatial attention at R/4 that is
    applied (resampled) to the finer level too, so every fused scale carries it."""

    def __init__(self, config: AIPGANConfig, in_channels: int, half_resolution_input: bool = False):
        super().__init__()
        widths = config.widths
        self.stem = ConvNormAct(in_channels, widths[0])
        self.levels = nn.ModuleList(DownBlock(w_in, w_out) for w_in, w_out in zip([widths[0]] + widths[:-1], widths))
        if half_resolution_input:  # the input is already at R/2: the first level keeps its resolution
            self.levels[0] = ResidualBlock(widths[0], widths[0])
        self.channel_attention = nn.ModuleList(ChannelAttention(w) for w in widths)
        self.spatial_attention = SpatialAttention(widths[HEATMAP_LEVEL])

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Args: x (B, in_channels, R, R), or R/2 with ``half_resolution_input``. Returns per-level features
        (finest first) and the (B, 1, R/4, R/4) attention."""
        x = self.stem(x)  # (B, C_0, R, R) (or R/2)
        features, attention = [], None
        for index, (level, channel_attention) in enumerate(zip(self.levels, self.channel_attention)):
            x = channel_attention(level(x))  # (B, C_i, R/2**(i+1), ...)
            if index == HEATMAP_LEVEL:
                x, attention = self.spatial_attention(x)  # attention: (B, 1, R/4, R/4)
            features.append(x)
        features[0] = features[0] * F.interpolate(
            attention, size=features[0].shape[-2:], mode="bilinear", align_corners=False
        )
        return features, attention


class ExpressionEncoder(nn.Module):
    """Encodes the expression to produce from the *driving landmarks* only (no source pixels: identity cannot
    leak through it). Input at R/2: landmark-group maps of the driving and of the target landmarks, and the
    flow's displacement field (motion made explicit). Its spatial attention is supervised by a landmark mask
    in training (losses.attention_supervision_loss)."""

    def __init__(self, config: AIPGANConfig):
        super().__init__()
        self.sigma = config.landmark_map_sigma
        self.backbone = Backbone(config, in_channels=2 * len(LANDMARK_GROUPS) + 2, half_resolution_input=True)

    def motion_input(
        self, driving_landmarks: torch.Tensor, target_landmarks: torch.Tensor, flow: torch.Tensor
    ) -> torch.Tensor:
        """(B, 2G + 2, R/2, R/2): driving maps, target maps, displacement (x, y) of the flow in 8-pixel units."""
        resolution = flow.shape[1]
        size = resolution // 2
        driving = landmark_maps(driving_landmarks, size, resolution, self.sigma)  # (B, G, R/2, R/2)
        target = landmark_maps(target_landmarks, size, resolution, self.sigma)
        flow = resize_flow(flow, size)  # (B, R/2, R/2, 2)
        displacement = (flow - identity_grid(flow.shape[0], size, flow.device, flow.dtype)) * (
            resolution / 2 / DISPLACEMENT_SCALE
        )
        return torch.cat([driving, target, displacement.permute(0, 3, 1, 2)], dim=1)

    def forward(
        self, driving_landmarks: torch.Tensor, target_landmarks: torch.Tensor, flow: torch.Tensor
    ) -> EncoderOutput:
        """Args: landmarks (B, 68, 2) crop px; flow (B, R, R, 2) from motion.landmark_flow."""
        motion = self.motion_input(driving_landmarks, target_landmarks, flow.float())  # maps in float32
        features, attention = self.backbone(motion.to(next(self.backbone.parameters()).dtype))
        return EncoderOutput(features=features, attention=attention)


class IntrinsicHead(nn.Module):
    """Light upsampling head rendering the intrinsic (expression-free shape + appearance) image."""

    def __init__(self, config: AIPGANConfig):
        super().__init__()
        widths, width = config.widths, config.intrinsic_channels
        self.inputs = nn.ModuleList(nn.Conv2d(w, width, 1) for w in widths)
        self.ups = nn.ModuleList(UpBlock(width, width) for _ in widths)
        self.out = nn.Conv2d(width, config.in_channels, 3, padding=1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.inputs[-1](features[-1])  # (B, w, R/2**L, ...)
        for index in range(len(features) - 1, -1, -1):
            x = self.ups[index](x)  # doubles H, W
            if index > 0:
                x = x + self.inputs[index - 1](features[index - 1])
        return torch.tanh(self.out(x))  # (B, 3, R, R)


class LandmarkHead(nn.Module):
    """68 landmark heatmaps at R/4 from the R/4 and R/8 features of a photo. In training it learns the targets'
    landmarks and then checks the outputs' (expression consistency: the output must show the driving shape)."""

    def __init__(self, config: AIPGANConfig):
        super().__init__()
        widths = config.widths
        self.layers = nn.Sequential(
            ConvNormAct(widths[HEATMAP_LEVEL] + widths[HEATMAP_LEVEL + 1], widths[HEATMAP_LEVEL] * 2),
            nn.Conv2d(widths[HEATMAP_LEVEL] * 2, config.num_landmarks, 1),
        )

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        coarse = F.interpolate(features[HEATMAP_LEVEL + 1], scale_factor=2.0, mode="nearest")  # (B, C_2, R/4, R/4)
        return self.layers(torch.cat([features[HEATMAP_LEVEL], coarse], dim=1))  # (B, 68, R/4, R/4)


class IdentityEncoder(nn.Module):
    """Encodes the target photo: multi-scale features with self-supervised spatial and channel attention (no
    attention target; reconstruction shapes it), its intrinsic shape-and-appearance image, and its landmarks."""

    def __init__(self, config: AIPGANConfig):
        super().__init__()
        self.backbone = Backbone(config, in_channels=config.in_channels)
        self.intrinsic_head = IntrinsicHead(config)
        self.landmark_head = LandmarkHead(config)

    def forward(
        self, image: torch.Tensor, return_intrinsic: bool = True, return_landmarks: bool = False
    ) -> EncoderOutput:
        """Args: image (B, 3, R, R) in [-1, 1]."""
        features, attention = self.backbone(image)
        return EncoderOutput(
            features=features,
            attention=attention,
            landmark_heatmaps=self.landmark_head(features) if return_landmarks else None,
            intrinsic_image=self.intrinsic_head(features) if return_intrinsic else None,
        )


def warp_features(features: list[torch.Tensor], flow: torch.Tensor) -> list[torch.Tensor]:
    """Warp every level by the flow (resized to each level's resolution)."""
    return [warp(level, flow) for level in features]
