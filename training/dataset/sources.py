"""Where the face corpus comes from: the folders of ../shared/data with their licences and labels, a user's photo
and video folders, and who is who (identities, including people the file names do not group).

How the identity aliases and split links below were found is written down in ``docs/data.md``.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from aipgan_hf.errors import ConfigError

logger = logging.getLogger(__name__)

EXPRESSIONS = ("neutral", "happiness", "surprise", "anger", "sadness", "fear", "disgust", "contempt")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")

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
        "what": "Labeled Faces in the Wild, colour, centre-cropped 200x200; expression labels from a crowd-labelled "
        "set",
        "licence": "LFW: research use; news photographs. labels.csv: Apache-2.0 repository "
        "(muxspace/facial_expressions)",
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

# People of ../shared/data whose clips the file-name rule of `shared_video_identity` does not group, merged after
# face-descriptor checks corroborated by the file name, the best LFW match or the eye (docs/data.md has the evidence).
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
# Probable but unproven matches (docs/data.md): separate identities (no same-person pairs across them) in one split,
# so that a person cannot leak from train into validation / test.
SHARED_SPLIT_LINKS: dict[str, str] = {
    "video/pc-avs/00010": "lfw/Matt_Damon",
    "video/pc-avs/00473": "lfw/Patrick_Stewart",
    "video/video-retalking/5": "lfw/Martha_Stewart",
    "video/styletalk/happyenglish": "lfw/Afton_Smith",
}


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


def _normalise_expression(label: str, unknown: set[str]) -> str:
    """``label`` in lower case if it is one of :data:`EXPRESSIONS`, else ``""`` (unknown), noted in ``unknown``."""
    label = (label or "").strip().lower()
    if label and label not in EXPRESSIONS:
        unknown.add(label)
        return ""
    return label


def _warn_unknown_labels(unknown: set[str], where: str) -> None:
    """One warning for all the label names of a labels.csv that are not expressions (not one per row)."""
    if unknown:
        logger.warning(
            "%s: unknown expression labels %s stored as unknown; the accepted ones are %s",
            where,
            sorted(unknown),
            ", ".join(EXPRESSIONS),
        )


def _labels_by_photo(labels: dict[str, str], rel_paths: Sequence[str], where: str) -> dict[str, str]:
    """labels.csv's labels keyed by the photos' paths (``<person>/<file>``); a bare file name counts where exactly
    one photo has it. Rows that match no photo get one warning."""
    paths = set(rel_paths)
    by_name: dict[str, list[str]] = {}
    for rel_path in rel_paths:
        by_name.setdefault(rel_path.rsplit("/", 1)[-1], []).append(rel_path)
    matched = {key: label for key, label in labels.items() if key in paths}
    unmatched = []
    for key, label in labels.items():
        if key in paths:
            continue
        if len(by_name.get(key, [])) == 1:
            matched.setdefault(by_name[key][0], label)  # a row keyed by the full path wins
        else:
            unmatched.append(key)
    if unmatched:
        logger.warning(
            "%s: %d of %d rows match no photo (e.g. %s), their labels unused: the image column is the photo's path "
            "in the folder, <person>/<file> (a bare file name only where one photo has it)",
            where,
            len(unmatched),
            len(labels),
            ", ".join(unmatched[:3]),
        )
    return matched


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
        unknown: set[str] = set()
        with open(labels_path, newline="") as handle:
            for row in csv.DictReader(handle):
                labels[row["image"]] = (row["identity"], _normalise_expression(row["expression"], unknown))
        _warn_unknown_labels(unknown, str(labels_path))
    items = []
    for path in _files_with_extensions(data_dir / "lfw" / "images", IMAGE_EXTENSIONS):
        identity, expression = labels.get(path.name, (path.stem.rsplit("_", 1)[0], ""))
        items.append(MediaItem(str(path), path.relative_to(data_dir).as_posix(), f"lfw/{identity}", expression, "lfw"))
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
        sources.append(Source(name, items, licence=info["licence"], what=info["what"], train_only=(name == "celeba")))
    return sources


def _read_folder_labels(labels_path: Path, rel_paths: Sequence[str]) -> dict[str, str]:
    """A photo folder's labels.csv (``image,expression``) as {photo path: expression}; {} without the file."""
    if not labels_path.is_file():
        return {}
    labels: dict[str, str] = {}
    unknown: set[str] = set()
    with open(labels_path, newline="") as handle:
        for row in csv.DictReader(handle):
            labels[row["image"]] = _normalise_expression(row.get("expression", ""), unknown)
    _warn_unknown_labels(unknown, str(labels_path))
    return _labels_by_photo(labels, rel_paths, str(labels_path))


def discover_image_folder(folder: Path) -> Source:
    """A user's photo folder: each subfolder is one person (``<folder>/<person>/*.jpg``).

    An optional ``<folder>/labels.csv`` with columns ``image`` (path relative to the folder, ``<person>/<file>``;
    a bare file name where only one photo has it) and ``expression`` (one of :data:`EXPRESSIONS`) gives expression
    labels. The source is named after the folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"--image_folder {folder} is not a folder")
    source = folder.resolve().name
    files = _files_with_extensions(folder, IMAGE_EXTENSIONS)
    photos = [path for path in files if path.parent != folder]
    loose_files = len(files) - len(photos)
    labels = _read_folder_labels(folder / "labels.csv", [path.relative_to(folder).as_posix() for path in photos])
    items = []
    for path in photos:
        rel_path = path.relative_to(folder).as_posix()
        person = path.relative_to(folder).parts[0]
        items.append(MediaItem(str(path), rel_path, f"{source}/{person}", labels.get(rel_path, ""), source))
    if loose_files:
        logger.warning(
            "%s: %d photos directly in the folder skipped (put each person in a subfolder)", folder, loose_files
        )
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
            MediaItem(
                str(path), rel_path, f"{source}/{person}", expression_from_video_name(path.stem), source, path.stem
            )
        )
    if not items:
        raise ConfigError(f"--video_folder {folder} has no videos ({', '.join(VIDEO_EXTENSIONS)})")
    return Source(source, items, what=f"videos from {folder}")
