"""Cross-encoder bilinear pooling: how the decoder fuses its features with both encoders' at each scale.

Swap this module (same constructor and forward signature) to try another fusion; nothing else changes.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import group_norm


class CrossEncoderBilinearPooling(nn.Module):
    """Cross-encoder bilinear pooling that keeps the spatial map.

    Low-rank bilinear (Hadamard-product) fusion in the style of MLB (Kim et al. 2017), extended to the
    three streams AIP-GAN fuses at each decoder scale: decoder features ``d``, identity-encoder features
    ``a`` and expression-encoder features ``b``, all (B, C, H, W) at the same H, W. Per pixel:

        z = P( (U d) * tanh(V a) * tanh(W b) ),   output = d + z

    with U, V, W: C -> r and P: r -> C as 1x1 convolutions (r = rank). The product lets each identity
    channel be modulated by each expression channel (a rank-r approximation of the full bilinear form)
    at every location, which is what "cross-encoder" asks for; the residual keeps the decoder path open.
    """

    def __init__(self, channels: int, identity_channels: int, expression_channels: int, rank: int):
        super().__init__()
        self.project_decoder = nn.Conv2d(channels, rank, 1)
        self.project_identity = nn.Conv2d(identity_channels, rank, 1)
        self.project_expression = nn.Conv2d(expression_channels, rank, 1)
        self.norm = group_norm(rank)
        self.project_out = nn.Conv2d(rank, channels, 1)

    def forward(self, decoder: torch.Tensor, identity: torch.Tensor, expression: torch.Tensor) -> torch.Tensor:
        joint = (
            self.project_decoder(decoder)
            * torch.tanh(self.project_identity(identity))
            * torch.tanh(self.project_expression(expression))
        )  # (B, r, H, W): Hadamard product of the three rank-r projections
        return decoder + self.project_out(self.norm(joint))  # (B, C, H, W)
