"""Small building blocks: conv-norm-act, residual down/up blocks, spatial and channel-wise attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups: batch-size independent, so training at batch 1-4 on a CPU works."""
    groups = 8 if channels % 8 == 0 else 1
    return nn.GroupNorm(groups, channels)


def same_memory_format(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` in ``like``'s memory order (channels-last or not), so that concatenating the two along channels is
    not a slow element-by-element re-layout (docs/benchmarks.md, 0.6.0)."""
    channels_last = (
        like.dim() == 4 and like.is_contiguous(memory_format=torch.channels_last) and not like.is_contiguous()
    )
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class ConvNormAct(nn.Sequential):
    """3x3 (or k x k) convolution, GroupNorm, SiLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
            group_norm(out_channels),
            nn.SiLU(inplace=True),
        )


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel-wise attention: per-channel gates from global average pooling."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = torch.sigmoid(self.fc2(F.silu(self.fc1(x.mean((2, 3), keepdim=True)))))  # (B, C, 1, 1)
        return x * gates


class SpatialAttention(nn.Module):
    """Spatial attention: one sigmoid map (B, 1, H, W) from the features, applied multiplicatively.

    Returns both the gated features and the map, so a loss can supervise the map (expression encoder,
    against landmark masks) or leave it free (identity encoder, self-supervised).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.score = nn.Sequential(
            ConvNormAct(channels, max(channels // 4, 8)), nn.Conv2d(max(channels // 4, 8), 1, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attention = torch.sigmoid(self.score(x))  # (B, 1, H, W)
        return x * attention, attention


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a skip; a 1x1 projection when widths differ."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = ConvNormAct(in_channels, out_channels)
        self.conv2 = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), group_norm(out_channels)
        )
        self.skip = (
            nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.skip(x) + self.conv2(self.conv1(x)))


class DownBlock(nn.Module):
    """Strided 3x3 convolution (halves H and W) then a residual block."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.down = ConvNormAct(in_channels, out_channels, stride=2)
        self.block = ResidualBlock(out_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.down(x))


class UpBlock(nn.Module):
    """Nearest 2x upsampling then a conv-norm-act (no transposed conv: no checkerboard artefacts)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = ConvNormAct(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
