"""Each frame's emotion (0.20.0): a driving frame wears the emotion the reader reads around it, else the clip's resting
emotion, topped up by what the frame's own change already shows of it.

The clip is skimage's astronaut (public domain, smiling) moving a few pixels a frame (``smiling_clip``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aipgan_hf.faces import image_to_tensor
from aipgan_hf.motion.action_units import ACTION_UNITS, line_intensities, slider_name
from aipgan_hf.motion.emotion import EmotionRead, worn_change
from aipgan_hf.pipeline import AIPGANPipeline
from aipgan_hf.video import animate, probe_clip
from aipgan_hf.video.animate import drive_clip
from aipgan_hf.video.landmarks import ClipLandmarks, reference_landmarks, track_clip
from aipgan_hf.video.reading import WINDOW, eased, frame_changes, frame_readings, frames_note, topped_up


@pytest.fixture(scope="module")
def pipe():
    return AIPGANPipeline.from_pretrained()


@pytest.fixture(scope="module")
def track(pipe, smiling_clip):
    return track_clip(pipe.processor, probe_clip(smiling_clip))


def _units(pipe, coefficients: np.ndarray) -> dict[str, float]:
    basis = pipe.shape_model.expression_basis.reshape(pipe.shape_model.num_expression, -1)
    motion = (np.atleast_2d(coefficients) @ basis).reshape(-1, 68, 2)
    return dict(zip(ACTION_UNITS, line_intensities(motion, pipe.shape_model.mean)[0]))


def test_a_frame_reads_as_the_read_frames_within_the_window_together(pipe, smiling_clip, track):
    readings = frame_readings(pipe, track)
    assert len(readings) == len(track.landmarks)
    for frame in (0, 5, 11):
        near = [i for i in track.read if abs(i - frame) <= WINDOW]
        crops = torch.stack([image_to_tensor(track.crops[i]) for i in near])
        expected = pipe.emotion_reader.read_together(crops)
        assert readings[frame].label == expected.label == "happiness"  # she smiles throughout
        assert readings[frame].probability == pytest.approx(expected.probability, abs=1e-5)
    no_crops = track_clip(pipe.processor, probe_clip(smiling_clip), keep_crops=False)
    assert frame_readings(pipe, no_crops) == [None] * len(track.landmarks)


def test_what_a_frame_shows_already_is_not_worn_again(pipe):
    model = pipe.shape_model
    anger = model.presets["anger"][None]
    frown = model.directions[slider_name("AU4")][None]
    assert np.array_equal(topped_up(model, anger, np.zeros_like(anger)), anger), "a frame that shows none of it"
    half = _units(pipe, topped_up(model, anger, 0.5 * frown))
    assert half["AU4"] == pytest.approx(_units(pipe, anger)["AU4"] - 0.5, abs=0.05)
    more = _units(pipe, topped_up(model, anger, 3.0 * frown))
    assert more["AU4"] == pytest.approx(0.0, abs=0.05), "a deeper frown than worn: none is added, none taken away"
    assert more["AU7"] == pytest.approx(_units(pipe, anger)["AU7"], abs=0.05), "the other units are still worn"


def test_each_frame_wears_its_own_reading_else_the_clips_resting_one(pipe, grace_hopper):
    prepared = pipe.prepare(grace_hopper)
    target = np.asarray(prepared.landmarks, dtype=np.float64)
    still = np.repeat(target[None], 4, axis=0).astype(np.float32)  # no frame moves: nothing is topped up
    track = ClipLandmarks(still, np.ones(4, bool), np.arange(4) / 24.0)
    rest = EmotionRead("sadness", 0.8)
    readings = [EmotionRead("anger", 0.9), None, EmotionRead("neutral", 0.9), EmotionRead("surprise", 0.4)]
    worn, labels = frame_changes(pipe.shape_model, track, target, target, readings, rest)
    assert labels == ("anger", "sadness", "sadness", "sadness")
    for row, read in zip(worn, (readings[0], rest, rest, rest)):
        expected = worn_change(pipe.shape_model, read, target, target, open_lips=False)
        np.testing.assert_allclose(row, expected, atol=1e-9)
    _, labels = frame_changes(pipe.shape_model, track, target, target, readings, None)
    assert labels == ("anger", "", "", "")


def test_drive_clip_wears_each_frames_reading_and_animate_reports_it(pipe, grace_hopper, smiling_clip, track):
    prepared = pipe.prepare(grace_hopper)
    readings = frame_readings(pipe, track)
    angry = [EmotionRead("anger", 0.9)] * len(readings)
    index, driving, worn, labels = drive_clip(pipe, prepared, track, read=None, frames=angry, strength=0.5)
    assert worn is None and labels == ("anger",) * len(readings)
    _, reference = reference_landmarks(track)
    target = np.asarray(prepared.landmarks, dtype=np.float64)
    changes, _ = frame_changes(pipe.shape_model, track, reference.astype(np.float64), target, angry, None)
    expected = pipe.shape_model.drive(
        target, track.landmarks, reference_landmarks=reference, strength=0.5, offset=eased(changes) * 0.5
    )
    np.testing.assert_allclose(driving, expected, atol=1e-4)
    assert drive_clip(pipe, prepared, track, relative=False, frames=angry)[3] == ("",) * len(readings)
    read = animate(pipe, smiling_clip, grace_hopper, paste_back=False)
    assert read.frame_emotions == ("happiness",) * read.frames
    assert animate(pipe, smiling_clip, grace_hopper, paste_back=False, read_emotion=False).frame_emotions == ("",) * 12
    named = animate(pipe, smiling_clip, grace_hopper, paste_back=False, source_emotion="anger")
    assert named.frame_emotions == ("anger",) * 12, "a named emotion is worn under every frame"


def test_a_frame_that_comes_to_wear_another_emotion_eases_into_it():
    step = np.repeat([[0.0, 1.0], [2.0, 1.0]], [20, 20], axis=0)  # a switch at frame 20; the second unit holds
    smooth = eased(step, half=3)
    np.testing.assert_allclose(smooth[:17], step[:17])
    np.testing.assert_allclose(smooth[23:], step[23:])
    np.testing.assert_allclose(smooth[17:23, 0], np.arange(1, 7) * 2 / 7)  # a ramp over seven frames
    np.testing.assert_allclose(smooth[:, 1], 1.0)
    assert np.abs(np.diff(smooth[:, 0])).max() == pytest.approx(2 / 7)
    np.testing.assert_allclose(eased(step[18:21], half=3), [[4 / 7, 1.0], [6 / 7, 1.0], [8 / 7, 1.0]])  # a short clip


def test_the_note_says_what_share_of_the_frames_wears_what():
    assert frames_note(("", "", "", "")) is None
    labels = ("anger",) * 6 + ("happiness",) * 2 + ("",) * 2
    assert frames_note(labels) == "Read frame by frame, the target wears anger in 60% of the frames, happiness in 20%"
