"""Pure loss functions for AIP-GAN training. The paper names the terms but gives no formulas or weights;
each choice is documented here, and the weights are :class:`LossWeights` (filled by training/train.py's
``--<term>_weight`` flags).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .faces.align import face_mask
from .landmarks import (
    INNER_LIPS,
    LANDMARK_GROUPS,
    LEFT_EYE,
    OUTER_LIPS,
    RIGHT_EYE,
    landmark_maps,
    landmarks_to_heatmaps,
    mouth_outline,
    polygon_mask,
)
from .motion import warp


def hinge_discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017; SAGAN, BigGAN), averaged over discriminator scales.

    Chosen over the original non-saturating loss for its stability with spectral-normalised patch
    discriminators; ``fake_logits`` must come from detached generator outputs."""
    losses = [F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real_logits, fake_logits)]
    return torch.stack(losses).mean()


def hinge_generator_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Generator side of the hinge loss: ``-D(G(x))``, averaged over scales."""
    return torch.stack([-f.mean() for f in fake_logits]).mean()


def feature_matching_loss(
    fake_features: list[list[torch.Tensor]], real_features: list[list[torch.Tensor]], weight: torch.Tensor | None = None
) -> torch.Tensor:
    """pix2pixHD discriminator feature matching: L1 between intermediate D activations of the output and of its
    ground truth (real features detached), averaged over layers and scales. ``weight`` (B,) masks samples
    without a ground truth (cross-person pairs)."""
    terms = []
    for fake_scale, real_scale in zip(fake_features, real_features):
        for fake, real in zip(fake_scale, real_scale):
            per_sample = (fake - real.detach()).abs().flatten(1).mean(1)  # (B,)
            terms.append(_weighted_mean(per_sample, weight))
    return torch.stack(terms).mean()


def face_weight(resolution: int, device=None) -> torch.Tensor:
    """(1, 1, R, R) paste-back face mask: only the face is ever pasted into the photo, so only the face is
    compared (two photos of one person differ in background, which no target can predict)."""
    return torch.from_numpy(face_mask(resolution)).to(device)[None, None]


def expression_region(driving_landmarks: torch.Tensor, size: int, sigma: float = 4.0) -> torch.Tensor:
    """(B, 1, R, R) in [0, 1]: around the driving lips and eyes (Gaussians of ``sigma`` pixels at their points).

    What a warp cannot do (teeth in an opened mouth, a closing eye) covers a few percent of the face; without
    weighting it up, the L1 gain of learning to paint it is too small to be learnt in a CPU-sized run."""
    maps = landmark_maps(driving_landmarks, size, size, sigma)  # (B, 8, R, R), groups as LANDMARK_GROUPS
    chosen = [LANDMARK_GROUPS.index(group) for group in (OUTER_LIPS, INNER_LIPS, RIGHT_EYE, LEFT_EYE)]
    return maps[:, chosen].sum(dim=1, keepdim=True).clamp(max=1.0)


def new_mouth_interior(
    target_landmarks: torch.Tensor, driving_landmarks: torch.Tensor, flow: torch.Tensor, size: int
) -> torch.Tensor:
    """(B, 1, R, R): inside the driving inner lips, except where the target's own mouth interior lands after the
    warp. There the warp can only stretch lips (no teeth exist in a closed mouth to move): the decoder must paint.
    The opening is ``landmarks.mouth_outline``'s, the one the pipeline fills (rounded in a gape)."""
    driving = polygon_mask(mouth_outline(driving_landmarks, size), size)
    carried = warp(polygon_mask(mouth_outline(target_landmarks, size), size), flow)
    return (driving - carried).clamp(min=0.0)


def mouth_mask_loss(mask: torch.Tensor, interior: torch.Tensor) -> torch.Tensor:
    """Supervised repaint mask: binary cross-entropy of the mask to 1 over a newly opened mouth, averaged over
    that area (pairs without one count 0). Without it the mask, penalised everywhere, settled at about 0.4 in
    opened mouths: a blend of stretched lips and paint that reads as neither."""
    if interior.shape[-1] != mask.shape[-1]:
        interior = F.interpolate(interior, size=mask.shape[-2:], mode="area")
    per_sample = -(torch.log(mask.float().clamp(1e-4, 1.0)) * interior).flatten(1).sum(1)
    return (per_sample / interior.flatten(1).sum(1).clamp(min=20.0)).mean()  # a sliver of a few pixels counts less


def _spatial_l1(output: torch.Tensor, ground_truth: torch.Tensor, spatial_weight: torch.Tensor | None) -> torch.Tensor:
    """(B,) mean absolute difference, weighted over pixels by a (1, 1, H, W) map (resized to fit)."""
    difference = (output - ground_truth).abs()
    if spatial_weight is None:
        return difference.flatten(1).mean(1)
    if spatial_weight.shape[-1] != output.shape[-1]:
        spatial_weight = F.interpolate(spatial_weight, size=output.shape[-2:], mode="area")
    total = spatial_weight.flatten(1).sum(1) * output.shape[1]  # (B,) or (1,)
    return (difference * spatial_weight).flatten(1).sum(1) / total.clamp(min=1e-6)


def reconstruction_loss(
    output: torch.Tensor,
    ground_truth: torch.Tensor,
    weight: torch.Tensor | None = None,
    spatial_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1 at full and half resolution (the half-resolution term weights low frequencies: colour and shape
    over texture). No VGG/LPIPS term: torchvision is not available on the target platform."""
    full = _spatial_l1(output, ground_truth, spatial_weight)  # (B,)
    half = _spatial_l1(F.avg_pool2d(output, 2), F.avg_pool2d(ground_truth, 2), spatial_weight)
    return _weighted_mean(full + half, weight)


def painted_region_loss(
    colour: torch.Tensor, ground_truth: torch.Tensor, region_weight: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """L1 of the decoder's *colour* (before the repaint mask) to the ground truth around the lips and eyes.

    With mask composition the colour's gradient is scaled by the mask, and the mask only opens where the colour
    is already better than the warp: both stay near zero (the decoder never learns teeth). This term trains the
    colour directly where the warp cannot help, so the mask has something worth showing."""
    return _weighted_mean(_spatial_l1(colour, ground_truth, region_weight), weight)


def gradient_loss(
    output: torch.Tensor,
    ground_truth: torch.Tensor,
    weight: torch.Tensor | None = None,
    spatial_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """L1 between horizontal and vertical image differences: L1 on pixels forgives a blur that halves every
    edge; this term does not (our stand-in for a perceptual loss, which needs torchvision)."""

    def differences(image):
        return image[..., :, 1:] - image[..., :, :-1], image[..., 1:, :] - image[..., :-1, :]

    (out_x, out_y), (gt_x, gt_y) = differences(output), differences(ground_truth)
    weight_x = None if spatial_weight is None else spatial_weight[..., :, 1:]
    weight_y = None if spatial_weight is None else spatial_weight[..., 1:, :]
    per_sample = _spatial_l1(out_x, gt_x, weight_x) + _spatial_l1(out_y, gt_y, weight_y)  # (B,)
    return _weighted_mean(per_sample, weight)


def landmark_heatmap_loss(
    heatmap_logits: torch.Tensor, landmarks: torch.Tensor, image_size: int, sigma: float
) -> torch.Tensor:
    """MSE between predicted heatmaps (B, 68, S, S) and Gaussians at the landmarks (B, 68, 2) in crop pixels
    (the stacked-hourglass formulation), scaled by 100 so its magnitude is comparable with the image terms.

    Supervises the expression encoder on the source, and is the expression-consistency term when applied to
    the encoder's heatmaps of the *output* against the source's (unwarped) landmarks."""
    target = landmarks_to_heatmaps(landmarks, heatmap_logits.shape[-1], image_size, sigma)  # (B, 68, S, S)
    return F.mse_loss(heatmap_logits, target) * 100.0


def landmark_attention_target(landmarks: torch.Tensor, size: int, image_size: int, sigma: float = 2.0) -> torch.Tensor:
    """Where expression lives: the max over wide landmark Gaussians, (B, 1, S, S) in [0, 1]. The jaw line is
    included (mouth opening moves it); cheeks and forehead far from landmarks are not."""
    return landmarks_to_heatmaps(landmarks, size, image_size, sigma).amax(dim=1, keepdim=True)


def attention_supervision_loss(attention: torch.Tensor, landmarks: torch.Tensor, image_size: int) -> torch.Tensor:
    """Binary cross-entropy between the expression encoder's spatial attention (B, 1, S, S) and the landmark
    mask: this is what makes the expression encoder's attention *supervised* by landmarks."""
    target = landmark_attention_target(landmarks, attention.shape[-1], image_size)
    return F.binary_cross_entropy(attention.float().clamp(1e-6, 1 - 1e-6), target)


def intrinsic_loss(
    intrinsic: torch.Tensor,
    neutral: torch.Tensor,
    has_neutral: torch.Tensor,
    target: torch.Tensor,
    fallback_weight: float = 0.1,
) -> torch.Tensor:
    """Intrinsic-image supervision: L1 to a neutral photo/frame of the same person where one exists; elsewhere a
    weak L1 to the target itself (keeps the intrinsic image a face of that person rather than anything)."""
    neutral_term = (intrinsic - neutral).abs().flatten(1).mean(1)  # (B,)
    fallback = (intrinsic - target).abs().flatten(1).mean(1) * fallback_weight
    return torch.where(has_neutral, neutral_term, fallback).mean()


def identity_consistency_loss(output_embedding: torch.Tensor, target_embedding: torch.Tensor) -> torch.Tensor:
    """1 - cosine similarity between identity embeddings (pooled identity-encoder bottleneck) of the output and
    of the target (detached): the transferred face must still encode as the target person."""
    return (1 - F.cosine_similarity(output_embedding, target_embedding.detach(), dim=1)).mean()


def mask_regularisation(mask: torch.Tensor) -> torch.Tensor:
    """GANimation's mask terms: mean activation (repaint as little as needed) plus total variation (smooth)."""
    tv = (mask[..., 1:, :] - mask[..., :-1, :]).abs().mean() + (mask[..., :, 1:] - mask[..., :, :-1]).abs().mean()
    return mask.mean() + tv


def identity_embedding(features: list[torch.Tensor]) -> torch.Tensor:
    """(B, C) identity embedding: global average of the coarsest identity-encoder features."""
    return features[-1].mean(dim=(2, 3))


def _weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return values.mean()
    weight = weight.to(values.dtype)
    return (values * weight).sum() / weight.sum().clamp(min=1.0)


@dataclass
class LossWeights:
    """The weight of each generator loss term in the total (docs/design.md "Design choices" says why each).

    Field names are the term names that training logs (``g/<term>``); training/train.py has one
    ``--<term>_weight`` flag per field. ``adversarial`` also scales the discriminator's hinge loss.
    """

    reconstruction: float = 10.0
    gradient: float = 5.0
    painted_region: float = 5.0
    feature_matching: float = 2.0
    adversarial: float = 0.5
    landmark: float = 1.0
    attention: float = 0.5
    intrinsic: float = 2.0
    identity_consistency: float = 1.0
    expression_consistency: float = 1.0
    mask: float = 0.05
    mouth_mask: float = 1.0

    def total(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Weighted sum of ``terms`` (term name -> scalar loss), in their order.

        Raises:
            KeyError: for a term that has no weight here (a typo would otherwise drop it silently).
        """
        weights = dataclasses.asdict(self)
        unknown = sorted(set(terms) - set(weights))
        if unknown:
            raise KeyError(f"loss terms without a weight: {unknown}")
        return sum(weights[name] * value for name, value in terms.items())
