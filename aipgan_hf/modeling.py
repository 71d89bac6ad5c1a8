"""AIP-GAN networks, bottom-up: encoders, decoder, then the Hub-facing generator; the discriminator last.

Shapes use R for the crop side and C_i for the width of encoder level i (level i is at R / 2**(i+1)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from .configuration import AIPGANConfig
from .landmarks import heatmaps_to_landmarks
from .layers import (
    ChannelAttention,
    ConvNormAct,
    CrossEncoderBilinearPooling,
    DownBlock,
    ResidualBlock,
    SpatialAttention,
    UpBlock,
)

# Encoder level whose resolution is R/4: landmark heatmaps and the supervised attention live there.
HEATMAP_LEVEL = 1


@dataclass
class EncoderOutput(BaseOutput):
    """Multi-scale features of one encoder.

    Attributes:
        features: one (B, C_i, R/2**(i+1), R/2**(i+1)) tensor per level, finest first, attention applied.
        attention: (B, 1, R/4, R/4) spatial attention map in [0, 1].
        landmark_heatmaps: (B, 68, R/4, R/4) heatmap logits (expression encoder only).
        intrinsic_image: (B, 3, R, R) in [-1, 1] (identity encoder only, when asked for).
    """

    features: list[torch.Tensor]
    attention: torch.Tensor
    landmark_heatmaps: torch.Tensor | None = None
    intrinsic_image: torch.Tensor | None = None


@dataclass
class GeneratorOutput(BaseOutput):
    """What the generator returns.

    Attributes:
        image: (B, 3, R, R) in [-1, 1]: the target with the source's expression.
        landmark_heatmaps: (B, 68, R/4, R/4) logits of the source's landmarks (expression encoder).
        intrinsic_image: (B, 3, R, R) in [-1, 1]: the target's expression-free face (identity encoder).
        expression_attention: (B, 1, R/4, R/4) the expression encoder's spatial attention on the source.
        identity_attention: (B, 1, R/4, R/4) the identity encoder's spatial attention on the target.
        mask: (B, 1, R, R) in [0, 1]: where the decoder repainted the target.
    """

    image: torch.Tensor
    landmark_heatmaps: torch.Tensor
    intrinsic_image: torch.Tensor | None
    expression_attention: torch.Tensor
    identity_attention: torch.Tensor
    mask: torch.Tensor


class Backbone(nn.Module):
    """Stem and strided levels shared in shape (not weights) by both encoders, with channel-wise attention
    per level and a spatial attention at the R/4 level that is applied (downsampled) to every level."""

    def __init__(self, config: AIPGANConfig):
        super().__init__()
        widths = config.widths
        self.stem = ConvNormAct(config.in_channels, widths[0])
        self.levels = nn.ModuleList(DownBlock(w_in, w_out) for w_in, w_out in zip([widths[0]] + widths[:-1], widths))
        self.channel_attention = nn.ModuleList(ChannelAttention(w) for w in widths)
        self.spatial_attention = SpatialAttention(widths[HEATMAP_LEVEL])

    def forward(self, image: torch.Tensor, attention_hook=None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Args: image (B, 3, R, R) in [-1, 1]; ``attention_hook(features_at_R/4)`` may return extra
        logits folded into the attention (the expression encoder passes its landmark evidence).

        Returns: per-level features (finest first) and the (B, 1, R/4, R/4) attention map."""
        x = self.stem(image)  # (B, C_0, R, R)
        features, attention = [], None
        for index, (level, channel_attention) in enumerate(zip(self.levels, self.channel_attention)):
            x = channel_attention(level(x))  # (B, C_i, R/2**(i+1), ...)
            if index == HEATMAP_LEVEL:
                x, attention = self.spatial_attention(x)  # attention: (B, 1, R/4, R/4)
                if attention_hook is not None:
                    x = x + attention_hook(x)
            features.append(x)
        # Apply the R/4 attention to the finer level too, so fused skip features carry it at every scale.
        features[0] = features[0] * F.interpolate(attention, size=features[0].shape[-2:], mode="bilinear", align_corners=False)
        return features, attention


class ExpressionEncoder(nn.Module):
    """Encodes the source's expression: predicts 68 landmark heatmaps at R/4, and its spatial attention
    is supervised by those landmarks (the training loss compares it with a landmark mask), so the
    features that reach the decoder come from expression-bearing regions (brows, eyes, mouth, jaw)."""

    def __init__(self, config: AIPGANConfig):
        super().__init__()
        widths = config.widths
        self.backbone = Backbone(config)
        self.landmark_head = nn.Sequential(
            ConvNormAct(widths[HEATMAP_LEVEL] + widths[HEATMAP_LEVEL + 1], widths[HEATMAP_LEVEL] * 2),
            nn.Conv2d(widths[HEATMAP_LEVEL] * 2, config.num_landmarks, 1),
        )

    def forward(self, image: torch.Tensor) -> EncoderOutput:
        """Args: image (B, 3, R, R) in [-1, 1]. Returns EncoderOutput with landmark_heatmaps (B, 68, R/4, R/4)."""
        features, attention = self.backbone(image)
        coarse = F.interpolate(features[HEATMAP_LEVEL + 1], scale_factor=2.0, mode="nearest")  # (B, C_2, R/4, R/4)
        heatmaps = self.landmark_head(torch.cat([features[HEATMAP_LEVEL], coarse], dim=1))  # (B, 68, R/4, R/4)
        return EncoderOutput(features=features, attention=attention, landmark_heatmaps=heatmaps)


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


class IdentityEncoder(nn.Module):
    """Encodes the target's identity: infers its intrinsic shape-and-appearance image (the face without
    expression) through a light head, with self-supervised spatial and channel-wise attention (no
    attention target; the reconstruction and intrinsic-image losses shape it)."""

    def __init__(self, config: AIPGANConfig):
        super().__init__()
        self.backbone = Backbone(config)
        self.intrinsic_head = IntrinsicHead(config)

    def forward(self, image: torch.Tensor, return_intrinsic: bool = True) -> EncoderOutput:
        """Args: image (B, 3, R, R) in [-1, 1]. Returns EncoderOutput with intrinsic_image (B, 3, R, R)."""
        features, attention = self.backbone(image)
        intrinsic = self.intrinsic_head(features) if return_intrinsic else None
        return EncoderOutput(features=features, attention=attention, intrinsic_image=intrinsic)


class Decoder(nn.Module):
    """Decodes from the coarsest level up; at every level (>= 3 scales) its features are fused with both
    encoders' features by cross-encoder bilinear pooling. Outputs a colour image and a blending mask:
    ``image = mask * colour + (1 - mask) * target`` (attention-mask composition as in GANimation, so
    pixels the expression does not touch keep the target exactly: identity is preserved by design)."""

    def __init__(self, config: AIPGANConfig):
        super().__init__()
        widths = config.widths
        self.fusions = nn.ModuleList(
            CrossEncoderBilinearPooling(w, w, w, max(8, int(round(w * config.fusion_rank_ratio)))) for w in widths
        )
        self.bottleneck = ResidualBlock(widths[-1] * 2, widths[-1])
        self.ups = nn.ModuleList(UpBlock(w_in, w_out) for w_in, w_out in zip(widths[1:], widths[:-1]))
        self.blocks = nn.ModuleList(ResidualBlock(w, w) for w in widths[:-1])
        self.final_up = UpBlock(widths[0], widths[0])
        self.to_output = nn.Conv2d(widths[0], config.in_channels + 1, 3, padding=1)

    def forward(self, identity: list[torch.Tensor], expression: list[torch.Tensor], target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: per-level identity and expression features (finest first) and the target (B, 3, R, R).

        Returns: image (B, 3, R, R) in [-1, 1] and mask (B, 1, R, R) in [0, 1]."""
        x = self.bottleneck(torch.cat([identity[-1], expression[-1]], dim=1))  # (B, C_L, R/2**L, ...)
        x = self.fusions[-1](x, identity[-1], expression[-1])
        for index in range(len(self.ups) - 1, -1, -1):
            x = self.ups[index](x)  # (B, C_i, R/2**(i+1), ...)
            x = self.fusions[index](self.blocks[index](x), identity[index], expression[index])
        out = self.to_output(self.final_up(x))  # (B, 4, R, R)
        colour, mask = torch.tanh(out[:, :-1]), torch.sigmoid(out[:, -1:])
        return mask * colour + (1 - mask) * target, mask


def _mix(own: list[torch.Tensor], other: list[torch.Tensor], weight: float) -> list[torch.Tensor]:
    """Per-level linear mix ``own + weight * (other - own)``; weight 0 returns ``own`` exactly."""
    if weight == 0:
        return own
    return [torch.lerp(a, b, weight) for a, b in zip(own, other)]


class AIPGANGenerator(ModelMixin, ConfigMixin):
    """The AIP-GAN generator: expression encoder (source), identity encoder (target), fusing decoder.

    Load with ``AIPGANGenerator.from_pretrained(folder, subfolder="generator")``; build with
    ``AIPGANGenerator(**AIPGANConfig(...).to_dict())``.
    """

    config_name = "config.json"
    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        resolution: int = 128,
        in_channels: int = 3,
        base_channels: int = 16,
        channel_multipliers: list[int] = (1, 2, 4, 8),
        fusion_rank_ratio: float = 1.0,
        num_landmarks: int = 68,
        heatmap_sigma: float = 1.0,
        intrinsic_channels: int = 16,
        discriminator_channels: int = 32,
        discriminator_scales: int = 2,
        discriminator_layers: int = 3,
    ):
        super().__init__()
        config = AIPGANConfig.from_dict(dict(locals()))
        self.expression_encoder = ExpressionEncoder(config)
        self.identity_encoder = IdentityEncoder(config)
        self.decoder = Decoder(config)

    @property
    def aipgan_config(self) -> AIPGANConfig:
        return AIPGANConfig.from_dict(dict(self.config))

    def encode_expression(self, image: torch.Tensor) -> EncoderOutput:
        """Expression features, landmark heatmaps and attention of (B, 3, R, R) images in [-1, 1]."""
        return self.expression_encoder(image)

    def encode_identity(self, image: torch.Tensor, return_intrinsic: bool = True) -> EncoderOutput:
        """Identity features, attention and intrinsic image of (B, 3, R, R) images in [-1, 1]."""
        return self.identity_encoder(image, return_intrinsic=return_intrinsic)

    def decode(self, identity_features: list[torch.Tensor], expression_features: list[torch.Tensor], target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode (possibly mixed) features onto the target. Returns image (B, 3, R, R) and mask (B, 1, R, R)."""
        return self.decoder(identity_features, expression_features, target)

    def predict_landmarks(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 68, 2) landmark coordinates, in crop pixels, predicted by the expression encoder."""
        heatmaps = self.expression_encoder(image).landmark_heatmaps
        return heatmaps_to_landmarks(heatmaps, image.shape[-1])

    def forward(
        self,
        source: torch.Tensor,
        target: torch.Tensor,
        expression_strength: float = 1.0,
        identity_mix: float = 0.0,
        return_intrinsic: bool = True,
    ) -> GeneratorOutput:
        """Transfer the source's expression onto the target.

        Args:
            source: (B, 3, R, R) aligned expression source in [-1, 1].
            target: (B, 3, R, R) aligned identity target in [-1, 1].
            expression_strength: 0 gives the target's own expression (its reconstruction path), 1 the
                source's, up to 1.5 exaggerates it (linear in expression-feature space).
            identity_mix: 0 keeps the target's identity features, 1 uses the source's.
            return_intrinsic: also render the target's intrinsic image (skipped for speed when False).
        """
        source_expression = self.expression_encoder(source)
        expression = source_expression.features
        if expression_strength != 1.0:
            own = self.expression_encoder(target).features
            expression = _mix(own, source_expression.features, float(expression_strength))
        target_identity = self.identity_encoder(target, return_intrinsic=return_intrinsic)
        identity = target_identity.features
        if identity_mix != 0.0:
            identity = _mix(identity, self.identity_encoder(source, return_intrinsic=False).features, float(identity_mix))
        image, mask = self.decoder(identity, expression, target)
        return GeneratorOutput(
            image=image,
            landmark_heatmaps=source_expression.landmark_heatmaps,
            intrinsic_image=target_identity.intrinsic_image,
            expression_attention=source_expression.attention,
            identity_attention=target_identity.attention,
            mask=mask,
        )


@dataclass
class DiscriminatorOutput(BaseOutput):
    """Attributes:
        logits: one (B, 1, h, w) patch-logit map per scale, full resolution first.
        features: per scale, the list of intermediate activations (for feature matching).
    """

    logits: list[torch.Tensor]
    features: list[list[torch.Tensor]]


class PatchDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017) with spectral norm: strided 4x4 convolutions, LeakyReLU, 1-channel head."""

    def __init__(self, in_channels: int, channels: int, layers: int):
        super().__init__()
        sn = nn.utils.spectral_norm
        blocks, width = [], in_channels
        for index in range(layers):
            out = channels * 2 ** min(index, 3)
            blocks.append(nn.Sequential(sn(nn.Conv2d(width, out, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)))
            width = out
        self.blocks = nn.ModuleList(blocks)
        self.head = sn(nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return self.head(x), features


class AIPGANDiscriminator(ModelMixin, ConfigMixin):
    """Multi-scale patch discriminator (pix2pixHD style): the same architecture judges the image at full,
    half, ... resolution. Returns patch logits and intermediate features for feature matching."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, in_channels: int = 3, discriminator_channels: int = 32, discriminator_scales: int = 2, discriminator_layers: int = 3):
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels, discriminator_channels, discriminator_layers) for _ in range(discriminator_scales)
        )

    @classmethod
    def from_aipgan_config(cls, config: AIPGANConfig) -> "AIPGANDiscriminator":
        """The discriminator described by the discriminator fields of the shared flat config."""
        return cls(in_channels=config.in_channels, discriminator_channels=config.discriminator_channels,
                   discriminator_scales=config.discriminator_scales, discriminator_layers=config.discriminator_layers)

    def forward(self, image: torch.Tensor) -> DiscriminatorOutput:
        """Args: image (B, 3, R, R) in [-1, 1]."""
        logits, features = [], []
        for index, scale in enumerate(self.scales):
            x = image if index == 0 else F.avg_pool2d(image, 2**index)  # (B, 3, R/2**index, ...)
            score, feats = scale(x)
            logits.append(score)
            features.append(feats)
        return DiscriminatorOutput(logits=logits, features=features)
