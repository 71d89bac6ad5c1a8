"""The one conversion between uint8 images and model tensors, used by training, presets, evaluation and inference."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from aipgan_hf.errors import UnsupportedImageError


def image_to_tensor(image: np.ndarray | Image.Image) -> torch.Tensor:
    """uint8 RGB image(s) to a float tensor in [-1, 1].

    Args:
        image: (H, W, 3) or (B, H, W, 3) uint8 array, or a PIL image.

    Returns:
        (3, H, W) or (B, 3, H, W) float32 tensor, ``x / 127.5 - 1``.
    """
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        found = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise UnsupportedImageError(f"image_to_tensor expects a uint8 array, got {found}")
    if image.ndim not in (3, 4) or image.shape[-1] != 3:
        raise UnsupportedImageError(f"image_to_tensor expects shape (H, W, 3) or (B, H, W, 3), got {image.shape}")
    # numpy arithmetic: single-threaded, so tiny crops do not wait on torch's thread pool
    normalised = image.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    normalised = np.moveaxis(normalised, -1, -3)  # (..., H, W, 3) -> (..., 3, H, W)
    return torch.from_numpy(np.ascontiguousarray(normalised))


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`image_to_tensor`: clamps to [-1, 1] and rounds to uint8.

    Args:
        tensor: (3, H, W) or (B, 3, H, W) float tensor in [-1, 1] (NaN becomes 0).

    Returns:
        (H, W, 3) or (B, H, W, 3) uint8 array.
    """
    if tensor.ndim not in (3, 4) or tensor.shape[-3] != 3:
        raise UnsupportedImageError(f"tensor_to_image expects (3, H, W) or (B, 3, H, W), got {tuple(tensor.shape)}")
    values = tensor.detach().cpu().float().numpy()
    values = np.clip(np.nan_to_num(values, nan=0.0), -1.0, 1.0)
    values = np.rint((values + 1.0) * 127.5).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(values, -3, -1))  # (..., 3, H, W) -> (..., H, W, 3)
