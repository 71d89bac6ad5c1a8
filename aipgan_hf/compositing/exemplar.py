"""The mouth exemplar: one public-domain face with an open smile whose mouth lends its inside to an opened mouth
(``mouth="exemplar"``, the default; :mod:`aipgan_hf.compositing.mouth`), saved beside the generator."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from PIL import Image, ImageFilter
from safetensors.numpy import save_file

from ..checkpoint import read_safetensors
from ..errors import CheckpointError
from ..faces.geometry import invert_affine, scale_affine
from ..faces.tensors import image_to_tensor
from ..landmarks import LEFT_EYE, RIGHT_EYE

MOUTH_EXEMPLAR_NAME = "mouth_exemplar.safetensors"
"""The checkpoint file of :class:`MouthExemplar` (optional: a folder without it gives presets no teeth)."""

ENLARGE = 4
"""How many times finer than its crop paste-back reads the exemplar (:attr:`MouthExemplar.enlarged`). Its crop is
about as fine as the astronaut's photo, and a portrait's face is often 2 to 4 times the crop (Hopper's 2.2): read
bilinearly from the crop, its teeth were a soft band."""

SHARPEN = (3.0, 120)
"""Unsharp mask of the enlarged exemplar (radius in its pixels, under one crop pixel; percent): the teeth's edges and
gaps come back (the brightest few percent of the teeth's pixels clip to white)."""


@dataclass(frozen=True)
class MouthExemplar:
    """A public-domain face whose open mouth lends its inside (``mouth="exemplar"``, the default).

    Attributes:
        crop: (R, R, 3) uint8, an aligned crop. landmarks: (68, 2) float32, its crop-pixel landmarks.
    """

    crop: np.ndarray
    landmarks: np.ndarray

    @cached_property
    def enlarged(self) -> tuple[np.ndarray, np.ndarray]:
        """((R * ENLARGE, R * ENLARGE, 3) uint8, (2, 3) map from its pixels to the crop's): what paste-back reads the
        lent inside from, the crop enlarged :data:`ENLARGE` times (Lanczos) and sharpened (:data:`SHARPEN`); the
        reader averages it back down where the target's face is smaller. Made once (frozen: it cannot go stale)."""
        side = len(self.crop) * ENLARGE
        image = Image.fromarray(np.ascontiguousarray(self.crop, dtype=np.uint8)).resize((side, side), Image.LANCZOS)
        radius, percent = SHARPEN
        pixels = np.asarray(image.filter(ImageFilter.UnsharpMask(radius=radius, percent=percent, threshold=0)))
        return pixels, invert_affine(scale_affine(ENLARGE))  # crop pixel c covers enlarged pixels 4c .. 4c + 3

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 3, R, R) in [-1, 1] and (1, 68, 2): the crop and landmarks as ``plan_mouth`` takes a source."""
        # copies: loaded arrays are read-only
        return image_to_tensor(np.array(self.crop))[None], torch.tensor(self.landmarks, dtype=torch.float32)[None]

    def save(self, path: str | os.PathLike) -> None:
        save_file(
            {
                "crop": np.ascontiguousarray(self.crop, dtype=np.uint8),
                "landmarks": np.ascontiguousarray(self.landmarks, dtype=np.float32),
            },
            str(path),
        )

    @classmethod
    def load(cls, path: str | os.PathLike, resolution: int | None = None) -> "MouthExemplar":
        """Read an exemplar (for ``resolution``-px crops, or any square crop); a corrupt or mismatched file raises
        CheckpointError."""
        try:
            raw = {name: tensor.numpy() for name, tensor in read_safetensors(path).items()}
        except CheckpointError as error:
            raise CheckpointError(f"the mouth exemplar: {error}") from None
        if sorted(raw) != ["crop", "landmarks"]:
            raise CheckpointError(f"{path}: expected the tensors crop and landmarks, found {sorted(raw)}")
        crop, landmarks = raw["crop"], raw["landmarks"]
        side = resolution or (crop.shape[0] if crop.ndim == 3 else -1)
        if (
            crop.dtype != np.uint8
            or crop.shape != (side, side, 3)
            or landmarks.dtype.kind != "f"
            or landmarks.shape != (68, 2)
        ):
            raise CheckpointError(f"{path}: expected a {side}x{side}x3 uint8 crop and (68, 2) float landmarks")
        with np.errstate(invalid="ignore", over="ignore"):
            eyes = float(np.linalg.norm(landmarks[RIGHT_EYE].mean(0) - landmarks[LEFT_EYE].mean(0)))
            inside = bool(np.isfinite(landmarks).all() and (landmarks >= 0).all() and (landmarks < side).all())
        if not inside or not side / 8 < eyes < side:
            raise CheckpointError(f"{path}: its landmarks are not a face inside its {side}-px crop (damaged?)")
        return cls(crop=crop, landmarks=landmarks.astype(np.float32))
