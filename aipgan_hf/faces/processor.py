"""FaceProcessor: the one object training, evaluation and inference use for faces in and faces out.

It composes the steps of :mod:`aipgan_hf.faces` along the data's path: decode (:mod:`~aipgan_hf.faces.decode`),
detect + 68 landmarks (a :class:`~aipgan_hf.faces.detector.LandmarkDetector`, dlib's by default:
:mod:`~aipgan_hf.faces.detect`), align (:mod:`~aipgan_hf.faces.align`); the way back into the photo is
:mod:`aipgan_hf.compositing`. Typical use::

    processor = FaceProcessor(resolution=128)
    photo = processor.load_photo("portrait.jpg")       # Photo: a large file is decoded at reduced scale
    face = processor.align(photo)                      # AlignedFace of the largest face, photo coordinates
    x = image_to_tensor(face.crop)                     # (3, 128, 128) in [-1, 1]
"""

from __future__ import annotations

import inspect
from typing import Any

import dlib
import numpy as np
from PIL import Image

from aipgan_hf.errors import ConfigError, FaceIndexError, FaceTooSmallError, ImageTooSmallError, NoFaceError
from aipgan_hf.faces.align import CANONICAL_BOX, AlignedFace, align_face
from aipgan_hf.faces.decode import Photo, load_image, load_photo
from aipgan_hf.faces.detect import (
    DEFAULT_DETECTION_SIZE,
    QUICK_DETECTION_SIZE,
    DlibFaceDetector,
    dlib_model_path,
    dlib_rectangle,
    grey_image,
)
from aipgan_hf.faces.detector import DetectedFace, LandmarkDetector
from aipgan_hf.faces.pixels import DEFAULT_MAX_PIXELS, MIN_IMAGE_SIDE, is_rgb_uint8
from aipgan_hf.landmarks import LANDMARK_SCHEME, NUM_LANDMARKS


class FaceProcessor:
    """Finds and aligns faces at a fixed crop resolution.

    dlib models load on first use and belong to this instance (no module-level model state). Detection
    runs on a grey copy whose longest side is at most ``detection_size``; landmarks are then fitted on the
    decoded photo (see :class:`~aipgan_hf.faces.detect.DlibFaceDetector` for the fallbacks; a photo with no face
    found there is searched for small ones on a larger copy). To find small faces next to a large one (group photos),
    raise ``detection_size``.

    Args:
        resolution: side of the aligned crop (any size, e.g. 64, 128, 256).
        min_face_size: smallest accepted face, as the side of the detector box in photo pixels.
        max_pixels: pixel cap for decoded images (decompression-bomb guard).
        detection_size: longest side of the copy the detector runs on (twice that for small faces).
        detector: finds faces and their landmarks; default dlib's (:class:`~aipgan_hf.faces.detect.DlibFaceDetector`).
            Its ``scheme`` must be :data:`~aipgan_hf.landmarks.LANDMARK_SCHEME`, the one the networks are built for.
    """

    def __init__(
        self,
        resolution: int = 128,
        min_face_size: int = 32,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        detection_size: int = DEFAULT_DETECTION_SIZE,
        detector: LandmarkDetector | None = None,
    ) -> None:
        if not isinstance(resolution, int) or resolution < 16:
            raise ConfigError(f"resolution must be an integer of at least 16, got {resolution!r}")
        if not isinstance(min_face_size, int) or min_face_size < 1:
            raise ConfigError(f"min_face_size must be a positive integer, got {min_face_size!r}")
        if not isinstance(max_pixels, int) or max_pixels < MIN_IMAGE_SIDE**2:
            raise ConfigError(f"max_pixels must be an integer of at least {MIN_IMAGE_SIDE**2}, got {max_pixels!r}")
        if not isinstance(detection_size, int) or detection_size < 80:
            raise ConfigError(f"detection_size must be an integer of at least 80, got {detection_size!r}")
        detector = DlibFaceDetector() if detector is None else detector
        scheme = getattr(detector, "scheme", None)
        if scheme != LANDMARK_SCHEME:
            raise ConfigError(
                f"the detector gives landmarks in the scheme {scheme!r}, but alignment, motion and the networks are "
                f"built for {LANDMARK_SCHEME!r}: map its points to that scheme first"
            )
        self.resolution = resolution
        self.min_face_size = min_face_size
        self.max_pixels = max_pixels
        self.detection_size = detection_size
        self._faces = detector
        self._recognizer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_recognizer": None}  # dlib models reload lazily in the receiving process

    def __repr__(self) -> str:
        return (
            f"FaceProcessor(resolution={self.resolution}, min_face_size={self.min_face_size}, "
            f"max_pixels={self.max_pixels}, detection_size={self.detection_size})"
        )

    @property
    def face_detector(self) -> LandmarkDetector:
        """What finds faces and fits their landmarks (dlib's by default)."""
        return self._faces

    @property
    def detector(self) -> Any:
        """dlib HOG frontal face detector (loaded on first use) of the default face detector."""
        return self._faces.detector

    @property
    def predictor(self) -> Any:
        """dlib 68-point shape predictor (loaded on first use) of the default face detector."""
        return self._faces.predictor

    @property
    def recognizer(self) -> Any:
        """dlib face-recognition ResNet (loaded on first use)."""
        if self._recognizer is None:
            self._recognizer = dlib.face_recognition_model_v1(
                str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat"))
            )
        return self._recognizer

    # ----- decoding ------------------------------------------------------------------------------

    def load(self, image: Any) -> np.ndarray:
        """:func:`load_image` (full resolution) with this processor's pixel cap, refusing images too small for a face.

        Returns:
            (H, W, 3) uint8 RGB.
        """
        rgb = load_image(image, max_pixels=self.max_pixels)
        self._check_fits_a_face(rgb.shape[1], rgb.shape[0])
        return rgb

    def load_photo(self, image: Any) -> Photo:
        """:func:`load_photo` (a large encoded image at reduced scale) with this processor's pixel cap, refusing images
        too small for a face. Every method that takes an image also takes the returned :class:`Photo`."""
        photo = load_photo(image, max_pixels=self.max_pixels)
        self._check_fits_a_face(*photo.size)
        return photo

    def _check_fits_a_face(self, width: int, height: int) -> None:
        if min(height, width) < self.min_face_size:
            raise ImageTooSmallError(
                f"the image is only {width}x{height} pixels; faces must be at least {self.min_face_size} "
                f"pixels wide, so the image must be at least that on each side"
            )

    # ----- detection and alignment ---------------------------------------------------------------

    def find_faces(self, image: Any, small_faces: bool = True) -> list[DetectedFace]:
        """Boxes and 68 landmarks of all faces of at least ``min_face_size`` pixels, largest first (no warping).
        ``small_faces``: where none is found, look for faces too small for the detector's copy in a much larger photo
        (the detector's ``find_small``, about 0.3 s; a video's tracker does not, on its first frame or a lost face's).

        Raises:
            NoFaceError: no face found.
            FaceTooSmallError: faces were found but all are smaller than ``min_face_size``.
        """
        return self._usable_faces(self.load_photo(image), small_faces=small_faces)

    def detect(self, image: Any) -> list[AlignedFace]:
        """All faces of at least ``min_face_size`` pixels, aligned, largest first.

        Raises:
            NoFaceError: no face found.
            FaceTooSmallError: faces were found but all are smaller than ``min_face_size``.
        """
        photo = self.load_photo(image)
        faces = self._usable_faces(photo)
        return [self._align(photo, detection, tuple(face.box for face in faces)) for detection in faces]

    def align(
        self, image: Any, face_index: int | None = None, quick_look: bool = True, small_faces: bool = True
    ) -> AlignedFace:
        """Detect and align one face.

        Args:
            image: any input :func:`load_image` accepts, or a :class:`Photo`.
            face_index: which face, counting from 0 in order of decreasing size; ``None`` is the largest.
            quick_look: for the largest face, look on a copy of at most 320 pixels a side first, and for a
                smaller face seen there once more on a copy where it is about 100 px wide
                (:meth:`~aipgan_hf.faces.detect.DlibFaceDetector.find_largest`: faster, with landmarks close to the
                full search's; docs/design.md); run the full search only where that cannot tell (no face seen, two
                faces of about one size). False: the full search only (``training/prepare_dataset.py`` and
                ``export_checkpoint.py``: files rebuilt exactly).
            small_faces: as in :meth:`find_faces` (``training/prepare_dataset.py`` builds the corpus without it, as
                before 0.24.0).

        Returns:
            The aligned face, in the coordinates of the full-resolution photo; ``faces_found``: how many faces the
            search found (where the quick look answers, those it saw on its copy: a face much smaller than the
            largest may go uncounted).

        Raises:
            NoFaceError, FaceTooSmallError, FaceIndexError, and the errors of :func:`load_image`.
        """
        if face_index is not None and (
            isinstance(face_index, bool) or not isinstance(face_index, (int, np.integer)) or face_index < 0
        ):
            raise FaceIndexError(f"face index must be a whole number 0 or more, got {face_index!r}")
        photo = self.load_photo(image)
        index = 0 if face_index is None else int(face_index)
        grey = grey_image(photo.pixels)  # the detector's view, made once for the quick look and the full search
        if index == 0 and quick_look:  # the largest face: a quick look at a smaller copy finds it in most portraits
            quick = self._faces.find_largest(
                photo.pixels, min(QUICK_DETECTION_SIZE, self.detection_size), limit=self.detection_size, grey=grey
            )
            quick = quick.mapped(photo.pixels_to_photo) if quick is not None and photo.reduced else quick
            if quick is not None and quick.size >= self.min_face_size:
                return self._align(photo, quick, (quick.box, *quick.others))
        faces = self._usable_faces(photo, grey, small_faces)
        if index >= len(faces) and self.finer_search:  # a face the user sees may be too small for the search
            faces = max(faces, self._usable_faces(photo, grey, small_faces, finer=True), key=len)
        if index >= len(faces):
            found = f"{len(faces)} face" + ("s" if len(faces) != 1 else "")
            raise FaceIndexError(
                f"face index {index} asked for, but only {found} found (valid indices 0..{len(faces) - 1})"
            )
        return self._align(photo, faces[index], tuple(face.box for face in faces))

    def align_with_landmarks(
        self, image: Any, landmarks: np.ndarray, box: tuple[float, ...] | None = None
    ) -> AlignedFace:
        """Align a face whose 68 landmarks are already known (no detection).

        Args:
            image: the photo.
            landmarks: (68, 2) photo coordinates.
            box: optional face box; defaults to the landmarks' bounding box.
        """
        photo = load_photo(image, max_pixels=self.max_pixels)
        landmarks = np.asarray(landmarks, dtype=np.float32)
        if landmarks.shape != (NUM_LANDMARKS, 2):
            raise ConfigError(f"landmarks must have shape ({NUM_LANDMARKS}, 2), got {landmarks.shape}")
        if box is None:
            box = (*landmarks.min(axis=0).tolist(), *landmarks.max(axis=0).tolist())
        return self._align(photo, DetectedFace(tuple(float(v) for v in box), landmarks, "given"))

    def landmarks68(self, image: Any, box: tuple[float, float, float, float]) -> np.ndarray:
        """Fit the detector's 68 landmarks (dlib's by default) inside a face box.

        Args:
            image: the photo (any :func:`load_image` input; pass an (H, W, 3) uint8 array to avoid copies).
            box: (x0, y0, x1, y1) face box in photo pixels.

        Returns:
            (68, 2) float32 (x, y) photo coordinates.
        """
        rgb = image if is_rgb_uint8(image) else load_image(image, max_pixels=self.max_pixels)
        return self._faces.fit_landmarks(np.ascontiguousarray(rgb), box)

    @property
    def finer_search(self) -> bool:
        """Whether the detector can look again on a finer copy (dlib's can; one plugged in may not)."""
        return "finer" in inspect.signature(self._faces.find).parameters

    def _usable_faces(
        self, photo: Photo, grey: Image.Image | None = None, small_faces: bool = True, finer: bool = False
    ) -> list[DetectedFace]:
        finer_keyword = {"finer": True} if finer else {}
        detections = self._faces.find(photo.pixels, self.detection_size, grey, **finer_keyword)
        if not detections and small_faces and hasattr(self._faces, "find_small"):  # a plugged-in detector may lack it
            detections = self._faces.find_small(photo.pixels, self.detection_size, grey)
        if photo.reduced:
            detections = [detection.mapped(photo.pixels_to_photo) for detection in detections]
        if not detections:
            raise NoFaceError(
                "no face found in the image; use a photo with a clearly visible, roughly frontal face "
                f"at least {self.min_face_size} pixels wide"
            )
        usable = [detection for detection in detections if detection.size >= self.min_face_size]
        if not usable:
            raise FaceTooSmallError(
                f"the largest face found is {detections[0].size:.0f} pixels wide; faces must be at least "
                f"{self.min_face_size} pixels wide (use a closer or higher-resolution photo)"
            )
        return usable

    def _align(self, photo: Photo, detection: DetectedFace, face_boxes: tuple = ()) -> AlignedFace:
        aligned = align_face(
            photo.pixels, detection.landmarks, detection.box, self.resolution, photo.size, photo.pixels_to_photo
        )
        aligned.face_boxes = face_boxes
        return aligned

    # ----- identity ---------------------------------------------------------------------------

    def descriptor(self, image_or_crop: Any, aligned: AlignedFace | None = None) -> np.ndarray:
        """128-d dlib face-recognition descriptor (identity embedding; same person if distance < ~0.6).

        Args:
            image_or_crop: a photo, or an aligned crop (e.g. a generated face).
            aligned: optional alignment to reuse instead of detecting. The image is taken to be in
                ``aligned``'s crop frame (``crop_landmarks`` are used) when it has the crop's shape and is
                not the photo the face was aligned in (judged by ``aligned.photo_size``); otherwise it is
                that photo (``landmarks``).

        Returns:
            (128,) float32.
        """
        rgb = self.load(image_or_crop)
        height, width = rgb.shape[:2]
        if aligned is None:
            detection = self._usable_faces(load_photo(rgb))[0]
            landmarks, box = detection.landmarks, detection.box
        elif rgb.shape == aligned.crop.shape and aligned.photo_size != (width, height):
            landmarks = aligned.crop_landmarks
            x0, y0, x1, y1 = CANONICAL_BOX
            box = (x0 * width, y0 * height, x1 * width, y1 * height)
        else:
            landmarks, box = aligned.landmarks, aligned.box
        points = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in landmarks])
        shape = dlib.full_object_detection(dlib_rectangle(box), points)
        return np.asarray(self.recognizer.compute_face_descriptor(rgb, shape), dtype=np.float32)
