"""Measuring one aligned face crop: dlib landmarks and identity descriptor, and the classifiers' labels."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..errors import FaceTooSmallError, NoFaceError
from ..faces import AlignedFace, FaceProcessor
from .networks import ExpressionClassifier


@dataclass
class CropMeasurement:
    """What is measured on one aligned face crop.

    Attributes:
        landmarks: (68, 2) crop coordinates, NaN when no face was found on the crop.
        descriptor: (128,) dlib identity descriptor.
        labels: classifier name -> top expression label.
        face_found: whether the face detector (with the processor's tight-crop fallbacks) found a face.
    """

    landmarks: np.ndarray
    descriptor: np.ndarray
    labels: dict[str, str]
    face_found: bool


class CropMeasurer:
    """Landmarks, identity descriptor and expression labels of aligned crops.

    Landmarks come from :meth:`FaceProcessor.detect` on the crop (it pads tight crops when the detector
    needs a border). When no face is found the crop's landmarks are left undefined (NaN), and the identity
    descriptor is computed with ``fallback_landmarks`` (the target's, as every method's output lives in the
    target's aligned frame), so a method that destroys the face is charged a large identity distance
    instead of being left out. Results are remembered by the crop's bytes: "target unchanged" and "source
    pasted" cost nothing after the dataset crops are measured (the descriptor is most of the time).
    """

    def __init__(self, processor: FaceProcessor, classifiers: dict[str, ExpressionClassifier]):
        self.processor = processor
        self.classifiers = classifiers
        self._seen: dict[bytes, tuple[np.ndarray | None, dict[str, str]]] = {}  # crop -> (landmarks, labels)
        self._descriptors: dict[tuple[bytes, bytes], np.ndarray] = {}  # (crop, landmarks) -> descriptor

    def _detect_and_classify(self, crop: np.ndarray) -> tuple[np.ndarray | None, dict[str, str]]:
        key = hashlib.sha1(crop.tobytes()).digest() + bytes(str(crop.shape), "ascii")
        if key not in self._seen:
            try:
                landmarks = np.asarray(self.processor.detect(crop)[0].landmarks, dtype=np.float64)
            except (NoFaceError, FaceTooSmallError):
                landmarks = None
            labels = {name: classifier.predict([crop])[0] for name, classifier in self.classifiers.items()}
            self._seen[key] = (landmarks, labels)
        return self._seen[key]

    def _descriptor(self, crop: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        key = (hashlib.sha1(crop.tobytes()).digest(), landmarks.astype(np.float32).tobytes())
        if key not in self._descriptors:
            aligned = AlignedFace(
                crop=crop,
                matrix=np.eye(2, 3),
                landmarks=landmarks.astype(np.float32),
                crop_landmarks=landmarks.astype(np.float32),
                box=(0.0, 0.0, float(crop.shape[1]), float(crop.shape[0])),
            )
            self._descriptors[key] = self.processor.descriptor(crop, aligned).astype(np.float64)
        return self._descriptors[key]

    def measure(
        self, crop: np.ndarray, fallback_landmarks: np.ndarray, trust_fallback: bool = False
    ) -> CropMeasurement:
        """Measure one crop.

        Args:
            crop: (R, R, 3) uint8 aligned face.
            fallback_landmarks: (68, 2) landmarks to compute the descriptor with when no face is found.
            trust_fallback: report ``fallback_landmarks`` as the crop's landmarks when no face is found
                (for real dataset images, whose stored landmarks were fitted on the original photo).
        """
        crop = np.ascontiguousarray(crop)
        detected, labels = self._detect_and_classify(crop)
        found = detected is not None
        landmarks = detected if found else np.asarray(fallback_landmarks, dtype=np.float64)
        descriptor = self._descriptor(crop, landmarks)
        if not found and not trust_fallback:
            landmarks = np.full_like(landmarks, np.nan)
        return CropMeasurement(landmarks, descriptor, dict(labels), found)
