"""What serving the pipeline to many visitors needs: a pool of pipelines that share one generator, the model
card's status line, and example inputs (public-domain faces, and a driving clip the model renders once)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import os
import queue
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib.cbook
import numpy as np
import torch
from PIL import Image
from skimage import data

from .checkpoint import BUNDLED_CHECKPOINT
from .faces import FaceProcessor
from .files import write_atomically
from .pipeline import AIPGANPipeline
from .video.writer import ClipWriter

logger = logging.getLogger(__name__)

EXAMPLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
CLIP_SUFFIXES = (".mp4", ".webm", ".mov")


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


def load_pool(name: str | None, size: int, threads: int | None = None) -> tuple[PipelinePool, str]:
    """Load a pipeline folder or Hub id (None: the bundled checkpoint) into a pool of ``size`` copies.

    Args:
        name: what to load; None for the bundled checkpoint.
        size: requests served at once (one pipeline copy each).
        threads: torch threads (None: the CPU cores shared among the ``size`` requests).

    Returns:
        The pool and a status line for the page ("Model: ... " and the model card's bold line).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(threads or max(1, cores // size))
    pipeline = AIPGANPipeline.from_pretrained(name)
    folder = BUNDLED_CHECKPOINT if name is None else Path(name).expanduser()
    card = folder / "README.md"
    status = model_status(card.read_text(encoding="utf-8", errors="replace")) if card.is_file() else ""
    label = "bundled checkpoint" if name is None else f"`{name}`"
    logger.info(
        "loaded %s (%d presets, %d torch threads)",
        name or BUNDLED_CHECKPOINT,
        len(pipeline.expressions),
        torch.get_num_threads(),
    )
    return PipelinePool(pipeline, size), f"Model: {label}. {status}".strip()


def model_status(card: str) -> str:
    """The model card's one-line status: its first line that starts in bold (e.g. ``**UNTRAINED**: ...``)."""
    body = card.split("---", 2)[-1] if card.startswith("---") else card
    return next((line.strip() for line in body.splitlines() if line.strip().startswith("**")), "")


def example_photos(extra_folder: str | None = None) -> list[Path]:
    """The public-domain faces that ship in wheels, written once to a cache folder, plus ``extra_folder``'s photos."""
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
    return paths + extra_examples(extra_folder, EXAMPLE_SUFFIXES)


def extra_examples(folder: str | None, suffixes: Sequence[str]) -> list[Path]:
    """Files in ``folder`` with one of ``suffixes`` (none when it is unset or not a folder)."""
    if not folder:
        return []
    if not Path(folder).is_dir():
        logger.warning("examples folder %s is not a folder; no extra examples", folder)
        return []
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in suffixes and p.is_file())


def model_digest(pipeline: AIPGANPipeline) -> str:
    """A short digest of the generator's weights and the shape model's directions (names files made by this model)."""
    digest = hashlib.sha256()
    for tensor in pipeline.generator.state_dict().values():
        digest.update(tensor.detach().cpu().numpy().tobytes())
    for name, direction in sorted(pipeline.shape_model.directions.items()):
        digest.update(name.encode() + np.asarray(direction).tobytes())
    return digest.hexdigest()[:12]


def example_clip(pipeline: AIPGANPipeline, photo: Path, frames: int = 40, width: int = 300) -> Path | None:
    """A driving clip made once per model (nothing generated is stored in the repository): ``photo``, scaled to
    ``width``, opening its mouth and smiling along the shape model's own directions, rendered by the model.
    None when it cannot be made (the page works without it)."""
    path = photo.with_name(f"example_driving_clip_{model_digest(pipeline)}.mp4")
    if path.is_file():
        return path
    try:
        small = Image.open(photo).convert("RGB")
        small = small.resize((width, round(width * small.height / small.width)), Image.Resampling.LANCZOS)
        prepared = pipeline.prepare(np.asarray(small))
        directions = pipeline.shape_model.directions
        with ClipWriter(path, fps=25) as writer:  # atomic: several app processes may start at once
            for index in range(frames):
                phase = np.sin(np.pi * index / (frames - 1)) ** 2  # 0 -> 1 -> 0
                change = sum(
                    phase * weight * directions[name]
                    for name, weight in (("mouth_open", 1.0), ("smile", 0.5))
                    if name in directions
                )
                driving = pipeline.shape_model.apply(prepared.landmarks, change)
                writer.write(np.asarray(pipeline.render(prepared, np.asarray(driving, dtype=np.float32)).image))
    except Exception:  # noqa: BLE001 -- an example is optional
        logger.warning("could not make the example driving clip", exc_info=True)
        return None
    return path
