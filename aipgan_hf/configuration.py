"""AIPGANConfig: one flat, JSON-friendly configuration for the whole GAN.

The paper (Ali & Hughes, arXiv 2005.00499) gives no layer sizes; the defaults below are ours, chosen
for the budget of one 128-px transfer in <= 30 ms of network time on two CPU cores and <= 40 MB of
fp16 weights (see docs/design.md "Design choices" and benchmarks/benchmark.py for the measurements).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .errors import ConfigError
from .landmarks import NUM_LANDMARKS

ARCHITECTURE = "motion-guided"


@dataclass
class AIPGANConfig:
    """Hyper-parameters of the generator and the discriminator.

    Attributes:
        resolution: side of the aligned face crop the networks work on (divisible by 2**len(channel_multipliers)).
        in_channels: image channels (3, RGB).
        base_channels: width of the first encoder level; level ``i`` has ``base_channels * channel_multipliers[i]``.
        channel_multipliers: one entry per encoder level; each level halves the resolution. Every level is a
            cross-encoder fusion scale in the decoder, so at least 3 are required.
        fusion_rank_ratio: rank of the low-rank bilinear fusion as a multiple of the level's width.
        num_landmarks: landmark heatmaps predicted by the expression encoder (68, iBUG order).
        heatmap_sigma: Gaussian sigma of the landmark heatmaps, in heatmap cells (heatmaps are at resolution / 4).
        landmark_map_sigma: Gaussian sigma, in crop pixels, of the landmark-group maps the expression encoder reads.
        architecture: "motion-guided" (this version: landmark flow warps the identity features). Checkpoints of
            the first, appearance-only design have no such field and are refused with a clear error.
        intrinsic_channels: width of the light head that renders the identity encoder's intrinsic image.
        discriminator_channels: width of the first discriminator layer.
        discriminator_scales: number of image scales the multi-scale patch discriminator judges.
        discriminator_layers: strided layers per discriminator scale.
    """

    resolution: int = 128
    in_channels: int = 3
    base_channels: int = 16
    channel_multipliers: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    fusion_rank_ratio: float = 1.0
    num_landmarks: int = NUM_LANDMARKS
    heatmap_sigma: float = 1.0
    landmark_map_sigma: float = 2.0
    intrinsic_channels: int = 16
    discriminator_channels: int = 32
    discriminator_scales: int = 2
    discriminator_layers: int = 3
    architecture: str = ARCHITECTURE

    def __post_init__(self) -> None:
        self.channel_multipliers = [int(m) for m in self.channel_multipliers]
        levels = len(self.channel_multipliers)
        if levels < 3:
            raise ConfigError(f"channel_multipliers needs at least 3 levels (fusion at >= 3 scales), got {levels}")
        if any(m < 1 for m in self.channel_multipliers):
            raise ConfigError(f"channel_multipliers must be positive, got {self.channel_multipliers}")
        if self.resolution < 32 or self.resolution % (2**levels) != 0:
            raise ConfigError(f"resolution must be >= 32 and divisible by {2**levels}, got {self.resolution}")
        for name in (
            "in_channels",
            "base_channels",
            "num_landmarks",
            "intrinsic_channels",
            "discriminator_channels",
            "discriminator_scales",
            "discriminator_layers",
        ):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.fusion_rank_ratio <= 0:
            raise ConfigError(f"fusion_rank_ratio must be > 0, got {self.fusion_rank_ratio}")
        if self.architecture != ARCHITECTURE:
            raise ConfigError(f"architecture must be {ARCHITECTURE!r}, got {self.architecture!r}")
        if self.landmark_map_sigma <= 0:
            raise ConfigError(f"landmark_map_sigma must be > 0, got {self.landmark_map_sigma}")
        if self.heatmap_sigma <= 0:
            raise ConfigError(f"heatmap_sigma must be > 0, got {self.heatmap_sigma}")

    @property
    def widths(self) -> list[int]:
        """Channels of each encoder level, finest first."""
        return [self.base_channels * m for m in self.channel_multipliers]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "AIPGANConfig":
        """Build from a dict (e.g. a model's ``config``), ignoring keys that are not fields (``_class_name`` etc.)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
