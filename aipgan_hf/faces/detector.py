"""The face-detector seam: what :class:`~aipgan_hf.faces.FaceProcessor` asks of a detector, and what it gets back.

Alignment, the shape model and the networks are built for one landmark scheme,
:data:`aipgan_hf.landmarks.LANDMARK_SCHEME` (iBUG 300-W's 68 points). A detector names the scheme its landmarks
are in, and the processor refuses one that does not match; any detector that gives these 68 points plugs in
(``FaceProcessor(detector=...)``) without a change to ``motion/`` or the networks. dlib's HOG detector and shape
predictor (:class:`~aipgan_hf.faces.detect.DlibFaceDetector`) are the default implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from aipgan_hf.faces.geometry import apply_affine


@dataclass
class DetectedFace:
    """A face found in a photo, before alignment.

    Attributes:
        box: face box in the photo, (x0, y0, x1, y1).
        landmarks: (68, 2) float32 landmarks in photo coordinates, in the detector's landmark scheme.
        method: how it was found, e.g. dlib's "quick", "detector", "padded", "rotated +25", "rotated -25",
            "tight-crop", "small" (:meth:`~aipgan_hf.faces.detect.DlibFaceDetector.find_small`), or "given" (landmarks
            the caller knew).
        others: the boxes of the faces the same look saw beside this one, largest first (a quick look's, on its small
            copy: faces much smaller than this one go unseen there); () where it saw none.
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    method: str
    others: tuple[tuple[float, float, float, float], ...] = ()

    @property
    def size(self) -> float:
        """Side of the face box in photo pixels (what ``min_face_size`` is compared with)."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])

    def mapped(self, matrix: np.ndarray) -> DetectedFace:
        """The same face with box and landmarks taken through a (2, 3) scale-and-shift map."""
        landmarks = apply_affine(matrix, self.landmarks).astype(np.float32)
        return DetectedFace(
            mapped_box(matrix, self.box), landmarks, self.method, tuple(mapped_box(matrix, box) for box in self.others)
        )


def mapped_box(matrix: np.ndarray, box: tuple[float, ...]) -> tuple[float, float, float, float]:
    """A box (x0, y0, x1, y1) taken through a (2, 3) scale-and-shift map."""
    (x0, y0), (x1, y1) = apply_affine(matrix, np.array([box[:2], box[2:]], dtype=np.float64))
    return (float(x0), float(y0), float(x1), float(y1))


class LandmarkDetector(Protocol):
    """Finds faces in an RGB image and fits their landmarks in one named scheme.

    All coordinates are in the pixels of the ``rgb`` given. ``grey`` is that image in grey
    (:func:`~aipgan_hf.faces.detect.grey_image`) when the caller has already made it; a detector may ignore it.
    A detector may also have ``find_small(rgb, detection_size, grey)``, which the processor calls for a photo where
    :meth:`find` found no face (dlib's looks on a larger copy).
    """

    scheme: str
    """The landmark scheme of :attr:`DetectedFace.landmarks`, e.g. :data:`aipgan_hf.landmarks.LANDMARK_SCHEME`."""

    def find(self, rgb: np.ndarray, detection_size: int, grey: Image.Image | None = None) -> list[DetectedFace]:
        """All faces, largest first; ``detection_size`` is the longest side the search may scale the image to."""
        ...

    def find_largest(
        self, rgb: np.ndarray, detection_size: int, limit: int, grey: Image.Image | None = None
    ) -> DetectedFace | None:
        """The largest face when a quick look (at most ``limit`` pixels a side) can tell, else None: the processor
        then runs :meth:`find`. A detector without a quicker way returns None."""
        ...

    def fit_landmarks(self, rgb: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
        """(N, 2) float32 landmarks of the face in ``box`` (x0, y0, x1, y1), for tracking a face from frame to frame."""
        ...
