"""What a developer integrating the pipeline expects of a Hugging Face pipeline (from a first-use review, 0.26.0):
``torch_dtype`` that runs, ``pipe.to``, the Hub keywords, a clear error for every bad argument, paths with ``~``,
file objects, the README's quick start as written."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import aipgan_hf
from aipgan_hf import CheckpointError, ConfigError, FaceIndexError, InvalidImageError
from aipgan_hf.pipeline import AIPGANPipeline
from aipgan_hf.video.clips import InvalidVideoError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pipe() -> AIPGANPipeline:
    return AIPGANPipeline.from_pretrained()


@pytest.mark.parametrize("dtype", [torch.float16, "bfloat16", "auto"])
def test_a_pipeline_loaded_in_another_dtype_transfers(pipe, grace_hopper, astronaut, dtype):
    other = AIPGANPipeline.from_pretrained(torch_dtype=dtype)
    assert other.dtype == (torch.float32 if dtype == "auto" else getattr(torch, str(dtype).removeprefix("torch.")))
    ours = np.asarray(pipe(grace_hopper, source=astronaut).image, dtype=np.float32)
    theirs = np.asarray(other(grace_hopper, source=astronaut).image, dtype=np.float32)
    assert np.abs(ours - theirs).mean() < 1.0, "half precision changes the result by rounding only"
    frames = other.render(
        other.prepare(grace_hopper), np.stack([pipe(grace_hopper, expression="anger").driving_landmarks] * 2)
    )
    assert len(frames) == 2


def test_to_moves_the_generator_and_refuses_what_is_no_dtype(grace_hopper):
    other = AIPGANPipeline.from_pretrained()
    assert other.to(torch.float16) is other and other.dtype == torch.float16
    assert other.to("cpu", dtype="float32").dtype == torch.float32
    other(grace_hopper, expression="happiness")
    with pytest.raises(ConfigError, match="torch_dtype must be a floating torch dtype"):
        AIPGANPipeline.from_pretrained(torch_dtype="int8")


def test_hub_keywords_reach_the_download(monkeypatch):
    asked = {}

    def snapshot_download(repo_id, **keywords):
        asked.update(keywords, repo_id=repo_id)
        raise OSError("offline")

    monkeypatch.setattr("aipgan_hf.checkpoint.snapshot_download", snapshot_download)
    with pytest.raises(CheckpointError, match="could not load someone/model from the Hugging Face Hub"):
        AIPGANPipeline.from_pretrained(
            "someone/model", revision="v1", cache_dir="/tmp/hub", token="hf_x", local_files_only=True
        )
    assert asked == {
        "repo_id": "someone/model",
        "revision": "v1",
        "cache_dir": "/tmp/hub",
        "token": "hf_x",
        "local_files_only": True,
    }


def test_push_to_hub_passes_the_commits_keywords(pipe, monkeypatch):
    uploaded = {}

    class Api:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=False, exist_ok=False):
            uploaded["private"] = private

        def upload_folder(self, repo_id, folder_path, **keywords):
            uploaded.update(keywords, files=sorted(p.name for p in Path(folder_path).iterdir()))
            return "https://huggingface.co/me/model/commit/1"

    monkeypatch.setattr("aipgan_hf.pipeline.HfApi", Api)
    url = pipe.push_to_hub("me/model", private=True, commit_message="v2", revision="dev", create_pr=True)
    assert url.endswith("/commit/1") and "processor_config.json" in uploaded.pop("files")
    assert uploaded == {"private": True, "commit_message": "v2", "revision": "dev", "create_pr": True}


def test_push_to_hub_failures_are_checkpoint_errors(pipe, monkeypatch):
    class OfflineApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, *args, **kwargs):
            raise ConnectionError("no network")

    monkeypatch.setattr("aipgan_hf.pipeline.HfApi", OfflineApi)
    with pytest.raises(CheckpointError, match="could not push to 'me/model'.*no network"):
        pipe.push_to_hub("me/model")
    with pytest.raises(ConfigError, match="variant must be None"):
        pipe.push_to_hub("me/model", variant="bf16")


def test_save_pretrained_expands_home_and_refuses_unknown_variants(pipe, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").mkdir()
    saved = pipe.save_pretrained("~/model")
    assert saved == tmp_path / "home" / "model" and (saved / "processor_config.json").is_file()
    assert not (tmp_path / "~").exists()
    assert AIPGANPipeline.from_pretrained("~/model").expressions == pipe.expressions
    with pytest.raises(ConfigError, match="variant must be None"):
        pipe.save_pretrained(tmp_path / "bf16", variant="bf16")
    assert not (tmp_path / "bf16").exists(), "nothing is written for a refused variant"


@pytest.mark.parametrize(
    "call",
    [
        lambda pipe, photo: pipe(photo, expression="happiness", expression_strength=None),
        lambda pipe, photo: pipe(photo, expression="happiness", expression_strength="big"),
        lambda pipe, photo: pipe(photo, source=photo, identity_mix=[0.5, 0.5]),
        lambda pipe, photo: pipe(photo, expression_offsets={"smile": None}),
        lambda pipe, photo: pipe(photo, expression_offsets=[("smile", 0.5)]),
        lambda pipe, photo: pipe.render(pipe.prepare(photo), np.zeros((0, 68, 2))),
        lambda pipe, photo: pipe.render(pipe.prepare(photo), [["a"] * 2] * 68),
    ],
)
def test_a_bad_argument_is_a_config_error(pipe, grace_hopper, call):
    with pytest.raises(ConfigError):
        call(pipe, grace_hopper)


def test_landmarks_that_are_not_finite_are_refused(pipe, grace_hopper):
    landmarks = pipe(grace_hopper, expression="happiness").driving_landmarks.copy()
    landmarks[30, 0] = np.nan
    with pytest.raises(ConfigError, match="finite"):
        pipe(grace_hopper, driving_landmarks=landmarks)
    with pytest.raises(ConfigError, match="finite"):
        pipe.render(pipe.prepare(grace_hopper), np.where(np.isnan(landmarks), np.inf, landmarks))


def test_open_files_are_read_and_web_addresses_refused(pipe, grace_hopper, tmp_path):
    path = tmp_path / "hopper.png"
    Image.fromarray(grace_hopper).save(path)
    expected = np.asarray(pipe(path, expression="sadness").image)
    with open(path, "rb") as handle:
        assert np.array_equal(np.asarray(pipe(handle, expression="sadness").image), expected)
    assert np.array_equal(np.asarray(pipe(io.BytesIO(path.read_bytes()), expression="sadness").image), expected)
    with pytest.raises(InvalidImageError, match="https://example.com/face.jpg is a web address"):
        pipe("https://example.com/face.jpg", expression="sadness")
    with pytest.raises(InvalidImageError, match="the file path is empty"):
        pipe("", expression="sadness")
    with open(path) as text, pytest.raises(InvalidImageError, match=r"open the image in binary mode \('rb'\)"):
        pipe(text, expression="sadness")
    with pytest.raises(InvalidVideoError, match="is a web address"):
        pipe.animate("https://example.com/clip.mp4", grace_hopper, output=tmp_path / "x.mp4")


def test_a_face_asked_for_by_number_is_looked_for_on_a_finer_copy(pipe, astronaut, grace_hopper):
    small = np.asarray(Image.fromarray(astronaut).resize((400, 400)))  # its face about 72 px
    canvas = np.full((600, 952, 3), 255, np.uint8)
    canvas[:400, :400] = small
    canvas[:600, 440:952] = grace_hopper[:600, :512]
    assert pipe.processor.align(canvas).faces_found == 1, "the search alone misses the small face"
    result = pipe(canvas, expression="happiness", target_face_index=1)
    assert result.target_faces == 2 and result.target_landmarks[:, 0].max() < 400, "the astronaut's face, at the left"
    with pytest.raises(FaceIndexError, match="only 2 faces found"):
        pipe(canvas, expression="happiness", target_face_index=2)


def test_animate_refuses_an_output_it_cannot_write_before_reading_the_clip(pipe, grace_hopper, tmp_path):
    clip = tmp_path / "not-read.mp4"  # never opened: the output is checked first
    with pytest.raises(ConfigError, match="the result is an MP4 video: name it .mp4, not 'x.gif'"):
        pipe.animate(clip, grace_hopper, output=tmp_path / "x.gif")
    with pytest.raises(ConfigError, match="its folder .*missing does not exist"):
        pipe.animate(clip, grace_hopper, output=tmp_path / "missing" / "x.mp4")
    with pytest.raises(ConfigError, match="is a folder"):
        pipe.animate(clip, grace_hopper, output=tmp_path)


def test_neutral_is_no_preset_and_the_error_says_what_to_use(pipe, grace_hopper):
    with pytest.raises(ConfigError, match="'neutral' is no preset: to make a face neutral, transfer from a neutral"):
        pipe(grace_hopper, expression="neutral")
    neutral = pipe(grace_hopper, source=grace_hopper, replace_target_expression=True)  # what it says to do, runs
    assert neutral.image.size == (grace_hopper.shape[1], grace_hopper.shape[0])
    with pytest.raises(ConfigError, match="read_emotion=False"):
        pipe(grace_hopper, source=grace_hopper, source_emotion="neutral")


def test_results_print_in_a_few_lines_and_the_package_lists_its_names(pipe, grace_hopper):
    assert len(repr(pipe(grace_hopper, expression="happiness")).splitlines()) < 5
    assert {"AIPGANPipeline", "TransferResult", "FaceProcessor"} <= set(dir(aipgan_hf))
    assert (PROJECT_ROOT / "aipgan_hf" / "py.typed").is_file()


def test_the_readme_quick_start_runs_as_written(tmp_path, monkeypatch):
    readme = (PROJECT_ROOT / "README.md").read_text()
    block = re.search(r"## Quick start\n.*?```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(block, "README.md", "exec"), names)  # noqa: S102 -- the README's own code
    assert os.path.isfile("hopper_smiling.png") and names["named"].emotion.label == "surprise"


def test_a_revision_given_for_a_local_folder_is_said_to_be_unused(pipe, tmp_path, caplog):
    folder = pipe.save_pretrained(tmp_path / "model")
    with caplog.at_level("WARNING", logger="aipgan_hf.checkpoint"):
        AIPGANPipeline.from_pretrained(folder, revision="v2")
    assert "revision 'v2' is for a Hub id" in caplog.text


def test_driving_faces_without_a_face_are_not_read_even_where_nan(pipe, astronaut):
    """DrivingFaces says a row that shows no face is ignored: its landmarks may be NaN (the finite check is for the
    landmarks the target is driven to)."""
    from aipgan_hf.compositing import DrivingFaces

    prepared = pipe.prepare(astronaut)
    driving = np.stack([prepared.landmarks] * 2).astype(np.float32)
    seen = driving.copy()
    seen[1] = np.nan
    faces = DrivingFaces(
        frames=[astronaut] * 2,
        matrices=np.zeros((2, 2, 3)),
        crops=torch.zeros(2, 3, pipe.resolution, pipe.resolution),
        landmarks=seen,
        found=np.array([True, False]),
    )
    assert len(pipe.render(prepared, driving, mouth="source", sources=faces)) == 2
