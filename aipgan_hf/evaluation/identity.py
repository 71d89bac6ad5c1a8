"""Identity kept: the distance between dlib's 128-d face descriptors.

dlib's own verification threshold is 0.6: below it two faces are taken to be the same person ("same-person
rate"). The descriptors themselves come from :meth:`aipgan_hf.faces.FaceProcessor.descriptor`.
"""

from __future__ import annotations

import numpy as np

SAME_PERSON_THRESHOLD = 0.6
"""dlib's verification threshold on the 128-d descriptor distance (same person below it)."""


def descriptor_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray | float:
    """Euclidean distance between face descriptors, (128,) or (N, 128) each; float or (N,) array."""
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    if first.shape[-1] != second.shape[-1]:
        raise ValueError(f"descriptors differ in length: {first.shape} vs {second.shape}")
    distance = np.linalg.norm(first - second, axis=-1)
    return float(distance) if distance.ndim == 0 else distance
