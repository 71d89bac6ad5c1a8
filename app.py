"""The Gradio Space: give one photo's face the expression of another, a preset expression, or a video's.

UI only. Importing this file loads nothing: :func:`build_demo` loads the model once and builds the page, and
``python app.py`` (how a Hugging Face Space runs it) launches it; open http://127.0.0.1:7860. Each button has one
typed adapter (a method of :class:`Space`) that calls :class:`aipgan_hf.pipeline.AIPGANPipeline`.

Environment (all optional):
    AIPGAN_MODEL          pipeline folder or Hub id (default: the checkpoint bundled with the package)
    AIPGAN_EXAMPLES_DIR   folder of extra example photos (jpg, jpeg, png, webp) and driving clips (mp4, webm, mov)
    AIPGAN_CONCURRENCY    requests processed at once (default 2; one pipeline copy each)
    AIPGAN_QUEUE_SIZE     requests allowed to wait in the queue (default 64)
    AIPGAN_MAX_FILE_SIZE  upload limit, e.g. "100mb" (default: a phone's minute of 1080p video)
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
from aipgan_hf.motion.emotion import reading_note, unsure_note  # noqa: E402
from aipgan_hf.pipeline_steps import KEPT_SMILE_NOTE, REFERENCE_ROLE, SOURCE_ROLE, TARGET_ROLE  # noqa: E402
from aipgan_hf.serving import (  # noqa: E402
    CLIP_SUFFIXES,
    PipelinePool,
    example_clip,
    example_photos,
    extra_examples,
    load_pool,
)
from aipgan_hf.video import LiveAnimator, animate, clip_note, fit_side, frames_note  # noqa: E402
from app_page import build_page  # noqa: E402
from app_parts import (  # noqa: E402
    CONCURRENCY,
    ERROR_TITLE,
    MAX_FILE_SIZE,
    MAX_VIDEO_SECONDS,
    PRESET_NAMES,
    QUEUE_SIZE,
    Controls,
    LiveSession,
    Outputs,
    TransferControls,
    VideoControls,
    clear_old_animations,
    friendly_errors,
    page_progress,
    read_photo,
    result_views,
    say_faces,
    slider_order,
)

logger = logging.getLogger(__name__)


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
                change from it instead of the change estimated from the source photo alone (as ``pipe(...,
                source_reference=)``: a read emotion other than happiness is still worn).
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
                **options.emotion(pipeline.expressions),
                **controls.offsets(),
            )
            say_faces(result.target_face_boxes, controls.target_face_index, "target")
            say_faces(result.source_face_boxes, options.source_face_index, "source")
            if result.kept_smile:
                gr.Info(
                    f'{KEPT_SMILE_NOTE}. "Replace the target\'s own expression" takes it away first (best on a '
                    "frontal portrait)."
                )
            if result.emotion is not None and not result.emotion.told:
                gr.Info(
                    f'{reading_note(result.emotion)}. Not that emotion? Name it under "The source\'s emotion", or '
                    "choose none to follow its landmarks' motion alone."
                )
            elif unsure_note(result.reading) and controls.expression_strength > 0:
                gr.Info(
                    f'{unsure_note(result.reading)}. If you know the emotion, name it under "The source\'s emotion".'
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
            say_faces(result.target_face_boxes, controls.target_face_index, "target")
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
                **video.emotion(pipeline.expressions),
                **controls.offsets(),
            )
            say_faces(result.target_face_boxes, controls.target_face_index, "target")
            if result.emotion is not None and not result.emotion.told:
                gr.Info(f"{clip_note(result.emotion)}.")
            own = frames_note(result.frame_emotions, result.emotion)
            if own:
                gr.Info(f'{own}. Not those emotions? Name one under "The clip\'s emotion", or choose none.')
            if result.driving_faces_note():
                gr.Info(f"{result.driving_faces_note()}.")
            if result.frames_without_face:
                gr.Info(
                    f"{result.frames_without_face} of {result.frames} frames showed no face; they keep the last pose."
                )
            return str(result.output)

    def live(
        self,
        frame: np.ndarray | None,
        target: str | None,
        relative: bool = True,
        session: LiveSession | None = None,
        **values: Any,
    ) -> tuple[Image.Image | None, LiveSession | None]:
        """One webcam frame in, the target photo with that frame's expression out (the first frame with a face is
        the reference for relative motion; a new target photo, face or mode starts over).

        Args:
            frame: (H, W, 3) webcam frame. target: identity target photo (file path).
            relative: as for /animate. session: the state of this visitor's stream (None at the start).
            values: :class:`Controls` fields and a value per slider, read at every frame.

        Returns:
            The rendered frame and the updated session.
        """
        if frame is None:
            return None, session
        with friendly_errors("live"), self.pool.borrow() as pipeline:
            controls = Controls.read(values, self.sliders)
            key = (target, bool(relative), controls.target_face_index)
            if session is None or session.key != key:
                photo, _ = fit_side(pipeline, read_photo(target, TARGET_ROLE, pipeline))  # as a clip's target
                prepared = pipeline.prepare(photo, face_index=controls.target_face_index)
                session = LiveSession(key, LiveAnimator(prepared, pipeline.processor, relative=bool(relative)))
            animator = session.animator
            animator.expression_strength, animator.paste_back = controls.expression_strength, controls.paste_back
            animator.offset = pipeline.expression_offset(controls.sliders or None)
            return animator(pipeline, np.ascontiguousarray(frame[..., :3])), session


# ----------------------------------------------------------------------------------------------- page
def build_demo(space: Space | None = None) -> gr.Blocks:
    """The page: inputs (photos, sliders, presets, a driving video, the webcam), outputs, and the model's views.

    Args:
        space: the loaded model and examples (default: :meth:`Space.load`, which loads the model once).
    """
    space = space or Space.load()
    with gr.Blocks(title="AIP-GAN expression transfer", delete_cache=(1800, 3600)) as demo:  # hourly cleanup of results
        build_page(space)
    return demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    build_demo().launch(
        max_file_size=MAX_FILE_SIZE,
        show_error=False,
        theme=gr.themes.Default(
            font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
        ),
    )
