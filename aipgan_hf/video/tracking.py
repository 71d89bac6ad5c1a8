"""Landmarks through a clip: a face tracker that reuses the last frame's box, and the One-Euro filter.

The tracker runs the full face search (:meth:`FaceProcessor.find_faces`, without the small-face one) only on the
first frame and when tracking is lost; every other frame costs one 68-point fit in a box placed where the last
frame's landmarks were, plus one or two check fits that tell a face from an empty box (see
:meth:`FaceTracker.is_face`). A tilted head is fitted in a copy of the frame turned upright (:data:`UPRIGHT_ROLL`),
and a lost face is looked for where it last was, before the search, for up to :data:`COAST_FRAMES` frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import AIPGANError, ConfigError
from ..faces import FaceProcessor, apply_affine, invert_affine
from ..faces.align import warp_to_crop
from ..faces.geometry import turn_matrix
from ..landmarks import LEFT_EYE, RIGHT_EYE

ANCHOR_SHIFT = 0.1
"""The check fits start from the box shifted by this fraction of its side, diagonally: down-right and up-left (the
one that last held the face first)."""
MAX_ANCHOR_RATIO = 0.35
"""A face holds a check fit: at least one of the two lands back within this fraction of the shift
(:func:`anchor_ratio`). In an empty box dlib's fit follows the box (a ratio of about 1); the bound lies between the
faces' and the empty boxes' ratios measured in docs/design.md ("Tracking"). Two fits, because the down-right one
alone cannot tell faces from empty boxes."""
EYE_DISTANCE_RANGE = (0.2, 0.75)
"""Plausible inter-ocular distance, as a fraction of the box side."""
UPRIGHT_ROLL = 10.0
"""Degrees of roll (the last frame's eye line) from which the face is fitted in a copy of the frame turned upright
about it. dlib's 68-point model is trained on roughly upright faces: fitted where it is, a head tilted past 10
degrees drifts, and past 30 it fails the check and is lost (docs/design.md, "Tilted heads and brief losses"). A face
not turned in the last frame is fitted where it is below 10 degrees, as before 0.21.0; one turned, below 7."""
UPRIGHT_HYSTERESIS = 3.0
"""Degrees under :data:`UPRIGHT_ROLL` down to which a face turned in the last frame is turned again: a head near the
bound does not switch between the two fits at every frame (dlib's points are whole pixels; each switch may move them
by one)."""
UPRIGHT_MARGIN = 1.5
"""The turned copy's side, in face-box sides: room for the check's fits from the box shifted by a tenth of its side."""
UPRIGHT_SIDE = 320
"""The face box's side in the turned copy at most (pixels): a close-up's copy is scaled down (averaged over blocks
first, as a face's crop is, so that it does not alias). At full size a 1,000-px face box would cost about
50 ms of PIL's transform a frame; at 320 px, 4-5 ms. dlib's points are whole pixels, so there they are about 3 frame
pixels (0.4 crop pixels) apart for that face."""
COAST_FRAMES = 15
"""A face the tracker loses is looked for from its last pose on each of the next this many frames (half a second at
30 fps, about 1.5 s at the webcam's 10), before the search, which still runs as before: a hand or a blurred frame
passing over a face lost it until the search found it again, and the search fails on such frames at 150-300 ms."""


class OneEuroFilter:
    """The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) on arrays: a low-pass filter whose cut-off rises
    with the speed of the signal, so a still face stops jittering and a fast mouth opening is followed with little lag.

    Each element is filtered independently: ``cutoff = min_cutoff + beta * |smoothed derivative|``.

    Args:
        min_cutoff: cut-off frequency (Hz) when the signal is still; lower is smoother.
        beta: how fast the cut-off rises with speed (per unit of the signal per second); higher is less lag.
        derivative_cutoff: cut-off (Hz) of the derivative's own low-pass.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, derivative_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or derivative_cutoff <= 0 or beta < 0:
            raise ValueError("min_cutoff and derivative_cutoff must be positive and beta non-negative")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.derivative_cutoff = float(derivative_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next value passes unchanged."""
        self._value: np.ndarray | None = None
        self._derivative: np.ndarray | None = None
        self._time: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, interval: float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / interval)

    def __call__(self, value: np.ndarray, time: float) -> np.ndarray:
        """Filter one sample taken at ``time`` seconds (strictly increasing); returns an array of its shape."""
        value = np.asarray(value, dtype=np.float64)
        if self._value is None or self._time is None or time <= self._time:
            self._value, self._derivative, self._time = value.copy(), np.zeros_like(value), time
            return value.copy()
        interval = time - self._time
        derivative = (value - self._value) / interval
        a_derivative = self._alpha(self.derivative_cutoff, interval)
        self._derivative = a_derivative * derivative + (1 - a_derivative) * self._derivative
        cutoff = self.min_cutoff + self.beta * np.abs(self._derivative)
        a_value = self._alpha(cutoff, interval)
        self._value = a_value * value + (1 - a_value) * self._value
        self._time = time
        return self._value.copy()


def landmark_filter(smoothing: float, scale: float) -> OneEuroFilter | None:
    """The One-Euro settings used on landmarks in a crop of ``scale`` pixels (None when ``smoothing`` is 0).

    ``smoothing`` 1 is the default: 1 Hz at rest and a cut-off that rises by 40 Hz per crop side per second of
    motion. Chosen on ``benchmarks/benchmark_animate.py``'s synthetic mouth opening (12 px of a 128-px crop in 3
    frames at 30 fps, 0.3 px noise): no lag after the ramp, still-face jitter about a fifth of the raw landmarks';
    beta 20 gives one frame of lag. Larger ``smoothing`` divides the rest cut-off (smoother, slower to settle).
    """
    if smoothing < 0 or not math.isfinite(smoothing):
        raise ConfigError(f"smoothing must be 0 (off) or more, got {smoothing}")
    if smoothing == 0:
        return None
    return OneEuroFilter(min_cutoff=1.0 / smoothing, beta=40.0 / scale, derivative_cutoff=1.0)


@dataclass
class TrackedFace:
    """One frame's face: 68 landmarks in frame pixels, its box in frame pixels (the box the fit started from; for a face
    fitted in a turned copy, the box around its landmarks) and how it was found ("tracked" or "detected")."""

    landmarks: np.ndarray
    box: tuple[float, float, float, float]
    method: str


class FaceTracker:
    """Follows the largest face of a clip from frame to frame; one lost and searched for again, the face nearest
    where it was (a clip of two people keeps its person). ``most_faces``: the most faces a search found in a frame.

    Args:
        processor: the face processor (its detector, 68-point predictor and ``min_face_size``).
        redetect_every: while lost, run the full face search on one frame in this many (it is the slow part;
            the frames in between count as frames without a face unless the face is found where it last was).
        upright_roll: :data:`UPRIGHT_ROLL` (``math.inf``: every face fitted where it is, as before 0.21.0).
        coast_frames: :data:`COAST_FRAMES` (0: a lost face is left to the search, as before 0.21.0).
    """

    def __init__(
        self,
        processor: FaceProcessor,
        redetect_every: int = 1,
        upright_roll: float = UPRIGHT_ROLL,
        coast_frames: int = COAST_FRAMES,
    ) -> None:
        self.processor = processor
        self.redetect_every = max(1, int(redetect_every))
        self.upright_roll, self.coast_frames = float(upright_roll), max(0, int(coast_frames))
        self._box_from_landmarks: tuple[float, float, float] | None = None  # (dx, dy, side) in landmark-spread units
        self._recent: TrackedFace | None = None  # the last face found
        self._lost_frames = 0  # frames since it was found
        self._upright = False  # whether the last fit from a tracked pose was tried in a turned copy
        self._shifts = (ANCHOR_SHIFT, -ANCHOR_SHIFT)  # the check's shifts, the one that last held a face first
        self.most_faces = 0  # the most faces a search found in one frame

    def reset(self) -> None:
        """Forget the face and the faces counted; the next frame runs the full search."""
        self._recent, self._lost_frames, self._upright, self.most_faces = None, 0, False, 0

    def update(self, frame: np.ndarray) -> TrackedFace | None:
        """The face in ``frame`` ((H, W, 3) uint8 RGB), or None when there is none.

        With a face found in the last ``coast_frames`` + 1 frames, the 68 points are fitted in a box placed the way
        the detector placed it relative to its landmarks, turned upright with them (:data:`UPRIGHT_ROLL`), and
        accepted when the fit is held by a face (:meth:`is_face`); otherwise the full search runs.
        """
        if self._recent is not None and self._lost_frames <= self.coast_frames:
            tracked = self._track(frame, self._recent.landmarks)
            if tracked is not None:
                self._recent, self._lost_frames = tracked, 0
                return tracked
        self._lost_frames += 1
        if (self._lost_frames - 1) % self.redetect_every:
            return None
        return self._detect(frame)

    def _track(self, frame: np.ndarray, last: np.ndarray) -> TrackedFace | None:
        """The face fitted from the ``last`` landmarks' box, or None where the fit is not held by a face; a tilted
        one in a copy of the frame around it turned upright (:func:`upright_copy`)."""
        box = self._box_around(last)
        bound = self.upright_roll - (UPRIGHT_HYSTERESIS if self._upright else 0.0)
        turned = upright_copy(frame, last, box[2] - box[0], bound)
        self._upright = turned is not None
        if turned is None:
            landmarks = self.processor.landmarks68(frame, box)
            return TrackedFace(landmarks, box, "tracked") if self.is_face(frame, box, landmarks) else None
        copy, to_copy = turned
        box = self._box_around(apply_affine(to_copy, last))
        landmarks = self.processor.landmarks68(copy, box)
        if not self.is_face(copy, box, landmarks, scale=math.sqrt(abs(np.linalg.det(to_copy[:, :2])))):
            return None
        landmarks = apply_affine(invert_affine(to_copy), landmarks).astype(np.float32)
        height, width = frame.shape[:2]
        centre = landmarks.mean(axis=0)
        if not (0 <= centre[0] < width and 0 <= centre[1] < height):  # the copy has room the frame has not
            return None
        return TrackedFace(landmarks, self._box_around(landmarks), "tracked")

    def _detect(self, frame: np.ndarray) -> TrackedFace | None:
        try:
            faces = self.processor.find_faces(frame, small_faces=False)  # a frame's search is kept quick
        except AIPGANError:  # no face, face too small, frame too small
            return None
        # the detections whose fit is held by a face (HOG fires now and then on a badge or a pattern)
        faces = [face for face in faces if self.is_face(frame, face.box, face.landmarks)]
        self.most_faces = max(self.most_faces, len(faces))
        if not faces:
            return None
        if self._recent is not None:  # a face lost is looked for where it was: a clip of two people keeps its person
            last = self._recent.landmarks.mean(axis=0)
            faces = sorted(faces, key=lambda face: float(np.linalg.norm(face.landmarks.mean(axis=0) - last)))
        found = faces[0]  # the largest, or the nearest
        centre, spread = _centre_and_spread(found.landmarks)
        x0, y0, x1, y1 = found.box
        self._box_from_landmarks = (
            ((x0 + x1) / 2 - centre[0]) / spread,
            ((y0 + y1) / 2 - centre[1]) / spread,
            max(x1 - x0, y1 - y0) / spread,
        )
        self._recent = TrackedFace(found.landmarks.astype(np.float32), tuple(found.box), "detected")
        self._lost_frames, self._upright = 0, False
        return self._recent

    def _box_around(self, landmarks: np.ndarray) -> tuple[float, float, float, float]:
        centre, spread = _centre_and_spread(landmarks)
        dx, dy, side = self._box_from_landmarks or (0.0, 0.0, 1.2)
        cx, cy, half = centre[0] + dx * spread, centre[1] + dy * spread, side * spread / 2
        return (cx - half, cy - half, cx + half, cy + half)

    def is_face(self, frame: np.ndarray, box: tuple[float, ...], landmarks: np.ndarray, scale: float = 1.0) -> bool:
        """Whether a 68-point fit in ``box`` sits on a face: the box is inside the frame and big enough, the eyes are
        a plausible distance apart, and a fit from a shifted box lands back in place (on an empty or noisy region
        dlib's fit simply follows the box), from one of two opposite shifts (:data:`MAX_ANCHOR_RATIO`). ``scale``:
        ``frame``'s pixels per pixel of the frame the size is judged in (a turned copy scaled down)."""
        height, width = frame.shape[:2]
        x0, y0, x1, y1 = box
        side = x1 - x0
        centre = landmarks.mean(axis=0)
        if side / scale < self.processor.min_face_size or not (0 <= centre[0] < width and 0 <= centre[1] < height):
            return False
        eyes = np.linalg.norm(landmarks[RIGHT_EYE].mean(axis=0) - landmarks[LEFT_EYE].mean(axis=0))
        if not EYE_DISTANCE_RANGE[0] * side <= eyes <= EYE_DISTANCE_RANGE[1] * side:
            return False
        # the second fit only where the first followed its box; the answer does not depend on the order, so the
        # shift that held this face last is tried first (a face that follows the down-right shift does so for a while)
        for fraction in self._shifts:
            if anchor_ratio(self.processor, frame, box, landmarks, fraction) < MAX_ANCHOR_RATIO:
                self._shifts = (fraction, -fraction)
                return True
        return False


def anchor_ratio(
    processor: FaceProcessor, frame: np.ndarray, box: tuple[float, ...], landmarks: np.ndarray, fraction: float
) -> float:
    """How far dlib's 68-point refit from ``box`` shifted diagonally by ``fraction`` of its side follows the shift, as
    a share of it: near 0 where a face holds the fit in place (``landmarks``, the fit in ``box``), about 1 in an
    empty box."""
    x0, y0, x1, y1 = box
    shift = fraction * (x1 - x0)
    moved = processor.landmarks68(frame, (x0 + shift, y0 + shift, x1 + shift, y1 + shift))
    return float(np.linalg.norm(moved - landmarks, axis=1).mean() / (abs(shift) * math.sqrt(2)))


def roll_degrees(landmarks: np.ndarray) -> float:
    """The head's roll in an image: the angle of the line from the right eye's centre to the left eye's (68-point
    scheme; the subject's right eye is on the image's left), in degrees, positive clockwise on screen."""
    line = landmarks[LEFT_EYE].mean(axis=0) - landmarks[RIGHT_EYE].mean(axis=0)
    return math.degrees(math.atan2(float(line[1]), float(line[0])))


def upright_copy(
    frame: np.ndarray, landmarks: np.ndarray, side: float, from_roll: float = UPRIGHT_ROLL
) -> tuple[np.ndarray, np.ndarray] | None:
    """A copy of ``frame`` around the ``landmarks`` (a face whose box is ``side`` pixels wide), turned about their
    centre so that their eye line is level, and the (2, 3) frame -> copy matrix; None where their roll is under
    ``from_roll`` degrees. The copy is :data:`UPRIGHT_MARGIN` box sides wide, scaled down where the box is wider than
    :data:`UPRIGHT_SIDE`, and cut as a face's crop is (:func:`~aipgan_hf.faces.align.warp_to_crop`: only the part of
    the frame it shows is read, block-averaged first where it shrinks, edge pixels repeated outside the frame)."""
    angle = roll_degrees(landmarks)
    if abs(angle) < from_roll:
        return None
    scale = min(1.0, UPRIGHT_SIDE / max(side, 1.0))
    turn = scale * turn_matrix(angle)
    size = max(2, math.ceil(UPRIGHT_MARGIN * side * scale))
    to_copy = np.hstack([turn, ((size - 1) / 2 - turn @ landmarks.mean(axis=0).astype(np.float64))[:, None]])
    return warp_to_crop(frame, to_copy, size), to_copy


def _centre_and_spread(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Landmark centroid and RMS distance from it (a size that does not depend on the expression much)."""
    centre = landmarks.mean(axis=0)
    spread = float(np.sqrt(((landmarks - centre) ** 2).sum(axis=1).mean()))
    return centre, max(spread, 1e-3)
