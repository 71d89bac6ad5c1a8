"""aipgan_hf.video: clip I/O, tracking, the One-Euro filter and the frame loop.

Clips are made in the tests with PyAV from skimage's astronaut (public domain) moving a few pixels a frame, with a
sine tone as audio. The loop is tested first with a tiny stand-in pipeline (it records what it is asked to render),
then with the bundled checkpoint and a clip from ../shared/data/videos.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
from PIL import Image

from aipgan_hf.errors import ConfigError
from aipgan_hf.faces import FaceProcessor, load_image
from aipgan_hf.pipeline import AIPGANPipeline
from aipgan_hf.video import (
    InvalidVideoError,
    NoFaceInVideoError,
    NoVideoStreamError,
    OneEuroFilter,
    VideoTooLargeError,
    VideoTooLongError,
    animate,
    mouth_opening,
    probe_clip,
    read_frames,
)
from aipgan_hf.video.frames import RENDER_BATCH, driving_faces, reads_driving_mouth
from aipgan_hf.video.landmarks import ClipLandmarks, reference_landmarks, track_clip
from aipgan_hf.video.live import LiveAnimator
from aipgan_hf.video.tracking import FaceTracker, landmark_filter
from aipgan_hf.video.writer import BackgroundEncoder, ClipWriter
from benchmarks import benchmark_animate as bench

FPS = 24
FRAMES = 20
animate_module = importlib.import_module("aipgan_hf.video.animate")  # the module, not the function of that name
landmarks_module = importlib.import_module("aipgan_hf.video.landmarks")
frames_module = importlib.import_module("aipgan_hf.video.frames")


# ----------------------------------------------------------------------------------------------- stand-ins
class FakeShapeModel:
    """``drive`` as the contract defines it, on raw crop coordinates instead of expression coefficients."""

    directions = {"smile": np.array([1.0])}

    def drive(self, target, source, reference_landmarks=None, strength=1.0, offset=None):
        reference = target if reference_landmarks is None else reference_landmarks
        driven = np.asarray(target) + (np.asarray(source) - reference) * strength
        return driven + (0.0 if offset is None else float(offset[0]))

    def offset(self, sliders):
        if not sliders:
            return None
        if set(sliders) - set(self.directions):
            raise ValueError(f"unknown expression slider(s) {sorted(set(sliders) - set(self.directions))}")
        return sum(value * self.directions[name] for name, value in sliders.items())


class FakePipeline:
    """prepare / render / shape_model / processor with no network: frames are the target photo. ``render`` runs in
    two threads at once in ``animate``: what it records is in the order the calls came, not always the clip's."""

    resolution = 64
    emotion_reader = None  # no reading: the frames' changes alone (tests/test_clip_emotion.py reads)

    def __init__(self, fail_at: int | None = None):
        self.processor = FaceProcessor(resolution=64)
        self.sources: list = []  # what each render was given for the driving frames' mouths
        self.mouths: list[str] = []
        self.shape_model = FakeShapeModel()
        self.rendered: list[np.ndarray] = []
        self.fail_at = fail_at
        self.lock = threading.Lock()

    expression_offset = AIPGANPipeline.expression_offset  # the real slider checks, on the fake shape model

    def prepare(self, target, face_index=None, return_intrinsic=False, photo_texture=True):
        photo = load_image(target)
        face = self.processor.align(photo, face_index=face_index)
        return SimpleNamespace(photo=photo, face=face, landmarks=face.crop_landmarks, warper=None)

    def render(self, prepared, driving_landmarks, paste_back=True, mouth="source", sources=None):
        driving = np.asarray(driving_landmarks)
        results = []
        with self.lock:
            self.sources.append(sources)
            self.mouths.append(mouth)
            for landmarks in driving[None] if driving.ndim == 2 else driving:
                if self.fail_at is not None and len(self.rendered) == self.fail_at:
                    raise RuntimeError("render failed on purpose")
                self.rendered.append(np.asarray(landmarks))
                results.append(
                    SimpleNamespace(image=Image.fromarray(prepared.photo if paste_back else prepared.face.crop))
                )
        return results[0] if driving.ndim == 2 else results


# ----------------------------------------------------------------------------------------------- clips
@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    moving = bench.astronaut_frames(FRAMES)
    grey = [np.full((256, 256, 3), 120, np.uint8)] * 6
    paths = {
        "moving": bench.write_clip(folder / "moving.mp4", moving, fps=FPS),
        "pcm": bench.write_clip(folder / "pcm.mov", moving[:10], fps=FPS, container="mov", audio_codec="pcm_s16le"),
        "mp3": bench.write_clip(folder / "mp3.mp4", moving[:10], fps=FPS, audio_codec="mp3"),
        "gap": bench.write_clip(folder / "gap.mp4", moving[:5] + grey + moving[5:10], fps=FPS, audio_hz=None),
        "no_face": bench.write_clip(folder / "no face.mp4", grey, fps=FPS),
        "audio_only": bench.write_clip(folder / "voice.m4a", [], audio_hz=300.0),
        "long": bench.write_clip(folder / "long.mp4", bench.astronaut_frames(3 * FPS, size=64), fps=FPS, audio_hz=None),
        "tiny": bench.write_clip(folder / "tiny.mp4", [np.zeros((16, 16, 3), np.uint8)] * 3, fps=FPS, audio_hz=None),
        "text": folder / "notes.mp4",
        "target": folder / "target.png",
    }
    paths["text"].write_text("a shopping list, not a video\n")
    paths["binary"] = folder / "noise.mp4"
    paths["binary"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    paths["truncated"] = folder / "cut.mp4"
    paths["truncated"].write_bytes(paths["moving"].read_bytes()[:2000])  # its header cut off
    Image.fromarray(bench.astronaut_frames(1, amplitude=0)[0]).save(paths["target"])
    return paths


def _decoded_frames(path: Path) -> int:
    return sum(1 for _ in read_frames(probe_clip(path)))


def _audio(path: Path) -> tuple[str, float] | None:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        return stream.codec_context.codec.canonical_name, float(stream.duration * stream.time_base)


@pytest.mark.parametrize(
    "clip, audio_codec, written",
    [("moving", "aac", "aac"), ("pcm", "pcm_s16le", "aac"), ("mp3", "mp3", "mp3")],
    ids=["aac copied", "pcm to aac", "mp3 copied"],
)
def test_output_keeps_frames_fps_and_audio(clips, tmp_path, clip, audio_codec, written):
    driving = clips[clip]
    assert probe_clip(driving).audio_codec == audio_codec
    output = tmp_path / "out.mp4"
    result = animate(FakePipeline(), driving, clips["target"], output=output)
    frames = _decoded_frames(driving)
    assert result.frames == frames and _decoded_frames(output) == frames
    info = probe_clip(output)
    assert info.fps == FPS and result.fps == FPS
    assert (info.width, info.height) == (256, 256)
    codec, seconds = _audio(output)
    assert codec == written
    assert abs(seconds - frames / FPS) < 0.15, seconds
    assert result.output == output and result.images is None and result.frames_without_face == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporary file left
    with av.open(str(output)) as container:  # stamped as edited, as photos are
        assert container.metadata["description"].startswith("Edited with aipgan-hf")
        assert "(expression driven by a video): this face's expression is synthetic" in container.metadata["comment"]


def test_a_clip_whose_frame_rate_varies_keeps_each_frames_time(clips, tmp_path):
    """A phone slows its frame rate in low light: here 6 frames 100 ms apart, then 8 frames 20 ms apart. Written at
    the clip's average rate, the later frames would play early, away from their sound."""
    from fractions import Fraction

    milliseconds = [100 * k for k in range(6)] + [600 + 20 * k for k in range(8)]
    driving = tmp_path / "slowed.mp4"
    with av.open(str(driving), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 256, 256, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for frame, at in zip(bench.astronaut_frames(len(milliseconds)), milliseconds, strict=True):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = at, Fraction(1, 1000)
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    output = tmp_path / "out.mp4"
    animate(FakePipeline(), driving, clips["target"], output=output)
    with av.open(str(output)) as container:
        written = [float(frame.time) for frame in container.decode(video=0)]
    np.testing.assert_allclose(written, np.array(milliseconds) / 1000, atol=1e-3)


def test_side_by_side_puts_the_driving_clip_left_of_the_result(clips, tmp_path):
    pipe = FakePipeline()
    result = animate(pipe, clips["moving"], clips["target"], side_by_side=True, paste_back=False)
    assert len(result.images) == FRAMES
    crop = pipe.processor.resolution
    first = result.images[0]
    assert first.shape == (crop, 2 * crop, 3)  # driving 256x256 scaled to the 64-px result's height
    driving = next(read_frames(probe_clip(clips["moving"])))[0]
    scaled = np.asarray(Image.fromarray(driving).resize((crop, crop), Image.Resampling.BILINEAR)).astype(int)
    assert np.abs(first[:, :crop].astype(int) - scaled).mean() < 3


def test_relative_motion_starts_from_the_reference_and_tracks_without_redetecting(clips, monkeypatch):
    pipe = FakePipeline()
    searches = []
    original = pipe.processor.find_faces
    monkeypatch.setattr(
        pipe.processor, "find_faces", lambda image, **options: searches.append(1) or original(image, **options)
    )
    result = animate(pipe, clips["moving"], clips["target"], reference="first", smoothing=0)
    prepared = pipe.prepare(clips["target"])
    assert result.reference_frame == 0
    np.testing.assert_allclose(result.driving_landmarks[0], prepared.landmarks, atol=1e-4)
    assert len(searches) == 1, "the full face search ran on more than the first frame"
    motion = np.abs(np.diff(result.driving_landmarks, axis=0)).max()
    assert 0 < motion < 3, "crop-frame landmarks of a face that only moves should barely change"
    absolute = animate(pipe, clips["moving"], clips["target"], relative=False, smoothing=0)
    assert np.abs(absolute.driving_landmarks[0] - prepared.landmarks).max() > 0  # the driving face's own shape


def test_the_driving_frames_faces_are_handed_to_the_network_for_their_mouths(clips, grace_hopper, monkeypatch):
    """mouth="source", the astronaut's open mouth driving Hopper's closed one (absolute motion): every
    batch gets its driving frames, their crops and which show a face. Where no frame's mouth would be read (the
    astronaut's own photo driven relatively: her own mouth serves), and with mouth="own", the clip is decoded once."""
    decodes = []
    counted = lambda *args, **kwargs: decodes.append(1) or read_frames(*args, **kwargs)  # noqa: E731
    for module in (landmarks_module, frames_module):  # the first pass and the second
        monkeypatch.setattr(module, "read_frames", counted)
    fake = FakePipeline()
    result = animate(fake, clips["gap"], grace_hopper, relative=False, mouth="source")
    assert (
        len(decodes) == 2
        and reads_driving_mouth(
            fake,
            fake.prepare(grace_hopper),
            result.driving_landmarks,
            track_clip(fake.processor, probe_clip(clips["gap"])),
            "source",
        ).sum()
        == 10
    )
    given = [sources for sources in fake.sources]
    assert len(given) == -(-result.frames // RENDER_BATCH) and all(sources is not None for sources in given)
    found = sorted(sources.found.tolist() for sources in given)  # the batches, in the order they were rendered
    assert found == [[False] * 3 + [True] * 5, [True] * 5 + [False] * 3]  # the grey frames show no face
    assert all(
        sources.crops.shape[1:] == (3, 64, 64) and len(sources.frames) == len(sources.found) for sources in given
    )
    assert np.isfinite(np.concatenate([sources.landmarks for sources in given])).all()
    decodes.clear()
    own = FakePipeline()
    animate(own, clips["gap"], clips["target"], mouth="source")
    assert own.sources == [None] * len(given) and len(decodes) == 1
    assert own.mouths == ["own"] * len(given)  # no frame reads its driving mouth: "source" is the target's own
    animate(own, clips["gap"], grace_hopper, relative=False, mouth="own")
    assert own.sources == [None] * 2 * len(given) and len(decodes) == 2
    with pytest.raises(ConfigError, match="mouth must be one of"):
        animate(own, clips["gap"], clips["target"], mouth="teeth")


def test_by_default_video_takes_the_exemplars_mouth_and_decodes_the_clip_once(clips, grace_hopper, monkeypatch):
    """The default mouth ("exemplar") reads no driving frame: the clip is decoded once, no driving face is cut out,
    and every batch is rendered with the exemplar's mouth, as photo transfers are."""
    decodes = []
    counted = lambda *args, **kwargs: decodes.append(1) or read_frames(*args, **kwargs)  # noqa: E731
    for module in (landmarks_module, frames_module):
        monkeypatch.setattr(module, "read_frames", counted)
    fake = FakePipeline()
    result = animate(fake, clips["gap"], grace_hopper, relative=False)
    assert len(decodes) == 1 and fake.sources == [None] * -(-result.frames // RENDER_BATCH)
    assert fake.mouths == ["exemplar"] * len(fake.sources)


def test_only_batches_with_a_frame_that_reads_its_mouth_get_the_driving_faces(grace_hopper, tmp_path, monkeypatch):
    """Eight frames of the astronaut's open mouth driving Hopper's closed one, then eight without a face: the first
    batch is handed its driving faces, the second (no frame reads a mouth) none, and none are cut out for it."""
    cut = []
    monkeypatch.setattr(frames_module, "driving_faces", lambda *args: cut.append(1) or driving_faces(*args))
    clip = bench.write_clip(
        tmp_path / "half.mp4",
        bench.astronaut_frames(RENDER_BATCH) + [np.full((256, 256, 3), 120, np.uint8)] * RENDER_BATCH,
        fps=FPS,
        audio_hz=None,
    )
    fake = FakePipeline()
    animate(fake, clip, grace_hopper, relative=False, mouth="source")
    given = sorted(fake.sources, key=lambda sources: sources is None)  # in the order they were rendered
    assert [type(sources).__name__ for sources in given] == ["DrivingFaces", "NoneType"] and len(cut) == 1
    assert given[0].found.all() and len(given[0].found) == RENDER_BATCH


def test_the_photo_keeps_its_texture_by_default(clips):
    # a frame's face is otherwise as soft as the network's 128-px paint: behind glasses the eyes were lost
    pipe, asked = FakePipeline(), []
    prepare = pipe.prepare
    pipe.prepare = lambda target, **options: asked.append(options["photo_texture"]) or prepare(target, **options)
    animate(pipe, clips["gap"], clips["target"])
    animate(pipe, clips["gap"], clips["target"], photo_texture=False)
    assert asked == [True, False]


def test_frames_without_a_face_keep_the_last_pose_and_are_counted(clips):
    result = animate(FakePipeline(), clips["gap"], clips["target"], smoothing=0)
    assert result.frames == 16 and result.frames_without_face == 6
    for index in range(5, 11):
        np.testing.assert_array_equal(result.driving_landmarks[index], result.driving_landmarks[4])
    assert "6 without a face" in result.summary()


def test_frames_over_the_pixel_limit_are_read_scaled_down_and_over_4k_refused(clips, monkeypatch):
    info = probe_clip(clips["moving"], max_frame_pixels=128 * 128)  # 256 x 256 frames
    assert info.decoded_size == (128, 128) and (info.width, info.height) == (256, 256)
    frame, _ = next(read_frames(info))
    assert frame.shape == (128, 128, 3)
    result = animate(FakePipeline(), clips["moving"], clips["target"], max_frame_pixels=128 * 128)
    assert result.frames == FRAMES and result.frames_without_face == 0
    monkeypatch.setattr("aipgan_hf.video.clips.MAX_STORED_FRAME_PIXELS", 200 * 200)  # as a 4K limit would for 8K
    with pytest.raises(VideoTooLargeError, match="256x256 pixels a frame, more than 4K"):
        probe_clip(clips["moving"], max_frame_pixels=128 * 128)


def test_a_large_target_photo_is_animated_at_max_side(clips, tmp_path):
    large = tmp_path / "large.png"
    Image.open(clips["target"]).resize((700, 700)).save(large)
    result = animate(FakePipeline(), clips["moving"], large, max_side=300)
    assert result.images[0].shape == (300, 300, 3)
    unscaled = animate(FakePipeline(), clips["moving"], large, max_side=None)
    np.testing.assert_allclose(result.target_face_boxes, unscaled.target_face_boxes, rtol=0.1)  # the photo's pixels
    assert unscaled.images[0].shape == (700, 700, 3)
    with pytest.raises(ConfigError, match="max_side must be a whole number of pixels, 64 or more"):
        animate(FakePipeline(), clips["moving"], large, max_side=10)
    assert animate(FakePipeline(), clips["moving"], large, max_side=np.int64(300)).images[0].shape == (300, 300, 3)


def test_a_clip_with_two_people_says_which_drives(clips, tmp_path):
    frames = bench.astronaut_frames(4)
    beside = [np.asarray(Image.fromarray(frame).resize((200, 200))) for frame in frames]
    two = [
        np.concatenate([frame, np.pad(small, ((0, 56), (0, 0), (0, 0)), constant_values=120)], 1)
        for frame, small in zip(frames, beside, strict=True)
    ]
    driving = bench.write_clip(tmp_path / "two.mp4", two, fps=FPS, audio_hz=None)
    result = animate(FakePipeline(), driving, clips["target"])
    assert result.driving_faces == 2
    assert result.driving_faces_note().startswith(
        "The clip shows 2 faces; the largest in its first frame with a face drives"
    )
    assert animate(FakePipeline(), clips["moving"], clips["target"]).driving_faces_note() is None


@pytest.mark.data
def test_the_tracker_keeps_a_clearly_visible_face_that_one_shifted_fit_loses(data_dir):
    """A frontal face, still and well lit (LivePortrait's driving clip d19): dlib's fit from the box shifted
    down-right follows the box on most of its frames, as it does in an empty box; the fit shifted up-left lands
    back. With the down-right check alone (before 0.7.0) none of its first 60 frames kept a face."""
    tracker = FaceTracker(FaceProcessor(resolution=128))
    info = probe_clip(data_dir / "videos" / "liveportrait" / "d19.mp4")
    found = [tracker.update(frame) is not None for _, (frame, _) in zip(range(60), read_frames(info, None))]
    assert sum(found) == 60


@pytest.mark.data
def test_the_check_tries_the_shift_that_last_held_the_face_first_with_the_same_answers(data_dir):
    """The check's answer does not depend on the order of its two refits, so the tracker remembers which one held
    the face: on d19, where the down-right refit follows the box, each frame then costs 2 fits, not 3."""
    processor = FaceProcessor(resolution=128)
    fits = {"count": 0}
    fit = processor.landmarks68

    def counted(*args, **kwargs):
        fits["count"] += 1
        return fit(*args, **kwargs)

    processor.landmarks68 = counted
    frames = [
        frame
        for _, (frame, _) in zip(
            range(30), read_frames(probe_clip(data_dir / "videos" / "liveportrait" / "d19.mp4"), None)
        )
    ]
    runs = {}
    for remember in (True, False):
        tracker, tracked = FaceTracker(processor), []
        assert tracker.update(frames[0]).method == "detected"
        fits["count"] = 0
        for frame in frames[1:]:
            if not remember:
                tracker._shifts = (0.1, -0.1)  # the fixed order: down-right first on every frame
            tracked.append(tracker.update(frame).landmarks)
        runs[remember] = (np.stack(tracked), fits["count"])
    np.testing.assert_array_equal(runs[True][0], runs[False][0])
    assert runs[True][1] == 2 * (len(frames) - 1) and runs[False][1] == 3 * (len(frames) - 1), (
        runs[True][1],
        runs[False][1],
    )


@pytest.mark.data
def test_the_tracking_benchmark_counts_no_lost_frame_on_a_clearly_visible_face(data_dir, tmp_path):
    from benchmarks import benchmark_tracking

    (tmp_path / "d19.mp4").symlink_to(data_dir / "videos" / "liveportrait" / "d19.mp4")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")  # named, and the other clip still measured
    figures = benchmark_tracking.main(["--videos", str(tmp_path), "--frames", "24"])
    assert figures["clips"] == 2 and figures["unreadable"] == ["broken.mp4"] and figures["frames"] == 24
    assert figures["lost"] == 0 and figures["lost_with_a_face"] == 0  # 24 and 24 before 0.7.0
    assert figures["landmark_error"]["n"] == 3 and figures["landmark_error"]["max"] < 0.05
    check = figures["check"]
    assert (
        check["faces"] == 2
        and check["faces_rejected"] == 0
        and check["down_right_alone_before_0.7"]["faces_rejected"] == 1
    )
    assert (
        check["empty_boxes"] == 0 and check["empty_accepted"] is None
    )  # d19's face fills its frame: no room beside it


def test_neutral_reference_is_the_most_closed_mouth():
    rng = np.random.default_rng(0)
    base = bench.astronaut_frames(1, amplitude=0)[0]
    landmarks = FaceProcessor(resolution=64).align(base).crop_landmarks
    frames = np.repeat(landmarks[None], 12, axis=0)
    openings = rng.uniform(2, 8, 12)
    openings[7] = 0.0
    frames[:, 65:68, 1] += openings[:, None]  # lower inner lip down
    track = ClipLandmarks(frames, np.ones(12, bool), np.arange(12) / 25)
    index, reference = reference_landmarks(track, "neutral")
    assert index == 7
    assert mouth_opening(reference) <= np.sort(mouth_opening(frames))[:5].mean() + 1e-6
    assert np.argsort(mouth_opening(frames))[0] == 7
    assert reference_landmarks(track, "first")[0] == 0
    with pytest.raises(ValueError):
        reference_landmarks(track, "middle")


BAD_CLIPS = [
    ("text", {}, InvalidVideoError, "is not a video (it looks like text)"),
    ("binary", {}, InvalidVideoError, "noise.mp4 is not a video; use"),
    ("truncated", {}, InvalidVideoError, "cut.mp4 is not a video; use"),
    ("audio_only", {}, NoVideoStreamError, "it holds only audio"),
    ("no_face", {}, NoFaceInVideoError, "no face found in any of the 6 frames"),
    ("long", {"max_seconds": 1.0}, VideoTooLongError, "more than the limit of 1 s"),
    ("tiny", {}, VideoTooLargeError, "only 16x16 pixels"),
    ("missing", {}, InvalidVideoError, "video file not found"),
    ("target", {}, InvalidVideoError, "target.png is a still image, not a video"),
]


@pytest.mark.parametrize("clip, options, error, message", BAD_CLIPS, ids=[case[0] for case in BAD_CLIPS])
def test_bad_clips_give_a_clear_error_and_leave_the_output_alone(clips, tmp_path, clip, options, error, message):
    output = tmp_path / "out.mp4"
    output.write_bytes(b"previous result")
    driving = clips.get(clip, tmp_path / "missing.mp4")
    with pytest.raises(error) as caught:
        animate(FakePipeline(), driving, clips["target"], output=output, **options)
    assert message in str(caught.value)
    assert output.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_a_failure_while_rendering_leaves_no_partial_file(clips, tmp_path):
    output = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="on purpose"):
        animate(FakePipeline(fail_at=5), clips["moving"], clips["target"], output=output)
    assert list(tmp_path.iterdir()) == []


def test_an_encoder_error_reaches_the_caller_and_leaves_no_file(tmp_path):
    output = tmp_path / "out.mp4"
    frames = bench.astronaut_frames(3)
    with pytest.raises(ValueError, match="frame 2 is 128x128"):
        with ClipWriter(output, 25) as writer, BackgroundEncoder(writer) as encoder:
            for frame in [*frames[:2], frames[2][:128, :128], *frames]:
                encoder.write(frame)
    assert list(tmp_path.iterdir()) == []


def test_converting_only_the_changed_box_encodes_the_same_frames(astronaut, tmp_path):
    photo = np.ascontiguousarray(astronaut[:301, :257])  # odd sides: padded by an edge pixel either way
    box = (61, 41, 201, 301)  # odd start, and reaching the odd bottom edge
    frames = []
    for step in range(4):
        frame = photo.copy()
        frame[box[1] : box[3], box[0] : box[2]] = np.roll(photo[box[1] : box[3], box[0] : box[2]], 9 * step, axis=1)
        frames.append(frame)
    decoded = {}
    for name, changed in (("whole", None), ("box", box)):
        with ClipWriter(tmp_path / f"{name}.mp4", 25, quality=0) as writer:  # CRF 0: lossless, only YUV rounding
            for frame in frames:
                writer.write(frame, changed)
        decoded[name] = np.stack([frame for frame, _ in read_frames(probe_clip(tmp_path / f"{name}.mp4"))])
    assert decoded["box"].shape == (4, 302, 258, 3)
    assert np.abs(decoded["box"].astype(int) - decoded["whole"]).max() <= 2
    assert np.abs(decoded["box"][3].astype(int) - decoded["box"][0]).max() > 50  # the box did change


def _display_rotation(path: Path, matrix: tuple[int, int, int, int]) -> None:
    """Write the (a, b, c, d) rotation of an MP4's video track header, as a phone does for a clip it stores sideways
    (ISO/IEC 14496-12 tkhd: the 3x3 display matrix after the times, track id, volume and reserved fields)."""
    import struct

    data = bytearray(path.read_bytes())
    start = data.find(b"tkhd") + 4  # the box's version byte
    times = 8 + 8 + 4 + 4 + 8 if data[start] == 1 else 4 + 4 + 4 + 4 + 4  # creation .. duration
    at = start + 4 + times + 8 + 2 + 2 + 2 + 2  # reserved, layer, alternate group, volume, reserved
    a, b, c, d = (value << 16 for value in matrix)  # 16.16 fixed point
    struct.pack_into(">9i", data, at, a, b, 0, c, d, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))


def test_a_phone_clip_stored_sideways_is_read_upright(clips, tmp_path):
    """A portrait clip from a phone: frames stored turned a quarter counter-clockwise, the header's display matrix
    turning them back; read as players show them, its face is found in every frame."""
    upright = bench.astronaut_frames(6)
    stored = bench.write_clip(tmp_path / "phone.mp4", [np.rot90(frame) for frame in upright], fps=FPS, audio_hz=None)
    plain = [frame for frame, _ in read_frames(probe_clip(stored))]
    _display_rotation(stored, (0, 1, -1, 0))  # shown turned a quarter clockwise
    turned = [frame for frame, _ in read_frames(probe_clip(stored))]
    assert len(turned) == 6 and all(np.array_equal(t, np.rot90(p, -1)) for t, p in zip(turned, plain, strict=True))
    track = track_clip(FaceProcessor(resolution=64), probe_clip(stored), smoothing=0.0)
    assert track.found.all()


def test_length_limit_is_also_enforced_while_decoding(clips):
    info = probe_clip(clips["long"], max_seconds=None)
    frames = list(read_frames(info, max_seconds=None))
    assert len(frames) == 3 * FPS
    with pytest.raises(VideoTooLongError):
        list(read_frames(info, max_seconds=1.0))  # as for a header without a duration


def test_unknown_slider_is_a_config_error(clips):
    with pytest.raises(ConfigError, match="frown"):
        animate(FakePipeline(), clips["moving"], clips["target"], expression_offsets={"frown": 1.0})
    with pytest.raises(ConfigError, match="smile"):  # the same +-1.5 range as a photo transfer
        animate(FakePipeline(), clips["moving"], clips["target"], expression_offsets={"smile": 10.0})
    shifted = animate(FakePipeline(), clips["moving"], clips["target"], expression_offsets={"smile": 0.5}, smoothing=0)
    plain = animate(FakePipeline(), clips["moving"], clips["target"], smoothing=0)
    np.testing.assert_allclose(shifted.driving_landmarks - plain.driving_landmarks, 0.5, atol=1e-4)


def test_live_animator_uses_the_first_face_as_reference_and_survives_empty_frames(clips):
    pipe = FakePipeline()
    prepared = pipe.prepare(clips["target"])
    live = LiveAnimator(prepared, pipe.processor, smoothing=0)
    grey = np.full((256, 256, 3), 120, np.uint8)
    assert live(pipe, grey, 0.0).size == Image.fromarray(prepared.photo).size  # no face yet: the target at rest
    np.testing.assert_array_equal(pipe.rendered[-1], prepared.landmarks)
    for index, frame in enumerate(bench.astronaut_frames(4), start=1):
        live(pipe, frame, index / 25)
    np.testing.assert_allclose(pipe.rendered[1], prepared.landmarks, atol=1e-4)  # first face = reference
    live(pipe, grey, 1.0)
    np.testing.assert_array_equal(pipe.rendered[-1], pipe.rendered[-2])  # the last pose is kept
    assert (live.frames, live.frames_without_face) == (6, 2)


# ----------------------------------------------------------------------------------------------- One-Euro
def test_one_euro_removes_jitter_from_a_still_signal():
    rng = np.random.default_rng(0)
    noisy = 50.0 + rng.normal(0, 0.5, (120, 68, 2))
    smoother = landmark_filter(1.0, scale=128.0)
    filtered = np.stack([smoother(row, k / 30) for k, row in enumerate(noisy)])
    raw_jitter, filtered_jitter = bench.frame_jitter(noisy[30:]), bench.frame_jitter(filtered[30:])
    assert filtered_jitter < 0.3 * raw_jitter, (raw_jitter, filtered_jitter)
    assert abs(filtered[30:].mean() - 50.0) < 0.05


def test_one_euro_follows_a_fast_step_with_little_lag():
    figures = bench.step_lag(smoothing=1.0)
    assert figures["lag_frames"] <= 1, figures
    plain = bench.step_lag(smoothing=0.0)
    assert figures["still_jitter_px"] < 0.4 * plain["still_jitter_px"], (figures, plain)
    # a pure low-pass as smooth at rest would trail the step by several frames
    lowpass = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    values = [lowpass(np.array([0.0 if k < 10 else 10.0]), k / 30)[0] for k in range(20)]
    assert values[12] < 9.0


def test_one_euro_passes_the_first_value_and_restarts_when_time_goes_back():
    smoother = OneEuroFilter(min_cutoff=1.0, beta=0.1)
    np.testing.assert_array_equal(smoother(np.array([3.0, 4.0]), 0.0), [3.0, 4.0])
    assert smoother(np.array([5.0, 4.0]), 0.04)[0] < 5.0
    np.testing.assert_array_equal(smoother(np.array([9.0, 9.0]), 0.0), [9.0, 9.0])
    assert landmark_filter(0.0, 128.0) is None
    with pytest.raises(ValueError):
        landmark_filter(-1.0, 128.0)


# ----------------------------------------------------------------------------------------------- the real pipeline
def _v2_pipeline():
    return AIPGANPipeline.from_pretrained()


@pytest.fixture(scope="module")
def pipe():
    return _v2_pipeline()


def test_bundled_pipeline_animates_the_synthetic_clip(pipe, clips, tmp_path):
    output = tmp_path / "out.mp4"
    result = animate(pipe, clips["moving"], clips["target"], output=output)
    assert result.frames == FRAMES and _decoded_frames(output) == FRAMES
    assert probe_clip(output).fps == FPS and _audio(output)[0] == "aac"


def test_frames_that_read_no_driving_mouth_come_out_the_same_without_the_driving_faces(pipe, clips):
    """The astronaut driving her own photo relatively: no frame reads its driving mouth; handing every batch its
    driving faces anyway gives the same frames, bit for bit."""
    info = probe_clip(clips["moving"])
    prepared = pipe.prepare(clips["target"])
    track = track_clip(pipe.processor, info)
    driving = animate_module.drive_clip(pipe, prepared, track)[1]
    reads = reads_driving_mouth(pipe, prepared, driving, track, mouth="source")
    assert not reads.any()
    skipped = list(
        frames_module.render_frames(pipe, prepared, driving, frames=read_frames(info), track=track, mouth="source")
    )
    handed = list(
        frames_module.render_frames(
            pipe, prepared, driving, frames=read_frames(info), track=track, mouth="source", reads=np.ones_like(reads)
        )
    )
    assert len(skipped) == FRAMES and all(np.array_equal(a, b) for a, b in zip(skipped, handed))


def test_an_opened_mouth_takes_the_driving_frames_inside(pipe, astronaut, grace_hopper, tmp_path):
    """The astronaut with the inside of her open mouth painted green drives Hopper (absolute motion, so Hopper's
    mouth opens): with mouth="source" the opened mouth is green, with mouth="own" it is not."""
    from PIL import ImageDraw

    frame = Image.fromarray(astronaut)
    ImageDraw.Draw(frame).polygon(
        [tuple(p) for p in pipe.processor.align(astronaut).landmarks[60:68]], fill=(0, 255, 0)
    )
    clip = bench.write_clip(tmp_path / "green.mp4", [np.asarray(frame)] * 4, fps=FPS, audio_hz=None)
    hopper = pipe.prepare(grace_hopper)
    to_photo = np.linalg.inv(np.vstack([hopper.face.matrix, [0, 0, 1]]))[:2]

    def greenness(image: np.ndarray, driving: np.ndarray) -> float:
        inside = Image.new("L", grace_hopper.shape[1::-1])
        ImageDraw.Draw(inside).polygon([tuple(p) for p in driving[60:68] @ to_photo[:, :2].T + to_photo[:, 2]], fill=1)
        pixels = image.astype(int)[np.asarray(inside) == 1]
        assert len(pixels) > 100  # the mouth opened
        return float(np.mean(pixels[:, 1] - pixels[:, 0]))

    for mouth, low, high in (("source", 80, 255), ("own", -255, 30)):
        result = animate(pipe, clip, grace_hopper, relative=False, smoothing=0.0, mouth=mouth)
        assert low < greenness(result.images[-1], result.driving_landmarks[-1]) < high
        live = LiveAnimator(
            hopper, pipe.processor, relative=False, smoothing=0.0, mouth=mouth
        )  # a webcam: the frame at hand
        assert low < greenness(np.asarray(live(pipe, np.asarray(frame))), result.driving_landmarks[-1]) < high


@pytest.mark.data
def test_mouth_opens_where_the_driving_clips_mouth_opens(pipe, data_dir, astronaut, tmp_path):
    """A talking clip drives the astronaut: the mouth opening measured by dlib on the *output* frames follows the
    opening measured on the driving frames."""
    clip = data_dir / "videos" / "styletalk" / "video__furious_talk1_clip1.mp4"  # 4 s, 30 fps, one talking face
    target = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(target)
    result = animate(pipe, clip, target, output=tmp_path / "out.mp4")
    processor = FaceProcessor(resolution=pipe.resolution)
    driving_track = track_clip(processor, probe_clip(clip), smoothing=1.0)
    output_track = track_clip(processor, probe_clip(tmp_path / "out.mp4"), smoothing=0.0)
    assert result.frames == len(driving_track.landmarks) == len(output_track.landmarks)
    driving_mouth = mouth_opening(driving_track.landmarks)
    output_mouth = mouth_opening(output_track.landmarks)
    correlation = np.corrcoef(driving_mouth, output_mouth)[0, 1]
    assert correlation > 0.5, f"output mouth does not follow the clip's (r = {correlation:.2f})"
    wide = driving_mouth > np.quantile(driving_mouth, 0.8)
    shut = driving_mouth < np.quantile(driving_mouth, 0.2)
    assert output_mouth[wide].mean() > output_mouth[shut].mean() + 0.05
