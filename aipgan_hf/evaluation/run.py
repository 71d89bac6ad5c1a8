"""Evaluate expression transfer against baselines on a dataset split, in one command.

    python -m aipgan_hf.evaluation --dataset data_build/aipgan-faces-128 --split test --baselines all \\
        [--checkpoint PATH | --no_model] [--output report.md] [--grid grid.png] [--max_pairs N] [--classifiers fer,facex]

The reference for a transfer is **the source's own expression change** (S - S0, S0 a neutral photo or frame of the
source person; pairs in :mod:`aipgan_hf.evaluation.pairs`), measured by the *expression response* of
:mod:`aipgan_hf.evaluation.measures`. Every method produces an aligned crop for each pair: the model
(``aipgan_hf.driving.drive_crops`` with the dataset's landmarks) and the baselines "target unchanged",
"source pasted", the piecewise-affine warp of the target to retargeted landmarks (the shape model's
``drive(target, source)``), and an oracle warp by the source's true change. The target person's own photo with
the source's label is measured too, as a reference row. Each output is measured the same way (dlib landmarks and
descriptor through :class:`~aipgan_hf.faces.FaceProcessor`, the FER classifiers, Inception features; see
:mod:`aipgan_hf.evaluation`); :mod:`aipgan_hf.evaluation.report` writes the tables.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from ..compositing import DEFAULT_MOUTH, MOUTH_SOURCES
from ..errors import AIPGANError, ConfigError
from ..faces import FaceProcessor
from ..files import write_atomically
from ..motion import ShapeModel
from ..pipeline import AIPGANPipeline
from .crops import CropMeasurer
from .data import SplitData, decode_rows, fid_reference_rows, load_split, split_columns, stacked
from .methods import BASELINES, MODEL_METHOD, RELATIVE_METHOD, Method, Retarget, baseline_methods, model_method
from .networks import CLASSIFIERS, ExpressionClassifier, InceptionFeatures
from .pairs import EvaluationPair, build_pairs
from .report import format_report, grid_cells, render_grid, result_to_json
from .scoring import evaluate

logger = logging.getLogger(__name__)

DEFAULT_CLASSIFIERS = ("fer", "facex")


def parse_baselines(text: str) -> list[str]:
    """``all``, ``none`` or a comma list of baseline keys (target, source, warp, oracle)."""
    text = text.strip().lower()
    if text == "all":
        return list(BASELINES)
    if text in ("", "none"):
        return []
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}, 'all' or 'none'")
    return names


def parse_classifiers(text: str) -> list[str]:
    """A comma list of expression classifier names (keys of :data:`aipgan_hf.evaluation.networks.CLASSIFIERS`)."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CLASSIFIERS]
    if not names or unknown:
        raise ConfigError(f"unknown or no classifier(s) {unknown or text!r}; choose from {sorted(CLASSIFIERS)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m aipgan_hf.evaluation", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", required=True, help="dataset folder (parquet from training/prepare_dataset.py, or save_to_disk)"
    )
    parser.add_argument("--split", default="test", help="split to evaluate on (default: test; select on validation)")
    parser.add_argument(
        "--checkpoint", default=None, help="pipeline folder or Hub id (default: the bundled checkpoint)"
    )
    parser.add_argument("--no_model", action="store_true", help="evaluate the baselines only (no checkpoint needed)")
    parser.add_argument(
        "--relative",
        action="store_true",
        help="also score the model given each source's neutral photo S0 (relative motion; not a single-photo transfer)",
    )
    # on stored crops the other face is the pair's source: "exemplar" would need the checkpoint's face instead
    parser.add_argument(
        "--mouth",
        default=DEFAULT_MOUTH,
        choices=MOUTH_SOURCES,
        help=f"where the model takes an opened mouth's inside from (pipe(..., mouth=); default: {DEFAULT_MOUTH})",
    )
    parser.add_argument(
        "--replace_target_expression",
        action="store_true",
        help="one photo: remove the target's own estimated expression first (pipe(..., replace_target_expression=))",
    )
    parser.add_argument(
        "--no_read_emotion",
        action="store_true",
        help="the 68 points' motion alone (or their exact change from S0), without the emotion the reader sees "
        "(pipe(..., read_emotion=))",
    )
    parser.add_argument(
        "--shape_model",
        default=None,
        help="shape_model.safetensors for the retargeted warp "
        "(default: the loaded pipeline's; without either, the source's aligned landmarks)",
    )
    parser.add_argument("--baselines", default="all", help="'all', 'none' or a comma list of: " + ", ".join(BASELINES))
    parser.add_argument(
        "--classifiers",
        default=",".join(DEFAULT_CLASSIFIERS),
        help="comma list of expression classifiers: " + ", ".join(sorted(CLASSIFIERS)),
    )
    parser.add_argument("--output", default="report.md", help="markdown report path (written atomically)")
    parser.add_argument("--json", default=None, help="also write the estimates as JSON here")
    parser.add_argument("--grid", default=None, help="write a sources x targets picture grid (PNG) here")
    parser.add_argument("--grid_size", type=int, default=4, help="sources and targets in the grid (default: 4)")
    parser.add_argument("--max_pairs", type=int, default=200, help="at most this many pairs (default: 200)")
    parser.add_argument("--pairs_per_identity", type=int, default=4, help="pairs of each kind per target person")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pair sampling")
    parser.add_argument("--no_fid", action="store_true", help="skip FID (saves the Inception pass)")
    parser.add_argument("--batch_size", type=int, default=16, help="model batch size")
    parser.add_argument("--device", default="cpu", help="torch device for the model and Inception (default: cpu)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; returns the exit status (0 ok, 2 user error)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        return _run(args, argv)
    except AIPGANError as error:
        sys.stderr.write(f"error: {error}\n")  # the command's own message to its user, not a log line
        return 2


def _load_model(args: argparse.Namespace, resolution: int) -> tuple[dict[str, Method], Retarget | None, dict[str, str]]:
    """The model method (unless ``--no_model``), the retarget of the warp baseline, and report lines naming both."""
    methods: dict[str, Method] = {}
    retarget: Retarget | None = None
    checkpoint = "none (baselines only)"
    retarget_name = "no shape model given: the source's landmarks aligned onto the target (carries its face shape)"
    if not args.no_model:
        pipeline = AIPGANPipeline.from_pretrained(args.checkpoint, device=args.device)
        if pipeline.resolution != resolution:
            raise ConfigError(
                f"the model works on {pipeline.resolution}px crops but the dataset has {resolution}px crops"
            )
        methods[MODEL_METHOD] = model_method(
            pipeline,
            args.batch_size,
            mouth=args.mouth,
            replace_target_expression=args.replace_target_expression,
            read_emotion=not args.no_read_emotion,
        )
        if args.relative:
            methods[RELATIVE_METHOD] = model_method(
                pipeline, args.batch_size, relative=True, mouth=args.mouth, read_emotion=not args.no_read_emotion
            )
        shape_model = getattr(pipeline, "shape_model", None)
        checkpoint = args.checkpoint or "bundled (aipgan_hf/checkpoints/default)"
        if shape_model is not None:
            retarget, retarget_name = shape_model.drive, "the checkpoint's shape model: drive(target, source)"
    if args.shape_model:
        retarget = ShapeModel.load(args.shape_model).drive
        retarget_name = f"`{args.shape_model}`: drive(target, source)"
    lines = {"checkpoint": checkpoint, "retargeted warp": retarget_name}
    if not args.no_model:
        lines["mouth"] = f"`{args.mouth}` (where the model takes an opened mouth's inside from)"
    return methods, retarget, lines


def _write_grid(
    args: argparse.Namespace, data: SplitData, pairs: list[EvaluationPair], methods: dict[str, Method]
) -> str:
    """Render and write the grid; returns its path relative to the report."""
    targets, sources = grid_cells(pairs, data.identities, args.grid_size)
    grid_method = methods.get(MODEL_METHOD) or methods.get(BASELINES["warp"]) or next(iter(methods.values()))
    buffer = io.BytesIO()
    Image.fromarray(render_grid(data, targets, sources, grid_method)).save(buffer, format="PNG")
    grid_path = write_atomically(args.grid, buffer.getvalue())
    logger.info("wrote %s", grid_path)
    return os.path.relpath(grid_path.resolve(), Path(args.output).resolve().parent)


def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    baseline_names = parse_baselines(args.baselines)
    classifier_names = parse_classifiers(args.classifiers)
    if args.no_model and not baseline_names:
        raise ConfigError("nothing to evaluate: --no_model with --baselines none")
    if args.no_model and (args.relative or args.mouth != DEFAULT_MOUTH):
        raise ConfigError(
            "--relative and --mouth choose how the model is run: drop them with --no_model (baselines only)"
        )
    table = load_split(args.dataset, args.split)
    columns = split_columns(table)
    pairs = build_pairs(columns, max_pairs=args.max_pairs, pairs_per_identity=args.pairs_per_identity, seed=args.seed)
    if not pairs:
        raise ConfigError(
            f"split {args.split!r} has no usable pairs (people with two images, sources with a neutral reference)"
        )
    real_rows = [] if args.no_fid else fid_reference_rows(len(table), pairs, len(pairs), args.seed)
    used = {r for p in pairs for r in (p.target, p.source, p.reference, p.truth) if r is not None}
    data = decode_rows(table, used | set(real_rows))
    methods, retarget, model_lines = _load_model(args, data.resolution)
    methods.update(baseline_methods(baseline_names, retarget))

    processor = FaceProcessor(resolution=data.resolution)
    measurer = CropMeasurer(processor, {name: ExpressionClassifier(name) for name in classifier_names})
    inception = None if args.no_fid else InceptionFeatures(device=args.device)
    real_images = stacked(data, real_rows) if real_rows else None
    result = evaluate(data, pairs, methods, measurer, inception, real_images)
    grid_link = _write_grid(args, data, pairs, methods) if args.grid else None

    command = "python -m aipgan_hf.evaluation " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    header = {
        "dataset": f"`{args.dataset}`, split `{args.split}` ({len(table)} images, {len(set(columns.identities))} people)",
        **model_lines,
        "FID reference": f"{len(real_rows)} real crops of the split not used by any pair"
        if real_rows
        else "not computed",
        "crop": f"{data.resolution} px",
        "command": f"`{command}`",
    }
    report = format_report(result, header, grid_link)
    path = write_atomically(args.output, report.encode("utf-8"))
    if args.json:
        write_atomically(args.json, json.dumps(result_to_json(result), indent=2, allow_nan=False).encode("utf-8"))
    logger.info("wrote %s", path)
    sys.stdout.write(report + "\n")
    return 0
