"""Command line: ``aipgan transfer``, ``aipgan synthesize`` and ``aipgan animate``.

    aipgan transfer --source S --target T --output O [--strength X] [--identity-mix M] [--offset NAME=V ...]
    aipgan synthesize --target T --expression NAME --output O [--strength X] [--offset NAME=V ...]
    aipgan synthesize --target photos/ --expression NAME --output results/ [--format png]   (or --target "photos/*.jpg")
    aipgan animate --driving CLIP --target PHOTO --output OUT.mp4 [--no-relative] [--side-by-side] [--max-seconds S]

Exit status 0 on success; 2 on any input a user can fix (bad or missing image or clip, no face, bad option,
unwritable output), with exactly one ``error: ...`` line on stderr and no traceback; 1 on an unexpected
failure (rerun with ``--verbose`` for the traceback). Outputs are written atomically: a temporary file in the
destination folder is renamed over it, so a failure never leaves a partial or lost file. Every image written says in
its metadata that aipgan-hf edited it (:mod:`aipgan_hf.provenance`).

A folder or a quoted glob as ``--target`` of ``transfer`` / ``synthesize`` writes one result per photo into the
``--output`` folder (same name, ``--format``'s extension), with a progress bar on stderr; a photo that fails is named on
stderr and skipped, the others are written, and the exit status is then 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Sequence

import diffusers.utils.logging

from aipgan_hf import __version__
from aipgan_hf.cli_outputs import OUTPUT_FORMATS, Job, UsageError, check_input, check_output, plan_jobs, save_image
from aipgan_hf.compositing.mouth import DEFAULT_MOUTH, MOUTH_SOURCES
from aipgan_hf.errors import AIPGANError, ConfigError
from aipgan_hf.motion.emotion import EmotionRead, reading_note, told_emotion, unsure_note
from aipgan_hf.pipeline import AIPGANPipeline
from aipgan_hf.pipeline_steps import KEPT_SMILE_NOTE, faces_note
from aipgan_hf.video import DEFAULT_MAX_SECONDS, animate, clip_note, frames_note, probe_clip
from aipgan_hf.video.animate import DEFAULT_MAX_SIDE, VIDEO_OUTPUT_SUFFIXES

if TYPE_CHECKING:
    from aipgan_hf.pipeline import TransferResult

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

TARGET_HELP = "photo whose person keeps their identity"
BATCH_TARGET_HELP = (
    'photo whose person keeps their identity; or a folder of photos, or a quoted glob ("photos/*.jpg"): '
    "then --output is a folder and gets one result per photo"
)


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports mistakes as one ``error:`` line instead of usage plus message."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _offset(text: str) -> tuple[str, float]:
    """``NAME=VALUE`` of ``--offset`` as (name, value)."""
    name, separator, value = text.partition("=")
    try:
        if not separator or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. smile=0.5), got {text!r}") from None


def _add_photo_options(command: argparse.ArgumentParser, output_help: str, target_help: str = TARGET_HELP) -> None:
    """Options every subcommand shares: the target photo, the output, the face, the checkpoint, verbosity."""
    command.add_argument("--target", required=True, type=Path, help=target_help)
    command.add_argument("--output", required=True, type=Path, help=output_help)
    command.add_argument("--face-index", type=int, default=None, help="which face of the target, 0 = largest (default)")
    command.add_argument("--no-paste-back", action="store_true", help="only the aligned face crop, not the whole photo")
    command.add_argument(
        "--checkpoint", default=None, help="pipeline folder or Hub id (default: the bundled checkpoint)"
    )
    command.add_argument("-v", "--verbose", action="store_true", help="log progress and show tracebacks")


def _add_mouth(parser: argparse.ArgumentParser, source: str) -> None:
    parser.add_argument(
        "--mouth",
        choices=MOUTH_SOURCES,
        default=DEFAULT_MOUTH,
        help="where an opened mouth's inside (teeth) comes from: exemplar (default: the target's own "
        "open mouth, else the checkpoint's public-domain exemplar; no pixel of the source), source "
        f"(the target's own, else {source}), own (the target's own only), network (the network's "
        "paint only)",
    )


def _add_reading(command: argparse.ArgumentParser, off_help: str, named_help: str) -> None:
    """--no-read-emotion and --source-emotion, one or the other: naming an emotion asks for the reading that
    --no-read-emotion turns off."""
    reading = command.add_mutually_exclusive_group()
    reading.add_argument("--no-read-emotion", action="store_true", help=off_help)
    reading.add_argument("--source-emotion", default=None, metavar="EMOTION", help=named_help)


def _add_format(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--format",
        choices=[suffix[1:] for suffix in OUTPUT_FORMATS],
        default=None,
        help="with a folder or glob of targets: the results' format (default: each target's own, else png)",
    )


def _add_offsets(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--offset",
        type=_offset,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="move the expression along a named slider direction (e.g. mouth_open=0.5); repeatable",
    )


def _add_animate(subcommands: argparse._SubParsersAction) -> None:
    """The ``animate`` subcommand's options."""
    animate = subcommands.add_parser(
        "animate",
        help="drive the target photo with a video's expressions",
        description="Give the target photo each frame's expression of the driving clip; writes an MP4 (H.264) at the "
        "clip's frame rate with the clip's audio.",
    )
    animate.add_argument("--driving", required=True, type=Path, help="the driving clip (MP4, WebM, MOV, ...)")
    _add_photo_options(animate, "result video (.mp4)")
    animate.add_argument(
        "--no-relative",
        action="store_true",
        help="give the target each frame's absolute expression instead of the change from the "
        "clip's most neutral frame",
    )
    animate.add_argument("--side-by-side", action="store_true", help="show the driving clip left of the result")
    animate.add_argument(
        "--photo-texture",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the photo's fine texture under the repainted face, as photo transfers do (default; "
        "--no-photo-texture: a little faster, the face softer)",
    )
    _add_mouth(animate, "the driving frame's")
    animate.add_argument("--max-seconds", type=float, default=None, help="refuse longer clips (default 60)")
    animate.add_argument(
        "--max-side",
        type=int,
        default=DEFAULT_MAX_SIDE,
        help=f"animate a larger target photo scaled down to this longer side (default {DEFAULT_MAX_SIDE}; 0: its own)",
    )
    animate.add_argument("--smoothing", type=float, default=1.0, help="landmark smoothing, 0 = off (default 1)")
    animate.add_argument(
        "--reference",
        choices=("neutral", "first"),
        default="neutral",
        help="frame relative motion is measured from (default: the most neutral)",
    )
    animate.add_argument("--strength", type=float, default=1.0, help="expression strength, 0 to 1.5 (default 1)")
    _add_reading(
        animate,
        "the frames' changes from the reference frame alone; default: each frame wears the emotion the "
        "checkpoint's reader is sure of around it, else the clip's resting emotion where the reader is sure of the "
        "reference frames' (an angry clip's resting face) and reads it in the clip as a whole too",
        "the clip's emotion as you name it, e.g. anger (an unknown name's error lists the checkpoint's), "
        "worn under every frame in place of what the reader reads",
    )
    _add_offsets(animate)
    animate.set_defaults(handler=run_animate)


def build_parser() -> argparse.ArgumentParser:
    """The ``aipgan`` argument parser with its subcommands."""
    parser = _ArgumentParser(prog="aipgan", description="AIP-GAN facial expression transfer.")
    parser.add_argument("--version", action="version", version=f"aipgan-hf {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    subcommands.required = True
    image_help = f"result image ({', '.join(OUTPUT_FORMATS)})"

    transfer = subcommands.add_parser(
        "transfer",
        help="give the target photo's face the source photo's expression",
        description="Give the target photo's face the source photo's expression and write the result.",
    )
    transfer.add_argument("--source", required=True, type=Path, help="photo whose expression is copied")
    _add_photo_options(transfer, image_help + " or, for several targets, a folder", BATCH_TARGET_HELP)
    _add_format(transfer)
    transfer.add_argument("--strength", type=float, default=1.0, help="expression strength, 0 to 1.5 (default 1)")
    transfer.add_argument(
        "--identity-mix", type=float, default=0.0, help="0 keeps the target's identity (default), 1 the source's"
    )
    transfer.add_argument(
        "--source-face-index", type=int, default=None, help="which face of the source, 0 = largest (default)"
    )
    change_from = transfer.add_mutually_exclusive_group()  # the source's change from its neutral, or from the target's
    change_from.add_argument(
        "--source-reference",
        type=Path,
        default=None,
        help="a neutral photo of the source person: the target gets the source's exact change from it (unless "
        "an emotion other than happiness is read: see --no-read-emotion)",
    )
    change_from.add_argument(
        "--replace-target-expression",
        action="store_true",
        help="take the target's own expression away first (a smiling portrait given a neutral or smiling source; "
        "on a photo taken at an angle it may squash the face). Default: the source's is added to the target's",
    )
    _add_reading(
        transfer,
        "the source's 68 points alone (or their exact change from --source-reference); default: where the "
        "checkpoint's reader is sure of the source's emotion, the target wears it (docs/design.md)",
        "the source's emotion as you name it, e.g. anger or sadness (an unknown name's error lists the "
        "checkpoint's), worn in place of what the reader reads: for a source it misreads (beside "
        "--source-reference a smile is the exact change)",
    )
    _add_mouth(transfer, "the source photo's")
    _add_offsets(transfer)
    transfer.set_defaults(handler=run_transfer)

    synthesize = subcommands.add_parser(
        "synthesize",
        help="give the target photo's face a preset expression",
        description="Give the target photo's face a preset expression (no second photo) and write the result.",
    )
    _add_photo_options(synthesize, image_help + " or, for several targets, a folder", BATCH_TARGET_HELP)
    _add_format(synthesize)
    synthesize.add_argument(
        "--expression",
        required=True,
        help="preset name, e.g. happiness or surprise (the checkpoint's list is in the error for an unknown one)",
    )
    synthesize.add_argument("--strength", type=float, default=1.0, help="expression strength, 0 to 1.5 (default 1)")
    _add_mouth(synthesize, "a public-domain exemplar's (the astronaut's, shipped with the checkpoint)")
    _add_offsets(synthesize)
    synthesize.set_defaults(handler=run_synthesize)

    _add_animate(subcommands)
    return parser


def _load_pipeline(args: argparse.Namespace):
    if not args.verbose:
        diffusers.utils.logging.set_verbosity_error()  # its own stderr handler would add lines
    return AIPGANPipeline.from_pretrained(args.checkpoint)


def _offsets(args: argparse.Namespace) -> dict:
    """``expression_offsets=`` for the pipeline, only when ``--offset`` was given (older pipelines lack the keyword)."""
    return {"expression_offsets": dict(args.offset)} if args.offset else {}


def _write_results(jobs: list[Job], several: bool, make: Callable[[Path], "TransferResult"], edit: str) -> int:
    """Make and save each job's result. With several targets a failing photo is named and skipped (exit status 2)."""
    if not several:
        save_image(make(jobs[0].target).image, jobs[0].output, jobs[0].suffix, edit)
        return EXIT_OK
    from tqdm import tqdm

    skipped = []
    with tqdm(total=len(jobs), desc="targets", unit="photo", file=sys.stderr, disable=None) as bar:
        for job in jobs:
            try:
                save_image(make(job.target).image, job.output, job.suffix, edit, say=bar.write)
            except (AIPGANError, OSError) as error:  # what a user can fix: this photo is skipped, not the run
                skipped.append(job.target.name)
                bar.write(f"skipped {job.target}: {in_flags(error)}", file=sys.stderr)
            bar.update()
    print(f"wrote {len(jobs) - len(skipped)} of {len(jobs)} results to {jobs[0].output.parent}")
    if skipped:
        raise UsageError(f"{len(skipped)} of {len(jobs)} targets skipped: {', '.join(skipped)}")
    return EXIT_OK


def run_transfer(args: argparse.Namespace) -> int:
    """``aipgan transfer``: validate paths, load the pipeline, transfer to each target, write the results."""
    check_input(args.source, "source")
    if args.source_reference is not None:
        check_input(args.source_reference, "source reference")
    others = [args.source, *([args.source_reference] if args.source_reference else [])]
    jobs, several = plan_jobs(args.target, args.output, args.format, others)
    pipeline = _load_pipeline(args)
    if args.source_emotion is not None:  # a wrong name stops the run once, not every target
        told_emotion(args.source_emotion, pipeline.shape_model)

    told = []

    def transfer(target: Path) -> "TransferResult":
        result = pipeline(
            source=args.source,
            target=target,
            expression_strength=args.strength,
            identity_mix=args.identity_mix,
            paste_back=not args.no_paste_back,
            source_face_index=args.source_face_index,
            target_face_index=args.face_index,
            source_reference=args.source_reference,
            replace_target_expression=args.replace_target_expression,
            mouth=args.mouth,
            read_emotion=not args.no_read_emotion,
            source_emotion=args.source_emotion,
            **_offsets(args),
        )
        _say_faces(result.target_face_boxes, args.face_index, f"{target.name}: ", "target", "--face-index")
        if result.kept_smile:
            hint = "--replace-target-expression takes it away first; best on a frontal portrait"
            print(f"{target.name}: {KEPT_SMILE_NOTE} ({hint})", file=sys.stderr)
        if told:  # one source: its faces and its reading are the same for every target
            return result
        told.append(result)
        _say_faces(result.source_face_boxes, args.source_face_index, "", "source", "--source-face-index")
        if result.emotion is not None:
            _say_worn(result.emotion, reading_note(result.emotion))
        elif unsure_note(result.reading) and args.strength > 0:
            print(f"{unsure_note(result.reading)} (--source-emotion to name it)", file=sys.stderr)
        return result

    return _write_results(jobs, several, transfer, "expression transfer")


def run_synthesize(args: argparse.Namespace) -> int:
    """``aipgan synthesize``: a preset expression on each target photo."""
    jobs, several = plan_jobs(args.target, args.output, args.format, [])
    pipeline = _load_pipeline(args)

    def synthesize(target: Path) -> "TransferResult":
        result = pipeline(
            target,
            expression=args.expression,
            expression_strength=args.strength,
            paste_back=not args.no_paste_back,
            target_face_index=args.face_index,
            mouth=args.mouth,
            **_offsets(args),
        )
        _say_faces(result.target_face_boxes, args.face_index, f"{target.name}: ", "target", "--face-index")
        return result

    return _write_results(jobs, several, synthesize, f"preset expression: {args.expression}")


class _ProgressBars:
    """tqdm bars for the two passes of :func:`aipgan_hf.video.animate` (shown only when stderr is a terminal)."""

    LABELS = {"landmarks": "landmarks", "rendering": "rendering"}

    def __init__(self) -> None:
        self.bars: dict = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(
                total=total, desc=self.LABELS.get(stage, stage), unit="frame", disable=None, leave=False
            )
        bar.total = max(bar.total or 0, total)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def run_animate(args: argparse.Namespace) -> int:
    """``aipgan animate``: drive the target photo with a clip, write an MP4 and a one-line summary."""
    check_input(args.driving, "driving clip")
    check_input(args.target, "target")
    check_output(args.output, [args.driving, args.target], formats=VIDEO_OUTPUT_SUFFIXES)
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise UsageError(f"--max-seconds must be more than 0, got {args.max_seconds:g}")
    if args.max_side and args.max_side < 64:
        raise UsageError(f"--max-side must be 64 pixels or more (0: the photo's own size), got {args.max_side}")
    if not math.isfinite(args.smoothing) or args.smoothing < 0:
        raise UsageError(f"--smoothing must be 0 or more, got {args.smoothing:g}")
    if args.source_emotion is not None and args.no_relative:
        raise UsageError("--source-emotion names the clip's emotion, worn under relative motion only")
    # a bad clip fails before the model loads
    probe_clip(args.driving, max_seconds=args.max_seconds or DEFAULT_MAX_SECONDS)
    pipeline = _load_pipeline(args)
    bars = _ProgressBars()
    try:
        result = animate(
            pipeline,
            args.driving,
            args.target,
            output=args.output,
            relative=not args.no_relative,
            smoothing=args.smoothing,
            paste_back=not args.no_paste_back,
            side_by_side=args.side_by_side,
            photo_texture=args.photo_texture,
            max_seconds=args.max_seconds or DEFAULT_MAX_SECONDS,
            progress=bars,
            reference=args.reference,
            expression_strength=args.strength,
            expression_offsets=dict(args.offset) or None,
            target_face_index=args.face_index,
            mouth=args.mouth,
            read_emotion=not args.no_read_emotion,
            source_emotion=args.source_emotion,
            max_side=args.max_side or None,
        )
    finally:
        bars.close()
    _say_faces(result.target_face_boxes, args.face_index, "", "target", "--face-index")
    if result.emotion is not None:
        _say_worn(result.emotion, clip_note(result.emotion))
    own = frames_note(result.frame_emotions, result.emotion)
    if own:
        print(f"{own} (--source-emotion to name one for all; --no-read-emotion: none)", file=sys.stderr)
    if result.driving_faces_note():
        print(result.driving_faces_note(), file=sys.stderr)
    print(f"wrote {args.output}: {result.summary()}")
    return EXIT_OK


def _say_faces(boxes: tuple, face_index: int | None, prefix: str, photo: str, flag: str) -> None:
    """Where the ``photo`` had several faces (their ``boxes``), which one was used and how to pick another, on
    stderr."""
    note = faces_note(boxes, face_index, photo)
    if note:
        print(f"{prefix}{note} ({flag} N picks another)", file=sys.stderr)


def _say_worn(emotion: EmotionRead, note: str) -> None:
    """The ``note`` on the emotion a run wears, on stderr, and how to change it where it was read."""
    hint = "" if emotion.told else " (--source-emotion to name another; --no-read-emotion: none)"
    print(f"{note}{hint}", file=sys.stderr)


def _one_line(error: Exception) -> str:
    """An error as one line; an OSError as its reason and file."""
    if isinstance(error, OSError):
        error = f"{error.strerror or error}{': ' + str(error.filename) if error.filename else ''}"
    return " ".join(str(error).split())


CLI_NAMES = {
    r"expression_offsets\['(\w+)'\]": r"--offset \1",
    r"expression_strength": "--strength",
    r"expression_offsets": "--offset",
    r"identity_mix": "--identity-mix",
    r"source_emotion": "--source-emotion",
    r"read_emotion=False": "--no-read-emotion",
    r"replace_target_expression=True": "--replace-target-expression",
    r"source_face_index": "--source-face-index",
    r"target_face_index": "--face-index",
    r"smoothing(?= must)": "--smoothing",
}
"""The library's argument names in its ConfigError messages, as this command line spells them."""

NAME_EDGE = r"[\w/\\.-]"
"""What may not touch an argument's name: a file's path or name that holds one (``/data/identity_mix/a.png``) is left
as it is."""


def in_flags(error: Exception) -> str:
    """An error as one line; a ConfigError's argument names given as this command's flags."""
    message = _one_line(error)
    if isinstance(error, ConfigError):
        for name, flag in CLI_NAMES.items():
            message = re.sub(f"(?<!{NAME_EDGE})(?:{name})(?!{NAME_EDGE})", flag, message)
    return message


def _fail(message: str, status: int) -> int:
    text = " ".join(str(message).split())  # exactly one line, whatever the message held
    print(f"error: {text}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aipgan`` console script; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in arguments or "--verbose" in arguments
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        warnings.simplefilter("ignore")  # library warnings would break the one-line error contract
    try:
        args = build_parser().parse_args(arguments)
        return args.handler(args)
    except UsageError as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    except AIPGANError as error:
        return _fail(in_flags(error), EXIT_BAD_INPUT)
    except OSError as error:  # missing file, permission denied, disk full ...
        return _fail(_one_line(error), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:  # noqa: BLE001 -- a bug: one line unless --verbose asks for the traceback
        if verbose:
            raise
        return _fail(f"unexpected {type(error).__name__}: {error} (rerun with --verbose for details)", EXIT_FAILURE)


if __name__ == "__main__":
    sys.exit(main())
