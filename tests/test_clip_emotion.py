"""A clip's resting emotion (0.19.0): relative motion loses the reference frame's own expression, so where the reader
is sure of the reference frames' emotion, and reads it in the clip as a whole too, the target wears it under every
frame; a user may name it or turn it off.

The clip is skimage's astronaut (public domain, smiling) moving a few pixels a frame, as in tests/test_animate.py.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from aipgan_hf.errors import ConfigError
from aipgan_hf.faces.align import warp_to_crop
from aipgan_hf.motion.emotion import EmotionRead, worn_change
from aipgan_hf.pipeline import AIPGANPipeline
from aipgan_hf.video import animate, probe_clip, read_frames
from aipgan_hf.video.animate import drive_clip
from aipgan_hf.video.landmarks import (
    READ_EVERY,
    REFERENCE_FRAMES,
    SAMPLED_FRAMES,
    ClipLandmarks,
    reference_frames,
    track_clip,
)
from aipgan_hf.video.reading import ClipReading, clip_reading
from benchmarks import benchmark_animate as bench

landmarks_module = importlib.import_module("aipgan_hf.video.landmarks")


@pytest.fixture(scope="module")
def pipe():
    return AIPGANPipeline.from_pretrained()


@pytest.fixture(scope="module")
def clip(smiling_clip):  # the astronaut smiling in every frame
    return smiling_clip


@pytest.fixture(scope="module")
def track(pipe, clip):
    return track_clip(pipe.processor, probe_clip(clip))


def test_the_first_pass_keeps_the_crops_of_the_reference_sampled_and_read_frames_and_no_others(pipe, clip, track):
    frames = dict(enumerate(frame for frame, _ in read_frames(probe_clip(clip))))
    assert list(track.read) == list(range(0, len(frames), READ_EVERY))
    kept = [*reference_frames(track, "neutral"), *reference_frames(track, "first"), *track.sampled, *track.read]
    for index in kept:
        expected = warp_to_crop(frames[int(index)], track.matrices[index], pipe.processor.resolution)
        assert np.array_equal(track.crops[int(index)], expected)
    assert sorted(track.crops) == sorted({int(index) for index in kept})
    assert list(track.sampled) == list(range(len(frames))), "a clip shorter than SAMPLED_FRAMES: every frame"


def test_a_long_clips_sample_is_spread_over_it_and_read(pipe, tmp_path):
    long = bench.write_clip(tmp_path / "long.mp4", bench.astronaut_frames(60, size=96), fps=24, audio_hz=None)
    track = track_clip(pipe.processor, probe_clip(long))
    assert list(track.sampled) == list(range(0, 60, 60 // SAMPLED_FRAMES))
    assert set(reference_frames(track).tolist()) <= set(track.crops)
    assert len(track.crops) <= len(track.sampled) + len(track.read) + REFERENCE_FRAMES + 1
    assert clip_reading(pipe, track).kept.label == "happiness"
    assert track_clip(pipe.processor, probe_clip(long), keep_crops=False).crops == {}


def _offered(openings: list[float], step: int, faces: set[int], monkeypatch) -> tuple:
    """A :class:`_KeptCrops` offered frames whose mouths open as ``openings`` (frames not in ``faces`` have none),
    and the track :func:`reference_frames` ranks."""
    monkeypatch.setattr(landmarks_module, "warp_to_crop", lambda frame, matrix, resolution: frame)
    kept = landmarks_module._KeptCrops(resolution=8, step=step)
    for index, opening in enumerate(openings):
        if index in faces:
            kept.offer(index, np.full((8, 8, 3), index % 256, np.uint8), np.eye(2, 3), opening)
    found = np.array([index in faces for index in range(len(openings))])
    values = np.where(found, openings, np.nan)
    points = np.zeros((len(openings), 68, 2), np.float32)
    return kept, ClipLandmarks(points, found, np.arange(len(openings)) / 24.0, openings=values)


def test_the_kept_crops_are_the_reference_frames_ties_to_the_earlier(monkeypatch):
    """Openings with ties, fed one frame at a time (the first without a face, a step of 3): the crops kept are those
    of the frames reference_frames ranks from the whole clip, the first frame with a face, and the samples."""
    openings = [0.0, 0.5, 0.2, 0.3, 0.2, 0.9, 0.1, 0.2, 0.3, 0.05, 0.2, 0.2]
    kept, track = _offered(openings, 3, set(range(1, len(openings))), monkeypatch)
    chosen = reference_frames(track)
    assert sorted(chosen.tolist()) == [2, 4, 6, 7, 9]  # 0.05, 0.1, then the three earliest 0.2s
    assert kept.sampled == [3, 6, 9]  # frame 0 has no face
    assert sorted(kept.crops) == sorted({1, 3, *chosen.tolist()}), "frame 3: sampled, though too open to be kept"
    assert all(int(kept.crops[index][0, 0, 0]) == index for index in kept.crops)


def test_a_sample_of_a_clip_of_unknown_length_thins_out_evenly(monkeypatch):
    """A file that gives no length starts with a step of 1: whenever 48 samples are kept, every other one goes."""
    openings = list(np.linspace(0.3, 0.1, 500))  # the mouth closes slowly: the last five frames are the reference
    kept, track = _offered(openings, 1, set(range(500)) - {0}, monkeypatch)
    assert kept.step == 16 and kept.sampled == list(range(16, 500, 16))
    assert kept.read == list(range(READ_EVERY, 500, READ_EVERY))
    assert sorted(kept.crops) == sorted({1, *kept.sampled, *kept.read, *range(495, 500)})
    assert sorted(reference_frames(track).tolist()) == list(range(495, 500))


def test_a_clip_whose_resting_face_reads_an_emotion_gives_it_to_every_frame(pipe, grace_hopper, track):
    prepared = pipe.prepare(grace_hopper)
    reading = clip_reading(pipe, track)
    read = reading.kept
    assert read == reading.rest and read.label == "happiness" and read.probability > 0.5  # she smiles throughout
    reference_index, worn_driving, worn, labels = drive_clip(pipe, prepared, track, read=read)
    plain = drive_clip(pipe, prepared, track)
    assert worn == read and plain[2] is None and plain[0] == reference_index
    assert labels == ("happiness",) * len(track.landmarks) and plain[3] == ("",) * len(track.landmarks)
    reference = track.landmarks[reference_frames(track)].mean(axis=0).astype(np.float64)
    target = np.asarray(prepared.landmarks, dtype=np.float64)
    resting = worn_change(pipe.shape_model, read, reference, target, open_lips=False)
    expected = pipe.shape_model.drive(target, track.landmarks, reference_landmarks=reference, offset=resting)
    np.testing.assert_allclose(worn_driving, expected, atol=1e-4)
    assert np.abs(worn_driving - plain[1]).max() > 0.5, "the completed smile moves the target"
    assert np.array_equal(plain[1], drive_clip(pipe, prepared, track, read=EmotionRead("happiness", 0.4))[1])
    still = drive_clip(pipe, prepared, track, strength=0.0, read=read)
    assert still[2] is None and np.array_equal(still[1], np.broadcast_to(prepared.landmarks, still[1].shape))
    absolute = drive_clip(pipe, prepared, track, relative=False, read=read)
    assert absolute[2] is None, "absolute motion keeps the reference's expression itself"


def test_animate_reports_the_emotion_worn_and_a_named_one_in_its_place(pipe, clip, grace_hopper):
    read = animate(pipe, clip, grace_hopper, paste_back=False)
    assert read.emotion is not None and read.emotion == read.reading and not read.emotion.told
    off = animate(pipe, clip, grace_hopper, paste_back=False, read_emotion=False)
    assert off.emotion is None and off.reading is None
    named = animate(pipe, clip, grace_hopper, paste_back=False, source_emotion="anger")
    assert named.emotion == EmotionRead("anger", 1.0, told=True) and named.reading is None
    frames = [np.asarray(result.images[6], dtype=np.int16) for result in (read, off, named)]
    assert np.abs(frames[0] - frames[1]).max() > 40 and np.abs(frames[2] - frames[0]).max() > 40


def test_a_resting_face_the_clip_as_a_whole_does_not_share_is_not_kept():
    rest = EmotionRead("sadness", 0.8, "anger")
    assert ClipReading(rest, EmotionRead("sadness", 0.6)).kept == rest
    assert ClipReading(rest, EmotionRead("happiness", 0.9)).kept is None, "a talker's pressed lips, smiling otherwise"
    assert ClipReading(rest, EmotionRead("sadness", 0.4)).kept is None, "the clip as a whole is not sure"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"source_emotion": "joy"}, "unknown source_emotion 'joy'; this checkpoint has: anger"),
        ({"source_emotion": "anger", "relative": False}, "worn under relative motion only"),
        ({"source_emotion": "anger", "read_emotion": False}, "read_emotion=False turns off"),
    ],
)
def test_a_named_emotion_nothing_would_wear_is_refused_before_the_clip_is_read(
    pipe, grace_hopper, tmp_path, options, message
):
    with pytest.raises(ConfigError, match=message):
        animate(pipe, tmp_path / "no such clip.mp4", grace_hopper, **options)
