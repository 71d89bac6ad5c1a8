"""The dataset card (``README.md``, with the front matter ``datasets.load_dataset`` reads) and the list of
photos and frames without a usable face."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCardData

from .cache import ProcessingSettings
from .shards import dataset_features
from .sources import EXPRESSIONS, SHARED_IDENTITY_ALIASES, VIDEO_EXPRESSION_KEYWORDS, Source
from .splits import SPLITS

ALL_SOURCES = "all"  # key of the all-sources totals in the count table


def count_table(output_dir: Path) -> dict[str, dict[str, dict[str, int]]]:
    """People, rows and clips per source (and :data:`ALL_SOURCES`) and split, read back from the written shards."""
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


def card_metadata(output_dir: Path) -> DatasetCardData:
    """YAML metadata of the card: ``configs`` (split -> shard pattern) and ``dataset_info`` (features, splits).

    The split sizes matter beyond documentation: ``datasets`` names its cache of a local folder after this
    metadata, not the files (huggingface/datasets#2956), so without them a rebuilt folder would load stale rows.
    """
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
        features=dataset_features(),
        splits=splits,
        download_size=total_bytes,
        dataset_size=total_bytes,
        config_name="default",
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(card_data)
    MetadataConfigs({"default": {"data_files": data_files}}).to_dataset_card_data(card_data)
    return card_data


def render_card(
    output_dir: Path,
    sources: Sequence[Source],
    counts: dict,
    detection: dict,
    settings: ProcessingSettings,
    jpeg_quality: int,
    fractions: Sequence[float],
    command: str,
    split_links: dict[str, str] | None = None,
) -> str:
    """The dataset card (README.md) with the ``configs:`` front matter ``datasets.load_dataset`` reads."""
    lines = ["---", *card_metadata(output_dir).to_yaml().splitlines(), "---"]
    lines += _overview(output_dir, settings, jpeg_quality)
    lines += _splits_section(counts, fractions)
    lines += _counts_section(sources, counts, detection, settings)
    lines += _labels_section(split_links)
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


def _overview(output_dir: Path, settings: ProcessingSettings, jpeg_quality: int) -> list[str]:
    side = f"{settings.resolution}x{settings.resolution}"
    return [
        "",
        "# aipgan-hf aligned faces",
        "",
        f"Aligned {side} face crops with 68-point landmarks, made by "
        "`training/prepare_dataset.py` with the project's own face processing (`aipgan_hf.faces.FaceProcessor`: "
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
        f"| image | Image (JPEG, quality {jpeg_quality}) | aligned {side} RGB face crop |",
        "| landmarks | Array2D (68, 2) float32 | 68 points (dlib / iBUG order), (x, y) pixels in the crop |",
        "| identity | string | person, unique over all sources (e.g. `lfw/Aaron_Eckhart`) |",
        f"| expression | string | one of {', '.join(EXPRESSIONS)}, or empty when unknown |",
        "| source | string | lfw, london, canada, grimace, celeba, video/<folder> |",
        "| clip | string | video file stem; empty for photos |",
        "| frame | int32 | frame index in the video; -1 for photos |",
        "| path | string | original file, relative to the data folder |",
        "",
    ]


def _splits_section(counts: dict, fractions: Sequence[float]) -> list[str]:
    totals = {split: counts.get(ALL_SOURCES, {}).get(split, {"people": 0, "rows": 0}) for split in SPLITS}
    percentages = " / ".join(f"{round(100 * f)}" for f in fractions)
    return [
        "## Splits",
        "",
        "People, never images, are split: a SHA-256 hash of the identity string puts each person in train / "
        f"validation / test ({percentages} %). The rule depends on the identity alone, "
        "so a person never appears in two splits and adding data never moves anyone.",
        "CelebA has no identity labels here (each photo is its own identity, and one person may have several photos), "
        "so all of CelebA is in **train** only: it must not be used to measure generalisation to new people.",
        "",
        "| split | people | rows |",
        "|---|---|---|",
        *[f"| {split} | {totals[split]['people']} | {totals[split]['rows']} |" for split in SPLITS],
    ]


def _counts_section(
    sources: Sequence[Source], counts: dict, detection: dict, settings: ProcessingSettings
) -> list[str]:
    lines = [
        "",
        "## Counts per source",
        "",
        "| source | train people / rows | validation people / rows | test people / rows | clips | detection failures |",
        "|---|---|---|---|---|---|",
    ]
    for source in sources:
        per_split = counts.get(source.name, {})
        cells = [f"{per_split.get(s, {}).get('people', 0)} / {per_split.get(s, {}).get('rows', 0)}" for s in SPLITS]
        clips = sum(per_split.get(s, {}).get("clips", 0) for s in SPLITS)
        found = detection.get(source.name, {"attempted": 0, "failed": 0, "reasons": {}})
        rate = 100 * found["failed"] / max(found["attempted"], 1)
        reasons = ", ".join(f"{name} {n}" for name, n in sorted(found["reasons"].items()))
        failures = f"{found['failed']} of {found['attempted']} ({rate:.1f} %){': ' + reasons if reasons else ''}"
        lines.append(f"| {source.name} | {' | '.join(cells)} | {clips or ''} | {failures} |")
    return lines + [
        "",
        "Detection failures are photos or frames where no face of at least "
        f"{settings.min_face_size} px was found; they are left out and listed in `detection_failures.csv`.",
        "",
        "## Sources and licences",
        "",
        "| source | what | licence / terms |",
        "|---|---|---|",
        *[f"| {source.name} | {source.what} | {source.licence} |" for source in sources],
        "",
        "The licence of each row is that of its source; the mixture is for research use. CelebA and the Essex set "
        "are non-commercial / research only.",
        "",
    ]


def _labels_section(split_links: dict[str, str] | None) -> list[str]:
    lines = [
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
    if split_links is None:  # not built from ../shared/data
        return lines
    return lines + [
        "  styletalk names clips `video__<person>_clip<k>`, so the part before `_clip` is the person "
        "(`video__Obama_clip1..3` are one person, `video__furious_talk2_clip1..7` one person). Face-descriptor "
        "checks (dlib, corroborated by the file name, by the best match over all LFW people or by eye) then "
        "merged these identities (the later name is the one stored):",
        *[f"  - `{old}` -> `{new}`" for old, new in sorted(SHARED_IDENTITY_ALIASES.items())],
        "- **Split links**: probable but unproven matches stay separate identities but share a split, so that "
        "no person can leak from train into validation / test:",
        *[f"  - `{old}` takes the split of `{new}`" for old, new in sorted(split_links.items())],
    ]


def write_failures_csv(path: Path, detection: dict) -> None:
    """List every photo or frame without a usable face (source, path, frame, reason)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "path", "frame", "reason"])
        for source in sorted(detection):
            for rel_path, frame, reason in detection[source]["failures"]:
                writer.writerow([source, rel_path, frame, reason])
