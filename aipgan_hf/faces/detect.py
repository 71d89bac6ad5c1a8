"""Face detection and 68 landmarks with dlib, and the fallbacks for faces its HOG detector misses.

Faces are found with dlib's HOG detector (``dlib.get_frontal_face_detector``) on a downscaled grey copy, and
landmarks come from dlib's 68-point shape predictor read from the ``face_recognition_models`` package, fitted at
the resolution of the image given. No weights of our own. :class:`DlibFaceDetector` is the default
:class:`~aipgan_hf.faces.detector.LandmarkDetector`.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import dlib
import numpy as np
from PIL import Image

from aipgan_hf.errors import CheckpointError
from aipgan_hf.faces.align import CANONICAL_BOX
from aipgan_hf.faces.detector import DetectedFace, mapped_box
from aipgan_hf.faces.geometry import apply_affine, compose_affine, invert_affine, pil_coefficients, turn_matrix
from aipgan_hf.landmarks import LANDMARK_SCHEME

logger = logging.getLogger(__name__)

DEFAULT_DETECTION_SIZE = 640
"""Longest side of the downscaled copy the face detector runs on."""
SMALL_FACE_PHOTO = 1.5
"""How much larger than the detector's copy a photo must be for :meth:`DlibFaceDetector.find_small` to look for
faces too small for the copy: below it the copy twice as large is little finer than the copy upsampled."""
QUICK_DETECTION_SIZE = 320
"""Longest side of the copy of the quick look for the largest face (:meth:`DlibFaceDetector.find_largest`): a quarter
of the pixels of the full search."""
QUICK_MIN_FACE = 100
"""The quick look answers only for a face box of at least this many pixels of its copy: 1.25 times dlib's 80-px
detection window. Faces near that window's size are found or missed by chance, so a larger face missed next to
a smaller one found would be taken for the largest; at 100 px or more a face that was missed is smaller."""
QUICK_SECOND_LOOK_MIN = 85
"""The second look answers for a box of at least this many pixels. dlib's box sizes come in the steps of its image
pyramid, so a face scaled to be 100 px wide may be boxed a little smaller; under 85 it is too near the 80-px
window to vouch that no larger face was missed."""
QUICK_RUNNER_UP = 1 / 1.3
"""Nor when a second face there is at least this fraction of the largest's size (the two scales may order them
differently)."""

# Fallback for tight crops: centred square boxes of these sizes (times the image's short side) are tried
# as the face box, and a 68-point fit is trusted only if moving the start box by 10 % (or shrinking it by
# 15 %) barely moves the landmarks (mean movement / box side below the limit): a face holds its fit, a
# non-face does not. The limit's measurements are in docs/design.md ("Design choices").
_TIGHT_CROP_BOX_SCALES = (0.9, 1.15, 1.4)
_FIT_CONSISTENCY_LIMIT = 0.035
_TIGHT_CROP_ASPECT = (0.75, 1.34)
_BOX_MOVES = ((0.1, 0, 1), (-0.1, 0, 1), (0, 0.1, 1), (0, -0.1, 1), (0, 0, 0.85))  # (dx, dy, shrink) in box sides


def dlib_model_path(filename: str) -> Path:
    """Path of a model file shipped by the ``face_recognition_models`` package (never imported: its
    ``__init__`` needs ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(
            "the face_recognition_models package is not installed (pip install face_recognition_models)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / filename
    if not path.is_file():
        raise CheckpointError(f"dlib model file {path} is missing; reinstall face_recognition_models")
    return path


def dlib_rectangle(box: tuple[float, ...]) -> Any:
    """An (x0, y0, x1, y1) box with exclusive ends as a ``dlib.rectangle`` (inclusive ends)."""
    x0, y0, x1, y1 = box
    return dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)


class DlibFaceDetector:
    """dlib's detector and landmark model (loaded on first use, never pickled) and the search that uses them.

    The HOG detector sees faces of about 80 px and more in the grey copy; only when it finds none does the
    search go on: the copy upsampled 2x (faces from ~40 px), the copy with a border (tight crops), the copy
    rotated by +-25 degrees (tilted heads), and last, for a near-square image, centred boxes about the
    image's size, kept only if the 68-point fit in them is stable. :meth:`find_small` looks further, in a photo much
    larger than the copy.
    """

    scheme = LANDMARK_SCHEME  # dlib's 68-point predictor is trained on iBUG 300-W

    def __init__(self) -> None:
        self._idle_detectors: queue.SimpleQueue = queue.SimpleQueue()  # HOG detectors not in use by a thread
        self._own_detector: Any = None
        self._predictor: Any = None
        self._loading = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {}  # dlib's models are reloaded lazily in the receiving process

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()

    @property
    def detector(self) -> Any:
        """A dlib HOG frontal face detector of this object's own, for the caller's thread only (the face search
        borrows others: dlib's detector is not thread-safe)."""
        if self._own_detector is None:
            self._own_detector = dlib.get_frontal_face_detector()
        return self._own_detector

    @contextmanager
    def _borrowed_detector(self) -> Iterator[Any]:
        """An idle HOG detector, or a new one (about 0.3 s to build) when every one is busy in another thread:
        two photos' face searches can run at once (dlib releases the GIL)."""
        try:
            detector = self._idle_detectors.get_nowait()
        except queue.Empty:
            detector = dlib.get_frontal_face_detector()
        try:
            yield detector
        finally:
            self._idle_detectors.put(detector)

    @property
    def predictor(self) -> Any:
        """dlib 68-point shape predictor, shared by the threads (dlib's shape_predictor documentation: "No
        synchronization is required when using this object"; the search tests compare threaded and lone fits)."""
        with self._loading:
            if self._predictor is None:
                self._predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))
        return self._predictor

    def fit_landmarks(self, rgb: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
        """dlib's 68 landmarks inside a face box: (68, 2) float32 (x, y) in ``rgb``'s pixels."""
        shape = self.predictor(rgb, dlib_rectangle(box))
        return np.array([(point.x, point.y) for point in shape.parts()], dtype=np.float32)

    def find(
        self, rgb: np.ndarray, detection_size: int, grey: Image.Image | None = None, finer: bool = False
    ) -> list[DetectedFace]:
        """All faces in ``rgb`` (any size), largest first, in ``rgb``'s coordinates.

        Detection runs on a grey copy whose longest side is at most ``detection_size``; landmarks are
        fitted on ``rgb`` itself. ``grey``: ``rgb`` in grey (:func:`grey_image`), if already made. ``finer``: the
        copy upsampled once more from the start, for faces half as large beside larger ones (about four times
        the cost: the face a user asks for by number where fewer were found).
        """
        rgb = np.ascontiguousarray(rgb)
        small, small_to_photo = _grey_copy(grey_image(rgb) if grey is None else grey, detection_size)
        side = max(small.shape)
        upsample = _upsampling(side, 400) + finer

        # 1. the detector on the small copy, 2. once more at twice the size for smaller faces
        boxes = self._run_detector(small, upsample)
        if not boxes and side * 2 ** (upsample + 1) <= 1400:
            boxes = self._run_detector(small, upsample + 1)
        if boxes:
            return self._fit_boxes(rgb, boxes, small_to_photo, "detector")
        # 3. tight crops: give the detector a border to see the face outline against
        pad = max(8, round(0.3 * side))
        padded = np.pad(small, pad, mode="edge")
        boxes = self._run_detector(padded, _upsampling(max(padded.shape), 400))
        if boxes:
            padded_to_photo = small_to_photo.copy()
            padded_to_photo[:, 2] -= small_to_photo[:, :2] @ np.array([pad, pad], dtype=np.float64)
            return self._fit_boxes(rgb, boxes, padded_to_photo, "padded")
        # 4. tilted heads: the HOG detector only finds roughly upright faces
        for angle in (25.0, -25.0):
            rotated_small, small_to_rotated = rotate_image(small, angle)
            boxes = self._run_detector(rotated_small, _upsampling(max(rotated_small.shape), 400))
            if boxes:
                rotated_to_photo = compose_affine(small_to_photo, invert_affine(small_to_rotated))
                return self._fit_rotated_boxes(rgb, boxes, rotated_to_photo, angle)
        # 5. the image is itself a tight face crop
        fallback = self._tight_crop_face(rgb)
        return [] if fallback is None else [fallback]

    def find_largest(
        self,
        rgb: np.ndarray,
        detection_size: int = QUICK_DETECTION_SIZE,
        limit: int = DEFAULT_DETECTION_SIZE,
        grey: Image.Image | None = None,
    ) -> DetectedFace | None:
        """The largest face, from the detector on a grey copy of at most ``detection_size`` pixels a side (no
        upsampling, no fallbacks), or None where this cannot tell and :meth:`find` must look.

        It answers for a face box of :data:`QUICK_MIN_FACE` pixels or more. A smaller face seen there is looked
        for once more, on the copy where it should be that large (439 px for a face a quarter of the photo's
        side, under half the pixels of the full search's 640), and answered for if boxed at
        :data:`QUICK_SECOND_LOOK_MIN` pixels or more there. None where no face is seen, the second copy would
        reach ``limit`` (the full search's size) or the photo's, another face is about as large
        (:data:`QUICK_RUNNER_UP`), or the photo is no larger than the first copy. ``grey`` as for :meth:`find`. The
        face's ``others`` are the other faces seen on that copy (smaller ones than the detector's window go
        unseen)."""
        rgb = np.ascontiguousarray(rgb)
        grey = grey_image(rgb) if grey is None else grey
        size = detection_size
        for second_look in (False, True):
            if size >= min(limit, max(grey.size)):
                return None
            small, small_to_photo = _grey_copy(grey, size)
            boxes = sorted(self._run_detector(small, 0), key=lambda box: box[0] - box[2])  # largest first
            if not boxes:
                return None
            largest = boxes[0][2] - boxes[0][0]
            others = [box for box in boxes[1:] if _overlap(box, boxes[0]) < 0.3]  # not the same face twice
            if others and others[0][2] - others[0][0] >= QUICK_RUNNER_UP * largest:
                return None
            if largest >= (QUICK_SECOND_LOOK_MIN if second_look else QUICK_MIN_FACE):
                face = self._fit_boxes(rgb, boxes[:1], small_to_photo, "quick")[0]
                return replace(face, others=tuple(mapped_box(small_to_photo, box) for box in others))
            if second_look:
                return None
            size = math.ceil(size * QUICK_MIN_FACE / largest)  # where the face seen should be QUICK_MIN_FACE px wide
        return None

    def _run_detector(self, grey: np.ndarray, upsample: int) -> list[tuple[float, float, float, float]]:
        with self._borrowed_detector() as detector:
            rectangles = detector(grey, upsample)
        return [(r.left(), r.top(), r.right() + 1.0, r.bottom() + 1.0) for r in rectangles]

    def _fit_boxes(
        self, rgb: np.ndarray, boxes: list[tuple[float, ...]], to_photo: np.ndarray, method: str
    ) -> list[DetectedFace]:
        """Detector boxes (in a scaled/shifted copy) -> photo boxes with 68 landmarks, largest first."""
        detections = []
        for x0, y0, x1, y1 in boxes:
            (px0, py0), (px1, py1) = apply_affine(to_photo, np.array([[x0, y0], [x1, y1]]))
            box = (float(px0), float(py0), float(px1), float(py1))
            detections.append(DetectedFace(box, self.fit_landmarks(rgb, box), method))
        detections.sort(key=lambda detection: -detection.size)
        logger.debug("found %d face(s) by %s", len(detections), method)
        return detections

    def _fit_rotated_boxes(
        self, rgb: np.ndarray, boxes: list[tuple[float, ...]], rotated_to_photo: np.ndarray, angle: float
    ) -> list[DetectedFace]:
        """Boxes found in a rotated copy: fit landmarks in the photo rotated the same way, map them back."""
        rotated_photo, photo_to_rotated = rotate_image(rgb, angle)
        rotated_photo = np.ascontiguousarray(rotated_photo)
        detections = []
        for x0, y0, x1, y1 in boxes:
            centre = apply_affine(rotated_to_photo, np.array([[(x0 + x1) / 2, (y0 + y1) / 2]]))[0]
            half = 0.5 * (x1 - x0) * math.sqrt(abs(np.linalg.det(rotated_to_photo[:, :2])))
            rotated_centre = apply_affine(photo_to_rotated, centre[None])[0]
            rotated_box = (*(rotated_centre - half), *(rotated_centre + half))
            landmarks = apply_affine(invert_affine(photo_to_rotated), self.fit_landmarks(rotated_photo, rotated_box))
            box = (*(centre - half).tolist(), *(centre + half).tolist())
            detections.append(DetectedFace(box, landmarks.astype(np.float32), f"rotated {angle:+.0f}"))
        detections.sort(key=lambda detection: -detection.size)
        logger.debug("found %d face(s) in a copy rotated by %+.0f degrees", len(detections), angle)
        return detections

    def find_small(self, rgb: np.ndarray, detection_size: int, grey: Image.Image | None = None) -> list[DetectedFace]:
        """Faces too small for :meth:`find` in a photo at least :data:`SMALL_FACE_PHOTO` times larger than its copy (a
        group, a phone's photo from a few metres): on a copy twice as large, upsampled once more than its size asks
        (faces from about 40 px of it: a 50-px face in a 1600-px photo), each kept where its 68-point fit holds
        (:meth:`_fit_inconsistency`: at that scale HOG fires on a coin now and then). About 0.3 s; [] otherwise."""
        if max(rgb.shape[:2]) < SMALL_FACE_PHOTO * detection_size:  # the copy would add little to find's
            return []
        rgb = np.ascontiguousarray(rgb)
        grey = grey_image(rgb) if grey is None else grey
        copy, copy_to_photo = _grey_copy(grey, 2 * detection_size)
        boxes = self._run_detector(copy, _upsampling(max(copy.shape), 400) + 1)
        faces = self._fit_boxes(rgb, boxes, copy_to_photo, "small") if boxes else []
        return [
            face for face in faces if self._fit_inconsistency(rgb, face.box, face.landmarks) < _FIT_CONSISTENCY_LIMIT
        ]

    def _tight_crop_face(self, rgb: np.ndarray) -> DetectedFace | None:
        """Last resort for images that are themselves a tight face crop: try centred boxes about the
        image's size (and the canonical-crop box) as the face box; keep the fit most stable under small
        box shifts, if it is stable enough."""
        height, width = rgb.shape[:2]
        if not _TIGHT_CROP_ASPECT[0] <= width / height <= _TIGHT_CROP_ASPECT[1]:
            return None
        side = min(width, height)
        centre_x, centre_y = width / 2, height / 2
        candidates = [
            (centre_x - k * side / 2, centre_y - k * side / 2, centre_x + k * side / 2, centre_y + k * side / 2)
            for k in _TIGHT_CROP_BOX_SCALES
        ]
        if width == height:  # maybe one of our own aligned crops
            x0, y0, x1, y1 = CANONICAL_BOX
            candidates.append((x0 * width, y0 * height, x1 * width, y1 * height))
        best: tuple[float, DetectedFace] | None = None
        for box in candidates:
            landmarks = self.fit_landmarks(rgb, box)
            inconsistency = self._fit_inconsistency(rgb, box, landmarks)
            logger.debug("tight-crop candidate %s: inconsistency %.3f", box, inconsistency)
            if inconsistency < _FIT_CONSISTENCY_LIMIT and (best is None or inconsistency < best[0]):
                best = (inconsistency, DetectedFace(box, landmarks, "tight-crop"))
        return None if best is None else best[1]

    def _fit_inconsistency(self, rgb: np.ndarray, box: tuple[float, ...], landmarks: np.ndarray) -> float:
        """Mean landmark movement (in box sides) when the start box shifts by 10 % or shrinks by 15 %.
        A real face pulls the fit back in place; noise or a flat image lets it follow the box."""
        x0, y0, x1, y1 = box
        box_side = x1 - x0
        centre_x, centre_y, half = (x0 + x1) / 2, (y0 + y1) / 2, box_side / 2
        movements = []
        for dx, dy, shrink in _BOX_MOVES:
            cx, cy, h = centre_x + dx * box_side, centre_y + dy * box_side, half * shrink
            moved = self.fit_landmarks(rgb, (cx - h, cy - h, cx + h, cy + h))
            movements.append(np.linalg.norm(moved - landmarks, axis=1).mean() / box_side)
        return float(np.mean(movements))


def grey_image(rgb: np.ndarray) -> Image.Image:
    """(H, W, 3) uint8 ``rgb`` as a Pillow "L" image, what the detector looks at (scaled down first)."""
    return Image.fromarray(np.ascontiguousarray(rgb)).convert("L")


def _grey_copy(grey: Image.Image, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A grey photo scaled down (never up) to ``size`` pixels on its longest side, and the (2, 3) map from its
    pixels to the photo's."""
    width, height = grey.size
    scale = min(1.0, size / max(height, width))
    if scale < 1.0:
        grey = grey.resize(
            (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR, reducing_gap=2.0
        )
    small = np.asarray(grey)
    return small, np.array([[width / small.shape[1], 0.0, 0.0], [0.0, height / small.shape[0], 0.0]])


def _overlap(first: tuple[float, ...], second: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    width = max(0.0, min(first[2], second[2]) - max(first[0], second[0]))
    height = max(0.0, min(first[3], second[3]) - max(first[1], second[1]))
    inter = width * height
    union = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1]) - inter
    return inter / max(union, 1e-9)


def _upsampling(side: int, target: int) -> int:
    """Smallest number of 2x dlib upsamplings that brings ``side`` to at least ``target`` (at most 3)."""
    upsample = 0
    while side * 2**upsample < target and upsample < 3:
        upsample += 1
    return upsample


def rotate_image(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate an image about its centre onto a canvas that holds all of it (black corners).

    Returns:
        The rotated image and the (2, 3) matrix mapping original (x, y) to rotated (x, y).
    """
    height, width = image.shape[:2]
    rotation = turn_matrix(angle)
    corners = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], dtype=np.float64)
    rotated_corners = corners @ rotation.T
    new_width, new_height = (np.ceil(rotated_corners.max(axis=0) - rotated_corners.min(axis=0)) + 1).astype(int)
    centre_in = np.array([(width - 1) / 2, (height - 1) / 2])
    centre_out = np.array([(new_width - 1) / 2, (new_height - 1) / 2])
    matrix = np.hstack([rotation, (centre_out - rotation @ centre_in)[:, None]])
    rotated = Image.fromarray(image).transform(
        (int(new_width), int(new_height)),
        Image.Transform.AFFINE,
        data=pil_coefficients(invert_affine(matrix)),
        resample=Image.Resampling.BILINEAR,
    )
    return np.asarray(rotated), matrix
