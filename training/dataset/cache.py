"""The crop cache: faces detected and aligned in worker processes, one parquet file per work unit.

A work unit is a chunk of photos or one video; its file is named by a hash of the files and the settings that shape
its content and written atomically, so an interrupted run resumes where it stopped and a second output (``--compact``)
reuses the crops without running detection again.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import logging
import math
import multiprocessing
import os
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from tqdm.auto import tqdm

from aipgan_hf.errors import AIPGANError
from aipgan_hf.faces import FaceProcessor, load_image
from aipgan_hf.files import write_atomically
from aipgan_hf.landmarks import NUM_LANDMARKS
from aipgan_hf.video.clips import DEFAULT_MAX_FRAME_PIXELS, probe_clip, read_frames

from .sources import MediaItem, Source

logger = logging.getLogger(__name__)

# Bump when the cached crop format or the processing that fills it changes: old cache files are then ignored.
CACHE_VERSION = 1
# Landmarks are stored rounded to 1/64 px: far below the detector's precision, and it lets parquet compress them.
LANDMARK_STEP = 1.0 / 64.0


@dataclasses.dataclass(frozen=True)
class ProcessingSettings:
    """Everything that changes the crops; part of every cache key."""

    resolution: int = 128
    min_face_size: int = 32
    fps: float = 5.0


@functools.lru_cache(maxsize=2)
def _face_processor(resolution: int, min_face_size: int) -> FaceProcessor:
    """One FaceProcessor per worker process (loading the dlib models takes a second, so it is reused)."""
    return FaceProcessor(resolution=resolution, min_face_size=min_face_size)


def _warm_up_worker(resolution: int, min_face_size: int) -> None:
    """Pool initializer: load the dlib models once per worker, before the first task."""
    _face_processor(resolution, min_face_size)


def _encode_png(crop: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _round_landmarks(landmarks: np.ndarray) -> np.ndarray:
    return (np.round(np.asarray(landmarks, dtype=np.float64) / LANDMARK_STEP) * LANDMARK_STEP).astype(np.float32)


def _align(processor: FaceProcessor, image: np.ndarray) -> tuple[bytes, np.ndarray]:
    # the full face search without the small-face one (0.24.0): the corpus as it was built
    aligned = processor.align(image, quick_look=False, small_faces=False)
    landmarks = _round_landmarks(aligned.crop_landmarks)  # (68, 2) crop pixels (x, y)
    if landmarks.shape != (NUM_LANDMARKS, 2):
        raise RuntimeError(f"FaceProcessor returned landmarks of shape {landmarks.shape}, expected (68, 2)")
    return _encode_png(aligned.crop), landmarks


def sample_frames(path: str, fps: float, max_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """A clip's frames at about ``fps`` a second (every frame for 0), decoded by the video driver's own decoder.

    Yields:
        (frame index in the clip, (H, W, 3) uint8 RGB), at most ``max_frames`` of them.
    """
    # No length limit, and the pixel limit far above any clip: the corpus takes what its folders hold.
    info = probe_clip(path, max_seconds=None, max_frame_pixels=64 * DEFAULT_MAX_FRAME_PIXELS)
    last_bucket, kept = -1, 0
    for index, (frame, seconds) in enumerate(read_frames(info, max_seconds=None)):
        bucket = math.floor(seconds * fps + 1e-6) if fps > 0 else index
        if bucket <= last_bucket:
            continue
        last_bucket = bucket
        yield index, np.ascontiguousarray(frame)  # to_ndarray pads rows for some widths; dlib needs them contiguous
        kept += 1
        if max_frames is not None and kept >= max_frames:
            return


@dataclasses.dataclass
class TaskResult:
    """What one worker task returns: crops of some items of a unit, and the detection failures."""

    unit: int
    rows: list[tuple[int, int, bytes, np.ndarray]]  # (item position in unit, frame, png bytes, (68, 2) landmarks)
    failures: list[tuple[int, int, str]]  # (item position in unit, frame, reason)
    attempted: int


def process_task(task: tuple[int, list[tuple[int, MediaItem]], ProcessingSettings]) -> TaskResult:
    """Detect, align and crop the faces of some items of one unit (runs in a worker process)."""
    unit, items, settings = task
    processor = _face_processor(settings.resolution, settings.min_face_size)
    result = TaskResult(unit, [], [], 0)
    for position, item in items:
        if not item.is_video:
            result.attempted += 1
            try:
                png, landmarks = _align(processor, load_image(item.path))
                result.rows.append((position, -1, png, landmarks))
            except AIPGANError as error:
                result.failures.append((position, -1, type(error).__name__))
            continue
        try:
            for frame_index, frame in sample_frames(item.path, settings.fps, item.max_frames):
                result.attempted += 1
                try:
                    png, landmarks = _align(processor, frame)
                    result.rows.append((position, frame_index, png, landmarks))
                except AIPGANError as error:
                    result.failures.append((position, frame_index, type(error).__name__))
        except Exception as error:  # a damaged clip keeps the frames decoded before the damage
            logger.warning("%s: video decoding failed (%s); kept %d frames", item.path, error, len(result.rows))
            result.failures.append((position, -1, f"VideoDecodeError: {type(error).__name__}"))
    return result


@dataclasses.dataclass(frozen=True)
class WorkUnit:
    """A chunk of photos or one video, cached as one parquet file named by a hash of what shapes its content."""

    source: str
    items: tuple[MediaItem, ...]
    key: str

    def cache_path(self, cache_dir: Path) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.source)
        return cache_dir / f"{slug}-{self.key[:20]}.parquet"


def build_units(sources: Sequence[Source], settings: ProcessingSettings, photos_per_unit: int = 1000) -> list[WorkUnit]:
    """Chunks of ``photos_per_unit`` photos and one unit per video, each keyed by files + settings."""
    units = []
    for source in sources:
        photos = [item for item in source.items if not item.is_video]
        chunks = [photos[start : start + photos_per_unit] for start in range(0, len(photos), photos_per_unit)]
        chunks += [[item] for item in source.items if item.is_video]
        for chunk in chunks:
            description = {
                "version": CACHE_VERSION,
                "settings": dataclasses.asdict(settings)
                if chunk[0].is_video
                else {"resolution": settings.resolution, "min_face_size": settings.min_face_size},
                "files": [
                    (item.path, os.path.getsize(item.path), os.path.getmtime(item.path), item.max_frames)
                    for item in chunk
                ],
            }
            key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()
            units.append(WorkUnit(source.name, tuple(chunk), key))
    return units


def write_unit_cache(unit: WorkUnit, results: Sequence[TaskResult], path: Path) -> None:
    """Store a finished unit's crops (PNG, lossless) and failure counts in one parquet file, atomically."""

    rows = sorted((row for result in results for row in result.rows), key=lambda row: (row[0], row[1]))
    failures = sorted(failure for result in results for failure in result.failures)
    table = pa.table(
        {
            "item": pa.array([row[0] for row in rows], pa.int32()),
            "frame": pa.array([row[1] for row in rows], pa.int32()),
            "crop_png": pa.array([row[2] for row in rows], pa.binary()),
            "landmarks": pa.array(
                [row[3].reshape(-1).tolist() for row in rows], pa.list_(pa.float32(), NUM_LANDMARKS * 2)
            ),
        }
    )
    stats = {"attempted": sum(result.attempted for result in results), "failures": failures}
    table = table.replace_schema_metadata({"aipgan_unit": json.dumps(stats)})
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="none")
    write_atomically(path, buffer.getvalue().to_pybytes(), durable=False)  # a cache: losing it costs only time


def read_unit_stats(path: Path) -> dict:
    """Attempt and failure counts stored with a unit's cached crops."""
    return json.loads(pq.read_schema(path).metadata[b"aipgan_unit"])


def run_units(
    units: Sequence[WorkUnit],
    cache_dir: Path,
    settings: ProcessingSettings,
    num_workers: int = 2,
    photos_per_task: int = 16,
) -> None:
    """Process every unit whose cache file is missing, with ``num_workers`` processes (one FaceProcessor each)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    pending = [unit for unit in units if not unit.cache_path(cache_dir).is_file()]
    logger.info("%d of %d work units cached, %d to process", len(units) - len(pending), len(units), len(pending))
    if not pending:
        return
    tasks, tasks_per_unit = [], []
    for unit_index, unit in enumerate(pending):
        positioned = list(enumerate(unit.items))
        step = 1 if unit.items[0].is_video else photos_per_task
        starts = range(0, len(positioned), step)
        unit_tasks = [(unit_index, positioned[start : start + step], settings) for start in starts]
        tasks += unit_tasks
        tasks_per_unit.append(len(unit_tasks))
    # Videos first: they are the longest tasks, so starting them early keeps both workers busy to the end.
    tasks.sort(key=lambda task: not task[1][0][1].is_video)
    results: dict[int, list[TaskResult]] = defaultdict(list)
    progress = tqdm(total=len(tasks), desc="faces", unit="task", dynamic_ncols=True)
    counts = {"crops": 0, "failed": 0}

    def collect(result: TaskResult) -> None:
        results[result.unit].append(result)
        counts["crops"] += len(result.rows)
        counts["failed"] += len(result.failures)
        progress.update(1)
        progress.set_postfix(counts, refresh=False)
        if len(results[result.unit]) == tasks_per_unit[result.unit]:
            unit = pending[result.unit]
            write_unit_cache(unit, results.pop(result.unit), unit.cache_path(cache_dir))

    try:
        if num_workers <= 1:
            for task in tasks:
                collect(process_task(task))
        else:
            context = multiprocessing.get_context("spawn")  # no fork after torch/dlib are loaded
            with context.Pool(
                num_workers, initializer=_warm_up_worker, initargs=(settings.resolution, settings.min_face_size)
            ) as pool:
                for result in pool.imap_unordered(process_task, tasks):
                    collect(result)
    finally:
        progress.close()
