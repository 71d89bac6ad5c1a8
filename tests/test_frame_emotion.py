"""Each frame's emotion (0.20.0): a driving frame wears the emotion the reader reads around it, topped up by what its
own change already shows, else the clip's resting emotion in full; eased in and out.

The clip is skimage's astronaut (public domain, smiling) moving a few pixels a frame (``smiling_clip``).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from aipgan_hf.faces import image_to_tensor
from aipgan_hf.motion.action_units import ACTION_UNITS, line_intensities, slider_name
from aipgan_hf.motion.emotion import EmotionRead, worn_change
from aipgan_hf.pipeline import AIPGANPipeline
from aipgan_hf.video import animate, probe_clip
from aipgan_hf.video.animate import drive_clip
from aipgan_hf.video.landmarks import ClipLandmarks, track_clip
from aipgan_hf.video.live import LiveAnimator
from aipgan_hf.video.reading import WINDOW, eased, frame_changes, frame_readings, frames_note, topped_up
from benchmarks import benchmark_animate as bench

reading_module = importlib.import_module("aipgan_hf.video.reading")


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


def _track(points: np.ndarray) -> ClipLandmarks:
    return ClipLandmarks(points.astype(np.float32), np.ones(len(points), bool), np.arange(len(points)) / 24.0)


def test_a_frame_reads_as_the_read_frames_within_the_window_together(pipe, smiling_clip, track, monkeypatch):
    readings = frame_readings(pipe, track)
    assert len(readings) == len(track.landmarks)
    for frame in (0, 5, 11):
        near = [i for i in track.read if abs(i - frame) <= WINDOW]
        crops = torch.stack([image_to_tensor(track.crops[i]) for i in near])
        expected = pipe.emotion_reader.read_together(crops)
        assert readings[frame].label == expected.label == "happiness"  # she smiles throughout
        assert readings[frame].probability == pytest.approx(expected.probability, abs=1e-5)
    monkeypatch.setattr(reading_module, "BATCH", 1)  # one crop a call of the reader: the same readings
    one_by_one = frame_readings(pipe, track)
    assert [read.label for read in one_by_one] == [read.label for read in readings]
    np.testing.assert_allclose([r.probability for r in one_by_one], [r.probability for r in readings], atol=1e-5)
    no_crops = track_clip(pipe.processor, probe_clip(smiling_clip), keep_crops=False)
    assert frame_readings(pipe, no_crops) == [None] * len(track.landmarks)


def test_the_frames_read_while_the_clip_is_tracked_read_as_when_read_after(pipe, smiling_clip, track, monkeypatch):
    # animate() reads each read frame's crop in a thread of its own as the first pass keeps it; batches of 2, so that
    # some are read during the pass and the heads are joined across batches
    monkeypatch.setattr(reading_module, "BATCH", 2)
    with reading_module.FrameHeads(pipe.emotion_reader) as kept:
        tracked = track_clip(pipe.processor, probe_clip(smiling_clip), on_read=kept.add)
        assert kept.indices == list(tracked.read) == list(track.read)
        assert frame_readings(pipe, tracked, kept) == frame_readings(pipe, track)


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
    target = np.asarray(pipe.prepare(grace_hopper).landmarks, dtype=np.float64)
    track = _track(np.repeat(target[None], 5, axis=0))  # no frame moves: nothing is topped up
    rest = EmotionRead("sadness", 0.8)
    readings = [
        EmotionRead("anger", 0.9),
        None,
        EmotionRead("neutral", 0.9),
        EmotionRead("surprise", 0.4),
        EmotionRead("sadness", 0.99),  # the resting emotion again: worn as the rest is
    ]
    worn, labels = frame_changes(pipe.shape_model, track, target, target, readings, rest)
    assert labels == ("anger", "sadness", "sadness", "sadness", "sadness")
    for row, read in zip(worn, (readings[0], rest, rest, rest, rest)):
        expected = worn_change(pipe.shape_model, read, target, target, open_lips=False)
        np.testing.assert_allclose(row, expected, atol=1e-9)
    _, labels = frame_changes(pipe.shape_model, track, target, target, readings, None)
    assert labels == ("anger", "", "", "", "sadness")


def test_a_frame_that_frowns_already_gets_less_of_a_read_anger_but_all_of_the_resting_one(pipe, grace_hopper):
    model = pipe.shape_model
    target = np.asarray(pipe.prepare(grace_hopper).landmarks, dtype=np.float64)
    frowning = model.apply(target, 0.5 * model.directions[slider_name("AU4")])
    track = _track(np.stack([target, frowning]))
    anger = EmotionRead("anger", 0.9)
    read, _ = frame_changes(model, track, target, target, [anger, anger], None)
    assert _units(pipe, read[1])["AU4"] == pytest.approx(_units(pipe, read[0])["AU4"] - 0.5, abs=0.1)
    rest, labels = frame_changes(model, track, target, target, [None, None], anger)
    assert labels == ("anger", "anger")
    np.testing.assert_allclose(rest[1], rest[0], err_msg="the resting anger: the frame's frown comes on top of it")


def test_drive_clip_wears_each_frames_reading_and_animate_reports_it(pipe, grace_hopper, smiling_clip, track):
    prepared = pipe.prepare(grace_hopper)
    count = len(track.landmarks)
    angry = [EmotionRead("anger", 0.9)] * count
    plain = drive_clip(pipe, prepared, track)[1]
    _, driving, worn, labels = drive_clip(pipe, prepared, track, read=None, frames=angry)
    assert worn is None and labels == ("anger",) * count
    assert (driving[:, [21, 22], 1] - plain[:, [21, 22], 1]).min() > 1.0, "every frame's inner brows come down"
    half = (
        drive_clip(pipe, prepared, track, frames=angry, strength=0.5)[1]
        - drive_clip(pipe, prepared, track, strength=0.5)[1]
    )
    np.testing.assert_allclose(half, (driving - plain) / 2, atol=0.3)
    assert drive_clip(pipe, prepared, track, relative=False, frames=angry)[3] == ("",) * count
    rest = EmotionRead("happiness", 0.8)
    unread = drive_clip(pipe, prepared, track, read=rest, frames=[None] * count)[1]
    np.testing.assert_allclose(unread, drive_clip(pipe, prepared, track, read=rest)[1], atol=1e-4)  # 0.19.0's
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


def test_the_note_says_what_share_of_the_frames_wears_what_of_its_own():
    assert frames_note(("", "", "", "")) is None
    labels = ("anger",) * 6 + ("happiness",) * 2 + ("",) * 2
    assert frames_note(labels) == "Read frame by frame, the target wears anger in 60% of the frames, happiness in 20%"
    anger = EmotionRead("anger", 0.9)
    assert frames_note(labels, rest=anger) == "Read frame by frame, the target wears happiness in 20% of the frames"
    assert frames_note(("anger",) * 3, rest=anger) is None
    assert frames_note(labels, rest=EmotionRead("anger", 1.0, told=True)) is None, "a named emotion: every frame's"


def test_a_webcam_frame_wears_what_is_read_in_it_and_the_frames_before(pipe, grace_hopper):
    prepared = pipe.prepare(grace_hopper)
    frames = bench.astronaut_frames(4)  # she smiles in every frame
    outputs, animators = {}, {}
    for name, options in (("read", {}), ("off", {"read_emotion": False}), ("absolute", {"relative": False})):
        live = animators[name] = LiveAnimator(prepared, pipe.processor, smoothing=0.0, **options)
        outputs[name] = [np.asarray(live(pipe, frame, at / 10), dtype=np.int16) for at, frame in enumerate(frames)]
    assert [live.emotion for live in animators.values()] == ["happiness", "", ""]
    assert [len(live.recent) for live in animators.values()] == [3, 0, 0], "the last three frames are read"
    assert np.abs(outputs["read"][-1] - outputs["off"][-1]).max() > 40, "the smile read is worn"
    read = animators["read"]
    assert _units(pipe, read.worn)["AU12"] > 0.5, "what is worn is a smile"
    grey = np.full((256, 256, 3), 120, np.uint8)
    read.reset_reference()
    assert (read.emotion, read.worn, len(read.recent)) == ("", None, 0)
    at_rest = np.asarray(pipe.render(prepared, prepared.landmarks).image)
    assert np.array_equal(np.asarray(read(pipe, grey, 1.0)), at_rest), "no face since the reset: the target at rest"
    read(pipe, frames[0], 1.1)
    assert read.emotion == "happiness" and len(read.recent) == 1, "the window starts over after a frame with no face"
    read.read_emotion = False  # a setting changed between frames: nothing read is worn any more
    read(pipe, grey, 1.2)
    assert (read.emotion, read.worn, len(read.recent)) == ("", None, 0)
