"""app.py: the Gradio Space, driven the way visitors and API users drive it.

Importing app.py loads nothing. A real ``python app.py`` runs on a free loopback port for the whole module; ``/transfer``, ``/synthesize`` and
``/animate`` are called with ``gradio_client`` on the public-domain wheel faces (and a clip made from one), the
webcam's ``/live`` stream adapter in-process (gradio_client cannot follow stream events), failures are checked for
their short messages, a few concurrent clients must all succeed (and hostile uploads be refused), and headless
Chromium runs one transfer in the page at 1280 px, where every tab must show. Set AIPGAN_UPDATE_SCREENSHOT=1 to write that page's screenshot to
docs/screenshot.png.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import app_parts
from aipgan_hf.motion.emotion import EmotionRead, EmotionReader
from aipgan_hf.provenance import NOTICE, edit_description
from aipgan_hf.visualization import LANDMARK_DOT
from benchmarks import benchmark_animate

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESOLUTION = json.loads((PROJECT_ROOT / "aipgan_hf/checkpoints/default/generator/config.json").read_text())[
    "resolution"
]
MAX_FILE_SIZE_MB = 3
REQUIRE_BROWSER = os.environ.get("AIPGAN_REQUIRE_BROWSER", "") == "1"


def _load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # gradio inspects the module of component classes
    spec.loader.exec_module(module)
    return module


benchmark_app = _load_module("benchmark_app", PROJECT_ROOT / "benchmarks" / "benchmark_app.py")


# ----------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, Path]:
    """(expression source = Grace Hopper, identity target = astronaut) as PNG files."""
    return benchmark_app.wheel_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, photos):
    """``python app.py`` on 127.0.0.1:<free port>, with one extra example folder and a small upload limit."""
    work = tmp_path_factory.mktemp("app")
    extra_examples = work / "examples"
    extra_examples.mkdir()
    Image.open(photos[1]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(extra_examples / "mirrored_astronaut.png")
    (extra_examples / "notes.txt").write_text("not an example")
    port = benchmark_app.free_port()
    log = work / "app.log"
    process = benchmark_app.start_app(
        port, log, {"AIPGAN_EXAMPLES_DIR": str(extra_examples), "AIPGAN_MAX_FILE_SIZE": f"{MAX_FILE_SIZE_MB}mb"}
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        benchmark_app.wait_until_ready(url, process, log, timeout=240)
        yield url
    finally:
        benchmark_app.stop_app(process)


@pytest.fixture(scope="module")
def client(app_url, tmp_path_factory):
    from gradio_client import Client

    return Client(app_url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


@pytest.fixture(scope="module")
def app_module():
    """app.py imported in this process (which loads nothing)."""
    yield _load_module("aipgan_app", PROJECT_ROOT / "app.py")
    sys.modules.pop("aipgan_app", None)


@pytest.fixture(scope="module")
def space(app_module):
    """The app's adapters with the model loaded in this process (no page, no server)."""
    import torch

    threads = torch.get_num_threads()
    yield app_module.Space.load()
    torch.set_num_threads(threads)  # loading sets the thread count for the app's process; give other tests theirs back


def _jpeg(path: str) -> Image.Image:
    data = Path(path).read_bytes()
    assert data[:3] == b"\xff\xd8\xff", f"{path} is not a JPEG"
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _app_error(call) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        call()
    return str(caught.value)


def _assert_short(message: str) -> None:
    assert "Traceback" not in message and 'File "' not in message, message
    assert "/tmp" not in message and "gradio" not in message.lower(), f"server path or internals leaked: {message}"
    assert len(message) < 250, message


# ----------------------------------------------------------------------------------------------- API
def test_transfer_returns_target_sized_jpeg_and_model_views_when_asked(client, photos):
    from gradio_client import handle_file

    source, target = photos
    outputs = client.predict(
        handle_file(str(source)), handle_file(str(target)), 1.0, 0.0, True, 0, 0, True, api_name="/transfer"
    )
    result, aligned, views = (_jpeg(path) for path in outputs)
    target_photo = np.asarray(Image.open(target).convert("RGB"))
    assert result.size == (target_photo.shape[1], target_photo.shape[0])
    assert aligned.size == (RESOLUTION, RESOLUTION)
    assert views.height == 240 and views.width > 3 * views.height, "views are not one strip of four pictures"
    pixels = np.asarray(result.convert("RGB")).astype(int)
    assert np.abs(pixels[:20, :20] - target_photo[:20, :20]).mean() < 2, (
        "paste-back changed the photo far from the face"
    )
    assert np.abs(pixels - target_photo).sum() > 0, "the face was not replaced"
    dots = (np.abs(np.asarray(views.convert("RGB")).astype(int) - LANDMARK_DOT).max(axis=-1) < 40).sum()
    assert dots > 2 * 68, "landmarks are not drawn"
    for image in (result, aligned):
        assert "Edited with aipgan-hf" in edit_description(image), "a result does not say it was edited"


def test_transfer_without_paste_back_returns_the_aligned_face_and_no_views(client, photos):
    from gradio_client import handle_file

    source, target = photos
    outputs = client.predict(
        handle_file(str(source)), handle_file(str(target)), 0.5, 0.3, False, 0, 0, api_name="/transfer"
    )
    assert _jpeg(outputs[0]).size == (RESOLUTION, RESOLUTION)
    assert outputs[2] is None, "the model's views were drawn without being asked for"


def test_a_neutral_photo_of_the_source_drives_by_its_own_change(client, photos):
    from gradio_client import handle_file

    source, target = (handle_file(str(path)) for path in photos)
    still = client.predict(source, target, 1.0, 0.0, False, 0, 0, source_reference=source, api_name="/transfer")[0]
    estimated = client.predict(source, target, 1.0, 0.0, False, 0, 0, api_name="/transfer")[0]
    unchanged = client.predict(source, target, 0.0, 0.0, False, 0, 0, api_name="/transfer")[0]
    pixels = [np.asarray(_jpeg(path)).astype(int) for path in (still, estimated, unchanged)]
    assert np.abs(pixels[0] - pixels[2]).mean() < 1.0, "the source as its own neutral should change nothing"
    assert np.abs(pixels[1] - pixels[2]).mean() > 1.0
    message = _app_error(
        lambda: client.predict(
            source,
            target,
            1.0,
            0.0,
            False,
            0,
            0,
            replace_target_expression=True,
            source_reference=source,
            api_name="/transfer",
        )
    )
    assert "not both" in message
    _assert_short(message)


def test_teeth_from_the_source_can_be_turned_on(client, photos, tmp_path):
    """Hopper driven by an open smile: by default the opened mouth is the public-domain exemplar's (no pixel of the
    source), and ticking the box puts the source's own teeth there. The source is the astronaut with red and blue
    swapped (the exemplar is the astronaut herself: her own teeth would not tell the two apart)."""
    from gradio_client import handle_file

    swapped = tmp_path / "swapped.png"
    Image.fromarray(np.asarray(Image.open(photos[1]).convert("RGB"))[:, :, ::-1]).save(swapped)
    astronaut, hopper = handle_file(str(swapped)), handle_file(str(photos[0]))
    teeth = client.predict(astronaut, hopper, 1.0, 0.0, True, 0, 0, teeth_from_source=True, api_name="/transfer")[0]
    none = client.predict(astronaut, hopper, 1.0, 0.0, True, 0, 0, api_name="/transfer")[0]
    difference = np.abs(np.asarray(_jpeg(teeth)).astype(int) - np.asarray(_jpeg(none)).astype(int)).max(axis=2)
    assert (difference > 40).sum() > 200  # the mouth's inside, a few hundred pixels of a 512 x 600 photo


def test_sliders_move_the_expression(client, photos):
    from gradio_client import handle_file

    sliders = {c["props"]["label"] for c in client.config["components"] if c.get("type") == "slider"}
    assert {"Mouth open", "Smile", "Brows up", "Eyes closed"} <= sliders
    target = handle_file(str(photos[1]))
    plain = client.predict(target, "happiness", 0.0, False, 0, api_name="/synthesize")[0]
    opened = client.predict(target, "happiness", 0.0, False, 0, mouth_open=1.0, api_name="/synthesize")[0]
    difference = np.abs(np.asarray(_jpeg(plain)).astype(int) - np.asarray(_jpeg(opened))).mean()
    assert difference > 0.5, "the mouth_open slider changed nothing"


def test_synthesize_every_preset_of_the_checkpoint(client, photos):
    from gradio_client import handle_file

    dropdown = next(c for c in client.config["components"] if c.get("props", {}).get("label") == "Expression")
    expressions = [value for _, value in dropdown["props"]["choices"]]  # (shown word, dataset label) pairs
    assert expressions, "the bundled checkpoint carries no presets; /synthesize cannot be tested"
    target = photos[0]
    size = Image.open(target).size
    for expression in expressions:
        outputs = client.predict(handle_file(str(target)), expression, 1.2, True, 0, api_name="/synthesize")
        assert _jpeg(outputs[0]).size == size, expression
        # stamped as what was done, as the CLI stamps it (the app once called every result a transfer)
        assert f"(preset expression: {expression})" in edit_description(_jpeg(outputs[0])), expression


def test_synthesize_unknown_preset_names_the_available_ones(client, photos):
    from gradio_client import handle_file

    message = _app_error(
        lambda: client.predict(handle_file(str(photos[1])), "smug", 1.0, True, 0, api_name="/synthesize")
    )
    _assert_short(message)
    dropdown = next(c for c in client.config["components"] if c.get("props", {}).get("label") == "Expression")
    shown = sorted(word for word, _ in dropdown["props"]["choices"])  # the checkpoint's presets, as the page words them
    assert shown, "the bundled checkpoint carries no presets"
    assert message == f"This model has no preset for 'smug'; it has: {', '.join(shown)}.", message


def test_text_file_gives_the_short_message(client, photos, tmp_path):
    from gradio_client import handle_file

    text = tmp_path / "holiday.png"  # a misleading name: the content decides
    text.write_text("this is a shopping list, not a photo\n")
    message = _app_error(
        lambda: client.predict(
            handle_file(str(text)), handle_file(str(photos[1])), 1.0, 0.0, True, 0, 0, api_name="/transfer"
        )
    )
    assert message == "The expression source photo is not an image (it looks like text); use a JPEG, PNG or WebP photo."


def test_photo_without_a_face_names_the_photo(client, photos, tmp_path):
    from gradio_client import handle_file

    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(wall)
    message = _app_error(
        lambda: client.predict(
            handle_file(str(photos[0])), handle_file(str(wall)), 1.0, 0.0, True, 0, 0, api_name="/transfer"
        )
    )
    _assert_short(message)
    assert message.startswith("The identity target photo: no face found"), message


def test_face_number_beyond_the_faces_found(client, photos):
    from gradio_client import handle_file

    message = _app_error(
        lambda: client.predict(
            handle_file(str(photos[0])), handle_file(str(photos[1])), 1.0, 0.0, True, 2, 0, api_name="/transfer"
        )
    )
    _assert_short(message)
    assert message.startswith("The expression source photo: face index 2 asked for, but only 1 face found"), message


def test_a_photo_with_several_faces_says_which_was_used(app_module, space, two_faces, photos, tmp_path, monkeypatch):
    told = []
    monkeypatch.setattr(app_module.gr, "Info", told.append)
    group = tmp_path / "two.png"
    Image.fromarray(two_faces).save(group)
    space.synthesize(str(group), "happiness", target_face_index=1, paste_back=False)
    assert told == [
        "2 faces were found in the target photo; number 1 (0 is the largest) was used (from left to right: 0, 1). "
        '"Target face number" picks another.'
    ]
    space.synthesize(str(photos[0]), "happiness", paste_back=False)
    assert len(told) == 1, "one face: nothing to say"


def test_an_uploaded_photos_colour_profile_reaches_the_page(app_module, space, photos, tmp_path):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = tmp_path / "phone.jpg"
    Image.open(photos[0]).save(tagged, quality=95, icc_profile=profile)
    image, _, _ = space.synthesize(str(tagged), "happiness")
    served = app_parts.ResultImage(format="jpeg").postprocess(image)
    with Image.open(served.path) as shown:
        assert shown.info["icc_profile"] == profile


def test_upload_over_the_size_limit_is_refused(app_url, tmp_path):
    import httpx

    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom((MAX_FILE_SIZE_MB + 1) * 1024 * 1024))
    with big.open("rb") as handle:
        response = httpx.post(
            app_url + "gradio_api/upload", files={"files": ("big.png", handle, "image/png")}, timeout=60
        )
    assert response.status_code == 413
    assert "maximum allowed size" in response.text and "Traceback" not in response.text


def test_page_shows_model_status_and_extra_examples(client):
    config = json.dumps(client.config)
    assert "Model: bundled checkpoint" in config
    assert "mirrored_astronaut.png" in config, "AIPGAN_EXAMPLES_DIR photos are not among the examples"
    assert "notes.txt" not in config
    assert {"/transfer", "/synthesize", "/animate"} <= set(
        client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    )
    assert "example_driving_clip_" in config, "the example driving clip is missing"
    assert NOTICE in config, "no notice beside the result that the face is edited"


def test_the_sliders_show_by_unit_number_and_keep_the_apis_order(client, space):
    shown = [
        component["props"]["elem_id"].removeprefix("slider-")
        for component in client.config["components"]
        if str(component.get("props", {}).get("elem_id", "")).startswith("slider-")
    ]
    assert shown == app_parts.shown_order(space.sliders) and set(shown) == set(space.sliders)
    units = [int(name[2:].split("_")[0]) for name in shown if name.startswith("AU")]
    assert units == sorted(units) and units[:2] == [1, 2], units  # AU1, AU2, ..., not AU1, AU10, ...
    transfer = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/transfer"]
    keywords = [parameter["parameter_name"] for parameter in transfer["parameters"]]
    assert [name for name in keywords if name in space.sliders] == space.sliders, "the API's order changed"


# ----------------------------------------------------------------------------------------------- video
@pytest.fixture(scope="module")
def driving_clip(tmp_path_factory) -> Path:
    """12 frames at 24 fps of the astronaut moving a little, with a sine tone."""
    folder = tmp_path_factory.mktemp("clips")
    return benchmark_animate.write_clip(folder / "driving.mp4", benchmark_animate.astronaut_frames(12), fps=24)


def _video_path(output) -> str:
    return output["video"] if isinstance(output, dict) else output


def test_animate_returns_an_mp4_with_the_clips_frames_fps_and_audio(client, photos, driving_clip):
    import av
    from gradio_client import handle_file

    output = _video_path(
        client.predict(handle_file(str(driving_clip)), handle_file(str(photos[0])), True, True, api_name="/animate")
    )
    with av.open(output) as container:
        video, audio = container.streams.video[0], container.streams.audio
        assert video.codec_context.name in ("h264", "mpeg4")
        assert video.average_rate == 24
        assert sum(1 for _ in container.decode(video)) == 12
        assert audio and audio[0].codec_context.name == "aac"
    grace = Image.open(photos[0])
    assert video.width > grace.width  # side by side: the driving clip is left of the photo


def test_an_animation_that_wears_the_clips_resting_emotion_says_so(
    app_module, space, photos, driving_clip, monkeypatch
):
    told = []
    monkeypatch.setattr(app_module.gr, "Info", told.append)
    clip, hopper = str(driving_clip), str(photos[0])
    no_bar = lambda fraction, desc=None: None  # noqa: E731 -- no page to draw a progress bar on
    read = space.animate(clip, hopper, no_bar, paste_back=False)  # the astronaut smiles in every frame
    assert len(told) == 1 and told[0].startswith("The clip's resting face reads as happiness (")
    assert told[0].endswith("the target wears it where a frame reads no other emotion of its own.")
    points = space.animate(clip, hopper, no_bar, paste_back=False, clip_emotion="none")
    named = space.animate(clip, hopper, no_bar, paste_back=False, clip_emotion="anger")
    assert len(told) == 1, "nothing read, or named by the user: nothing to say"
    videos = [Path(path).read_bytes() for path in (read, points, named)]
    assert len(set(videos)) == 3
    absolute = space.animate(clip, hopper, no_bar, paste_back=False, relative=False)
    assert len(told) == 1, "absolute motion keeps the clip's own resting face: nothing is read"
    assert Path(absolute).read_bytes() not in videos
    with pytest.raises(
        app_module.gr.Error, match='A named emotion is worn under relative motion only: tick "Relative motion"'
    ):
        space.animate(clip, hopper, no_bar, paste_back=False, relative=False, clip_emotion="anger")
    with pytest.raises(app_module.gr.Error, match="The clip's emotion 'joy' is not one of this model's choices"):
        space.animate(clip, hopper, no_bar, paste_back=False, clip_emotion="joy")


def test_an_animation_says_what_its_frames_wore_of_their_own(app_module, space, photos, driving_clip, monkeypatch):
    import dataclasses

    told, real = [], app_module.animate
    monkeypatch.setattr(app_module.gr, "Info", told.append)
    monkeypatch.setattr(
        app_module,
        "animate",
        lambda *a, **k: dataclasses.replace(real(*a, **k), emotion=None, frame_emotions=("surprise", "")),
    )
    space.animate(str(driving_clip), str(photos[0]), lambda fraction, desc=None: None, paste_back=False)
    assert told == [
        'Read frame by frame, the target wears surprise in 50% of the frames. Not those emotions? Name one under "The '
        "clip's emotion\", or choose none."
    ]


def test_animate_refuses_a_text_file_with_a_short_message(client, photos, tmp_path):
    from gradio_client import handle_file

    text = tmp_path / "holiday.mp4"
    text.write_text("not a video, a list of places\n")
    message = _app_error(
        lambda: client.predict(handle_file(str(text)), handle_file(str(photos[1])), api_name="/animate")
    )
    _assert_short(message)
    assert "is not a video (it looks like text)" in message, message
    assert message.startswith("holiday.mp4 "), "the file's name as uploaded, not capitalised"


def test_webcam_streams_into_the_live_adapter(client):
    """The webcam is a streaming input (gradio_client cannot drive stream events: its status table has no
    'process_streaming' message, so the adapter itself is tested in-process below)."""
    webcam = next(c for c in client.config["components"] if c.get("props", {}).get("elem_id") == "webcam")
    assert webcam["props"]["streaming"] is True and webcam["props"]["sources"] == ["webcam"]
    stream = next(d for d in client.config["dependencies"] if [webcam["id"], "stream"] in d["targets"])
    assert stream["stream_every"] == 0.1 and stream["time_limit"] == 120


@pytest.mark.parametrize("client", ["http", "gradio_client"])
def test_concurrent_clients_all_succeed_and_hostile_files_are_refused(app_url, photos, tmp_path, client):
    """A small version of benchmarks/benchmark_app.py (which runs 20 clients): 6 transfers, then 6 hostile uploads,
    sent over the HTTP API as a browser does and through gradio_client."""
    hostile = benchmark_app.hostile_files(tmp_path / "hostile")
    report = benchmark_app.run_load(
        app_url,
        *photos,
        clients=6,
        requests_per_client=1,
        download_dir=tmp_path,
        hostile=hostile,
        hostile_per_client=1,
        client=client,
    )
    assert report["failures"] == [] and report["succeeded"] == 6, report
    assert report["hostile_refused"] == 6 and len(report["hostile_messages"]) == len(hostile), report
    assert report["p95_s"] < 120, report


# ----------------------------------------------------------------------------------------------- in-process
def test_importing_the_app_loads_no_model(monkeypatch):
    from aipgan_hf.pipeline import AIPGANPipeline

    def refuse(*args, **kwargs):
        raise AssertionError("app.py loaded a model when imported")

    monkeypatch.setattr(AIPGANPipeline, "from_pretrained", refuse)
    module = _load_module("aipgan_app_import_check", PROJECT_ROOT / "app.py")
    sys.modules.pop("aipgan_app_import_check", None)
    assert callable(module.build_demo)
    with pytest.raises(AssertionError, match="loaded a model"):
        module.build_demo()  # the model loads here, once


def test_every_slider_of_the_model_is_on_the_page_and_reaches_the_pipeline(app_module, space, photos):
    """A direction the model gains (another action unit, say) gets its slider and API keyword without an app change."""
    pipeline = copy.copy(space.pool.first)
    pipeline.shape_model = copy.copy(pipeline.shape_model)
    pipeline.shape_model.directions = {
        **pipeline.shape_model.directions,
        "AU99_test_unit": -pipeline.shape_model.directions["brows_up"],
    }
    extended = app_module.Space(app_module.PipelinePool(pipeline, 1), examples=space.examples)
    demo = app_module.build_demo(extended)
    labels = {block.label for block in demo.blocks.values() if type(block).__name__ == "Slider"}
    assert {"Mouth open", "Smile", "Brows up", "Eyes closed", "AU99 test unit"} <= labels
    parameters = [p["parameter_name"] for p in demo.get_api_info()["named_endpoints"]["/synthesize"]["parameters"]]
    assert "AU99_test_unit" in parameters
    target = str(photos[1])
    plain = extended.synthesize(target, "happiness", expression_strength=0.0, paste_back=False)[0]
    lowered = extended.synthesize(target, "happiness", expression_strength=0.0, paste_back=False, AU99_test_unit=1.0)[0]
    direct = pipeline(
        np.asarray(Image.open(target).convert("RGB")),
        expression="happiness",
        expression_strength=0.0,
        paste_back=False,
        expression_offsets={"AU99_test_unit": 1.0},
    ).image
    np.testing.assert_array_equal(np.asarray(lowered), np.asarray(direct))
    assert np.abs(np.asarray(lowered).astype(int) - np.asarray(plain)).mean() > 0.1, "the new slider changed nothing"
    assert app_parts.slider_label("AU99_test_unit") == "AU99 test unit"


def test_unexpected_errors_become_a_generic_logged_message(app_module, caplog):
    import gradio as gr

    with caplog.at_level(logging.ERROR), pytest.raises(gr.Error) as caught:
        with app_module.friendly_errors("transfer"):
            raise RuntimeError("CUDA exploded at 0xdeadbeef")
    assert caught.value.message == app_parts.UNEXPECTED_ERROR
    assert "0xdeadbeef" not in caught.value.message
    assert any("0xdeadbeef" in (record.exc_text or str(record.exc_info)) for record in caplog.records), "not logged"


def test_library_errors_pass_through_as_a_sentence(app_module):
    import gradio as gr

    from aipgan_hf.errors import ImageTooLargeError

    with pytest.raises(gr.Error) as caught:
        with app_module.friendly_errors("transfer"):
            raise ImageTooLargeError(
                "the image is 9000x9000 = 81,000,000 pixels, more than the limit of 50,000,000; downscale it first"
            )
    assert (
        caught.value.message
        == "The image is 9000x9000 = 81,000,000 pixels, more than the limit of 50,000,000; downscale it first."
    )


def test_live_adapter_keeps_one_prepared_target_per_session(space, photos):
    grace, astronaut = photos
    frame = np.asarray(Image.open(astronaut).convert("RGB"))
    image, session = space.live(frame, str(grace), True, None)
    assert image.size == Image.open(grace).size
    same_image, same_session = space.live(frame, str(grace), True, session)
    assert same_session is session and session.animator.frames == 2 and session.animator.frames_without_face == 0
    other_image, other_session = space.live(np.full_like(frame, 90), str(astronaut), True, session)
    assert other_session is not session and other_session.animator.frames_without_face == 1
    assert space.live(None, str(grace), True, session) == (None, session)


def test_a_smiling_target_that_keeps_its_smile_says_so(app_module, space, photos, monkeypatch):
    told = []
    monkeypatch.setattr(app_module.gr, "Info", told.append)
    grace, astronaut = photos
    space.transfer(str(grace), str(astronaut), paste_back=False)  # Hopper's face onto the smiling astronaut
    assert [note for note in told if "already smiles" in note] == [
        "The target photo already smiles, and keeps its smile under the source's expression. \"Replace the target's "
        'own expression" takes it away first (best on a frontal portrait).'
    ]
    told.clear()
    space.transfer(str(grace), str(astronaut), paste_back=False, replace_target_expression=True)
    assert not [note for note in told if "already smiles" in note]


def test_the_webcam_follows_the_pages_controls(space, photos, two_faces, tmp_path):
    grace, astronaut = photos
    frame = np.asarray(Image.open(astronaut).convert("RGB"))
    plain, session = space.live(frame, str(grace), True, None)
    still, same = space.live(frame, str(grace), True, session, expression_strength=0.0)
    assert same is session and not np.array_equal(np.asarray(still), np.asarray(plain))
    assert np.array_equal(np.asarray(still), np.asarray(Image.open(grace).convert("RGB"))), "strength 0: the photo"
    slider = next(iter(space.sliders))
    moved, _ = space.live(frame, str(grace), True, session, expression_strength=0.0, **{slider: 0.8})
    assert not np.array_equal(np.asarray(moved), np.asarray(still))
    face, _ = space.live(frame, str(grace), True, session, paste_back=False)
    assert face.size == (space.pool.first.resolution,) * 2
    group = tmp_path / "two.png"
    Image.fromarray(two_faces).save(group)
    first, first_session = space.live(frame, str(group), True, None)
    second, second_session = space.live(frame, str(group), True, first_session, target_face_index=1)
    assert second_session is not first_session  # another face of the photo: prepared anew
    assert second_session.animator.prepared.face.box != first_session.animator.prepared.face.box


def test_preset_note_lists_the_missing_presets(app_module):
    assert (
        app_parts.preset_note(["happiness", "surprise"])
        == "Not in this model: angry, sad, disgusted, fearful, contemptuous."
    )
    assert app_parts.preset_note(list(app_parts.PRESET_NAMES)) == ""
    assert "no preset" in app_parts.preset_note([])


# ----------------------------------------------------------------------------------------------- browser
def _chromium_driver(user_data_dir: Path):
    reasons = []
    if shutil.which("chromium") is None or not Path("/usr/bin/chromedriver").is_file():
        reasons.append("chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)")
    if importlib.util.find_spec("selenium") is None:
        reasons.append("selenium (pip install selenium)")
    if reasons:
        message = "browser test needs " + " and ".join(reasons)
        if REQUIRE_BROWSER:
            pytest.fail(f"AIPGAN_REQUIRE_BROWSER=1 but {message}")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={user_data_dir}",
        "--window-size=1280,1700",
        "--hide-scrollbars",
    ):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)  # local driver: no download


def _click_example(driver, examples_id: str, filename: str) -> None:
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.CSS_SELECTOR, f"#{examples_id} button.gallery-item"):
        if button.find_element(By.TAG_NAME, "img").get_attribute("src").endswith("/" + filename):
            button.click()
            return
    raise AssertionError(f"no example {filename} in #{examples_id}")


def test_browser_runs_a_transfer_on_the_examples(app_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chromium_driver(tmp_path / "chromium-profile")
    try:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 1700, "deviceScaleFactor": 1, "mobile": False},
        )
        driver.get(app_url)
        wait = WebDriverWait(driver, 90)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#target-examples button.gallery-item"))
        tabs = driver.execute_script(
            "return [...document.querySelectorAll('button[role=tab]')].filter(b => b.getBoundingClientRect().width > 0)"
            ".map(b => b.innerText.trim())"
        )
        assert tabs == ["From a photo", "Preset", "From a video", "Webcam"], f"tabs visible at 1280 px: {tabs}"
        overflow = "return [...document.querySelectorAll('.overflow-menu')].some(e => e.offsetParent !== null)"
        assert not driver.execute_script(overflow), "a tab is hidden behind the overflow button at 1280 px"
        _click_example(
            driver, "target-examples", "grace_hopper.png"
        )  # the astronaut's smile, with her teeth, on Hopper
        _click_example(driver, "source-examples", "astronaut.png")
        wait.until(
            lambda d: (
                d.find_elements(By.CSS_SELECTOR, "#target img") and d.find_elements(By.CSS_SELECTOR, "#source img")
            )
        )
        driver.find_element(By.ID, "transfer-button").click()
        all_loaded = (
            "const imgs = [...document.querySelectorAll('#result img, #aligned img')];"
            "return imgs.length == 2 && imgs.every(img => img.complete && img.naturalWidth > 0)"
        )
        wait.until(lambda d: d.execute_script(all_loaded))
        assert driver.execute_script("return document.querySelector('#result img').naturalWidth") == 512
        assert "Could not process the photos" not in driver.find_element(By.TAG_NAME, "body").text
        time.sleep(1.0)  # let the views finish fading in
        driver.execute_script("document.querySelectorAll('.toast-wrap').forEach(e => e.remove())")  # over the tabs
        height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        raw = tmp_path / "page.png"
        driver.save_screenshot(str(raw))
    finally:
        driver.quit()
    screenshot = tmp_path / "screenshot.png"
    page = Image.open(raw).convert("RGB")
    page = page.resize((1000, round(page.height * 1000 / page.width)), Image.Resampling.LANCZOS)
    page.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(screenshot, optimize=True)
    assert screenshot.stat().st_size < 300_000, f"screenshot is {screenshot.stat().st_size} bytes"
    if os.environ.get("AIPGAN_UPDATE_SCREENSHOT") == "1":
        (PROJECT_ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(screenshot, PROJECT_ROOT / "docs" / "screenshot.png")


def test_browser_shows_the_short_error_for_a_text_file(app_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    text = tmp_path / "notes.png"
    text.write_text("not a photo at all\n")
    driver = _chromium_driver(tmp_path / "chromium-profile")
    try:
        driver.get(app_url)
        wait = WebDriverWait(driver, 90)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#target-examples button.gallery-item"))
        _click_example(driver, "target-examples", "astronaut.png")
        driver.find_element(By.CSS_SELECTOR, "#source input[type=file]").send_keys(str(text))
        driver.find_element(By.ID, "transfer-button").click()
        expected = "The expression source photo is not an image (it looks like text)"
        wait.until(lambda d: expected in d.find_element(By.TAG_NAME, "body").text)
        body = driver.find_element(By.TAG_NAME, "body").text
    finally:
        driver.quit()
    assert "Traceback" not in body and "UnidentifiedImageError" not in body


def test_browser_shows_the_photo_results_only_under_the_photo_tabs(app_url, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _chromium_driver(tmp_path / "chromium-profile")
    shown = "const result = document.querySelector('#result'); return !!result && result.offsetParent !== null"
    seen = {}
    try:
        driver.get(app_url)
        wait = WebDriverWait(driver, 90)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#target-examples button.gallery-item"))
        seen["first"] = driver.execute_script(shown)
        tabs = {button.text.strip(): button for button in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]")}
        for tab in ("From a video", "Webcam", "Preset", "From a video", "From a photo"):
            tabs[tab].click()
            time.sleep(0.5)
            seen[tab] = driver.execute_script(shown)
    finally:
        driver.quit()
    assert seen == {"first": True, "From a video": False, "Webcam": False, "Preset": True, "From a photo": True}


def test_a_transfer_that_wears_a_read_emotion_says_so(app_module, space, photos, monkeypatch):
    told = []
    monkeypatch.setattr(app_module.gr, "Info", told.append)
    hopper, astronaut = (str(p) for p in photos)
    read = space.transfer(astronaut, hopper, paste_back=False)  # the astronaut's smile is read
    assert len(told) == 1 and told[0].startswith("The source reads as happiness (") and "Name it" in told[0]
    points = space.transfer(astronaut, hopper, paste_back=False, source_emotion="none")
    space.transfer(astronaut, hopper, paste_back=False, source_reference=astronaut)
    assert len(told) == 1, "nothing was read, nothing is said"
    named = space.transfer(astronaut, hopper, paste_back=False, source_emotion="sadness")
    assert len(told) == 1, "the user named it: nothing to say"
    pixels = [np.asarray(outputs[1]) for outputs in (read, points, named)]
    assert not np.array_equal(pixels[2], pixels[0]) and not np.array_equal(pixels[2], pixels[1])
    monkeypatch.setattr(EmotionReader, "read", lambda self, crops: [EmotionRead("sadness", 0.45)])
    space.transfer(astronaut, hopper, paste_back=False)  # an unsure reading: the user may name the emotion
    assert len(told) == 2 and told[1].startswith("The reader is not sure of the source's emotion (at most sadness")
    assert told[1].endswith('name it under "The source\'s emotion".')
    space.transfer(astronaut, hopper, paste_back=False, expression_strength=0.0)
    assert len(told) == 2, "the target unchanged: nothing to name"
    for value in ("joy", False):
        with pytest.raises(app_module.gr.Error, match="not one of this model's choices: read, none, anger"):
            space.transfer(astronaut, hopper, paste_back=False, source_emotion=value)
