"""The Gradio Space: give one photo's face the expression of another, a preset expression, or a video's.

UI only. Importing this file loads nothing: :func:`build_demo` loads the model once and builds the page, and
``python app.py`` (how a Hugging Face Space runs it) launches it; open http://127.0.0.1:7860. Each button has one
typed adapter (a method of :class:`Space`) that calls :class:`aipgan_hf.pipeline.AIPGANPipeline`.

Environment (all optional):
    AIPGAN_MODEL          pipeline folder or Hub id (default: the checkpoint bundled with the package)
    AIPGAN_EXAMPLES_DIR   folder of extra example photos (jpg, jpeg, png, webp) and driving clips (mp4, webm, mov)
    AIPGAN_CONCURRENCY    requests processed at once (default 2; one pipeline copy each)
    AIPGAN_QUEUE_SIZE     requests allowed to wait in the queue (default 64)
    AIPGAN_MAX_FILE_SIZE  upload limit, e.g. "10mb" (default)
    AIPGAN_NUM_THREADS    torch threads per request (default: CPU cores / concurrency)
    AIPGAN_MAX_VIDEO_SECONDS  longest driving clip accepted (default 60)
    GRADIO_SERVER_NAME, GRADIO_SERVER_PORT   read by gradio (default 127.0.0.1:7860)

API (``gradio_client``): ``/transfer``, ``/synthesize`` and ``/animate`` (a driving clip in, an MP4 out); see the
"Use via API" link at the page bottom. Each expression slider of the model is a keyword named after its direction
(``mouth_open=0.5``). The live webcam tab streams frames to ``/live`` from the browser only: gradio_client cannot
follow a stream event (it does not know the server's "process_streaming" message).

Results go out as JPEG (quality 95: many times quicker to encode than PNG) that say in their EXIF that aipgan-hf
edited them, with a notice beside them on the page; the "Inside the model" views are drawn only when asked for.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls at run time

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from aipgan_hf.compositing import DEFAULT_MOUTH  # noqa: E402
from aipgan_hf.pipeline import MAX_EXPRESSION_STRENGTH  # noqa: E402
from aipgan_hf.pipeline_steps import REFERENCE_ROLE, SOURCE_ROLE, TARGET_ROLE  # noqa: E402
from aipgan_hf.provenance import NOTICE  # noqa: E402
from aipgan_hf.serving import (  # noqa: E402
    CLIP_SUFFIXES,
    PipelinePool,
    example_clip,
    example_photos,
    extra_examples,
    load_pool,
)
from aipgan_hf.video import DEFAULT_MAX_SECONDS, LiveAnimator, animate  # noqa: E402
from app_parts import (  # noqa: E402
    ERROR_TITLE,
    PRESET_NAMES,
    Controls,
    LiveSession,
    Outputs,
    PhotoInput,
    ResultImage,
    TransferControls,
    VideoControls,
    clear_old_animations,
    friendly_errors,
    page_progress,
    preset_note,
    read_photo,
    result_views,
    slider_label,
    slider_order,
)

logger = logging.getLogger(__name__)

CONCURRENCY = max(1, int(os.environ.get("AIPGAN_CONCURRENCY", "2")))
QUEUE_SIZE = max(1, int(os.environ.get("AIPGAN_QUEUE_SIZE", "64")))
MAX_FILE_SIZE = os.environ.get("AIPGAN_MAX_FILE_SIZE", "10mb")
MAX_VIDEO_SECONDS = float(os.environ.get("AIPGAN_MAX_VIDEO_SECONDS", DEFAULT_MAX_SECONDS))
LIVE_FRAME_INTERVAL = 0.1  # seconds between webcam frames sent to the server
LIVE_TIME_LIMIT = 120  # seconds one webcam session may stream before it has to be restarted


# ----------------------------------------------------------------------------------------------- adapters
class Space:
    """The loaded model, the example inputs, and one adapter per action of the page.

    Args:
        pool: the pipelines requests borrow.
        status: the page's model line.
        examples: example photos. clips: example driving clips.
    """

    def __init__(
        self, pool: PipelinePool, status: str = "", examples: Sequence[Path] = (), clips: Sequence[Path] = ()
    ) -> None:
        self.pool, self.status, self.examples, self.clips = pool, status, list(examples), list(clips)
        self.sliders = slider_order(pool.first.sliders)
        self.animations = Path(tempfile.mkdtemp(prefix="aipgan-hf-animations-"))

    @classmethod
    def load(cls) -> "Space":
        """Load the model named by AIPGAN_MODEL (default: the bundled checkpoint) and make the examples."""
        threads = int(os.environ["AIPGAN_NUM_THREADS"]) if os.environ.get("AIPGAN_NUM_THREADS") else None
        pool, status = load_pool(os.environ.get("AIPGAN_MODEL") or None, CONCURRENCY, threads)
        extra = os.environ.get("AIPGAN_EXAMPLES_DIR")
        examples = example_photos(extra)
        clip = example_clip(pool.first, examples[1])  # Grace Hopper, animated by the model itself
        return cls(pool, status, examples, [*([clip] if clip else []), *extra_examples(extra, CLIP_SUFFIXES)])

    def transfer(
        self, source: str | None, target: str | None, *, source_reference: str | None = None, **values: Any
    ) -> Outputs:
        """Give the target photo's face the source photo's expression.

        Args:
            source: expression source photo (file path). target: identity target photo (file path).
            source_reference: optional neutral photo of the source person: the target gets that person's exact
                change from it instead of the change estimated from the source photo alone.
            values: :class:`Controls` and :class:`TransferControls` fields, and a value per slider.
        """
        with friendly_errors("transfer"), self.pool.borrow() as pipeline:
            controls, options = Controls.read(values, self.sliders), TransferControls.read(values)
            source_photo = read_photo(source, SOURCE_ROLE, pipeline)
            target_photo = read_photo(target, TARGET_ROLE, pipeline)
            reference_photo = read_photo(source_reference, REFERENCE_ROLE, pipeline) if source_reference else None
            result = pipeline(
                source=source_photo,
                target=target_photo,
                expression_strength=controls.expression_strength,
                identity_mix=options.identity_mix,
                paste_back=controls.paste_back,
                source_face_index=options.source_face_index,
                target_face_index=controls.target_face_index,
                replace_target_expression=options.replace_target_expression,
                return_intrinsic=controls.show_views,
                source_reference=reference_photo,
                mouth="source" if options.teeth_from_source else DEFAULT_MOUTH,
                **controls.offsets(),
            )
            return result_views(result, source_photo, target_photo, controls.show_views)

    def synthesize(self, target: str | None, expression: str = "happiness", **values: Any) -> Outputs:
        """Give the target photo's face a preset expression (no second photo).

        Args:
            target: identity target photo (file path).
            expression: a preset the checkpoint has (the seven emotions: happiness, sadness, surprise, fear, anger,
                disgust, contempt; see the page for this checkpoint's list).
            values: :class:`Controls` fields and a value per slider.
        """
        with friendly_errors("synthesize"), self.pool.borrow() as pipeline:
            controls = Controls.read(values, self.sliders)
            if expression not in pipeline.expressions:
                available = ", ".join(PRESET_NAMES.get(label, label) for label in pipeline.expressions) or "none"
                raise gr.Error(
                    f"This model has no preset for {PRESET_NAMES.get(expression, expression)!r}; it has: {available}.",
                    title=ERROR_TITLE,
                    print_exception=False,
                )
            target_photo = read_photo(target, TARGET_ROLE, pipeline)
            result = pipeline(
                target_photo,
                expression=expression,
                expression_strength=controls.expression_strength,
                paste_back=controls.paste_back,
                target_face_index=controls.target_face_index,
                return_intrinsic=controls.show_views,
                **controls.offsets(),
            )
            return result_views(result, target_photo, target_photo, controls.show_views)

    def animate(
        self, driving: str | None, target: str | None, progress: gr.Progress = gr.Progress(), **values: Any
    ) -> str:
        """Drive the target photo with a video: each frame gets the clip's expression; the clip's audio is kept.

        Args:
            driving: the driving clip (file path; MP4, WebM, MOV; at most AIPGAN_MAX_VIDEO_SECONDS long).
            target: identity target photo (file path).
            values: :class:`VideoControls` and :class:`Controls` fields, and a value per slider.

        Returns:
            The MP4 (H.264, the clip's frame rate and audio).
        """
        with friendly_errors("animate"), self.pool.borrow() as pipeline:
            controls, video = Controls.read(values, self.sliders), VideoControls.read(values)
            if not driving:
                raise gr.Error("Please add a driving video.", title=ERROR_TITLE, print_exception=False)
            target_photo = read_photo(target, TARGET_ROLE, pipeline)
            clear_old_animations(self.animations)
            result = animate(
                pipeline,
                driving,
                target_photo,
                output=self.animations / f"{uuid.uuid4().hex}.mp4",
                relative=video.relative,
                side_by_side=video.side_by_side,
                paste_back=controls.paste_back,
                max_seconds=MAX_VIDEO_SECONDS,
                progress=page_progress(progress),
                expression_strength=controls.expression_strength,
                target_face_index=controls.target_face_index,
                **controls.offsets(),
            )
            if result.frames_without_face:
                gr.Info(
                    f"{result.frames_without_face} of {result.frames} frames showed no face; they keep the last pose."
                )
            return str(result.output)

    def live(
        self, frame: np.ndarray | None, target: str | None, relative: bool = True, session: LiveSession | None = None
    ) -> tuple[Image.Image | None, LiveSession | None]:
        """One webcam frame in, the target photo with that frame's expression out (the first frame with a face is
        the reference for relative motion; a new target photo or mode starts over).

        Args:
            frame: (H, W, 3) webcam frame. target: identity target photo (file path).
            relative: as for /animate. session: the state of this visitor's stream (None at the start).

        Returns:
            The rendered frame and the updated session.
        """
        if frame is None:
            return None, session
        with friendly_errors("live"), self.pool.borrow() as pipeline:
            key = (target, bool(relative))
            if session is None or session.key != key:
                photo = read_photo(target, TARGET_ROLE, pipeline)
                animator = LiveAnimator(pipeline.prepare(photo), pipeline.processor, relative=bool(relative))
                session = LiveSession(key, animator)
            return session.animator(pipeline, np.ascontiguousarray(frame[..., :3])), session


# ----------------------------------------------------------------------------------------------- page
PHOTO_SOURCES = ["upload", "webcam", "clipboard"]


@dataclasses.dataclass
class Page:
    """The page's components an event reads or writes (``controls``: by the adapters' keyword names)."""

    target: gr.Image
    source: gr.Image
    expression: gr.Dropdown
    driving: gr.Video
    webcam: gr.Image
    buttons: dict[str, gr.Button]  # by action
    controls: dict[str, gr.components.Component]
    sliders: dict[str, gr.Slider]
    outputs: list[gr.components.Component]  # result photo, aligned result, the model's views
    animation: gr.Video
    live_output: ResultImage


def build_demo(space: Space | None = None) -> gr.Blocks:
    """The page: inputs (photos, sliders, presets, a driving video, the webcam), outputs, and the model's views.

    Args:
        space: the loaded model and examples (default: :meth:`Space.load`, which loads the model once).
    """
    space = space or Space.load()
    with gr.Blocks(title="AIP-GAN expression transfer", delete_cache=(1800, 3600)) as demo:  # hourly cleanup of results
        gr.Markdown(
            "# AIP-GAN expression transfer\n"
            "Give the **identity target**'s face the expression of the **expression source** photo, a preset "
            "expression, or a video's ([AIP-GAN](https://arxiv.org/abs/2005.00499), Ali & Hughes).  \n" + space.status
        )
        controls: dict[str, gr.components.Component] = {}
        with gr.Row():
            with gr.Column():
                target, sliders = _target_column(space, controls)
            with gr.Column():  # tab names short enough that all four show at 1280 px (else gradio hides some)
                buttons: dict[str, gr.Button] = {}
                with gr.Tab("From a photo", elem_id="photo-tab"):
                    source, buttons["transfer"] = _photo_tab(space, controls)
                with gr.Tab("Preset", elem_id="preset-tab"):
                    expression, buttons["synthesize"] = _preset_tab(space)
                with gr.Tab("From a video", elem_id="video-tab"):
                    driving, buttons["animate"], animation = _video_tab(space, controls)
                with gr.Tab("Webcam", elem_id="live-tab"):
                    webcam, live_output = _live_tab(controls)
        outputs = _results(controls)
        _connect(
            space,
            Page(
                target, source, expression, driving, webcam, buttons, controls, sliders, outputs, animation, live_output
            ),
        )
    return demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)


def _target_column(space: Space, controls: dict) -> tuple[gr.Image, dict[str, gr.Slider]]:
    target = PhotoInput(label="Identity target", type="filepath", sources=PHOTO_SOURCES, height=320, elem_id="target")
    gr.Examples([[str(p)] for p in space.examples], inputs=[target], label="Example targets", elem_id="target-examples")
    controls["target_face_index"] = gr.Number(
        0, label="Target face number", info="0 = largest face, 1 = next, ...", precision=0, minimum=0
    )
    controls["expression_strength"] = gr.Slider(
        0.0,
        MAX_EXPRESSION_STRENGTH,
        value=1.0,
        step=0.05,
        label="Expression strength",
        info="0 = the target's own expression, 1 = the source's, 1.5 = exaggerated",
    )
    controls["paste_back"] = gr.Checkbox(True, label="Paste the new face back into the target photo")
    with gr.Accordion("Fine-tune the expression", open=False, visible=bool(space.sliders), elem_id="sliders"):
        sliders = {
            name: gr.Slider(-1.0, 1.0, value=0.0, step=0.05, label=slider_label(name), elem_id=f"slider-{name}")
            for name in space.sliders
        }
    return target, sliders


def _photo_tab(space: Space, controls: dict) -> tuple[gr.Image, gr.Button]:
    source = PhotoInput(label="Expression source", type="filepath", sources=PHOTO_SOURCES, height=320, elem_id="source")
    gr.Examples(
        [[str(p)] for p in reversed(space.examples)],
        inputs=[source],
        label="Example sources",
        elem_id="source-examples",
    )
    controls["source_face_index"] = gr.Number(
        0, label="Source face number", info="0 = largest face", precision=0, minimum=0
    )
    controls["identity_mix"] = gr.Slider(
        0.0, 1.0, value=0.0, step=0.05, label="Identity mix", info="0 = the target's identity, 1 = the source's"
    )
    controls["replace_target_expression"] = gr.Checkbox(
        False,
        label="Replace the target's own expression",
        info="for a target who already smiles, frowns, ...; off: the source's change is added",
    )
    controls["teeth_from_source"] = gr.Checkbox(
        False,
        label="Teeth from the source photo",
        elem_id="teeth",
        info="an opened mouth shows the source's own teeth where the target's photo has none; off (default): the "
        "target's own, else a public-domain mouth, and no pixel of the source",
    )
    with gr.Accordion("The source person's neutral face (optional)", open=False, elem_id="reference"):
        controls["source_reference"] = PhotoInput(
            label="Source person, neutral",
            type="filepath",
            height=200,
            sources=PHOTO_SOURCES,
            elem_id="source-reference",
        )
        gr.Markdown(
            "From one photo the model must guess how far the source's face is from its own rest (people differ "
            "at rest in brow height, mouth width, eye openness). With a neutral photo of the same person the "
            "target gets that person's exact change instead."
        )
    return source, gr.Button("Transfer expression", variant="primary", elem_id="transfer-button")


def _preset_tab(space: Space) -> tuple[gr.Dropdown, gr.Button]:
    expressions = space.pool.first.expressions
    expression = gr.Dropdown(
        [(PRESET_NAMES.get(label, label), label) for label in expressions],
        value=expressions[0] if expressions else None,
        label="Expression",
        info=preset_note(expressions) or None,
        interactive=bool(expressions),
        allow_custom_value=True,
    )  # so the API gets this app's message for others
    button = gr.Button(
        "Synthesize expression", variant="primary", interactive=bool(expressions), elem_id="synthesize-button"
    )
    return expression, button


def _video_tab(space: Space, controls: dict) -> tuple[gr.Video, gr.Button, gr.Video]:
    driving = gr.Video(label="Driving video", sources=["upload", "webcam"], height=320, elem_id="driving")
    if space.clips:
        gr.Examples([[str(p)] for p in space.clips], inputs=[driving], label="Example clip", elem_id="clip-examples")
    with gr.Row():
        controls["relative"] = gr.Checkbox(
            True, label="Relative motion", info="the target keeps its resting expression"
        )
        controls["side_by_side"] = gr.Checkbox(False, label="Side by side", info="driving video | result")
    button = gr.Button("Animate the target", variant="primary", elem_id="animate-button")
    animation = gr.Video(label="Animated target", interactive=False, height=320, elem_id="animation")
    gr.Markdown(f"Clips up to {MAX_VIDEO_SECONDS:g} s and 1080p; the clip's frame rate and sound are kept.")
    return driving, button, animation


def _live_tab(controls: dict) -> tuple[gr.Image, ResultImage]:
    webcam = gr.Image(label="Your webcam", sources=["webcam"], streaming=True, type="numpy", elem_id="webcam")
    controls["live_relative"] = gr.Checkbox(
        True, label="Relative motion", info="your first frame with a face is the neutral reference"
    )
    output = ResultImage(label="The target, live", format="jpeg", interactive=False, elem_id="live-output")
    gr.Markdown(
        f"Frames are sent every {LIVE_FRAME_INTERVAL:g} s for up to {LIVE_TIME_LIMIT} s; browsers "
        "allow the webcam only over HTTPS or on localhost."
    )
    controls["live_session"] = gr.State(None)
    return webcam, output


def _results(controls: dict) -> list[gr.components.Component]:
    with gr.Row():
        result = ResultImage(
            label="Result",
            format="jpeg",
            buttons=["download", "fullscreen"],
            height=360,
            interactive=False,
            elem_id="result",
        )
        aligned = ResultImage(label="Aligned result", format="jpeg", height=360, interactive=False, elem_id="aligned")
    gr.Markdown(f"**{NOTICE}.** Saved results say so in their metadata too.", elem_id="edited-notice")
    with gr.Accordion("Inside the model", open=False, elem_id="inside"):
        controls["show_views"] = gr.Checkbox(
            False, label="Show what the model sees", elem_id="show-views", info="drawn with the next result; costs time"
        )
        gr.Markdown(
            "Left to right: the 68 landmarks found on the source and on the target; the driving landmarks "
            "(the target's own face with the source's expression) on the aligned target; where the expression "
            "encoder looks (bright = attended; it sees landmarks only, never the source's pixels); the "
            "target's face as the identity encoder sees it, expression removed."
        )
        views = ResultImage(label="What the model sees", format="jpeg", height=240, interactive=False, elem_id="views")
    return [result, aligned, views]


def _connect(space: Space, page: Page) -> None:
    """The events. API inputs: the files positionally, then keywords in an order kept from earlier versions."""

    def pick(*names: str) -> dict[str, gr.components.Component]:
        return {name: page.controls[name] for name in names}

    queue = {"concurrency_id": "pipeline", "concurrency_limit": CONCURRENCY}
    transfer_inputs = {
        **pick(
            "expression_strength", "identity_mix", "paste_back", "source_face_index", "target_face_index", "show_views"
        ),
        **page.sliders,
        **pick("replace_target_expression", "source_reference", "teeth_from_source"),
    }
    page.buttons["transfer"].click(
        space.transfer,
        [page.source, page.target],
        page.outputs,
        inputs_kwargs=transfer_inputs,
        api_name="transfer",
        **queue,
    )
    looks = {**pick("expression_strength", "paste_back", "target_face_index", "show_views"), **page.sliders}
    page.buttons["synthesize"].click(
        space.synthesize,
        [page.target, page.expression],
        page.outputs,
        inputs_kwargs=looks,
        api_name="synthesize",
        **queue,
    )
    video_inputs = {
        **pick("relative", "side_by_side", "expression_strength", "paste_back", "target_face_index"),
        **page.sliders,
    }
    page.buttons["animate"].click(
        space.animate,
        [page.driving, page.target],
        [page.animation],
        inputs_kwargs=video_inputs,
        api_name="animate",
        **queue,
    )
    # undocumented in the API page: only the browser's client streams (gradio_client cannot)
    session = page.controls["live_session"]
    page.webcam.stream(
        space.live,
        [page.webcam, page.target, page.controls["live_relative"], session],
        [page.live_output, session],
        api_name="live",
        stream_every=LIVE_FRAME_INTERVAL,
        time_limit=LIVE_TIME_LIMIT,
        trigger_mode="always_last",
        show_progress="hidden",
        api_visibility="undocumented",
        **queue,
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    build_demo().launch(
        max_file_size=MAX_FILE_SIZE,
        show_error=False,
        theme=gr.themes.Default(
            font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
        ),
    )
