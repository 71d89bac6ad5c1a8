"""The Gradio Space: give one photo's face the expression of another, or a preset expression.

UI only: the model loads once at start-up, and each button has one typed adapter that calls
:class:`aipgan_hf.pipeline.AIPGANPipeline`. Run ``python app.py`` and open http://127.0.0.1:7860.

Environment (all optional):
    AIPGAN_MODEL          pipeline folder or Hub id (default: the checkpoint bundled with the package)
    AIPGAN_EXAMPLES_DIR   folder of extra example photos (jpg, jpeg, png, webp)
    AIPGAN_CONCURRENCY    requests processed at once (default 2; one pipeline copy each)
    AIPGAN_QUEUE_SIZE     requests allowed to wait in the queue (default 64)
    AIPGAN_MAX_FILE_SIZE  upload limit, e.g. "10mb" (default)
    AIPGAN_NUM_THREADS    torch threads per request (default: CPU cores / concurrency)
    GRADIO_SERVER_NAME, GRADIO_SERVER_PORT   read by gradio (default 127.0.0.1:7860)

API (``gradio_client``): ``/transfer`` and ``/synthesize``; see the "Use via API" link at the page bottom.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import queue
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls at run time

import gradio as gr  # noqa: E402
import matplotlib  # noqa: E402
import matplotlib.cbook  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from aipgan_hf.errors import AIPGANError  # noqa: E402
from aipgan_hf.landmarks import (  # noqa: E402
    INNER_LIPS,
    JAW,
    LEFT_BROW,
    LEFT_EYE,
    NOSE,
    OUTER_LIPS,
    RIGHT_BROW,
    RIGHT_EYE,
)
from aipgan_hf.pipeline import (  # noqa: E402
    BUNDLED_CHECKPOINT,
    MAX_EXPRESSION_STRENGTH,
    SOURCE_ROLE,
    TARGET_ROLE,
    AIPGANPipeline,
    TransferResult,
)
from aipgan_hf.processing import FaceProcessor, load_image  # noqa: E402

logger = logging.getLogger(__name__)
if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

PRESET_NAMES = {
    "happiness": "happy",
    "surprise": "surprised",
    "anger": "angry",
    "sadness": "sad",
    "disgust": "disgusted",
    "fear": "fearful",
}
"""Dataset expression label -> the word shown on the page."""

EXAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
UNEXPECTED_ERROR = "Something went wrong on our side while processing the photos. Please try again or use another photo."
ERROR_TITLE = "Could not process the photos"
LANDMARK_VIEW_SIZE = 320
ATTENTION_VIEW_SIZE = 256

CONCURRENCY = max(1, int(os.environ.get("AIPGAN_CONCURRENCY", "2")))
QUEUE_SIZE = max(1, int(os.environ.get("AIPGAN_QUEUE_SIZE", "64")))
MAX_FILE_SIZE = os.environ.get("AIPGAN_MAX_FILE_SIZE", "10mb")


# ----------------------------------------------------------------------------------------------- loading
class PipelinePool:
    """One pipeline per concurrent request: the generator's weights are shared (inference only reads them),
    each copy has its own FaceProcessor, because dlib documents its detectors and shape predictors as unsafe
    to use from several threads at once and FaceProcessor loads them lazily without a lock."""

    def __init__(self, pipeline: AIPGANPipeline, size: int) -> None:
        self.first = pipeline
        self._idle: queue.Queue[AIPGANPipeline] = queue.Queue()
        for index in range(size):
            copy = pipeline if index == 0 else AIPGANPipeline(
                pipeline.generator, FaceProcessor(**pipeline.processor_settings()), presets=pipeline.presets
            )
            self._idle.put(copy)

    @contextlib.contextmanager
    def borrow(self) -> Iterator[AIPGANPipeline]:
        """Hold one pipeline for the duration of a request."""
        pipeline = self._idle.get()
        try:
            yield pipeline
        finally:
            self._idle.put(pipeline)


def load_pool() -> tuple[PipelinePool, str]:
    """Load the model named by AIPGAN_MODEL (default: the bundled checkpoint); return the pool and a status line."""
    name = os.environ.get("AIPGAN_MODEL") or None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(int(os.environ.get("AIPGAN_NUM_THREADS", max(1, cores // CONCURRENCY))))
    pipeline = AIPGANPipeline.from_pretrained(name)
    folder = BUNDLED_CHECKPOINT if name is None else Path(name).expanduser()
    card = folder / "README.md"
    status = model_status(card.read_text(encoding="utf-8", errors="replace")) if card.is_file() else ""
    label = "bundled checkpoint" if name is None else f"`{name}`"
    logger.info("loaded %s (%d presets, %d torch threads)", name or BUNDLED_CHECKPOINT, len(pipeline.expressions), torch.get_num_threads())
    return PipelinePool(pipeline, CONCURRENCY), f"Model: {label}. {status}".strip()


def model_status(card: str) -> str:
    """The model card's one-line status: its first line that starts in bold (e.g. ``**UNTRAINED**: ...``)."""
    body = card.split("---", 2)[-1] if card.startswith("---") else card
    return next((line.strip() for line in body.splitlines() if line.strip().startswith("**")), "")


def example_photos() -> list[Path]:
    """The public-domain faces that ship in wheels, written once to a cache folder, plus AIPGAN_EXAMPLES_DIR."""
    from skimage import data

    folder = Path(tempfile.gettempdir()) / "aipgan-hf-examples"
    folder.mkdir(parents=True, exist_ok=True)
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        grace_hopper = Image.open(handle).convert("RGB")
    photos = {"astronaut.png": Image.fromarray(data.astronaut()), "grace_hopper.png": grace_hopper}
    paths = []
    for filename, photo in photos.items():
        path = folder / filename
        if not path.is_file():
            staging = folder / f".{filename}.{os.getpid()}.png"
            photo.save(staging)
            os.replace(staging, path)  # atomic: several app processes may start at once
        paths.append(path)
    extra = os.environ.get("AIPGAN_EXAMPLES_DIR")
    if extra:
        if Path(extra).is_dir():
            paths += sorted(p for p in Path(extra).iterdir() if p.suffix.lower() in EXAMPLE_SUFFIXES and p.is_file())
        else:
            logger.warning("AIPGAN_EXAMPLES_DIR=%s is not a folder; no extra examples", extra)
    return paths


class PhotoInput(gr.Image):
    """gr.Image that hands the uploaded file's path to the adapter undecoded, so a file that is not an
    image reaches aipgan_hf's loader and its short message instead of failing inside gradio."""

    is_template = True  # rendered by the front end as a plain gr.Image

    def preprocess(self, payload):  # noqa: D102
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return super().preprocess(payload)


class ResultImage(gr.Image):
    """gr.Image output whose PNG is written into gradio's content-addressed cache atomically. gradio's own
    save rewrites that file in place, so two requests with identical outputs (two visitors running the same
    example) could serve each other a half-written file ("Too much data for declared Content-Length")."""

    is_template = True  # rendered by the front end as a plain gr.Image

    def postprocess(self, value):  # noqa: D102
        if isinstance(value, Image.Image):
            buffer = io.BytesIO()
            value.save(buffer, format="PNG")
            data = buffer.getvalue()
            folder = Path(self.GRADIO_CACHE) / hashlib.sha256(data).hexdigest()
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "image.png"
            if not path.is_file():
                handle, staging = tempfile.mkstemp(dir=folder, prefix=".image.", suffix=".png")
                with os.fdopen(handle, "wb") as file:
                    file.write(data)
                os.replace(staging, path)
            value = str(path)
        return super().postprocess(value)


# ----------------------------------------------------------------------------------------------- views
def draw_landmarks(photo: np.ndarray, landmarks: np.ndarray, size: int = LANDMARK_VIEW_SIZE) -> Image.Image:
    """The face region of ``photo`` with its 68 landmarks (photo coordinates) drawn as contours and dots."""
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    margin = 0.35 * float((high - low).max())
    height, width = photo.shape[:2]
    x0, y0 = max(0.0, low[0] - margin), max(0.0, low[1] - margin)
    x1, y1 = min(float(width), high[0] + margin), min(float(height), high[1] + margin)
    scale = size / max(x1 - x0, y1 - y0)
    view = Image.fromarray(photo).crop((round(x0), round(y0), round(x1), round(y1)))
    view = view.resize((max(1, round(view.width * scale)), max(1, round(view.height * scale))), Image.Resampling.LANCZOS)
    points = (landmarks - np.array([round(x0), round(y0)])) * scale  # (68, 2) view coordinates
    draw = ImageDraw.Draw(view)
    for group, closed in ((JAW, False), (RIGHT_BROW, False), (LEFT_BROW, False), (NOSE, False),
                          (RIGHT_EYE, True), (LEFT_EYE, True), (OUTER_LIPS, True), (INNER_LIPS, True)):
        line = [tuple(p) for p in points[group].tolist()]
        draw.line(line + line[:1] if closed else line, fill=(0, 255, 128), width=1)
    radius = max(1.5, size / 160)
    for x, y in points.tolist():
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 64, 64))
    return view


def attention_overlay(face: Image.Image, attention: np.ndarray, size: int = ATTENTION_VIEW_SIZE) -> Image.Image:
    """The (h, w) attention map in [0, 1], upsampled and colour-mapped (inferno), blended over the aligned face."""
    heat = Image.fromarray(np.clip(attention, 0.0, 1.0).astype(np.float32)).resize((size, size), Image.Resampling.BILINEAR)
    colours = matplotlib.colormaps["inferno"](np.asarray(heat))[..., :3]  # (size, size, 3) in [0, 1]
    colour_map = Image.fromarray((colours * 255).round().astype(np.uint8))
    return Image.blend(face.convert("RGB").resize((size, size), Image.Resampling.LANCZOS), colour_map, alpha=0.55)


def result_views(result: TransferResult, source_photo: np.ndarray, target_photo: np.ndarray) -> tuple[Image.Image, ...]:
    """Result photo, aligned result, source landmarks, target landmarks, expression attention, intrinsic face."""
    return (
        result.image,
        result.face,
        draw_landmarks(source_photo, result.source_landmarks),
        draw_landmarks(target_photo, result.target_landmarks),
        attention_overlay(result.source_face, result.expression_attention),
        result.intrinsic,
    )


# ----------------------------------------------------------------------------------------------- errors
def read_photo(path: str | None, role: str, pipeline: AIPGANPipeline) -> np.ndarray:
    """Decode an uploaded photo; errors name the photo by its role, never by its server path."""
    if not path:
        raise gr.Error(f"Please add {role}.", title=ERROR_TITLE, print_exception=False)
    try:
        return load_image(path, max_pixels=pipeline.processor.max_pixels)
    except AIPGANError as error:
        raise gr.Error(_sentence(str(error).replace(str(path), role)), title=ERROR_TITLE, print_exception=False) from None


def face_index(value: float | None) -> int:
    """A face-index box value as an int (empty -> 0, the largest face)."""
    if value is None:
        return 0
    if value < 0 or value != int(value):
        raise gr.Error(f"A face number must be a whole number 0 or more, got {value}.", title=ERROR_TITLE, print_exception=False)
    return int(value)


@contextlib.contextmanager
def friendly_errors(action: str) -> Iterator[None]:
    """Turn every failure into a short message on the page: aipgan_hf's own errors as they are, anything
    else logged with its traceback and shown as a generic message."""
    try:
        yield
    except gr.Error:
        raise
    except AIPGANError as error:
        raise gr.Error(_sentence(str(error)), title=ERROR_TITLE, print_exception=False) from None
    except Exception:
        logger.exception("unexpected failure in %s", action)
        raise gr.Error(UNEXPECTED_ERROR, title=ERROR_TITLE, print_exception=False) from None


def _sentence(message: str) -> str:
    message = re.sub(r"\s+", " ", message).strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith((".", "!", "?")) else ".")


# ----------------------------------------------------------------------------------------------- adapters
POOL, MODEL_STATUS = load_pool()
EXAMPLES = example_photos()


def transfer(
    source: str | None,
    target: str | None,
    expression_strength: float = 1.0,
    identity_mix: float = 0.0,
    paste_back: bool = True,
    source_face_index: float | None = 0,
    target_face_index: float | None = 0,
) -> tuple[Image.Image, ...]:
    """Give the target photo's face the source photo's expression.

    Args:
        source: expression source photo (file path).
        target: identity target photo (file path).
        expression_strength: 0 (the target's own expression) .. 1 (the source's) .. 1.5 (exaggerated).
        identity_mix: 0 (the target's identity) .. 1 (the source's).
        paste_back: return the whole target photo (True) or only the aligned face.
        source_face_index, target_face_index: which face when a photo has several; 0 is the largest.

    Returns:
        Result photo, aligned result, source landmarks, target landmarks, expression attention, intrinsic face.
    """
    with friendly_errors("transfer"), POOL.borrow() as pipeline:
        source_index, target_index = face_index(source_face_index), face_index(target_face_index)
        source_photo = read_photo(source, SOURCE_ROLE, pipeline)
        target_photo = read_photo(target, TARGET_ROLE, pipeline)
        result = pipeline(source=source_photo, target=target_photo, expression_strength=expression_strength,
                          identity_mix=identity_mix, paste_back=bool(paste_back),
                          source_face_index=source_index, target_face_index=target_index)
        return result_views(result, source_photo, target_photo)


def synthesize(
    target: str | None,
    expression: str = "happiness",
    strength: float = 1.0,
    paste_back: bool = True,
    target_face_index: float | None = 0,
) -> tuple[Image.Image, ...]:
    """Give the target photo's face a preset expression (no second photo).

    Args:
        target: identity target photo (file path).
        expression: a dataset label the checkpoint has a preset for (happiness, surprise, anger, sadness,
            disgust, fear; see the page for this checkpoint's list).
        strength: 0 (the target's own expression) .. 1 (the preset) .. 1.5 (exaggerated).
        paste_back: return the whole target photo (True) or only the aligned face.
        target_face_index: which face when the photo has several; 0 is the largest.

    Returns:
        Result photo, aligned result, landmarks (twice: the target is its own source), target landmarks,
        expression attention, intrinsic face.
    """
    with friendly_errors("synthesize"), POOL.borrow() as pipeline:
        target_index = face_index(target_face_index)
        if expression not in pipeline.expressions:
            available = ", ".join(PRESET_NAMES.get(label, label) for label in pipeline.expressions) or "none"
            raise gr.Error(f"This model has no preset for {PRESET_NAMES.get(expression, expression)!r}; it has: {available}.",
                           title=ERROR_TITLE, print_exception=False)
        target_photo = read_photo(target, TARGET_ROLE, pipeline)
        result = pipeline.synthesize(target_photo, expression=expression, strength=strength,
                                     paste_back=bool(paste_back), target_face_index=target_index)
        return result_views(result, target_photo, target_photo)


# ----------------------------------------------------------------------------------------------- page
def preset_note(expressions: list[str]) -> str:
    """One line saying which of the six standard presets this checkpoint lacks."""
    missing = [name for label, name in PRESET_NAMES.items() if label not in expressions]
    if not expressions:
        return "This model carries no preset expressions; use a source photo instead."
    return f"Not in this model: {', '.join(missing)}." if missing else ""


def build_demo() -> gr.Blocks:
    """The page: inputs (photos, sliders, presets), outputs, and the 'inside the model' views."""
    expressions = POOL.first.expressions
    photo_sources = ["upload", "webcam", "clipboard"]
    with gr.Blocks(title="AIP-GAN expression transfer", delete_cache=(1800, 3600)) as demo:  # hourly cleanup of results
        gr.Markdown(
            "# AIP-GAN expression transfer\n"
            "Give the **identity target**'s face the expression of the **expression source** photo, or a preset "
            "expression ([AIP-GAN](https://arxiv.org/abs/2005.00499), Ali & Hughes).  \n" + MODEL_STATUS
        )
        with gr.Row():
            with gr.Column():
                target = PhotoInput(label="Identity target", type="filepath", sources=photo_sources, height=320, elem_id="target")
                gr.Examples([[str(p)] for p in EXAMPLES], inputs=[target], label="Example targets", elem_id="target-examples")
                target_index = gr.Number(0, label="Target face number", info="0 = largest face, 1 = next, ...", precision=0, minimum=0)
                strength = gr.Slider(0.0, MAX_EXPRESSION_STRENGTH, value=1.0, step=0.05, label="Expression strength",
                                     info="0 = the target's own expression, 1 = the source's, 1.5 = exaggerated")
                paste_back = gr.Checkbox(True, label="Paste the new face back into the target photo")
            with gr.Column():
                with gr.Tab("Expression from a photo", elem_id="photo-tab"):
                    source = PhotoInput(label="Expression source", type="filepath", sources=photo_sources, height=320, elem_id="source")
                    gr.Examples([[str(p)] for p in reversed(EXAMPLES)], inputs=[source], label="Example sources", elem_id="source-examples")
                    source_index = gr.Number(0, label="Source face number", info="0 = largest face", precision=0, minimum=0)
                    identity_mix = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Identity mix",
                                             info="0 = the target's identity, 1 = the source's")
                    transfer_button = gr.Button("Transfer expression", variant="primary", elem_id="transfer-button")
                with gr.Tab("Preset expression", elem_id="preset-tab"):
                    expression = gr.Dropdown([(PRESET_NAMES.get(label, label), label) for label in expressions],
                                             value=expressions[0] if expressions else None, label="Expression",
                                             info=preset_note(expressions) or None, interactive=bool(expressions),
                                             allow_custom_value=True)  # so the API gets this app's message for others
                    synthesize_button = gr.Button("Synthesize expression", variant="primary", interactive=bool(expressions),
                                                  elem_id="synthesize-button")
        with gr.Row():
            result_photo = ResultImage(label="Result", format="png", buttons=["download", "fullscreen"], height=360,
                                    interactive=False, elem_id="result")
            aligned = ResultImage(label="Aligned result", format="png", height=360, interactive=False, elem_id="aligned")
        with gr.Accordion("Inside the model", open=True, elem_id="inside"):
            gr.Markdown("The 68 landmarks found on each photo; where the expression encoder looks on the source "
                        "(bright = attended); the target's face as the identity encoder sees it, expression removed.")
            with gr.Row():
                source_landmarks = ResultImage(label="Source landmarks", format="png", height=240, interactive=False)
                target_landmarks = ResultImage(label="Target landmarks", format="png", height=240, interactive=False)
                attention = ResultImage(label="Expression attention", format="png", height=240, interactive=False)
                intrinsic = ResultImage(label="Intrinsic face", format="png", height=240, interactive=False)
        outputs = [result_photo, aligned, source_landmarks, target_landmarks, attention, intrinsic]
        transfer_button.click(transfer, [source, target, strength, identity_mix, paste_back, source_index, target_index],
                              outputs, api_name="transfer", concurrency_id="pipeline", concurrency_limit=CONCURRENCY)
        synthesize_button.click(synthesize, [target, expression, strength, paste_back, target_index],
                                outputs, api_name="synthesize", concurrency_id="pipeline", concurrency_limit=CONCURRENCY)
    return demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)


demo = build_demo()
LOCAL_FONTS = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


if __name__ == "__main__":
    demo.launch(max_file_size=MAX_FILE_SIZE, show_error=False, theme=LOCAL_FONTS)
