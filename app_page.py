"""The Space's page (app.py): its layout, the components each tab holds, and the events that connect them to the
typed adapters of :class:`app.Space`."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import gradio as gr

from aipgan_hf.motion import MAX_EXPRESSION_STRENGTH
from aipgan_hf.provenance import NOTICE
from app_parts import (
    CONCURRENCY,
    LIVE_FRAME_INTERVAL,
    LIVE_TIME_LIMIT,
    MAX_FILE_SIZE,
    MAX_VIDEO_SECONDS,
    NONE_CHOICE,
    NOT_READ,
    PRESET_NAMES,
    READ,
    READ_CHOICE,
    PhotoInput,
    ResultImage,
    preset_note,
    shown_order,
    slider_label,
)

if TYPE_CHECKING:  # app.py builds the page: the Space is needed only for the types
    from app import Space

PHOTO_SOURCES = ["upload", "webcam", "clipboard"]


def build_page(space: Space) -> None:
    """The page's contents, inside the ``gr.Blocks`` of :func:`app.build_demo`, with their events connected."""
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
            with gr.Tab("From a photo", elem_id="photo-tab") as photo_tab:
                source, buttons["transfer"] = _photo_tab(space, controls)
            with gr.Tab("Preset", elem_id="preset-tab") as preset_tab:
                expression, buttons["synthesize"] = _preset_tab(space)
            with gr.Tab("From a video", elem_id="video-tab") as video_tab:
                driving, buttons["animate"], animation = _video_tab(space, controls)
            with gr.Tab("Webcam", elem_id="live-tab") as live_tab:
                webcam, live_output = _live_tab(controls)
    with gr.Column(elem_id="results") as results:
        outputs = _results(controls)
    _show_results_with(results, shown=(photo_tab, preset_tab), hidden=(video_tab, live_tab))
    _connect(
        space,
        Page(target, source, expression, driving, webcam, buttons, controls, sliders, outputs, animation, live_output),
    )


def _show_results_with(results: gr.Column, shown: tuple[gr.Tab, ...], hidden: tuple[gr.Tab, ...]) -> None:
    """The photo results only under the tabs that fill them: the video and webcam tabs have their own."""
    for tabs, visible in ((shown, True), (hidden, False)):
        for tab in tabs:
            tab.select(
                lambda visible=visible: gr.Column(visible=visible), None, results, queue=False, api_visibility="private"
            )


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
        info="0 = the target's own expression, 1 = the full expression (the source's, the preset's, the clip's), "
        "1.5 = exaggerated",
    )
    controls["paste_back"] = gr.Checkbox(True, label="Paste the new face back into the target photo")
    with gr.Accordion("Fine-tune the expression", open=False, visible=bool(space.sliders), elem_id="sliders"):
        made = {
            name: gr.Slider(-1.0, 1.0, value=0.0, step=0.05, label=slider_label(name), elem_id=f"slider-{name}")
            for name in shown_order(space.sliders)
        }
    return target, {name: made[name] for name in space.sliders}  # the API's order


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
        0.0,
        1.0,
        value=0.0,
        step=0.05,
        label="Identity mix",
        info="0 = the target's identity; toward 1 what the model repaints (an opened mouth, the eyes) takes on the "
        "source's: a subtle change, the face stays the target's",
    )
    controls["replace_target_expression"] = gr.Checkbox(
        False,
        label="Replace the target's own expression",
        info="for a target who already smiles, frowns, ...; off: the source's change is added",
    )
    controls["source_emotion"] = _emotion_dropdown(
        space.pool.first.expressions,
        "The source's emotion",
        "read from its face: where the reader is sure, the target wears that emotion (its FACS prototype; a "
        "smile is completed); or name it where the reading is wrong; none: the motion of the source's 68 "
        "landmarks alone, or their exact change from a neutral photo",
        "source-emotion",
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
            "target gets that person's exact change instead, unless the source's emotion is read as one other "
            "than happiness: observers named its prototype more often."
        )
    return source, gr.Button("Transfer expression", variant="primary", elem_id="transfer-button")


def _emotion_dropdown(expressions: list[str], label: str, info: str, elem_id: str) -> gr.Dropdown:
    """Read (default), none, or a preset named: the emotion a source photo or a clip's resting face gives."""
    return gr.Dropdown(
        [(READ_CHOICE, READ), (NONE_CHOICE, NOT_READ), *((PRESET_NAMES.get(e, e), e) for e in expressions)],
        value=READ,
        label=label,
        info=info,
        elem_id=elem_id,
        allow_custom_value=True,
    )  # so the API gets this app's message for others (app_parts.emotion_keywords)


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
    controls["clip_emotion"] = _emotion_dropdown(
        space.pool.first.expressions,
        "The clip's emotion",
        "relative motion moves the target as the clip moves from its most neutral frames; each frame also wears "
        "the emotion the reader is sure of around it, else the clip's resting emotion (a clip angry throughout); "
        "or name one for every frame; none: the frames' motion alone (relative motion only)",
        "clip-emotion",
    )
    button = gr.Button("Animate the target", variant="primary", elem_id="animate-button")
    animation = gr.Video(label="Animated target", interactive=False, height=320, elem_id="animation")
    gr.Markdown(
        f"Clips up to {MAX_VIDEO_SECONDS:g} s and {MAX_FILE_SIZE.upper()} (frames past 1080p, up to 4K, are read "
        "scaled down); the clip's frame rate and sound are kept. Only the face's expression follows the clip: the "
        "head stays as the photo holds it."
    )
    return driving, button, animation


def _live_tab(controls: dict) -> tuple[gr.Image, ResultImage]:
    webcam = gr.Image(label="Your webcam", sources=["webcam"], streaming=True, type="numpy", elem_id="webcam")
    controls["live_relative"] = gr.Checkbox(
        True,
        label="Relative motion",
        info="your first frame with a face is the neutral reference; the emotion read in your last frames is worn too",
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
        **pick("replace_target_expression", "source_reference", "teeth_from_source", "source_emotion"),
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
        **pick("clip_emotion"),
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
        inputs_kwargs={**pick("expression_strength", "paste_back", "target_face_index"), **page.sliders},
        api_name="live",
        stream_every=LIVE_FRAME_INTERVAL,
        time_limit=LIVE_TIME_LIMIT,
        trigger_mode="always_last",
        show_progress="hidden",
        api_visibility="undocumented",
        **queue,
    )
