"""The parts of the Space (app.py) that are neither the page nor its adapters: its settings (environment variables),
the controls the adapters take, how failures become short messages, the results' views and progress, and the gradio
components that bring photos in and send results out (stamped as edited)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from aipgan_hf.errors import AIPGANError
from aipgan_hf.faces import Photo, load_photo
from aipgan_hf.files import write_atomically
from aipgan_hf.pipeline import AIPGANPipeline, TransferResult
from aipgan_hf.pipeline_steps import faces_note
from aipgan_hf.provenance import save_options
from aipgan_hf.video import DEFAULT_MAX_SECONDS, LiveAnimator
from aipgan_hf.visualization import model_views

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------- settings
CONCURRENCY = max(1, int(os.environ.get("AIPGAN_CONCURRENCY", "2")))
QUEUE_SIZE = max(1, int(os.environ.get("AIPGAN_QUEUE_SIZE", "64")))
MAX_FILE_SIZE = os.environ.get("AIPGAN_MAX_FILE_SIZE", "100mb")  # a phone's 1080p minute is about 100 MB
MAX_VIDEO_SECONDS = float(os.environ.get("AIPGAN_MAX_VIDEO_SECONDS", DEFAULT_MAX_SECONDS))
LIVE_FRAME_INTERVAL = 0.1  # seconds between webcam frames sent to the server
LIVE_TIME_LIMIT = 120  # seconds one webcam session may stream before it has to be restarted

Outputs = tuple[Image.Image, Image.Image, Image.Image | None]
"""Result photo, aligned result, and the model's views (None unless asked for)."""

PRESET_NAMES = {
    "happiness": "happy",
    "surprise": "surprised",
    "anger": "angry",
    "sadness": "sad",
    "disgust": "disgusted",
    "fear": "fearful",
    "contempt": "contemptuous",
}
"""Dataset expression label -> the word shown on the page."""

READ, NOT_READ = "read", "none"
"""The source-emotion choices beside the presets' names: read from the source's face; read nothing."""
READ_CHOICE, NONE_CHOICE = "read from its face", "none: its landmarks alone"
"""How the page shows :data:`READ` and :data:`NOT_READ`."""

SLIDER_LABELS = {"mouth_open": "Mouth open", "smile": "Smile", "brows_up": "Brows up", "eyes_closed": "Eyes closed"}
"""Slider labels for the shape model's named directions; any other direction gets :func:`slider_label`'s."""

UNEXPECTED_ERROR = (
    "Something went wrong on our side while processing the photos. Please try again or use another photo."
)
ERROR_TITLE = "Could not process the photos"


# ----------------------------------------------------------------------------------------------- controls
@dataclasses.dataclass(frozen=True)
class Controls:
    """The controls every action shares.

    Attributes:
        expression_strength: 0 (the target's own expression) .. 1 (the source's or preset's) .. 1.5 (exaggerated).
        paste_back: the whole target photo (True) or only the aligned face.
        target_face_index: which face of the target photo; 0 is the largest.
        show_views: also draw the model's views (landmarks, attention, intrinsic face) as one picture.
        sliders: value per named expression direction of the model (``pipeline.sliders``), added to the expression.
    """

    expression_strength: float = 1.0
    paste_back: bool = True
    target_face_index: int = 0
    show_views: bool = False
    sliders: dict[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def read(cls, values: dict[str, Any], slider_names: Sequence[str]) -> "Controls":
        """The page's values (by component name) as controls; an absent value takes the default."""
        return cls(
            expression_strength=float(values.get("expression_strength", 1.0)),
            paste_back=bool(values.get("paste_back", True)),
            target_face_index=face_index(values.get("target_face_index", 0)),
            show_views=bool(values.get("show_views", False)),
            sliders={name: float(values[name]) for name in slider_names if values.get(name)},
        )

    def offsets(self) -> dict[str, dict[str, float]]:
        """``expression_offsets=`` for the pipeline: the sliders that are set (none set: no keyword at all)."""
        return {"expression_offsets": dict(self.sliders)} if self.sliders else {}


@dataclasses.dataclass(frozen=True)
class TransferControls:
    """The controls only a photo-to-photo transfer has.

    Attributes:
        identity_mix: 0 (the target's identity) .. 1 (the source's).
        source_face_index: which face of the source photo; 0 is the largest.
        replace_target_expression: remove the target's own expression first (a smiling target, a neutral source).
        teeth_from_source: an opened mouth may show the source photo's teeth (``mouth="source"``); off (default):
            the target's own, else the checkpoint's public-domain exemplar's, and no pixel of the source.
        source_emotion: :data:`READ` (default): where the checkpoint's reader is sure of the source's emotion, the
            target wears it; :data:`NOT_READ`: the source's 68 points alone, or their exact change from a neutral
            photo of the source (``pipe(..., read_emotion=False)``); a preset's name: that emotion, named by the
            user (``pipe(..., source_emotion=)``).
    """

    identity_mix: float = 0.0
    source_face_index: int = 0
    replace_target_expression: bool = False
    teeth_from_source: bool = False
    source_emotion: str = READ

    @classmethod
    def read(cls, values: dict[str, Any]) -> "TransferControls":
        """The page's values (by component name); an absent value takes the default."""
        return cls(
            identity_mix=float(values.get("identity_mix", 0.0)),
            source_face_index=face_index(values.get("source_face_index", 0)),
            replace_target_expression=bool(values.get("replace_target_expression", False)),
            teeth_from_source=bool(values.get("teeth_from_source", False)),
            source_emotion=READ if values.get("source_emotion") is None else str(values["source_emotion"]),
        )

    def emotion(self, expressions: list[str]) -> dict[str, Any]:
        """The pipeline's keywords for :attr:`source_emotion`; gr.Error for a value that is none of the choices."""
        return emotion_keywords(self.source_emotion, expressions, "The source's emotion")


def emotion_keywords(value: str, expressions: list[str], label: str) -> dict[str, Any]:
    """The pipeline's keywords for an emotion control's ``value`` (:data:`READ`, :data:`NOT_READ` or a preset's
    name); gr.Error naming the control (``label``) for a value that is none of the choices."""
    if value == READ:
        return {}
    if value == NOT_READ:
        return {"read_emotion": False}
    if value in expressions:
        return {"source_emotion": value}
    known = ", ".join([READ, NOT_READ, *expressions])
    raise gr.Error(
        f"{label} {value!r} is not one of this model's choices: {known}.", title=ERROR_TITLE, print_exception=False
    )


@dataclasses.dataclass(frozen=True)
class VideoControls:
    """The controls only video driving has.

    Attributes:
        relative: each frame's expression relative to the clip's most neutral frame (the target keeps its resting
            expression); off: each frame's absolute expression.
        side_by_side: the driving clip left of the result.
        clip_emotion: :data:`READ` (default): each frame wears the emotion the checkpoint's reader is sure of
            around it, else the clip's resting emotion where the reader is sure of the most neutral frames' and
            reads it in the clip as a whole too (a clip angry throughout); :data:`NOT_READ`: the frames' changes
            alone; a preset's name: that emotion under every frame, named by the user
            (``animate(..., source_emotion=)``). With relative motion only.
    """

    relative: bool = True
    side_by_side: bool = False
    clip_emotion: str = READ

    @classmethod
    def read(cls, values: dict[str, Any]) -> "VideoControls":
        """The page's values (by component name); an absent value takes the default."""
        return cls(
            relative=bool(values.get("relative", True)),
            side_by_side=bool(values.get("side_by_side", False)),
            clip_emotion=READ if values.get("clip_emotion") is None else str(values["clip_emotion"]),
        )

    def emotion(self, expressions: list[str]) -> dict[str, Any]:
        """``animate()``'s keywords for :attr:`clip_emotion`; gr.Error for a value that is none of the choices, or
        an emotion named without relative motion (which keeps the clip's resting expression itself), in the page's
        words."""
        keywords = emotion_keywords(self.clip_emotion, expressions, "The clip's emotion")
        if "source_emotion" in keywords and not self.relative:
            raise gr.Error(
                f'A named emotion is worn under relative motion only: tick "Relative motion", or choose '
                f'"{READ_CHOICE}" under "The clip\'s emotion".',
                title=ERROR_TITLE,
                print_exception=False,
            )
        return keywords


def slider_label(name: str) -> str:
    """The label of a slider: :data:`SLIDER_LABELS`, else the name made readable ("AU4_brow_lowerer" -> "AU4 brow
    lowerer")."""
    if name in SLIDER_LABELS:
        return SLIDER_LABELS[name]
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def slider_order(names: Sequence[str]) -> list[str]:
    """The model's sliders, those with a label of :data:`SLIDER_LABELS` first in its order, then the others (the
    API's order, kept from earlier versions)."""
    return [name for name in SLIDER_LABELS if name in names] + [name for name in names if name not in SLIDER_LABELS]


def shown_order(names: Sequence[str]) -> list[str]:
    """:func:`slider_order`, but the action units by number (AU1, AU2, ..., AU43; not AU1, AU10, ...): the page's."""

    def unit_number(name: str) -> int:
        found = re.match(r"AU(\d+)", name)
        return int(found.group(1)) if found else -1

    return sorted(slider_order(names), key=lambda name: (name not in SLIDER_LABELS, unit_number(name)))


# ----------------------------------------------------------------------------------------------- errors
def read_photo(path: str | None, role: str, pipeline: AIPGANPipeline) -> Photo:
    """Decode an uploaded photo in full (with its colour profile); errors name the photo by its role, never by its
    server path."""
    if not path:
        raise gr.Error(f"Please add {role}.", title=ERROR_TITLE, print_exception=False)
    try:
        return load_photo(path, max_pixels=pipeline.processor.max_pixels, draft_pixels=None)
    except AIPGANError as error:
        message = _sentence(str(error).replace(str(path), role))
        raise gr.Error(message, title=ERROR_TITLE, print_exception=False) from None


def face_index(value: float | None) -> int:
    """A face-index box value as an int (empty -> 0, the largest face)."""
    if value is None:
        return 0
    if value < 0 or value != int(value):
        raise gr.Error(
            f"A face number must be a whole number 0 or more, got {value}.", title=ERROR_TITLE, print_exception=False
        )
    return int(value)


def say_faces(boxes: tuple, index: int, photo: str) -> None:
    """A notice where the ``photo`` ("target", "source") had several faces (their ``boxes``): which one was used,
    which number each is, and the box that picks another."""
    note = faces_note(boxes, index, photo)
    if note:
        gr.Info(f'{note}. "{photo.capitalize()} face number" picks another.')


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
    """One line ending in a full stop; its first word capitalised unless it is a name (a file's, as uploaded)."""
    message = re.sub(r"\s+", " ", message).strip()
    if message.split(" ", 1)[0].isalpha():
        message = message[:1].upper() + message[1:]
    return message + ("" if message.endswith((".", "!", "?")) else ".")


# ----------------------------------------------------------------------------------------------- results
def result_views(result: TransferResult, source_photo: Photo, target_photo: Photo, show_views: bool) -> Outputs:
    """Result photo, aligned result, and the model's views (only when asked for: they cost more than the transfer)."""
    views = model_views(result, source_photo.pixels, target_photo.pixels) if show_views else None
    return result.image, result.face, views


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
        what = "finding the face in each frame" if stage == "landmarks" else "rendering"
        progress(fraction, desc=f"{what} ({done}/{total})")

    return report


def clear_old_animations(folder: Path, max_age: float = 3600.0) -> None:  # an hour: gradio serves its own copy
    """Delete this app's animations older than ``max_age`` seconds (gradio serves its own copy of each)."""
    for path in folder.glob("*.mp4"):
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime > max_age:
                path.unlink()


def preset_note(expressions: list[str]) -> str:
    """One line saying which of the six standard presets this checkpoint lacks."""
    missing = [name for label, name in PRESET_NAMES.items() if label not in expressions]
    if not expressions:
        return "This model carries no preset expressions; use a source photo instead."
    return f"Not in this model: {', '.join(missing)}." if missing else ""


@dataclasses.dataclass
class LiveSession:
    """One visitor's webcam session: the prepared target (for this photo and mode) and its frame-to-frame state."""

    key: tuple
    animator: LiveAnimator


# ----------------------------------------------------------------------------------------------- components
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
    data for declared Content-Length"). Every file says in its metadata that aipgan-hf edited it."""

    is_template = True  # rendered by the front end as a plain gr.Image
    SAVE_OPTIONS = {
        "jpeg": ("JPEG", ".jpg", {"quality": 95, "subsampling": 0}),
        "png": ("PNG", ".png", {"compress_level": 1}),
    }

    def postprocess(self, value):  # noqa: D102
        if isinstance(value, Image.Image):
            image_format, suffix, options = self.SAVE_OPTIONS[self.format]
            buffer = io.BytesIO()
            stamp = getattr(value, "encoderinfo", None) or {}  # the pipeline's: what was done, the colour profile
            kept = {**save_options(), **{key: stamp[key] for key in ("exif", "pnginfo", "icc_profile") if key in stamp}}
            value.convert("RGB").save(buffer, format=image_format, **options, **kept)  # a copy: stamp it
            data = buffer.getvalue()
            folder = Path(self.GRADIO_CACHE) / hashlib.sha256(data).hexdigest()
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"image{suffix}"
            if not path.is_file():
                write_atomically(path, data, durable=False)  # a cache: atomic for readers, no fsync per result
            value = str(path)
        return super().postprocess(value)
