"""The dataset's columns and its parquet shards, written from the crop cache (images re-encoded as JPEG)."""

from __future__ import annotations

import functools
import io
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
from PIL import Image
from tqdm.auto import tqdm

from aipgan_hf.files import atomic_directory
from aipgan_hf.landmarks import NUM_LANDMARKS

from .cache import WorkUnit, read_unit_stats
from .splits import SPLITS


def dataset_features() -> datasets.Features:
    """The dataset's columns (the contract in the team brief)."""
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
    rows: dict[str, list] = {split: [] for split in SPLITS}
    stats: dict[str, dict] = defaultdict(
        lambda: {"attempted": 0, "failed": 0, "reasons": defaultdict(int), "failures": []}
    )
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

    @functools.lru_cache(maxsize=4)
    def unit_table(unit_index: int):
        return pq.read_table(units[unit_index].cache_path(cache_dir))

    for start in range(0, len(split_rows), shard_rows):
        columns: dict[str, list] = {name: [] for name in dataset_features()}
        for (_, _, _, frame, _), unit_index, row_index in split_rows[start : start + shard_rows]:
            table = unit_table(unit_index)
            item = units[unit_index].items[table["item"][row_index].as_py()]
            jpeg = _png_to_jpeg(table["crop_png"][row_index].as_py(), jpeg_quality)
            columns["image"].append({"bytes": jpeg, "path": None})
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
    units: Sequence[WorkUnit],
    cache_dir: Path,
    output_dir: Path,
    split_of: dict[str, str],
    jpeg_quality: int = 90,
    shard_rows: int = 5000,
) -> tuple[dict[str, int], dict]:
    """Write ``output_dir/data/{split}-{k:05d}-of-{n:05d}.parquet`` from the cached crops (replacing old shards).

    Returns:
        Rows per split, and detection statistics per source.
    """
    rows, stats = _collect_rows(units, cache_dir, split_of)
    features = dataset_features()
    progress = tqdm(
        total=sum(len(split_rows) for split_rows in rows.values()), desc="shards", unit="row", dynamic_ncols=True
    )
    with progress, atomic_directory(output_dir / "data") as staging:  # readers see the old shards or the new
        for split in SPLITS:
            num_shards = math.ceil(len(rows[split]) / shard_rows)
            shard_columns = _iter_shard_columns(rows[split], units, cache_dir, shard_rows, jpeg_quality)
            for shard_index, columns in enumerate(shard_columns):
                shard = datasets.Dataset.from_dict(columns, features=features)
                shard.to_parquet(str(staging / f"{split}-{shard_index:05d}-of-{num_shards:05d}.parquet"))
                progress.update(len(shard))
    return {split: len(rows[split]) for split in SPLITS}, stats
