"""A dataset split, loaded: its label columns for the pairs, and the decoded rows the pairs use.

A split saved with ``save_to_disk`` or written as parquet (``training/prepare_dataset.py``) needs the columns of
:data:`REQUIRED_COLUMNS`; :func:`split_columns` reads the labels without decoding an image, :func:`decode_rows`
decodes only the rows the pairs (and the FID reference, :func:`fid_reference_rows`) use.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .pairs import EvaluationPair, SplitColumns

REQUIRED_COLUMNS = ("image", "landmarks", "identity", "expression", "clip", "frame")


@dataclass
class SplitData:
    """The rows of a split that the pairs use, decoded once."""

    images: dict[int, np.ndarray]  # row -> (R, R, 3) uint8
    landmarks: dict[int, np.ndarray]  # row -> (68, 2) float64 crop coordinates
    identities: list[str]
    resolution: int


def stacked(data: SplitData, rows: Sequence[int], what: str = "images") -> np.ndarray:
    """(N, R, R, 3) images (``what="images"``) or (N, 68, 2) landmarks of the given rows."""
    table = data.images if what == "images" else data.landmarks
    return np.stack([table[row] for row in rows])


def pick_split(splits: Any, split: str, name: str | os.PathLike) -> Any:
    """Split ``split`` of a loaded dataset ``name``; ConfigError naming the splits it has where it lacks that one."""
    if split not in splits:
        raise ConfigError(f"{name} has no split {split!r}; it has: {', '.join(splits)}")
    return splits[split]


def load_split(dataset: str | os.PathLike, split: str) -> Any:
    """A split of a dataset saved with ``save_to_disk`` or written as parquet/imagefolder (``load_dataset``)."""
    import datasets

    path = Path(dataset)
    if not path.exists():
        raise ConfigError(f"dataset folder not found: {path}")
    try:
        if (path / "dataset_dict.json").is_file():
            splits = datasets.load_from_disk(str(path))
        else:
            splits = datasets.load_dataset(str(path))
    except (ValueError, FileNotFoundError, datasets.exceptions.DatasetGenerationError) as error:
        raise ConfigError(f"{path} is not a dataset datasets can load: {error}") from None
    data = pick_split(splits, split, path)
    missing = [column for column in REQUIRED_COLUMNS if column not in data.column_names]
    if missing:
        raise ConfigError(f"split {split!r} of {path} lacks the column(s) {missing}; it has {data.column_names}")
    return data


def split_columns(data: Any) -> SplitColumns:
    """The label columns and stored landmarks of a split (no image is decoded)."""
    landmarks = np.asarray(data.with_format("numpy", columns=["landmarks"])["landmarks"], dtype=np.float64)
    return SplitColumns(
        identities=list(data["identity"]),
        expressions=list(data["expression"]),
        clips=list(data["clip"]),
        frames=list(data["frame"]),
        sources=list(data["source"]) if "source" in data.column_names else None,
        landmarks=landmarks.reshape(len(data), -1, 2),
    )


def decode_rows(data: Any, rows: set[int]) -> SplitData:
    """Decode the images and landmarks of the given rows."""
    images, landmarks = {}, {}
    for row in sorted(rows):
        record = data[int(row)]
        images[row] = np.ascontiguousarray(np.asarray(record["image"].convert("RGB"), dtype=np.uint8))
        landmarks[row] = np.asarray(record["landmarks"], dtype=np.float64).reshape(-1, 2)
    sizes = {image.shape[:2] for image in images.values()}
    if len(sizes) != 1 or next(iter(sizes))[0] != next(iter(sizes))[1]:
        raise ConfigError(f"dataset crops must be square and all the same size, found sizes {sorted(sizes)}")
    return SplitData(images, landmarks, list(data["identity"]), next(iter(sizes))[0])


def fid_reference_rows(num_rows: int, pairs: list[EvaluationPair], count: int, seed: int = 0) -> list[int]:
    """Up to ``count`` rows of the split that no pair uses (real crops for FID, so no method's outputs are in the
    reference set); the pairs' targets and sources when the split has no unused row."""
    used = {r for p in pairs for r in (p.target, p.source, p.reference, p.truth) if r is not None}
    unused = np.array(sorted(set(range(num_rows)) - used), dtype=int)
    if len(unused) < 2:
        return sorted({r for p in pairs for r in (p.target, p.source)})
    chosen = np.random.default_rng(seed).choice(unused, size=min(count, len(unused)), replace=False)
    return sorted(int(r) for r in chosen)
