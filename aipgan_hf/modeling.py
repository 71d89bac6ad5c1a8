"""AIP-GAN networks, bottom-up: the motion-guided decoder, then the Hub-facing generator; the discriminator last.

    target photo --IdentityEncoder--> multi-scale features --warp(flow)--+
                                                                         +--> Decoder (cross-encoder bilinear
    driving landmarks --ExpressionEncoder--> multi-scale features -------+     pooling at every scale) --> face
    (target, driving landmarks) --motion.landmark_flow--> flow (computed outside, handed in as a tensor)

Shapes use R for the crop side and C_i for the width of level i (level i is at R / 2**(i+1)).
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
from .encoders import EncoderOutput, ExpressionEncoder, IdentityEncoder, warp_features
from .faces.align import face_mask
from .fusion import CrossEncoderBilinearPooling
from .landmarks import MOUTH, heatmaps_to_landmarks
from .layers import ConvNormAct, ResidualBlock, UpBlock, same_memory_format
from .motion import warp

# The one declaration of the hyper-parameters and their defaults is AIPGANConfig; the Hub classes' __init__
# signatures (which diffusers writes to config.json) take their defaults from it.
_DEFAULTS = AIPGANConfig()


@dataclass
class GeneratorOutput(BaseOutput):
    """What the generator returns (the pipeline's mouth fill and paste-back are :mod:`aipgan_hf.compositing`'s).

    Attributes:
        image: (B, 3, R, R) in [-1, 1]: the target with the driving expression.
        mask: (B, 1, R, R) in [0, 1]: where the decoder repainted the warped target.
        warped_target: (B, 3, R, R): the target warped by the flow (what shows where the mask is 0).
        intrinsic_image: (B, 3, R, R) in [-1, 1] or None: the target's expression-free face (identity encoder).
        expression_attention: (B, 1, R/4, R/4): the expression encoder's spatial attention.
        identity_attention: (B, 1, R/4, R/4): the identity encoder's spatial attention on the target.
        landmark_heatmaps: (B, 68, R/4, R/4) logits of the target's landmarks, or None (when not asked for).
        colour: (B, 3, R, R) in [-1, 1]: what the decoder paints before the mask blends it in (trained directly
            where the warp cannot help, see losses.painted_region_loss).
    """

    image: torch.Tensor
    mask: torch.Tensor
    warped_target: torch.Tensor
    intrinsic_image: torch.Tensor | None
    expression_attention: torch.Tensor
    identity_attention: torch.Tensor
    landmark_heatmaps: torch.Tensor | None = None
    colour: torch.Tensor | None = None


class Decoder(nn.Module):
    """Decodes from the coarsest level up; at every level (>= 3 scales) its features are fused with the *warped*
    identity features and the expression features by cross-encoder bilinear pooling. A last block sees the
    warped target at full resolution; it outputs colour and a repaint mask:
    ``image = mask * colour + (1 - mask) * warped_target`` (GANimation's composition, on the warped target: the
    warp moves what can be moved; the decoder paints only what a warp cannot, such as teeth or closing eyes).
    The mask is multiplied by the paste-back face ellipse: outside the face (where no loss looks and nothing is
    pasted back) the warp alone is shown."""

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
        self.refine = ConvNormAct(widths[0] + config.in_channels, widths[0])
        self.to_output = nn.Conv2d(widths[0], config.in_channels + 1, 3, padding=1)
        self.register_buffer("face", torch.from_numpy(face_mask(config.resolution))[None, None], persistent=False)

    def forward(
        self, identity: list[torch.Tensor], expression: list[torch.Tensor], warped_target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: per-level warped identity and expression features (finest first), the warped target (B, 3, R, R).

        Returns: image (B, 3, R, R) in [-1, 1], mask (B, 1, R, R) in [0, 1] and the painted colour (B, 3, R, R)."""
        x = self.bottleneck(torch.cat([identity[-1], expression[-1]], dim=1))  # (B, C_L, R/2**L, ...)
        x = self.fusions[-1](x, identity[-1], expression[-1])
        for index in range(len(self.ups) - 1, -1, -1):
            x = self.ups[index](x)  # (B, C_i, R/2**(i+1), ...)
            x = self.fusions[index](self.blocks[index](x), identity[index], expression[index])
        x = self.final_up(x)  # (B, C_0, R, R)
        x = self.refine(
            torch.cat([x, same_memory_format(warped_target, x)], dim=1)
        )  # (B, C_0 + 3, R, R) -> (B, C_0, R, R)
        out = self.to_output(x)  # (B, 4, R, R)
        # tanh of the whole (channels-last) ``out``, then the slice: on the slice's strides tanh runs 30 x slower
        colour, mask = torch.tanh(out)[:, :-1], torch.sigmoid(out[:, -1:]) * self.face.to(out.dtype)  # (B, 1, R, R)
        return mask * colour + (1 - mask) * warped_target, mask, colour


def _mix(own: list[torch.Tensor], other: list[torch.Tensor], weight: float) -> list[torch.Tensor]:
    """Per-level linear mix ``own + weight * (other - own)``; weight 0 returns ``own`` exactly."""
    if weight == 0:
        return own
    return [torch.lerp(a, b, weight) for a, b in zip(own, other)]


class AIPGANGenerator(ModelMixin, ConfigMixin):
    """The AIP-GAN generator: identity encoder (target photo), expression encoder (driving landmarks), and the
    motion-guided decoder. The flow comes from :func:`aipgan_hf.motion.landmark_flow`.

    Load with ``AIPGANGenerator.from_pretrained(folder, subfolder="generator")``; build with
    ``AIPGANGenerator(**AIPGANConfig(...).to_dict())``.
    """

    config_name = "config.json"
    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        resolution: int = _DEFAULTS.resolution,
        in_channels: int = _DEFAULTS.in_channels,
        base_channels: int = _DEFAULTS.base_channels,
        channel_multipliers: list[int] = tuple(_DEFAULTS.channel_multipliers),  # a tuple: no shared mutable default
        fusion_rank_ratio: float = _DEFAULTS.fusion_rank_ratio,
        num_landmarks: int = _DEFAULTS.num_landmarks,
        heatmap_sigma: float = _DEFAULTS.heatmap_sigma,
        landmark_map_sigma: float = _DEFAULTS.landmark_map_sigma,
        intrinsic_channels: int = _DEFAULTS.intrinsic_channels,
        discriminator_channels: int = _DEFAULTS.discriminator_channels,
        discriminator_scales: int = _DEFAULTS.discriminator_scales,
        discriminator_layers: int = _DEFAULTS.discriminator_layers,
        architecture: str = _DEFAULTS.architecture,
    ):
        """Takes exactly :class:`~aipgan_hf.configuration.AIPGANConfig`'s fields (a test checks it)."""
        super().__init__()
        config = AIPGANConfig.from_dict(dict(locals()))
        self.expression_encoder = ExpressionEncoder(config)
        self.identity_encoder = IdentityEncoder(config)
        self.decoder = Decoder(config)

    @property
    def aipgan_config(self) -> AIPGANConfig:
        return AIPGANConfig.from_dict(dict(self.config))

    def encode_identity(
        self, image: torch.Tensor, return_intrinsic: bool = True, return_landmarks: bool = False
    ) -> EncoderOutput:
        """Identity features, attention, intrinsic image (and landmark heatmaps) of (B, 3, R, R) images in [-1, 1]."""
        return self.identity_encoder(image, return_intrinsic=return_intrinsic, return_landmarks=return_landmarks)

    def encode_expression(
        self, driving_landmarks: torch.Tensor, target_landmarks: torch.Tensor, flow: torch.Tensor
    ) -> EncoderOutput:
        """Expression features of driving landmarks (B, 68, 2) given the target's and the flow (B, R, R, 2)."""
        return self.expression_encoder(driving_landmarks, target_landmarks, flow)

    def predict_landmarks(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 68, 2) landmark coordinates, in crop pixels, predicted by the identity encoder's landmark head."""
        heatmaps = self.identity_encoder(image, return_intrinsic=False, return_landmarks=True).landmark_heatmaps
        return heatmaps_to_landmarks(heatmaps, image.shape[-1])

    def decode(
        self,
        identity: EncoderOutput,
        expression: EncoderOutput,
        target: torch.Tensor,
        flow: torch.Tensor,
        identity_features: list[torch.Tensor] | None = None,
    ) -> GeneratorOutput:
        """Warp the target's identity features (or the given, e.g. mixed, unwarped ones) by the flow and decode."""
        warped_target = warp(target, flow)
        features = warp_features(identity.features if identity_features is None else identity_features, flow)
        image, mask, colour = self.decoder(features, expression.features, warped_target)
        return GeneratorOutput(
            image=image,
            mask=mask,
            warped_target=warped_target,
            intrinsic_image=identity.intrinsic_image,
            colour=colour,
            expression_attention=expression.attention,
            identity_attention=identity.attention,
            landmark_heatmaps=identity.landmark_heatmaps,
        )

    def forward(
        self,
        target: torch.Tensor,
        target_landmarks: torch.Tensor,
        driving_landmarks: torch.Tensor,
        flow: torch.Tensor,
        source: torch.Tensor | None = None,
        identity_mix: float = 0.0,
        return_intrinsic: bool = True,
        return_landmarks: bool = False,
    ) -> GeneratorOutput:
        """Give the target the driving landmarks' expression.

        Args:
            target: (B, 3, R, R) aligned identity target in [-1, 1].
            target_landmarks: (B, 68, 2) the target's landmarks, crop pixels.
            driving_landmarks: (B, 68, 2) where they should go (motion.ShapeModel.drive).
            flow: (B, R, R, 2) ``motion.landmark_flow(target_landmarks, driving_landmarks, R)``.
            source: (B, 3, R, R) aligned source photo; read only when ``identity_mix > 0`` (its features are
                mixed in *before* the warp, in the target's frame). With ``identity_mix == 0`` no source pixel
                reaches the networks: identity leakage is impossible by construction.
            identity_mix: 0 keeps the target's identity features, 1 uses the source's.
            return_intrinsic / return_landmarks: also render the target's intrinsic image / landmark heatmaps.
        """
        identity = self.identity_encoder(target, return_intrinsic=return_intrinsic, return_landmarks=return_landmarks)
        features = identity.features
        if identity_mix != 0.0:
            if source is None:
                raise ValueError("identity_mix > 0 needs the source image")
            features = _mix(
                features, self.identity_encoder(source, return_intrinsic=False).features, float(identity_mix)
            )
        expression = self.expression_encoder(driving_landmarks, target_landmarks, flow)
        return self.decode(identity, expression, target, flow, identity_features=features)


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


def mouth_crop(image: torch.Tensor, landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, size, size): a square around each face's mouth, differentiable in ``image`` (B, 3, R, R).

    Centred on the mean of the 20 mouth points of ``landmarks`` (B, 68, 2, crop pixels), side 1.6 mouth widths
    (corner to corner): the lips, teeth and the skin they fold, at about the crop's own resolution for a
    48-px window on a 128-px face."""
    mouth = landmarks[:, MOUTH].float()  # (B, 20, 2)
    centre = mouth.mean(dim=1)  # (B, 2)
    width = (mouth[:, 6] - mouth[:, 0]).norm(dim=1).clamp(min=4.0)  # corners 54 - 48
    resolution = image.shape[-1]
    half_side = 0.8 * width / resolution * 2  # in [-1, 1] units: half the side over half the image
    theta = torch.zeros(image.shape[0], 2, 3, dtype=image.dtype, device=image.device)
    theta[:, 0, 0] = theta[:, 1, 1] = half_side
    theta[:, :, 2] = (centre + 0.5) / resolution * 2 - 1  # pixel centres, align_corners=False
    grid = F.affine_grid(theta, (image.shape[0], 3, size, size), align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)


class AIPGANDiscriminator(ModelMixin, ConfigMixin):
    """Multi-scale patch discriminator (pix2pixHD style): the same architecture judges the image at full,
    half, ... resolution. Returns patch logits and intermediate features for feature matching.

    With ``mouth_crop_size`` > 0 a further patch discriminator judges a window around the mouth (the
    ``landmarks`` given to ``forward``), as talking-head GANs add a mouth critic: teeth are a few hundred pixels
    of a 128-px face, too small a share of the whole-image critics' verdict to be painted sharp. 0 (the
    default, and what configs written before it mean) is the whole-image critics alone."""

    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        in_channels: int = _DEFAULTS.in_channels,
        discriminator_channels: int = _DEFAULTS.discriminator_channels,
        discriminator_scales: int = _DEFAULTS.discriminator_scales,
        discriminator_layers: int = _DEFAULTS.discriminator_layers,
        mouth_crop_size: int = 0,
    ):
        super().__init__()
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels, discriminator_channels, discriminator_layers)
            for _ in range(discriminator_scales)
        )
        self.mouth = (
            PatchDiscriminator(in_channels, discriminator_channels, discriminator_layers)
            if mouth_crop_size > 0
            else None
        )

    @classmethod
    def from_aipgan_config(cls, config: AIPGANConfig, mouth_crop_size: int = 0) -> "AIPGANDiscriminator":
        """The discriminator described by the discriminator fields of the shared flat config."""
        return cls(
            in_channels=config.in_channels,
            discriminator_channels=config.discriminator_channels,
            discriminator_scales=config.discriminator_scales,
            discriminator_layers=config.discriminator_layers,
            mouth_crop_size=mouth_crop_size,
        )

    def forward(self, image: torch.Tensor, landmarks: torch.Tensor | None = None) -> DiscriminatorOutput:
        """Args: image (B, 3, R, R) in [-1, 1]; landmarks (B, 68, 2) where the image's mouth is (crop pixels),
        needed when the mouth critic exists. Its verdict comes last in ``logits`` and ``features``."""
        logits, features = [], []
        for index, scale in enumerate(self.scales):
            x = image if index == 0 else F.avg_pool2d(image, 2**index)  # (B, 3, R/2**index, ...)
            score, feats = scale(x)
            logits.append(score)
            features.append(feats)
        if self.mouth is not None:
            if landmarks is None:
                raise ValueError("this discriminator has a mouth critic: pass the landmarks of the image's face")
            score, feats = self.mouth(mouth_crop(image, landmarks, self.config.mouth_crop_size))
            logits.append(score)
            features.append(feats)
        return DiscriminatorOutput(logits=logits, features=features)
