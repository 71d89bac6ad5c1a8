"""The Gradio Space: give one photo's face the expression of another, a preset expression, or a video's.

UI only: the model loads once at start-up, and each button has one typed adapter that calls
:class:`aipgan_hf.pipeline.AIPGANPipeline`. Run ``python app.py`` and open http://127.0.0.1:7860.

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
"Use via API" link at the page bottom. The live webcam tab streams frames to ``/live`` from the browser only:
gradio_client 2.7 cannot follow a stream event (it does not know the server's "process_streaming" message).

Throughput: results go out as JPEG (quality 95; encoding a PNG of a 1-MP photo takes 100-500 ms, a JPEG 5), and
the "Inside the model" views are drawn only when "Show what the model sees" is ticked, as one picture.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import os
import queue
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls at run time

import gradio as gr  # noqa: E402
import matplotlib  # noqa: E402
import matplotlib.cbook  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from aipgan_hf.errors import AIPGANError  # noqa: E402
from aipgan_hf.files import write_atomically  # noqa: E402
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
    REFERENCE_ROLE,
    SOURCE_ROLE,
    TARGET_ROLE,
    AIPGANPipeline,
    TransferResult,
)
from aipgan_hf.processing import FaceProcessor, load_image  # noqa: E402
from aipgan_hf.video import DEFAULT_MAX_SECONDS, LiveAnimator, animate  # noqa: E402
from aipgan_hf.video.clips import ClipWriter  # noqa: E402

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

SLIDER_LABELS = {
    "mouth_open": "Mouth open",
    "smile": "Smile",
    "brows_up": "Brows up",
    "eyes_closed": "Eyes closed",
}
"""Named expression directions of the shape model -> slider label (the sliders this page offers)."""

EXAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
CLIP_SUFFIXES = (".mp4", ".webm", ".mov")
UNEXPECTED_ERROR = "Something went wrong on our side while processing the photos. Please try again or use another photo."
ERROR_TITLE = "Could not process the photos"
LANDMARK_VIEW_SIZE = 320
ATTENTION_VIEW_SIZE = 256

CONCURRENCY = max(1, int(os.environ.get("AIPGAN_CONCURRENCY", "2")))
QUEUE_SIZE = max(1, int(os.environ.get("AIPGAN_QUEUE_SIZE", "64")))
MAX_FILE_SIZE = os.environ.get("AIPGAN_MAX_FILE_SIZE", "10mb")
MAX_VIDEO_SECONDS = float(os.environ.get("AIPGAN_MAX_VIDEO_SECONDS", DEFAULT_MAX_SECONDS))
LIVE_FRAME_INTERVAL = 0.1  # seconds between webcam frames sent to the server
LIVE_TIME_LIMIT = 120  # seconds one webcam session may stream before it has to be restarted
ANIMATION_MAX_AGE = 3600  # seconds an animation stays in this app's folder of results


# ----------------------------------------------------------------------------------------------- loading
class PipelinePool:
    """One pipeline per concurrent request: the generator's weights are shared (inference only reads them).
    Each copy has its own FaceProcessor, so that requests never wait on one another's face search (a
    FaceProcessor lends its dlib HOG detectors one per thread, as dlib's detector is not thread-safe)."""

    def __init__(self, pipeline: AIPGANPipeline, size: int) -> None:
        self.first = pipeline
        self._idle: queue.Queue[AIPGANPipeline] = queue.Queue()
        for index in range(size):
            clone = pipeline
            if index:
                clone = copy.copy(pipeline)  # shares the generator, shape model and presets
                clone.processor = FaceProcessor(**pipeline.processor_settings())
            self._idle.put(clone)

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
        if not path.is_file():  # atomic: several app processes may start at once
            buffer = io.BytesIO()
            photo.save(buffer, format="PNG")
            write_atomically(path, buffer.getvalue(), durable=False)
        paths.append(path)
    return paths + extra_examples(EXAMPLE_SUFFIXES)


def extra_examples(suffixes: tuple[str, ...]) -> list[Path]:
    """Files in AIPGAN_EXAMPLES_DIR with one of ``suffixes``."""
    extra = os.environ.get("AIPGAN_EXAMPLES_DIR")
    if not extra:
        return []
    if not Path(extra).is_dir():
        logger.warning("AIPGAN_EXAMPLES_DIR=%s is not a folder; no extra examples", extra)
        return []
    return sorted(p for p in Path(extra).iterdir() if p.suffix.lower() in suffixes and p.is_file())


def model_digest(pipeline: AIPGANPipeline) -> str:
    """A short digest of the generator's weights and the shape model's directions (names files made by this model)."""
    digest = hashlib.sha256()
    for tensor in pipeline.generator.state_dict().values():
        digest.update(tensor.detach().cpu().numpy().tobytes())
    for name, direction in sorted(pipeline.shape_model.directions.items()):
        digest.update(name.encode() + np.asarray(direction).tobytes())
    return digest.hexdigest()[:12]


def example_clips(pipeline: AIPGANPipeline, photo: Path, frames: int = 40, width: int = 300) -> list[Path]:
    """A driving clip made once per model (nothing generated is stored in the repository): ``photo``, scaled to
    ``width``, opening its mouth and smiling along the shape model's own directions, rendered by the model; plus
    AIPGAN_EXAMPLES_DIR clips."""
    path = photo.with_name(f"example_driving_clip_{model_digest(pipeline)}.mp4")
    if not path.is_file():
        try:
            small = Image.open(photo).convert("RGB")
            small = np.asarray(small.resize((width, round(width * small.height / small.width)), Image.Resampling.LANCZOS))
            prepared = pipeline.prepare_target(small)
            directions = pipeline.shape_model.directions
            with ClipWriter(path, fps=25) as writer:  # atomic: several app processes may start at once
                for index in range(frames):
                    phase = np.sin(np.pi * index / (frames - 1)) ** 2  # 0 -> 1 -> 0
                    change = sum(phase * weight * directions[name] for name, weight in (("mouth_open", 1.0), ("smile", 0.5))
                                 if name in directions)
                    driving = pipeline.shape_model.apply(prepared.landmarks, change)
                    writer.write(np.asarray(pipeline.render(prepared, np.asarray(driving, dtype=np.float32)).image))
        except Exception:  # noqa: BLE001 -- an example is optional; the page works without it
            logger.warning("could not make the example driving clip", exc_info=True)
            return extra_examples(CLIP_SUFFIXES)
    return [path, *extra_examples(CLIP_SUFFIXES)]


class PhotoInput(gr.Image):
    """gr.Image that hands the uploaded file's path to the adapter undecoded, so a file that is not an
    image reaches aipgan_hf's loader and its short message instead of failing inside gradio."""

    is_template = True  # rendered by the front end as a plain gr.Image

    def preprocess(self, payload):  # noqa: D102
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return super().preprocess(payload)


class ResultImage(gr.Image):
    """gr.Image output whose file (in the component's ``format``: "jpeg" at quality 95, or "png") is written into
    gradio's content-addressed cache atomically. gradio's own save rewrites that file in place, so two requests with
    identical outputs (two visitors running the same example) could serve each other a half-written file ("Too much
    data for declared Content-Length")."""

    is_template = True  # rendered by the front end as a plain gr.Image
    SAVE_OPTIONS = {"jpeg": ("JPEG", ".jpg", {"quality": 95, "subsampling": 0}), "png": ("PNG", ".png", {"compress_level": 1})}

    def postprocess(self, value):  # noqa: D102
        if isinstance(value, Image.Image):
            image_format, suffix, options = self.SAVE_OPTIONS[self.format]
            buffer = io.BytesIO()
            value.convert("RGB").save(buffer, format=image_format, **options)
            data = buffer.getvalue()
            folder = Path(self.GRADIO_CACHE) / hashlib.sha256(data).hexdigest()
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"image{suffix}"
            if not path.is_file():
                write_atomically(path, data, durable=False)  # a cache: atomic for readers, no fsync per result
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


def model_views(result: TransferResult, source_photo: np.ndarray, target_photo: np.ndarray, height: int = 240) -> Image.Image:
    """One picture, left to right: source landmarks, target landmarks, the driving landmarks on the aligned target,
    the expression encoder's attention there, the intrinsic face."""
    views = [
        draw_landmarks(source_photo, result.source_landmarks),
        draw_landmarks(target_photo, result.target_landmarks),
        draw_landmarks(np.asarray(result.target_face.convert("RGB")), result.driving_landmarks),
        attention_overlay(result.target_face, result.expression_attention),
        result.intrinsic.convert("RGB"),
    ]
    views = [view.resize((max(1, round(view.width * height / view.height)), height), Image.Resampling.BILINEAR) for view in views]
    gap = 6
    strip = Image.new("RGB", (sum(view.width for view in views) + gap * (len(views) - 1), height), (255, 255, 255))
    left = 0
    for view in views:
        strip.paste(view, (left, 0))
        left += view.width + gap
    return strip


def result_views(result: TransferResult, source_photo: np.ndarray, target_photo: np.ndarray,
                 show_views: bool) -> tuple[Image.Image, Image.Image, Image.Image | None]:
    """Result photo, aligned result, and the model's views (only when asked for: they cost more than the transfer)."""
    views = model_views(result, source_photo, target_photo) if show_views else None
    return result.image, result.face, views


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
EXAMPLE_CLIPS = example_clips(POOL.first, EXAMPLES[1])  # Grace Hopper, animated by the model itself
ANIMATIONS = Path(tempfile.mkdtemp(prefix="aipgan-hf-animations-"))


def slider_offsets(pipeline: AIPGANPipeline, *values: float) -> dict:
    """``expression_offsets=`` for the pipeline from the slider values in :data:`SLIDER_LABELS` order: the sliders
    that are set and that this model has (none set: no keyword at all)."""
    offsets = {name: float(value) for name, value in zip(SLIDER_LABELS, values) if value and name in pipeline.sliders}
    return {"expression_offsets": offsets} if offsets else {}


def transfer(
    source: str | None,
    target: str | None,
    expression_strength: float = 1.0,
    identity_mix: float = 0.0,
    paste_back: bool = True,
    source_face_index: float | None = 0,
    target_face_index: float | None = 0,
    show_views: bool = False,
    mouth_open: float = 0.0,
    smile: float = 0.0,
    brows_up: float = 0.0,
    eyes_closed: float = 0.0,
    replace_target_expression: bool = False,
    source_reference: str | None = None,
    teeth_from_source: bool = True,
) -> tuple[Image.Image, Image.Image, Image.Image | None]:
    """Give the target photo's face the source photo's expression.

    Args:
        source: expression source photo (file path).
        target: identity target photo (file path).
        expression_strength: 0 (the target's own expression) .. 1 (the source's) .. 1.5 (exaggerated).
        identity_mix: 0 (the target's identity) .. 1 (the source's).
        paste_back: return the whole target photo (True) or only the aligned face.
        source_face_index, target_face_index: which face when a photo has several; 0 is the largest.
        show_views: also draw the model's views (landmarks, attention, intrinsic face) as one picture.
        mouth_open, smile, brows_up, eyes_closed: slider values added along the model's named expression directions.
        replace_target_expression: remove the target's own expression first (e.g. a smiling target, a neutral source).
        source_reference: optional neutral photo of the source person (file path): the source's exact change from it.
        teeth_from_source: an opened mouth may show the source photo's teeth (``mouth="source"``); off: no pixel of
            the source reaches the result (``mouth="own"``).

    Returns:
        Result photo, aligned result, and the model's views (None unless ``show_views``).
    """
    with friendly_errors("transfer"), POOL.borrow() as pipeline:
        source_index, target_index = face_index(source_face_index), face_index(target_face_index)
        source_photo = read_photo(source, SOURCE_ROLE, pipeline)
        target_photo = read_photo(target, TARGET_ROLE, pipeline)
        reference_photo = read_photo(source_reference, REFERENCE_ROLE, pipeline) if source_reference else None
        offsets = slider_offsets(pipeline, mouth_open, smile, brows_up, eyes_closed)
        result = pipeline(source=source_photo, target=target_photo, expression_strength=expression_strength,
                          identity_mix=identity_mix, paste_back=bool(paste_back),
                          source_face_index=source_index, target_face_index=target_index,
                          replace_target_expression=bool(replace_target_expression), return_intrinsic=bool(show_views),
                          source_reference=reference_photo, mouth="source" if teeth_from_source else "own", **offsets)
        return result_views(result, source_photo, target_photo, bool(show_views))


def synthesize(
    target: str | None,
    expression: str = "happiness",
    strength: float = 1.0,
    paste_back: bool = True,
    target_face_index: float | None = 0,
    show_views: bool = False,
    mouth_open: float = 0.0,
    smile: float = 0.0,
    brows_up: float = 0.0,
    eyes_closed: float = 0.0,
) -> tuple[Image.Image, Image.Image, Image.Image | None]:
    """Give the target photo's face a preset expression (no second photo).

    Args:
        target: identity target photo (file path).
        expression: a dataset label the checkpoint has a preset for (happiness, surprise, anger, sadness,
            disgust, fear; see the page for this checkpoint's list).
        strength: 0 (the target's own expression) .. 1 (the preset) .. 1.5 (exaggerated).
        paste_back: return the whole target photo (True) or only the aligned face.
        target_face_index: which face when the photo has several; 0 is the largest.
        show_views: also draw the model's views as one picture (the target is its own source).
        mouth_open, smile, brows_up, eyes_closed: slider values added along the model's named expression directions.

    Returns:
        Result photo, aligned result, and the model's views (None unless ``show_views``).
    """
    with friendly_errors("synthesize"), POOL.borrow() as pipeline:
        target_index = face_index(target_face_index)
        if expression not in pipeline.expressions:
            available = ", ".join(PRESET_NAMES.get(label, label) for label in pipeline.expressions) or "none"
            raise gr.Error(f"This model has no preset for {PRESET_NAMES.get(expression, expression)!r}; it has: {available}.",
                           title=ERROR_TITLE, print_exception=False)
        target_photo = read_photo(target, TARGET_ROLE, pipeline)
        offsets = slider_offsets(pipeline, mouth_open, smile, brows_up, eyes_closed)
        result = pipeline.synthesize(target_photo, expression=expression, strength=strength,
                                     paste_back=bool(paste_back), target_face_index=target_index,
                                     return_intrinsic=bool(show_views), **offsets)
        return result_views(result, target_photo, target_photo, bool(show_views))


def page_progress(progress: gr.Progress, every: float = 0.25) -> Callable[[str, int, int], None]:
    """animate()'s ``progress(stage, done, total)`` as a page progress bar (the landmark pass is the first 20 %),
    sent at most every ``every`` seconds."""
    last = [0.0]

    def report(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < every and done < total:
            return
        last[0] = now
        share = done / max(total, 1)
        fraction = 0.2 * share if stage == "landmarks" else 0.2 + 0.8 * share
        progress(fraction, desc=f"{'finding the face in each frame' if stage == 'landmarks' else 'rendering'} ({done}/{total})")

    return report


def clear_old_animations(folder: Path, max_age: float = ANIMATION_MAX_AGE) -> None:
    """Delete this app's animations older than ``max_age`` seconds (gradio serves its own copy of each)."""
    for path in folder.glob("*.mp4"):
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime > max_age:
                path.unlink()


def animate_video(
    driving: str | None,
    target: str | None,
    relative: bool = True,
    side_by_side: bool = False,
    expression_strength: float = 1.0,
    paste_back: bool = True,
    target_face_index: float | None = 0,
    mouth_open: float = 0.0,
    smile: float = 0.0,
    brows_up: float = 0.0,
    eyes_closed: float = 0.0,
    progress: gr.Progress = gr.Progress(),
) -> str:
    """Drive the target photo with a video: each frame gets the clip's expression; the clip's audio is kept.

    Args:
        driving: the driving clip (file path; MP4, WebM, MOV; at most AIPGAN_MAX_VIDEO_SECONDS long).
        target: identity target photo (file path).
        relative: take each frame's expression relative to the clip's most neutral frame (the target keeps its
            resting expression); off gives the target each frame's absolute expression.
        side_by_side: show the driving clip left of the result.
        expression_strength: 0 (the target stays still) .. 1 .. 1.5 (exaggerated).
        paste_back: frames are the whole target photo (True) or only the aligned face.
        target_face_index: which face of the target photo; 0 is the largest.
        mouth_open, smile, brows_up, eyes_closed: slider values added to every frame.

    Returns:
        The MP4 (H.264, the clip's frame rate and audio).
    """
    with friendly_errors("animate"), POOL.borrow() as pipeline:
        if not driving:
            raise gr.Error("Please add a driving video.", title=ERROR_TITLE, print_exception=False)
        target_index = face_index(target_face_index)
        target_photo = read_photo(target, TARGET_ROLE, pipeline)
        offsets = slider_offsets(pipeline, mouth_open, smile, brows_up, eyes_closed)
        clear_old_animations(ANIMATIONS)
        output = ANIMATIONS / f"{uuid.uuid4().hex}.mp4"
        result = animate(pipeline, driving, target_photo, output=output, relative=bool(relative), side_by_side=bool(side_by_side),
                         paste_back=bool(paste_back), max_seconds=MAX_VIDEO_SECONDS, progress=page_progress(progress),
                         expression_strength=expression_strength, target_face_index=target_index, **offsets)
        if result.frames_without_face:
            gr.Info(f"{result.frames_without_face} of {result.frames} frames showed no face; they keep the last pose.")
        return str(result.output)


@dataclass
class LiveSession:
    """One visitor's webcam session: the prepared target (for this photo and mode) and its frame-to-frame state."""

    key: tuple
    animator: LiveAnimator


def live(
    frame: np.ndarray | None,
    target: str | None,
    relative: bool = True,
    session: LiveSession | None = None,
) -> tuple[Image.Image | None, LiveSession | None]:
    """One webcam frame in, the target photo with that frame's expression out (the first frame with a face is the
    reference for relative motion; a new target photo or mode starts over).

    Args:
        frame: (H, W, 3) webcam frame.
        target: identity target photo (file path).
        relative: as for /animate.
        session: the state of this visitor's stream (None at the start).

    Returns:
        The rendered frame and the updated session.
    """
    if frame is None:
        return None, session
    with friendly_errors("live"), POOL.borrow() as pipeline:
        key = (target, bool(relative))
        if session is None or session.key != key:
            photo = read_photo(target, TARGET_ROLE, pipeline)
            session = LiveSession(key, LiveAnimator(pipeline.prepare_target(photo), pipeline.processor, relative=bool(relative)))
        image = session.animator(pipeline, np.ascontiguousarray(frame[..., :3]))
        return image, session


# ----------------------------------------------------------------------------------------------- page
def preset_note(expressions: list[str]) -> str:
    """One line saying which of the six standard presets this checkpoint lacks."""
    missing = [name for label, name in PRESET_NAMES.items() if label not in expressions]
    if not expressions:
        return "This model carries no preset expressions; use a source photo instead."
    return f"Not in this model: {', '.join(missing)}." if missing else ""


def build_demo() -> gr.Blocks:
    """The page: inputs (photos, sliders, presets, a driving video, the webcam), outputs, and the model's views."""
    expressions = POOL.first.expressions
    sliders_here = [name for name in SLIDER_LABELS if name in POOL.first.sliders]
    photo_sources = ["upload", "webcam", "clipboard"]
    with gr.Blocks(title="AIP-GAN expression transfer", delete_cache=(1800, 3600)) as demo:  # hourly cleanup of results
        gr.Markdown(
            "# AIP-GAN expression transfer\n"
            "Give the **identity target**'s face the expression of the **expression source** photo, a preset "
            "expression, or a video's ([AIP-GAN](https://arxiv.org/abs/2005.00499), Ali & Hughes).  \n" + MODEL_STATUS
        )
        with gr.Row():
            with gr.Column():
                target = PhotoInput(label="Identity target", type="filepath", sources=photo_sources, height=320, elem_id="target")
                gr.Examples([[str(p)] for p in EXAMPLES], inputs=[target], label="Example targets", elem_id="target-examples")
                target_index = gr.Number(0, label="Target face number", info="0 = largest face, 1 = next, ...", precision=0, minimum=0)
                strength = gr.Slider(0.0, MAX_EXPRESSION_STRENGTH, value=1.0, step=0.05, label="Expression strength",
                                     info="0 = the target's own expression, 1 = the source's, 1.5 = exaggerated")
                paste_back = gr.Checkbox(True, label="Paste the new face back into the target photo")
                with gr.Accordion("Fine-tune the expression", open=False, visible=bool(sliders_here), elem_id="sliders"):
                    sliders = [gr.Slider(-1.0, 1.0, value=0.0, step=0.05, label=label, visible=name in sliders_here)
                               for name, label in SLIDER_LABELS.items()]
            with gr.Column():
                with gr.Tab("Expression from a photo", elem_id="photo-tab"):
                    source = PhotoInput(label="Expression source", type="filepath", sources=photo_sources, height=320, elem_id="source")
                    gr.Examples([[str(p)] for p in reversed(EXAMPLES)], inputs=[source], label="Example sources", elem_id="source-examples")
                    source_index = gr.Number(0, label="Source face number", info="0 = largest face", precision=0, minimum=0)
                    identity_mix = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Identity mix",
                                             info="0 = the target's identity, 1 = the source's")
                    replace_own = gr.Checkbox(False, label="Replace the target's own expression",
                                              info="for a target who already smiles, frowns, ...; off: the source's change is added")
                    teeth = gr.Checkbox(True, label="Teeth from the source photo",
                                        info="an opened mouth shows the source's teeth where the target's photo has none; "
                                             "off: no pixel of the source is used", elem_id="teeth")
                    with gr.Accordion("The source person's neutral face (optional)", open=False, elem_id="reference"):
                        source_reference = PhotoInput(label="Source person, neutral", type="filepath", sources=photo_sources,
                                                      height=200, elem_id="source-reference")
                        gr.Markdown("From one photo the model must guess how far the source's face is from its own rest "
                                    "(people differ at rest in brow height, mouth width, eye openness). With a neutral "
                                    "photo of the same person the target gets that person's exact change instead.")
                    transfer_button = gr.Button("Transfer expression", variant="primary", elem_id="transfer-button")
                with gr.Tab("Preset expression", elem_id="preset-tab"):
                    expression = gr.Dropdown([(PRESET_NAMES.get(label, label), label) for label in expressions],
                                             value=expressions[0] if expressions else None, label="Expression",
                                             info=preset_note(expressions) or None, interactive=bool(expressions),
                                             allow_custom_value=True)  # so the API gets this app's message for others
                    synthesize_button = gr.Button("Synthesize expression", variant="primary", interactive=bool(expressions),
                                                  elem_id="synthesize-button")
                with gr.Tab("Drive with a video", elem_id="video-tab"):
                    driving = gr.Video(label="Driving video", sources=["upload", "webcam"], height=320, elem_id="driving")
                    if EXAMPLE_CLIPS:
                        gr.Examples([[str(p)] for p in EXAMPLE_CLIPS], inputs=[driving], label="Example clip", elem_id="clip-examples")
                    with gr.Row():
                        relative = gr.Checkbox(True, label="Relative motion", info="the target keeps its resting expression")
                        side_by_side = gr.Checkbox(False, label="Side by side", info="driving video | result")
                    animate_button = gr.Button("Animate the target", variant="primary", elem_id="animate-button")
                    animation = gr.Video(label="Animated target", interactive=False, height=320, elem_id="animation")
                    gr.Markdown(f"Clips up to {MAX_VIDEO_SECONDS:g} s and 1080p; the clip's frame rate and sound are kept.")
                with gr.Tab("Live webcam", elem_id="live-tab"):
                    webcam = gr.Image(label="Your webcam", sources=["webcam"], streaming=True, type="numpy", elem_id="webcam")
                    live_relative = gr.Checkbox(True, label="Relative motion",
                                                info="your first frame with a face is the neutral reference")
                    live_output = ResultImage(label="The target, live", format="jpeg", interactive=False, elem_id="live-output")
                    gr.Markdown(f"Frames are sent every {LIVE_FRAME_INTERVAL:g} s for up to {LIVE_TIME_LIMIT} s; browsers "
                                "allow the webcam only over HTTPS or on localhost.")
                    live_session = gr.State(None)
        with gr.Row():
            result_photo = ResultImage(label="Result", format="jpeg", buttons=["download", "fullscreen"], height=360,
                                       interactive=False, elem_id="result")
            aligned = ResultImage(label="Aligned result", format="jpeg", height=360, interactive=False, elem_id="aligned")
        with gr.Accordion("Inside the model", open=False, elem_id="inside"):
            show_views = gr.Checkbox(False, label="Show what the model sees", info="drawn with the next result; costs time",
                                     elem_id="show-views")
            gr.Markdown("Left to right: the 68 landmarks found on the source and on the target; the driving landmarks "
                        "(the target's own face with the source's expression) on the aligned target; where the expression "
                        "encoder looks (bright = attended; it sees landmarks only, never the source's pixels); the "
                        "target's face as the identity encoder sees it, expression removed.")
            views = ResultImage(label="What the model sees", format="jpeg", height=240, interactive=False, elem_id="views")
        outputs = [result_photo, aligned, views]
        shared = dict(concurrency_id="pipeline", concurrency_limit=CONCURRENCY)
        transfer_button.click(transfer, [source, target, strength, identity_mix, paste_back, source_index, target_index,
                                         show_views, *sliders, replace_own, source_reference, teeth], outputs, api_name="transfer", **shared)
        synthesize_button.click(synthesize, [target, expression, strength, paste_back, target_index, show_views, *sliders],
                                outputs, api_name="synthesize", **shared)
        animate_button.click(animate_video, [driving, target, relative, side_by_side, strength, paste_back, target_index, *sliders],
                             [animation], api_name="animate", **shared)
        # undocumented in the API page: only the browser's client streams (gradio_client 2.7 cannot)
        webcam.stream(live, [webcam, target, live_relative, live_session], [live_output, live_session], api_name="live",
                      stream_every=LIVE_FRAME_INTERVAL, time_limit=LIVE_TIME_LIMIT, trigger_mode="always_last",
                      show_progress="hidden", api_visibility="undocumented", **shared)
    return demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)


demo = build_demo()
LOCAL_FONTS = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


if __name__ == "__main__":
    demo.launch(max_file_size=MAX_FILE_SIZE, show_error=False, theme=LOCAL_FONTS)
