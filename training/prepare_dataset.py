"""Build the aipgan-hf face corpus as a Hugging Face dataset (parquet shards + dataset card).

Every photo and sampled video frame goes through the project's own face processing
(:class:`aipgan_hf.processing.FaceProcessor`, the same code inference uses), which gives an aligned
``R x R`` crop and its 68 landmarks in crop pixels. People are split into train / validation / test by a
hash of their identity string, so a person never appears in two splits.

Usage::

    python training/prepare_dataset.py --data_dir ../shared/data --output_dir data_build/aipgan-faces-128
    python training/prepare_dataset.py --image_folder my_people/ --video_folder my_clips/ --output_dir out/
    python -c "import datasets; print(datasets.load_dataset('data_build/aipgan-faces-128'))"

Processed crops are cached per work unit (one file per chunk of photos or per video, written
atomically) in ``--cache_dir``; an interrupted run resumes where it stopped, and a second output
(e.g. ``--compact``) reuses the cache without running detection again.
"""

from __future__ import annotations

import argparse
import csv
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
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run as `python training/prepare_dataset.py`: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipgan_hf.errors import AIPGANError, ConfigError  # noqa: E402
from aipgan_hf.landmarks import NUM_LANDMARKS  # noqa: E402

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
ALL_SOURCES = "all"  # key of the all-sources totals in the count table
EXPRESSIONS = ("neutral", "happiness", "surprise", "anger", "sadness", "fear", "disgust", "contempt")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")

# Bump when the cached crop format or the processing that fills it changes: old cache files are then ignored.
CACHE_VERSION = 1
# Landmarks are stored rounded to 1/64 px: far below the detector's precision, and it lets parquet compress them.
LANDMARK_STEP = 1.0 / 64.0

# Words in a video file name that say which expression the clip shows (checked in this order).
VIDEO_EXPRESSION_KEYWORDS = (
    ("furious", "anger"),
    ("angry", "anger"),
    ("anger", "anger"),
    ("sad", "sadness"),
    ("happy", "happiness"),
    ("surprise", "surprise"),
)

# Licence / terms of each folder of ../shared/data, as given in its README.md.
SHARED_SOURCE_INFO: dict[str, dict[str, str]] = {
    "lfw": {
        "folder": "lfw/images",
        "what": "Labeled Faces in the Wild, colour, centre-cropped 200x200; expression labels from a crowd-labelled set",
        "licence": "LFW: research use; news photographs. labels.csv: Apache-2.0 repository (muxspace/facial_expressions)",
    },
    "london": {
        "folder": "london",
        "what": "Face Research Lab London set: the same 102 people, neutral and smiling, studio light, frontal",
        "licence": "CC BY 4.0 (DeBruine & Jones 2017, figshare 10.6084/m9.figshare.5047666)",
    },
    "canada": {
        "folder": "canada/neutral",
        "what": "neutral frontal studio portraits",
        "licence": "CC BY 4.0 (DeBruine & Jones)",
    },
    "grimace": {
        "folder": "grimace",
        "what": "Essex 'grimace' set: each person pulls 20 strong expressions (unlabelled)",
        "licence": "Essex face data: research use",
    },
    "celeba": {
        "folder": "celeba_subset",
        "what": "CelebA aligned 000001-000558 (no identity labels)",
        "licence": "CelebA: non-commercial research",
    },
    "video/styletalk": {
        "folder": "videos/styletalk",
        "what": "expressive talking clips (anger, crying, laughing, surprise, plain talking)",
        "licence": "clips from public video; repository MIT",
    },
    "video/pc-avs": {"folder": "videos/pc-avs", "what": "talking clips", "licence": "repository CC BY 4.0"},
    "video/video-retalking": {
        "folder": "videos/video-retalking",
        "what": "talking clips",
        "licence": "repository Apache-2.0",
    },
    "video/liveportrait": {
        "folder": "videos/liveportrait",
        "what": "expressive driving clips (smiles, surprise, brows, eyes)",
        "licence": "repository MIT",
    },
}

# People of ../shared/data whose clips the file-name rule of `shared_video_identity` does not group, found by
# comparing dlib face descriptors (mean of 3 frames per clip; every LFW person's first photo; 128-d, "same person"
# below about 0.6). dlib's distances collapse for some groups of faces (many unrelated East Asian faces are 0.40-0.50
# apart here), so a small distance alone is not taken as proof: a clip is merged into another identity only with
# corroboration (the file name names the person; the clip's best match over all 5,749 LFW people, close to all
# of that person's photos; the same person by eye):
#   furious_talk1 <-> furious_talk2 (same "furious talk" series and man, 0.41-0.50, as close as talk2's own clips);
#   trump / reagan clips <-> LFW Donald_Trump 0.43 / Ronald_Reagan 0.42-0.52 (named in the file);
#   pc-avs 741400104 and 741400163 <-> each other 0.40 and LFW Robert_Downey_Jr 0.39 / 0.38 (best LFW match);
#   pc-avs 00098 <-> LFW David_Beckham (best LFW match, 0.43-0.56 to all 15 photos checked);
#   pc-avs 517600055 <-> pc-avs 00002 (0.38; same woman by eye).
SHARED_IDENTITY_ALIASES: dict[str, str] = {
    "video/styletalk/furious_talk1": "video/styletalk/furious_talk",
    "video/styletalk/furious_talk2": "video/styletalk/furious_talk",
    "video/styletalk/trump": "lfw/Donald_Trump",
    "video/styletalk/reagan": "lfw/Ronald_Reagan",
    "video/pc-avs/741400104": "lfw/Robert_Downey_Jr",
    "video/pc-avs/741400163": "lfw/Robert_Downey_Jr",
    "video/pc-avs/00098": "lfw/David_Beckham",
    "video/pc-avs/517600055": "video/pc-avs/00002",
}
# Probable but unproven matches (best LFW match at 0.49-0.55, within dlib's 0.6): the identities stay apart (no
# same-person pairs across them) but share a split, so a person cannot leak from train into validation / test.
SHARED_SPLIT_LINKS: dict[str, str] = {
    "video/pc-avs/00010": "lfw/Matt_Damon",
    "video/pc-avs/00473": "lfw/Patrick_Stewart",
    "video/video-retalking/5": "lfw/Martha_Stewart",
    "video/styletalk/happyenglish": "lfw/Afton_Smith",
}


# --------------------------------------------------------------------------------------------------
# What to process
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MediaItem:
    """One photo or one video clip to process, with the labels every row made from it gets.

    Attributes:
        path: absolute path of the file.
        rel_path: path stored in the dataset (relative to the folder given on the command line).
        identity: globally unique person key, e.g. ``"lfw/Aaron_Eckhart"``.
        expression: one of :data:`EXPRESSIONS` or ``""`` when unknown.
        source: source name, e.g. ``"lfw"`` or ``"video/styletalk"``.
        clip: clip name for videos (file stem), ``""`` for photos.
        max_frames: for videos, the most frames to sample (None: the whole clip).
    """

    path: str
    rel_path: str
    identity: str
    expression: str
    source: str
    clip: str = ""
    max_frames: int | None = None

    @property
    def is_video(self) -> bool:
        return self.clip != ""


@dataclasses.dataclass
class Source:
    """A named group of items with its provenance (one row of the dataset card's source table)."""

    name: str
    items: list[MediaItem]
    licence: str = "as given by the person who built the dataset"
    what: str = ""
    train_only: bool = False


def _files_with_extensions(folder: Path, extensions: Sequence[str]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)


def _normalise_expression(label: str, where: str) -> str:
    label = (label or "").strip().lower()
    if label and label not in EXPRESSIONS:
        logger.warning("unknown expression label %r in %s: stored as unknown", label, where)
        return ""
    return label


def expression_from_video_name(name: str) -> str:
    """Expression a video file name states (``furious_talk2`` -> ``anger``), or ``""`` when it says none."""
    lowered = name.lower()
    for keyword, expression in VIDEO_EXPRESSION_KEYWORDS:
        if keyword in lowered:
            return expression
    return ""


def shared_video_identity(source: str, rel_path: str) -> str:
    """Identity of a clip of ../shared/data.

    Rule: styletalk names clips ``video__<person>_clip<k>`` (``_clip_<k>``, ``_clip<k>_short`` too), so the part
    before ``_clip`` names the person (``video__Obama_clip1..3`` -> ``Obama``, ``video__furious_talk2_clip1..7`` ->
    ``furious_talk2``); a name without ``_clip`` is one person (``video__KristiNoem``). The other video folders
    hold one person per clip. :data:`SHARED_IDENTITY_ALIASES` then merges people the names do not show.
    """
    stem = Path(rel_path).stem
    if source == "video/styletalk":
        stem = re.sub(r"^video__", "", stem)
        stem = re.sub(r"_clip.*$", "", stem)
    identity = f"{source}/{stem}"
    return SHARED_IDENTITY_ALIASES.get(identity, identity)


def discover_lfw(data_dir: Path) -> list[MediaItem]:
    """LFW photos; identity and expression from ``lfw/labels.csv`` (identity from the file name otherwise)."""
    labels: dict[str, tuple[str, str]] = {}
    labels_path = data_dir / "lfw" / "labels.csv"
    if labels_path.is_file():
        with open(labels_path, newline="") as handle:
            for row in csv.DictReader(handle):
                labels[row["image"]] = (row["identity"], _normalise_expression(row["expression"], str(labels_path)))
    items = []
    for path in _files_with_extensions(data_dir / "lfw" / "images", IMAGE_EXTENSIONS):
        identity, expression = labels.get(path.name, (path.stem.rsplit("_", 1)[0], ""))
        items.append(
            MediaItem(str(path), path.relative_to(data_dir).as_posix(), f"lfw/{identity}", expression, "lfw")
        )
    return items


def discover_london(data_dir: Path) -> list[MediaItem]:
    """London set: ``neutral/NNN_03.jpg`` and ``smiling/NNN_08.jpg`` are person NNN (neutral, happiness)."""
    items = []
    for subfolder, expression in (("neutral", "neutral"), ("smiling", "happiness")):
        for path in _files_with_extensions(data_dir / "london" / subfolder, IMAGE_EXTENSIONS):
            person = path.stem.split("_")[0]
            items.append(
                MediaItem(str(path), path.relative_to(data_dir).as_posix(), f"london/{person}", expression, "london")
            )
    return items


def discover_canada(data_dir: Path) -> list[MediaItem]:
    """Canada set: one neutral portrait per person (file stem = person)."""
    return [
        MediaItem(str(path), path.relative_to(data_dir).as_posix(), f"canada/{path.stem}", "neutral", "canada")
        for path in _files_with_extensions(data_dir / "canada" / "neutral", IMAGE_EXTENSIONS)
    ]


def discover_grimace(data_dir: Path) -> list[MediaItem]:
    """Grimace set: ``grimace/<person>/<person>_exp.<k>.jpg``; strong expressions without labels."""
    return [
        MediaItem(str(path), path.relative_to(data_dir).as_posix(), f"grimace/{path.parent.name}", "", "grimace")
        for path in _files_with_extensions(data_dir / "grimace", IMAGE_EXTENSIONS)
    ]


def discover_celeba(data_dir: Path) -> list[MediaItem]:
    """CelebA subset: no identity labels, so each photo is its own identity (and the source goes to train only)."""
    return [
        MediaItem(str(path), path.relative_to(data_dir).as_posix(), f"celeba/{path.stem}", "", "celeba")
        for path in _files_with_extensions(data_dir / "celeba_subset", IMAGE_EXTENSIONS)
    ]


def discover_shared_videos(data_dir: Path, folder: str, source: str) -> list[MediaItem]:
    """Clips of one ``videos/<name>`` folder of ../shared/data, grouped by :func:`shared_video_identity`."""
    items = []
    for path in _files_with_extensions(data_dir / folder, VIDEO_EXTENSIONS):
        rel_path = path.relative_to(data_dir).as_posix()
        items.append(
            MediaItem(
                str(path),
                rel_path,
                shared_video_identity(source, rel_path),
                expression_from_video_name(path.stem),
                source,
                clip=path.stem,
            )
        )
    return items


def discover_shared_data(data_dir: Path) -> list[Source]:
    """All sources of ../shared/data that are present (a missing folder is skipped with a warning)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ConfigError(f"--data_dir {data_dir} is not a folder")
    discoverers = {
        "lfw": discover_lfw,
        "london": discover_london,
        "canada": discover_canada,
        "grimace": discover_grimace,
        "celeba": discover_celeba,
    }
    sources = []
    for name, info in SHARED_SOURCE_INFO.items():
        if not (data_dir / info["folder"]).is_dir():
            logger.warning("%s: folder %s is missing, skipped", name, data_dir / info["folder"])
            continue
        if name in discoverers:
            items = discoverers[name](data_dir)
        else:
            items = discover_shared_videos(data_dir, info["folder"], name)
        sources.append(
            Source(name, items, licence=info["licence"], what=info["what"], train_only=(name == "celeba"))
        )
    return sources


def discover_image_folder(folder: Path) -> Source:
    """A user's photo folder: each subfolder is one person (``<folder>/<person>/*.jpg``).

    An optional ``<folder>/labels.csv`` with columns ``image`` (path relative to the folder) and ``expression``
    gives expression labels. The source is named after the folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--image_folder {folder} is not a folder")
    source = folder.resolve().name
    labels: dict[str, str] = {}
    labels_path = folder / "labels.csv"
    if labels_path.is_file():
        with open(labels_path, newline="") as handle:
            for row in csv.DictReader(handle):
                labels[row["image"]] = _normalise_expression(row.get("expression", ""), str(labels_path))
    items = []
    loose_files = 0
    for path in _files_with_extensions(folder, IMAGE_EXTENSIONS):
        rel_path = path.relative_to(folder).as_posix()
        if path.parent == folder:
            loose_files += 1
            continue
        person = path.relative_to(folder).parts[0]
        items.append(MediaItem(str(path), rel_path, f"{source}/{person}", labels.get(rel_path, ""), source))
    if loose_files:
        logger.warning("%s: %d photos directly in the folder skipped (put each person in a subfolder)", folder, loose_files)
    if not items:
        raise ConfigError(f"--image_folder {folder} has no photos in person subfolders (<folder>/<person>/*.jpg)")
    return Source(source, items, what=f"photos from {folder}")


def read_video_identity_map(path: Path) -> dict[str, str]:
    """Read a CSV with columns ``video`` (file name or path relative to the video folder) and ``identity``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--video_identity_map {path} does not exist")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"video", "identity"} <= set(reader.fieldnames):
            raise ConfigError(f"--video_identity_map {path} needs the columns 'video' and 'identity'")
        return {row["video"]: row["identity"] for row in reader}


def discover_video_folder(folder: Path, identity_map: dict[str, str] | None = None) -> Source:
    """A user's video folder: each clip is one person unless ``identity_map`` names the person.

    The source is ``video/<folder name>``; identities are ``video/<folder name>/<clip stem or mapped name>``.
    Expression labels come from the file name (:func:`expression_from_video_name`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--video_folder {folder} is not a folder")
    source = f"video/{folder.resolve().name}"
    identity_map = identity_map or {}
    items = []
    for path in _files_with_extensions(folder, VIDEO_EXTENSIONS):
        rel_path = path.relative_to(folder).as_posix()
        person = identity_map.get(rel_path, identity_map.get(path.name, path.stem))
        items.append(
            MediaItem(str(path), rel_path, f"{source}/{person}", expression_from_video_name(path.stem), source, path.stem)
        )
    if not items:
        raise ConfigError(f"--video_folder {folder} has no videos ({', '.join(VIDEO_EXTENSIONS)})")
    return Source(source, items, what=f"videos from {folder}")


# --------------------------------------------------------------------------------------------------
# Splits and subsets
# --------------------------------------------------------------------------------------------------


def _unit_interval(text: str, salt: str = "") -> float:
    """A number in [0, 1) fixed by ``text`` (SHA-256), the same on every machine and Python version."""
    digest = hashlib.sha256((salt + text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_for_identity(identity: str, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """The split (train / validation / test) of a person, from a hash of the identity string alone.

    Deterministic and independent of the other people, so adding data never moves anyone between splits.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    position = _unit_interval(identity)
    if position < fractions[0]:
        return "train"
    if position < fractions[0] + fractions[1]:
        return "validation"
    return "test"


def assign_splits(
    sources: Sequence[Source], fractions: Sequence[float] = (0.8, 0.1, 0.1), split_links: dict[str, str] | None = None
) -> dict[str, str]:
    """Split of every identity of ``sources``.

    Identities of train-only sources (no identity labels) go to train; an identity in ``split_links`` takes the
    split of the identity it is linked to (a probable same person kept as a separate identity).
    """
    split_links = split_links or {}
    train_only = {item.identity for source in sources if source.train_only for item in source.items}
    identities = {item.identity for source in sources for item in source.items}
    return {
        identity: "train" if identity in train_only else split_for_identity(split_links.get(identity, identity), fractions)
        for identity in sorted(identities)
    }


def limit_items(sources: Sequence[Source], max_images: int | None) -> list[Source]:
    """Keep at most about ``max_images`` photos and frames in all, spread evenly over the sources (quick runs).

    Photos are taken a whole person at a time, in an order fixed by a salted hash of the identity (so the subset
    spans all splits); a video source's share is spread over its clips (at least 2 frames each, so every clip
    kept can give a same-person pair).
    """
    if max_images is None:
        return list(sources)
    if max_images < 1:
        raise ConfigError(f"--max_images must be at least 1, got {max_images}")
    per_source = math.ceil(max_images / max(len(sources), 1))
    reduced = []
    for source in sources:
        videos = [item for item in source.items if item.is_video]
        photos = sorted(
            (item for item in source.items if not item.is_video),
            key=lambda item: (_unit_interval(item.identity, salt="subset"), item.rel_path),
        )[:per_source]
        if videos:
            per_clip = max(2, math.ceil(per_source / len(videos)))
            videos = [dataclasses.replace(item, max_frames=per_clip) for item in videos[: max(1, per_source // per_clip)]]
        items = sorted(photos, key=lambda item: item.rel_path) + videos
        reduced.append(dataclasses.replace(source, items=items))
    return reduced


# --------------------------------------------------------------------------------------------------
# Face processing (runs in the worker processes)
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProcessingSettings:
    """Everything that changes the crops; part of every cache key."""

    resolution: int = 128
    min_face_size: int = 32
    fps: float = 5.0


@functools.lru_cache(maxsize=2)
def _face_processor(resolution: int, min_face_size: int):
    """One FaceProcessor per worker process (loading the dlib models takes a second, so it is reused)."""
    from aipgan_hf.processing import FaceProcessor

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


def _align(processor, image: np.ndarray) -> tuple[bytes, np.ndarray]:
    aligned = processor.align(image, quick_look=False)  # the full face search: the corpus as it was built
    landmarks = _round_landmarks(aligned.crop_landmarks)  # (68, 2) crop pixels (x, y)
    if landmarks.shape != (NUM_LANDMARKS, 2):
        raise RuntimeError(f"FaceProcessor returned landmarks of shape {landmarks.shape}, expected (68, 2)")
    return _encode_png(aligned.crop), landmarks


def iter_video_frames(path: str, fps: float, max_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Decode a clip with PyAV and yield ``(frame index, (H, W, 3) uint8 RGB)`` at about ``fps`` frames a second."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 25.0)
        last_bucket, kept = -1, 0
        for index, frame in enumerate(container.decode(stream)):
            seconds = frame.time if frame.time is not None else index / rate
            bucket = math.floor(seconds * fps + 1e-6) if fps > 0 else index
            if bucket <= last_bucket:
                continue
            last_bucket = bucket
            # to_ndarray pads rows for some widths; the detector needs a contiguous array
            yield index, np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
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
    from aipgan_hf.processing import load_image

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
            for frame_index, frame in iter_video_frames(item.path, settings.fps, item.max_frames):
                result.attempted += 1
                try:
                    png, landmarks = _align(processor, frame)
                    result.rows.append((position, frame_index, png, landmarks))
                except AIPGANError as error:
                    result.failures.append((position, frame_index, type(error).__name__))
        except Exception as error:  # PyAV raises its own error classes for broken files
            logger.warning("%s: video decoding failed (%s); kept %d frames", item.path, error, len(result.rows))
            result.failures.append((position, -1, f"VideoDecodeError: {type(error).__name__}"))
    return result


# --------------------------------------------------------------------------------------------------
# Work units and the crop cache
# --------------------------------------------------------------------------------------------------


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
                "settings": dataclasses.asdict(settings) if chunk[0].is_video else {
                    "resolution": settings.resolution, "min_face_size": settings.min_face_size},
                "files": [
                    (item.path, os.path.getsize(item.path), os.path.getmtime(item.path), item.max_frames) for item in chunk
                ],
            }
            key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()
            units.append(WorkUnit(source.name, tuple(chunk), key))
    return units


def _atomic_write_parquet(table, path: Path, **kwargs) -> None:
    import pyarrow.parquet as pq

    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, temporary, **kwargs)
    os.replace(temporary, path)


def write_unit_cache(unit: WorkUnit, results: Sequence[TaskResult], path: Path) -> None:
    """Store a finished unit's crops (PNG, lossless) and failure counts in one parquet file, atomically."""
    import pyarrow as pa

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
    _atomic_write_parquet(table, path, compression="none")


def read_unit_stats(path: Path) -> dict:
    """Attempt and failure counts stored with a unit's cached crops."""
    import pyarrow.parquet as pq

    return json.loads(pq.read_schema(path).metadata[b"aipgan_unit"])


def run_units(
    units: Sequence[WorkUnit], cache_dir: Path, settings: ProcessingSettings, num_workers: int = 2,
    photos_per_task: int = 16,
) -> None:
    """Process every unit whose cache file is missing, with ``num_workers`` processes (one FaceProcessor each)."""
    from tqdm.auto import tqdm

    cache_dir.mkdir(parents=True, exist_ok=True)
    pending = [unit for unit in units if not unit.cache_path(cache_dir).is_file()]
    logger.info("%d of %d work units cached, %d to process", len(units) - len(pending), len(units), len(pending))
    if not pending:
        return
    tasks, tasks_per_unit = [], []
    for unit_index, unit in enumerate(pending):
        positioned = list(enumerate(unit.items))
        step = 1 if unit.items[0].is_video else photos_per_task
        unit_tasks = [(unit_index, positioned[start : start + step], settings) for start in range(0, len(positioned), step)]
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


# --------------------------------------------------------------------------------------------------
# Writing the dataset
# --------------------------------------------------------------------------------------------------


def dataset_features():
    """The dataset's columns (the contract in the team brief)."""
    import datasets

    return datasets.Features(
        {
            "image": datasets.Image(),
            "landmarks": datasets.Array2D(shape=(NUM_LANDMARKS, 2), dtype="float32"),
            "identity": datasets.Value("string"),
            "expression": datasets.Value("string"),
            "source": datasets.Value("string"),
            "clip": datasets.Value("string"),
            "frame": datasets.Value("int32"),
            "path": datasets.Value("string"),
        }
    )


def _png_to_jpeg(png: bytes, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def _collect_rows(units: Sequence[WorkUnit], cache_dir: Path, split_of: dict[str, str]) -> tuple[dict, dict]:
    """Rows per split as (sort key, unit index, cache row) without the image bytes, plus counts per source."""
    import pyarrow.parquet as pq

    rows: dict[str, list] = {split: [] for split in SPLITS}
    stats: dict[str, dict] = defaultdict(lambda: {"attempted": 0, "failed": 0, "reasons": defaultdict(int), "failures": []})
    for unit_index, unit in enumerate(units):
        path = unit.cache_path(cache_dir)
        unit_stats = read_unit_stats(path)
        source_stats = stats[unit.source]
        source_stats["attempted"] += unit_stats["attempted"]
        source_stats["failed"] += len(unit_stats["failures"])
        for position, frame, reason in unit_stats["failures"]:
            source_stats["reasons"][reason] += 1
            source_stats["failures"].append((unit.items[position].rel_path, frame, reason))
        table = pq.read_table(path, columns=["item", "frame"])
        for row_index, (position, frame) in enumerate(zip(table["item"].to_pylist(), table["frame"].to_pylist())):
            item = unit.items[position]
            key = (item.source, item.identity, item.clip, frame, item.rel_path)
            rows[split_of[item.identity]].append((key, unit_index, row_index))
    for split in SPLITS:
        rows[split].sort()
    return rows, stats


def _iter_shard_columns(
    split_rows: list, units: Sequence[WorkUnit], cache_dir: Path, shard_rows: int, jpeg_quality: int
) -> Iterator[dict[str, list]]:
    """Columns of each output shard of one split, images re-encoded from the lossless cache as JPEG."""
    import pyarrow.parquet as pq

    @functools.lru_cache(maxsize=4)
    def unit_table(unit_index: int):
        return pq.read_table(units[unit_index].cache_path(cache_dir))

    for start in range(0, len(split_rows), shard_rows):
        columns: dict[str, list] = {name: [] for name in dataset_features()}
        for (_, _, _, frame, _), unit_index, row_index in split_rows[start : start + shard_rows]:
            table = unit_table(unit_index)
            item = units[unit_index].items[table["item"][row_index].as_py()]
            columns["image"].append({"bytes": _png_to_jpeg(table["crop_png"][row_index].as_py(), jpeg_quality), "path": None})
            landmarks = np.asarray(table["landmarks"][row_index].as_py(), dtype=np.float32)
            columns["landmarks"].append(landmarks.reshape(NUM_LANDMARKS, 2))  # (136,) -> (68, 2) x, y
            columns["identity"].append(item.identity)
            columns["expression"].append(item.expression)
            columns["source"].append(item.source)
            columns["clip"].append(item.clip)
            columns["frame"].append(frame)
            columns["path"].append(item.rel_path)
        yield columns


def write_dataset(
    units: Sequence[WorkUnit], cache_dir: Path, output_dir: Path, split_of: dict[str, str],
    jpeg_quality: int = 90, shard_rows: int = 5000,
) -> tuple[dict[str, int], dict]:
    """Write ``output_dir/data/{split}-{k:05d}-of-{n:05d}.parquet`` from the cached crops (replacing old shards).

    Returns:
        Rows per split, and detection statistics per source.
    """
    import datasets
    from tqdm.auto import tqdm

    rows, stats = _collect_rows(units, cache_dir, split_of)
    features = dataset_features()
    for stale in output_dir.glob(".data.tmp-*"):  # left by an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    staging = output_dir / f".data.tmp-{os.getpid()}"
    staging.mkdir(parents=True)
    progress = tqdm(total=sum(len(split_rows) for split_rows in rows.values()), desc="shards", unit="row", dynamic_ncols=True)
    try:
        for split in SPLITS:
            num_shards = math.ceil(len(rows[split]) / shard_rows)
            shard_columns = _iter_shard_columns(rows[split], units, cache_dir, shard_rows, jpeg_quality)
            for shard_index, columns in enumerate(shard_columns):
                shard = datasets.Dataset.from_dict(columns, features=features)
                shard.to_parquet(str(staging / f"{split}-{shard_index:05d}-of-{num_shards:05d}.parquet"))
                progress.update(len(shard))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        progress.close()
    final = output_dir / "data"
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    return {split: len(rows[split]) for split in SPLITS}, stats


# --------------------------------------------------------------------------------------------------
# Dataset card
# --------------------------------------------------------------------------------------------------


def count_table(output_dir: Path) -> dict[str, dict[str, dict[str, int]]]:
    """People, rows and clips per source (and :data:`ALL_SOURCES`) and split, read back from the written shards."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    counts: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    for split in SPLITS:
        files = sorted((output_dir / "data").glob(f"{split}-*.parquet"))
        if not files:
            continue
        table = pa.concat_tables(pq.read_table(f, columns=["identity", "source", "clip"]) for f in files)
        frame = table.to_pandas()
        counts[ALL_SOURCES][split] = {
            "people": int(frame["identity"].nunique()),
            "rows": int(len(frame)),
            "clips": int(frame.loc[frame["clip"] != "", "clip"].nunique()),
        }
        for source, group in frame.groupby("source"):
            counts[source][split] = {
                "people": int(group["identity"].nunique()),
                "rows": int(len(group)),
                "clips": int(group.loc[group["clip"] != "", "clip"].nunique()),
            }
    return counts


def card_metadata(output_dir: Path):
    """YAML metadata of the card: ``configs`` (split -> shard pattern) and ``dataset_info`` (features, splits).

    The split sizes matter beyond documentation: ``datasets`` names its cache of a local folder after this
    metadata, not the files (huggingface/datasets#2956), so without them a rebuilt folder would load stale rows.
    """
    import datasets
    import pyarrow.parquet as pq
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCardData

    card_data = DatasetCardData(
        pretty_name="aipgan-hf aligned faces",
        license="other",
        task_categories=["image-to-image"],
        tags=["faces", "facial-expression", "landmarks"],
    )
    splits, data_files = datasets.SplitDict(), []
    for split in SPLITS:
        files = sorted((output_dir / "data").glob(f"{split}-*.parquet"))
        if not files:
            continue  # load_dataset fails on a pattern that matches nothing
        num_examples = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        num_bytes = sum(f.stat().st_size for f in files)
        splits.add(datasets.SplitInfo(split, num_bytes=num_bytes, num_examples=num_examples))
        data_files.append({"split": split, "path": f"data/{split}-*.parquet"})
    total_bytes = sum(info.num_bytes for info in splits.values())
    info = DatasetInfo(
        features=dataset_features(), splits=splits, download_size=total_bytes, dataset_size=total_bytes,
        config_name="default",
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    MetadataConfigs({"default": {"data_files": data_files}}).to_dataset_card_data(card_data)
    return card_data


def render_card(
    output_dir: Path, sources: Sequence[Source], counts: dict, detection: dict, settings: ProcessingSettings,
    jpeg_quality: int, fractions: Sequence[float], command: str, split_links: dict[str, str] | None = None,
) -> str:
    """The dataset card (README.md) with the ``configs:`` front matter ``datasets.load_dataset`` reads."""
    yaml = card_metadata(output_dir).to_yaml()
    yaml_lines = ["---", *yaml.splitlines(), "---"]

    totals = {split: counts.get(ALL_SOURCES, {}).get(split, {"people": 0, "rows": 0}) for split in SPLITS}
    lines = yaml_lines + [
        "",
        "# aipgan-hf aligned faces",
        "",
        f"Aligned {settings.resolution}x{settings.resolution} face crops with 68-point landmarks, made by "
        "`training/prepare_dataset.py` with the project's own face processing (`aipgan_hf.processing.FaceProcessor`: "
        "the detector, landmarks and canonical alignment inference uses). Training pairs are sampled from it by "
        "`training/pairs.py`.",
        "",
        "```python",
        "import datasets",
        f'faces = datasets.load_dataset("{output_dir.name}")  # or the folder path / Hub id',
        "```",
        "",
        "## Columns",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
        f"| image | Image (JPEG, quality {jpeg_quality}) | aligned {settings.resolution}x{settings.resolution} RGB face crop |",
        "| landmarks | Array2D (68, 2) float32 | 68 points (dlib / iBUG order), (x, y) pixels in the crop |",
        "| identity | string | person, unique over all sources (e.g. `lfw/Aaron_Eckhart`) |",
        f"| expression | string | one of {', '.join(EXPRESSIONS)}, or empty when unknown |",
        "| source | string | lfw, london, canada, grimace, celeba, video/<folder> |",
        "| clip | string | video file stem; empty for photos |",
        "| frame | int32 | frame index in the video; -1 for photos |",
        "| path | string | original file, relative to the data folder |",
        "",
        "## Splits",
        "",
        f"People, never images, are split: a SHA-256 hash of the identity string puts each person in train / validation / "
        f"test ({' / '.join(f'{round(100 * f)}' for f in fractions)} %). The rule depends on the identity alone, "
        "so a person never appears in two splits and adding data never moves anyone.",
        "CelebA has no identity labels here (each photo is its own identity, and one person may have several photos), "
        "so all of CelebA is in **train** only: it must not be used to measure generalisation to new people.",
        "",
        "| split | people | rows |",
        "|---|---|---|",
    ]
    lines += [f"| {split} | {totals[split]['people']} | {totals[split]['rows']} |" for split in SPLITS]
    lines += ["", "## Counts per source", "",
              "| source | train people / rows | validation people / rows | test people / rows | clips | detection failures |",
              "|---|---|---|---|---|---|"]
    for source in sources:
        per_split = counts.get(source.name, {})
        cells = [f"{per_split.get(s, {}).get('people', 0)} / {per_split.get(s, {}).get('rows', 0)}" for s in SPLITS]
        clips = sum(per_split.get(s, {}).get("clips", 0) for s in SPLITS)
        found = detection.get(source.name, {"attempted": 0, "failed": 0, "reasons": {}})
        rate = 100 * found["failed"] / max(found["attempted"], 1)
        reasons = ", ".join(f"{name} {n}" for name, n in sorted(found["reasons"].items()))
        failures = f"{found['failed']} of {found['attempted']} ({rate:.1f} %){': ' + reasons if reasons else ''}"
        lines.append(f"| {source.name} | {' | '.join(cells)} | {clips or ''} | {failures} |")
    lines += [
        "",
        "Detection failures are photos or frames where no face of at least "
        f"{settings.min_face_size} px was found; they are left out and listed in `detection_failures.csv`.",
        "",
        "## Sources and licences",
        "",
        "| source | what | licence / terms |",
        "|---|---|---|",
    ]
    lines += [f"| {source.name} | {source.what} | {source.licence} |" for source in sources]
    lines += [
        "",
        "The licence of each row is that of its source; the mixture is for research use. CelebA and the Essex set "
        "are non-commercial / research only.",
        "",
        "## Labels",
        "",
        "- **Expression**: LFW from `lfw/labels.csv` (crowd-labelled, noisy); London `neutral/` -> neutral, "
        "`smiling/` -> happiness; Canada -> neutral; Grimace strong expressions are unlabelled (empty; the original "
        "file name is in `path`); CelebA unlabelled; videos from the file name when it says "
        + ", ".join(f"`{keyword}` -> {expression}" for keyword, expression in VIDEO_EXPRESSION_KEYWORDS)
        + " (the whole clip gets the label, though not every frame shows it), else empty. A clip's first frame is "
        "not labelled neutral.",
        "- **Video identities**: one person per clip, except where the file names or a given identity map group clips.",
    ]
    if split_links is not None:  # built from ../shared/data
        lines += [
            "  styletalk names clips `video__<person>_clip<k>`, so the part before `_clip` is the person "
            "(`video__Obama_clip1..3` are one person, `video__furious_talk2_clip1..7` one person). Face-descriptor "
            "checks (dlib, corroborated by the file name, by the best match over all LFW people or by eye) then "
            "merged these identities (the later name is the one stored):",
            *[f"  - `{old}` -> `{new}`" for old, new in sorted(SHARED_IDENTITY_ALIASES.items())],
            "- **Split links**: probable but unproven matches stay separate identities but share a split, so that "
            "no person can leak from train into validation / test:",
            *[f"  - `{old}` takes the split of `{new}`" for old, new in sorted(split_links.items())],
        ]
    fps_text = f"{settings.fps:g} frames per second" if settings.fps > 0 else "every frame"
    frame_caps = {item.max_frames for source in sources for item in source.items if item.max_frames}
    lines += [
        f"- **Video frames**: decoded with PyAV and sampled at {fps_text}"
        + (f", at most {max(frame_caps)} per clip (a --max_images subset)" if frame_caps else "")
        + "; `frame` is the index of the frame in the clip.",
        "",
        "## How it was made",
        "",
        "```",
        command,
        "```",
        "",
    ]
    return "\n".join(lines)


def write_failures_csv(path: Path, detection: dict) -> None:
    """List every photo or frame without a usable face (source, path, frame, reason)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "path", "frame", "reason"])
        for source in sorted(detection):
            for rel_path, frame, reason in detection[source]["failures"]:
                writer.writerow([source, rel_path, frame, reason])


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, default=None, help="the project's face data folder (../shared/data)")
    parser.add_argument("--image_folder", type=Path, action="append", default=[],
                        help="a folder of photos, one subfolder per person (repeatable); optional labels.csv "
                             "(image,expression)")
    parser.add_argument("--video_folder", type=Path, action="append", default=[],
                        help="a folder of videos, each clip one person unless --video_identity_map says (repeatable)")
    parser.add_argument("--video_identity_map", type=Path, default=None,
                        help="CSV with columns video,identity naming the person of clips in --video_folder")
    parser.add_argument("--output_dir", type=Path, required=True, help="where the dataset (data/*.parquet, README.md) goes")
    parser.add_argument("--resolution", type=int, default=128, help="side of the aligned crops in pixels")
    parser.add_argument("--min_face_size", type=int, default=32, help="smallest face (pixels) the detector accepts")
    parser.add_argument("--fps", type=float, default=5.0, help="video frames sampled per second (0: every frame)")
    parser.add_argument("--max_images", type=int, default=None,
                        help="at most about this many photos/frames in all, spread over the sources (quick runs)")
    parser.add_argument("--split_fractions", type=float, nargs=3, default=(0.8, 0.1, 0.1),
                        metavar=("TRAIN", "VALIDATION", "TEST"), help="share of people in each split")
    parser.add_argument("--jpeg_quality", type=int, default=None, help="JPEG quality of the stored crops (default 90)")
    parser.add_argument("--compact", action="store_true",
                        help="smaller variant to copy in one go: JPEG quality 75 unless --jpeg_quality is given")
    parser.add_argument("--shard_rows", type=int, default=5000, help="rows per parquet shard")
    parser.add_argument("--num_workers", type=int, default=2, help="face processing processes (1: in this process)")
    parser.add_argument("--cache_dir", type=Path, default=None,
                        help="where processed crops are cached for resuming (default: <output_dir>/../.prepare_cache)")
    parser.add_argument("--push_to_hub", type=str, default=None, metavar="REPO", help="upload the dataset to this Hub repo")
    parser.add_argument("--private", action="store_true", help="with --push_to_hub: create the repo private")
    args = parser.parse_args(argv)
    if args.data_dir is None and not args.image_folder and not args.video_folder:
        parser.error("give --data_dir and/or --image_folder / --video_folder")
    if args.resolution < 16:
        parser.error(f"--resolution must be at least 16, got {args.resolution}")
    args.jpeg_quality = args.jpeg_quality or (75 if args.compact else 90)
    if not 1 <= args.jpeg_quality <= 100:
        parser.error(f"--jpeg_quality must be in 1..100, got {args.jpeg_quality}")
    return args


def gather_sources(args: argparse.Namespace) -> list[Source]:
    """Sources named on the command line; identities must be unique to their source folder."""
    sources = discover_shared_data(args.data_dir) if args.data_dir is not None else []
    sources += [discover_image_folder(folder) for folder in args.image_folder]
    identity_map = read_video_identity_map(args.video_identity_map) if args.video_identity_map else None
    sources += [discover_video_folder(folder, identity_map) for folder in args.video_folder]
    names = [source.name for source in sources]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"two inputs have the same source name {duplicates}: rename one of the folders")
    return [source for source in sources if source.items]


def push_to_hub(output_dir: Path, repo_id: str, private: bool = False) -> None:
    """Upload the dataset folder to a Hub dataset repo (the only network access, and only when asked)."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(folder_path=str(output_dir), repo_id=repo_id, repo_type="dataset",
                      allow_patterns=["README.md", "data/*.parquet", "detection_failures.csv", "stats.json"])


def main(argv: Sequence[str] | None = None) -> dict:
    """Build the dataset; returns the statistics also written to ``<output_dir>/stats.json``."""
    args = parse_args(argv)
    started = time.perf_counter()
    sources = gather_sources(args)
    sources = limit_items(sources, args.max_images)
    settings = ProcessingSettings(args.resolution, args.min_face_size, args.fps)
    output_dir = args.output_dir
    cache_dir = args.cache_dir or output_dir.resolve().parent / ".prepare_cache"
    logger.info("sources: %s", ", ".join(f"{s.name} ({len(s.items)} files)" for s in sources))

    units = build_units(sources, settings)
    run_units(units, cache_dir, settings, num_workers=args.num_workers)
    split_links = SHARED_SPLIT_LINKS if args.data_dir is not None else None
    split_of = assign_splits(sources, args.split_fractions, split_links)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows_per_split, detection = write_dataset(
        units, cache_dir, output_dir, split_of, jpeg_quality=args.jpeg_quality, shard_rows=args.shard_rows
    )
    counts = count_table(output_dir)
    command = "python training/prepare_dataset.py " + " ".join(argv if argv is not None else sys.argv[1:])
    card = render_card(
        output_dir, sources, counts, detection, settings, args.jpeg_quality, args.split_fractions, command, split_links
    )
    (output_dir / "README.md").write_text(card)
    write_failures_csv(output_dir / "detection_failures.csv", detection)
    data_bytes = sum(path.stat().st_size for path in (output_dir / "data").glob("*.parquet"))
    stats = {
        "rows_per_split": rows_per_split,
        "counts": counts,
        "detection": {
            name: {"attempted": d["attempted"], "failed": d["failed"], "reasons": dict(d["reasons"])}
            for name, d in detection.items()
        },
        "data_bytes": data_bytes,
        "seconds": round(time.perf_counter() - started, 1),
        "settings": dataclasses.asdict(settings),
        "jpeg_quality": args.jpeg_quality,
    }
    (output_dir / "stats.json").write_text(json.dumps(stats, indent=2))
    logger.info("wrote %s: %s rows, %.1f MB, in %.0f s", output_dir, rows_per_split, data_bytes / 1e6, stats["seconds"])
    if args.push_to_hub:
        push_to_hub(output_dir, args.push_to_hub, private=args.private)
        logger.info("pushed to https://huggingface.co/datasets/%s", args.push_to_hub)
    return stats


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        main()
    except AIPGANError as error:
        logging.getLogger("prepare_dataset").error("%s", error)
        sys.exit(2)
