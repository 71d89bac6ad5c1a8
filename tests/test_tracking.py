"""The video tracker (aipgan_hf/video/tracking.py): a lost face found again, where it was and by the search; a tilted
head fitted in a copy turned upright (0.21.0). The tracker on real clips is in test_animate.py (data tests)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from aipgan_hf.faces import FaceProcessor, apply_affine, invert_affine
from aipgan_hf.faces.detect import rotate_image
from aipgan_hf.video import probe_clip, tracking
from aipgan_hf.video.landmarks import track_clip
from aipgan_hf.video.tracking import FaceTracker, roll_degrees, upright_copy
from benchmarks import benchmark_animate as bench


@pytest.fixture(scope="module")
def processor() -> FaceProcessor:
    return FaceProcessor(resolution=64)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return bench.astronaut_frames(1, amplitude=0)[0]


def test_tracker_loses_an_empty_box_and_finds_the_face_again(processor, face):
    tracker = FaceTracker(processor)
    first = tracker.update(face)
    assert first is not None and first.method == "detected"
    shifted = np.roll(face, (3, -4), axis=(0, 1))
    second = tracker.update(shifted)
    assert second.method == "tracked"
    np.testing.assert_allclose((second.landmarks - first.landmarks).mean(axis=0), (-4, 3), atol=1.5)
    assert tracker.update(np.full_like(face, 120)) is None
    noise = np.random.default_rng(0).integers(0, 256, face.shape, dtype=np.uint8)
    assert tracker.update(noise) is None
    # lost for two frames: looked for where it last was, before the search
    again = tracker.update(shifted)
    assert again.method == "tracked"
    np.testing.assert_allclose(again.landmarks, second.landmarks, atol=1.0)
    for _ in range(tracking.COAST_FRAMES):
        assert tracker.update(noise) is None
    assert tracker.update(shifted).method == "tracked"  # still within COAST_FRAMES of the last face
    for _ in range(tracking.COAST_FRAMES + 1):
        assert tracker.update(noise) is None
    assert tracker.update(face).method == "detected"  # lost for longer: only the search finds it
    assert tracker.update(shifted).method == "tracked"
    tracker.reset()
    assert tracker.update(shifted).method == "detected"  # forgotten: searched for


def _tilting(tracker: FaceTracker, face: np.ndarray, truth: np.ndarray, sign: int) -> tuple[list[float], list[str]]:
    """Each frame's error (mean point distance over the eye distance; inf: lost) and how it was found, for ``face``
    turned by 0, 5, ..., 40 degrees (``sign``: which way) one frame after the other, against ``truth`` (its upright
    landmarks) turned with it."""
    errors, methods = [], []
    for degrees in range(0, 41, 5):
        turned, to_turned = rotate_image(face, sign * degrees)
        expected = apply_affine(to_turned, truth)
        found = tracker.update(turned)
        eyes = np.linalg.norm(expected[36:42].mean(0) - expected[42:48].mean(0))
        methods.append("" if found is None else found.method)
        errors.append(
            np.inf if found is None else float(np.linalg.norm(found.landmarks - expected, axis=1).mean() / eyes)
        )
    return errors, methods


@pytest.mark.parametrize("sign", [1, -1])
def test_a_head_tilting_to_40_degrees_is_tracked_upright_and_not_lost(processor, face, sign):
    """dlib's 68-point model is trained on roughly upright faces: fitted where it is, a head tilting past 30 degrees
    drifts and is lost; fitted in a copy turned upright it is tracked (not found again by the search, which tries
    turned copies too) as close as the upright face's own fit."""
    truth = processor.find_faces(face)[0].landmarks
    upright, methods = _tilting(FaceTracker(processor), face, truth, sign)
    # from 10 degrees on (the first turn also moves the face, with the canvas that holds the turned photo)
    assert max(upright) < 0.04 and methods[2:] == ["tracked"] * 7, (upright, methods)
    as_before, _ = _tilting(FaceTracker(processor, upright_roll=math.inf, coast_frames=0), face, truth, sign)
    assert max(as_before[-2:]) > 2 * max(upright), (as_before, upright)


def test_a_face_turned_upright_stays_turned_down_to_the_hold(processor, face, monkeypatch):
    """From 10 degrees the fit is turned; a face turned in the last frame stays turned down to 7 (no switching at
    every frame about the bound); one at 5 is fitted where it is, and stays so up to 10."""
    own = roll_degrees(processor.find_faces(face)[0].landmarks)
    used = []

    def recorded(*args, **kwargs):
        turned = upright_copy(*args, **kwargs)
        used.append(turned is not None)
        return turned

    monkeypatch.setattr(tracking, "upright_copy", recorded)
    tracker = FaceTracker(processor)
    for roll in (0.0, 15.0, 8.5, 8.5, 5.0, 8.5, 8.5):  # the decision reads the last frame's roll
        assert tracker.update(rotate_image(face, own + roll)[0]) is not None
    assert used == [False, True, True, True, False, False]


@pytest.mark.parametrize("scale", [1, 4])
def test_the_upright_copy_levels_the_face_where_it_is_in_the_frame(processor, face, scale):
    """The face fitted in the copy lands on the frame's face turned level (a face turned the wrong way, or placed
    elsewhere, would not hold the fit there); a close-up's copy is scaled down to UPRIGHT_SIDE."""
    from PIL import Image

    upright = processor.find_faces(face)[0]
    side = upright.box[2] - upright.box[0]
    assert upright_copy(face, upright.landmarks, side) is None  # level enough: fitted where it is
    turned, to_turned = rotate_image(face, 30.0)
    turned = np.asarray(Image.fromarray(turned).resize((turned.shape[1] * scale, turned.shape[0] * scale)))
    landmarks = apply_affine(to_turned, upright.landmarks) * scale + (scale - 1) / 2  # pixel centres, scaled
    assert roll_degrees(landmarks) == pytest.approx(roll_degrees(upright.landmarks) - 30.0, abs=0.01)
    frame = np.zeros((2000, 2000, 3), np.uint8)  # the face far from the frame's corner
    frame[100 : 100 + turned.shape[0], 200 : 200 + turned.shape[1]] = turned
    copy, to_copy = upright_copy(frame, landmarks + (200, 100), side * scale)
    assert copy.shape == (math.ceil(tracking.UPRIGHT_MARGIN * min(side * scale, tracking.UPRIGHT_SIDE)),) * 2 + (3,)
    levelled = apply_affine(to_copy, landmarks + (200, 100))
    assert abs(roll_degrees(levelled)) < 0.01
    fitted = processor.find_faces(copy)[0].landmarks
    eyes = np.linalg.norm(levelled[36:42].mean(0) - levelled[42:48].mean(0))
    assert np.linalg.norm(fitted - levelled, axis=1).mean() < 0.05 * eyes


SHIFT = 60
"""How far (copy pixels) the fit is moved towards the turned copy's left edge."""


def test_a_fit_in_the_copy_that_lands_outside_the_frame_is_not_taken(processor, face, monkeypatch):
    """The turned copy has room the frame has not: a fit the check holds there, centred inside the copy but on a part
    of it outside the frame, is no face of this frame, and the search runs instead."""
    tilted = rotate_image(face, roll_degrees(processor.find_faces(face)[0].landmarks) + 20.0)[0][:, 120:]
    tracker, turned, copy_of = FaceTracker(processor, redetect_every=1), [], tracking.upright_copy
    assert tracker.update(tilted).method == "detected"  # its face near the frame's left edge
    fit, fitted = processor.landmarks68, []

    def shifted(image, box):  # the fit moved towards the copy's left edge, which lies outside the frame
        fitted.append((image.shape, fit(image, box) - np.float32([SHIFT, 0])))
        return fitted[-1][1]

    monkeypatch.setattr(tracker, "is_face", lambda *args, **kwargs: True)  # any fit is held
    monkeypatch.setattr(processor, "landmarks68", shifted)
    monkeypatch.setattr(
        tracking, "upright_copy", lambda *args, **kwargs: turned.append(copy_of(*args, **kwargs)) or turned[-1]
    )
    found = tracker.update(tilted)
    (shape, points), (_, to_copy) = fitted[0], turned[0]
    centre = points.mean(axis=0)
    assert 0 <= centre[0] < shape[1] and 0 <= centre[1] < shape[0]  # inside the copy ...
    assert apply_affine(invert_affine(to_copy), centre[None])[0, 0] < 0  # ... not inside the frame
    assert found.method == "detected"
    assert 0 <= found.landmarks.mean(axis=0)[0] < tilted.shape[1]  # the frame's face, found by the search


def test_track_clip_runs_the_callers_tracker_from_scratch(processor, tmp_path):
    clip = probe_clip(bench.write_clip(tmp_path / "clip.mp4", bench.astronaut_frames(6), fps=24, audio_hz=None))
    methods = []

    class Recorded(FaceTracker):
        def update(self, frame):
            found = super().update(frame)
            methods.append("" if found is None else found.method)
            return found

    tracker = Recorded(processor, upright_roll=math.inf, coast_frames=0)
    tracker.update(bench.astronaut_frames(1)[0])  # a face from before: forgotten when the clip starts
    methods.clear()
    given = track_clip(processor, clip, 0.0, None, keep_crops=False, tracker=tracker)
    assert methods == ["detected"] + ["tracked"] * 5
    shipped = track_clip(processor, clip, 0.0, None, keep_crops=False)  # upright: the same fits
    np.testing.assert_array_equal(given.landmarks, shipped.landmarks)
    with pytest.raises(ValueError, match="processor"):
        track_clip(FaceProcessor(resolution=64), clip, tracker=tracker)


def test_a_face_lost_is_searched_for_where_it_was_not_the_largest(processor, face):
    """A clip of two people: the one followed, lost for a frame, is found again, not the larger one beside it."""
    small = np.asarray(Image.fromarray(face).resize((200, 200)))
    width = face.shape[1] + 200
    two = np.full((face.shape[0], width, 3), 120, np.uint8)
    two[:, : face.shape[1]] = face  # the larger face, left
    two[:200, face.shape[1] :] = small  # the smaller, right
    alone = np.full_like(two, 120)
    alone[:200, face.shape[1] :] = small
    tracker = FaceTracker(processor, coast_frames=0)
    assert tracker.update(alone).landmarks[:, 0].mean() > face.shape[1]
    assert tracker.update(np.full_like(two, 120)) is None  # lost
    found = tracker.update(two)
    assert found.method == "detected" and found.landmarks[:, 0].mean() > face.shape[1], "it took the larger face"
    assert tracker.most_faces == 2
    tracker.reset()  # another clip counts its own
    assert tracker.most_faces == 0
    fresh = FaceTracker(processor)
    assert fresh.update(two).landmarks[:, 0].mean() < face.shape[1], "from the start, the largest is followed"
