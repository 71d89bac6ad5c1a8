"""Build the aipgan-hf face corpus as a Hugging Face dataset (parquet shards + dataset card).

Every photo and sampled video frame goes through the project's own face processing
(:class:`aipgan_hf.faces.FaceProcessor`, the same code inference uses), which gives an aligned
``R x R`` crop and its 68 landmarks in crop pixels. People are split into train / validation / test by a
hash of their identity string, so a person never appears in two splits.

Usage::

    python training/prepare_dataset.py --data_dir ../shared/data --output_dir data_build/aipgan-faces-128
    python training/prepare_dataset.py --image_folder my_people/ --video_folder my_clips/ --output_dir out/
    python -c "import datasets; print(datasets.load_dataset('data_build/aipgan-faces-128'))"

Processed crops are cached per work unit (one file per chunk of photos or per video, written
atomically) in ``--cache_dir``; an interrupted run resumes where it stopped, and a second output
(e.g. ``--compact``) reuses the cache without running detection again.

The work is split by job under ``training/dataset/`` (sources, splits, cache, shards, card; see docs/data.md);
this module is the command line that runs them in order.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub import HfApi

if __package__ in (None, ""):  # run as `python training/prepare_dataset.py`: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipgan_hf.errors import AIPGANError, ConfigError  # noqa: E402
from aipgan_hf.files import write_atomically  # noqa: E402
from training.dataset.cache import ProcessingSettings, build_units, run_units  # noqa: E402
from training.dataset.card import count_table, render_card, write_failures_csv  # noqa: E402
from training.dataset.shards import write_dataset  # noqa: E402
from training.dataset.sources import (  # noqa: E402
    SHARED_SPLIT_LINKS,
    Source,
    discover_image_folder,
    discover_shared_data,
    discover_video_folder,
    read_video_identity_map,
)
from training.dataset.splits import assign_splits, limit_items  # noqa: E402

logger = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add_input_arguments(parser)
    parser.add_argument(
        "--output_dir", type=Path, required=True, help="where the dataset (data/*.parquet, README.md) goes"
    )
    parser.add_argument("--resolution", type=int, default=128, help="side of the aligned crops in pixels")
    parser.add_argument("--min_face_size", type=int, default=32, help="smallest face (pixels) the detector accepts")
    parser.add_argument("--fps", type=float, default=5.0, help="video frames sampled per second (0: every frame)")
    parser.add_argument(
        "--max_images",
        type=int,
        default=None,
        help="at most about this many photos/frames in all, spread over the sources (quick runs)",
    )
    parser.add_argument(
        "--split_fractions",
        type=float,
        nargs=3,
        default=(0.8, 0.1, 0.1),
        metavar=("TRAIN", "VALIDATION", "TEST"),
        help="share of people in each split",
    )
    parser.add_argument("--jpeg_quality", type=int, default=None, help="JPEG quality of the stored crops (default 90)")
    parser.add_argument(
        "--compact",
        action="store_true",
        help="smaller variant to copy in one go: JPEG quality 75 unless --jpeg_quality is given",
    )
    parser.add_argument("--shard_rows", type=int, default=5000, help="rows per parquet shard")
    parser.add_argument("--num_workers", type=int, default=2, help="face processing processes (1: in this process)")
    parser.add_argument(
        "--cache_dir",
        type=Path,
        default=None,
        help="where processed crops are cached for resuming (default: <output_dir>/../.prepare_cache)",
    )
    parser.add_argument(
        "--push_to_hub", type=str, default=None, metavar="REPO", help="upload the dataset to this Hub repo"
    )
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


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the faces come from: the project's data folder, photo folders, video folders."""
    parser.add_argument("--data_dir", type=Path, default=None, help="the project's face data folder (../shared/data)")
    parser.add_argument(
        "--image_folder",
        type=Path,
        action="append",
        default=[],
        help="a folder of photos, one subfolder per person (repeatable); optional labels.csv (image,expression)",
    )
    parser.add_argument(
        "--video_folder",
        type=Path,
        action="append",
        default=[],
        help="a folder of videos, each clip one person unless --video_identity_map says (repeatable)",
    )
    parser.add_argument(
        "--video_identity_map",
        type=Path,
        default=None,
        help="CSV with columns video,identity naming the person of clips in --video_folder",
    )


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
    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        folder_path=str(output_dir),
        repo_id=repo_id,
        repo_type="dataset",
        allow_patterns=["README.md", "data/*.parquet", "detection_failures.csv", "stats.json"],
    )


def check_rows(
    rows_per_split: dict[str, int], detection: dict, output_dir: Path, fractions: Sequence[float] = (1.0, 1.0, 1.0)
) -> None:
    """ConfigError when no row was written (training cannot start on it); a warning for each empty split that
    ``fractions`` (train, validation, test) asked for: too few people."""
    if not sum(rows_per_split.values()):
        attempted = sum(d["attempted"] for d in detection.values())
        raise ConfigError(
            f"no face found in the {attempted} photos and frames given: no row written "
            f"(reasons in {output_dir / 'detection_failures.csv'})"
        )
    for split, fraction in zip(("train", "validation", "test"), fractions, strict=True):
        if fraction > 0 and not rows_per_split.get(split):
            logger.warning(
                "the %s split is empty: too few people for --split_fractions (each person goes to one split, by a "
                "hash of their identity)%s",
                split,
                "; train.py then validates on the training people" if split == "validation" else "",
            )


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
    write_atomically(output_dir / "README.md", card.encode())
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
    write_atomically(output_dir / "stats.json", json.dumps(stats, indent=2).encode())
    logger.info("wrote %s: %s rows, %.1f MB, in %.0f s", output_dir, rows_per_split, data_bytes / 1e6, stats["seconds"])
    check_rows(rows_per_split, detection, output_dir, args.split_fractions)
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
