"""Image quality: SSIM / PSNR against a reference crop, and the Frechet distance behind FID.

* **SSIM / PSNR** against a reference crop (``skimage.metrics``, RGB, data range 255; PSNR capped at
  100 dB, the value of identical crops).
* **FID**: Frechet distance between Inception-v3 pool features (2048-d, the TF-FID network of
  :class:`aipgan_hf.evaluation.networks.InceptionFeatures`) of the outputs and of real crops. With few
  hundred images FID is strongly biased upwards; compare methods on the same pairs only.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ..errors import InvalidImageError


def _check_pair(first: np.ndarray, second: np.ndarray) -> None:
    if first.shape != second.shape or first.ndim != 3 or first.shape[2] != 3:
        raise InvalidImageError(f"need two RGB images of the same shape, got {first.shape} and {second.shape}")


PSNR_CAP_DB = 100.0
"""PSNR of identical images (MSE 0): a finite cap, so that means over pairs stay defined."""


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two (H, W, 3) uint8 images, at most :data:`PSNR_CAP_DB`."""

    _check_pair(image, reference)
    if np.array_equal(image, reference):
        return PSNR_CAP_DB
    return float(min(peak_signal_noise_ratio(reference, image, data_range=255), PSNR_CAP_DB))


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """Structural similarity of two (H, W, 3) uint8 images (7x7 windows, per channel, averaged)."""

    _check_pair(image, reference)
    return float(structural_similarity(reference, image, channel_axis=-1, data_range=255))


def _trace_sqrt_product(first_centred: np.ndarray, second_centred: np.ndarray) -> float:
    """``trace(sqrtm(C1 @ C2))`` for the covariances of two centred (N, D) feature sets.

    With fewer images than dimensions (the usual case here) the non-zero eigenvalues of ``C1 @ C2`` are the
    squared singular values of ``A @ B.T / sqrt((n1 - 1)(n2 - 1))``, so an (n1, n2) SVD replaces scipy's
    (D, D) ``sqrtm`` (minutes for D = 2048 on two cores). Otherwise ``C1^1/2 C2 C1^1/2`` is diagonalised.
    """
    n_first, n_second = len(first_centred), len(second_centred)
    if min(n_first, n_second) <= first_centred.shape[1]:
        cross = first_centred @ second_centred.T / math.sqrt((n_first - 1) * (n_second - 1))  # (n1, n2)
        return float(np.linalg.svd(cross, compute_uv=False).sum())
    cov_first = first_centred.T @ first_centred / (n_first - 1)  # (D, D)
    cov_second = second_centred.T @ second_centred / (n_second - 1)  # (D, D)
    values, vectors = np.linalg.eigh(cov_first)
    sqrt_first = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T  # (D, D)
    product_values = np.linalg.eigvalsh(sqrt_first @ cov_second @ sqrt_first)
    return float(np.sqrt(np.clip(product_values, 0, None)).sum())


def frechet_distance(first: np.ndarray, second: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two (N, D) feature sets (N >= 2 each).

    ``||mu1 - mu2||^2 + trace(C1) + trace(C2) - 2 trace(sqrtm(C1 C2))``, the FID formula of Heusel et al.
    """
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    if len(first) < 2 or len(second) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(first)} and {len(second)}")
    if first.shape[1] != second.shape[1]:
        raise ValueError(f"feature sets differ in width: {first.shape} vs {second.shape}")
    mean_first, mean_second = first.mean(0), second.mean(0)
    first_centred, second_centred = first - mean_first, second - mean_second
    trace_first = float((first_centred**2).sum() / (len(first) - 1))
    trace_second = float((second_centred**2).sum() / (len(second) - 1))
    distance = (
        float(np.sum((mean_first - mean_second) ** 2))
        + trace_first
        + trace_second
        - 2.0 * _trace_sqrt_product(first_centred, second_centred)
    )
    return max(distance, 0.0)
