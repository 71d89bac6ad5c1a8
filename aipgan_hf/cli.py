"""Command line: ``aipgan transfer``, ``aipgan synthesize`` and ``aipgan animate``.

    aipgan transfer --source S --target T --output O [--strength X] [--identity-mix M] [--offset NAME=V ...]
    aipgan synthesize --target T --expression NAME --output O [--strength X] [--offset NAME=V ...]
    aipgan animate --driving CLIP --target PHOTO --output OUT.mp4 [--no-relative] [--side-by-side] [--max-seconds S]

Exit status 0 on success; 2 on any input a user can fix (bad or missing image or clip, no face, bad option,
unwritable output), with exactly one ``error: ...`` line on stderr and no traceback; 1 on an unexpected
failure (rerun with ``--verbose`` for the traceback). Outputs are written atomically: a temporary file in the
destination folder is renamed over it, so a failure never leaves a partial or lost file.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Sequence

from aipgan_hf.errors import AIPGANError
from aipgan_hf.files import write_atomically

MOUTH_CHOICES = ("network", "own", "source", "exemplar")
"""``--mouth``: ``aipgan_hf.motion.mouth.MOUTH_SOURCES``, spelt out so that ``--help`` needs no torch import."""

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

# Output format from the file extension, with the options each format is saved with.
OUTPUT_FORMATS: dict[str, tuple[str, dict]] = {
    ".png": ("PNG", {}),
    ".jpg": ("JPEG", {"quality": 95}),
    ".jpeg": ("JPEG", {"quality": 95}),
    ".webp": ("WEBP", {"quality": 95}),
    ".bmp": ("BMP", {}),
    ".tif": ("TIFF", {}),
    ".tiff": ("TIFF", {}),
}


class UsageError(Exception):
    """A command-line problem the user can fix (reported as one ``error:`` line, exit status 2)."""


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


def _add_photo_options(command: argparse.ArgumentParser, output_help: str) -> None:
    """Options every subcommand shares: the target photo, the output, the face, the checkpoint, verbosity."""
    command.add_argument("--target", required=True, type=Path, help="photo whose person keeps their identity")
    command.add_argument("--output", required=True, type=Path, help=output_help)
    command.add_argument("--face-index", type=int, default=None, help="which face of the target, 0 = largest (default)")
    command.add_argument("--no-paste-back", action="store_true", help="only the aligned face crop, not the whole photo")
    command.add_argument("--checkpoint", default=None, help="pipeline folder or Hub id (default: the bundled checkpoint)")
    command.add_argument("-v", "--verbose", action="store_true", help="log progress and show tracebacks")


def _add_mouth(parser: argparse.ArgumentParser, source: str) -> None:
    parser.add_argument("--mouth", choices=MOUTH_CHOICES, default="source",
                        help=f"where an opened mouth's inside (teeth) comes from: source (default: the target's own open mouth, "
                        f"else {source}), own (never the source's pixels), network (the network's paint only)")


def _add_offsets(command: argparse.ArgumentParser) -> None:
    command.add_argument("--offset", type=_offset, action="append", default=[], metavar="NAME=VALUE",
                         help="move the expression along a named slider direction (e.g. mouth_open=0.5); repeatable")


def build_parser() -> argparse.ArgumentParser:
    """The ``aipgan`` argument parser with its subcommands."""
    from aipgan_hf import __version__

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
    _add_photo_options(transfer, image_help)
    transfer.add_argument("--strength", type=float, default=1.0, help="expression strength, 0 to 1.5 (default 1)")
    transfer.add_argument("--identity-mix", type=float, default=0.0, help="0 keeps the target's identity (default), 1 the source's")
    transfer.add_argument("--source-face-index", type=int, default=None, help="which face of the source, 0 = largest (default)")
    transfer.add_argument("--source-reference", type=Path, default=None,
                          help="a neutral photo of the source person: the target gets the source's exact change from it")
    _add_mouth(transfer, "the source photo's")
    _add_offsets(transfer)
    transfer.set_defaults(handler=run_transfer)

    synthesize = subcommands.add_parser(
        "synthesize",
        help="give the target photo's face a preset expression",
        description="Give the target photo's face a preset expression (no second photo) and write the result.",
    )
    _add_photo_options(synthesize, image_help)
    synthesize.add_argument("--expression", required=True, help="preset name, e.g. happiness or surprise (the checkpoint's list is in the error for an unknown one)")
    synthesize.add_argument("--strength", type=float, default=1.0, help="expression strength, 0 to 1.5 (default 1)")
    _add_mouth(synthesize, "a public-domain exemplar's (the astronaut's, shipped with the checkpoint)")
    _add_offsets(synthesize)
    synthesize.set_defaults(handler=run_synthesize)

    animate = subcommands.add_parser(
        "animate",
        help="drive the target photo with a video's expressions",
        description="Give the target photo each frame's expression of the driving clip; writes an MP4 (H.264) at the "
                    "clip's frame rate with the clip's audio.",
    )
    animate.add_argument("--driving", required=True, type=Path, help="the driving clip (MP4, WebM, MOV, ...)")
    _add_photo_options(animate, "result video (.mp4)")
    animate.add_argument("--no-relative", action="store_true",
                         help="give the target each frame's absolute expression instead of the change from the clip's most neutral frame")
    animate.add_argument("--side-by-side", action="store_true", help="show the driving clip left of the result")
    animate.add_argument("--photo-texture", action="store_true",
                         help="keep the photo's fine texture under the repainted face, as photo transfers do (slower)")
    _add_mouth(animate, "the driving frame's")
    animate.add_argument("--max-seconds", type=float, default=None, help="refuse longer clips (default 60)")
    animate.add_argument("--smoothing", type=float, default=1.0, help="landmark smoothing, 0 = off (default 1)")
    animate.add_argument("--reference", choices=("neutral", "first"), default="neutral",
                         help="frame relative motion is measured from (default: the most neutral)")
    animate.add_argument("--strength", type=float, default=1.0, help="expression strength, 0 to 1.5 (default 1)")
    _add_offsets(animate)
    animate.set_defaults(handler=run_animate)
    return parser


def _check_input(path: Path, role: str) -> None:
    if not path.exists():
        raise UsageError(f"{role} file not found: {path}")
    if not path.is_file():
        raise UsageError(f"{role} is not a file: {path}")


def _check_output(output: Path, inputs: Sequence[Path], formats: Sequence[str] = tuple(OUTPUT_FORMATS)) -> str:
    """Validate the output path before any work; returns its (lower-case) suffix, one of ``formats``."""
    suffix = output.suffix.lower()
    if suffix not in formats:
        raise UsageError(f"cannot tell the output format from {output.name!r}; use {' or '.join(formats) if len(formats) < 3 else 'one of ' + ', '.join(formats)}")
    if output.is_dir():
        raise UsageError(f"output is a directory: {output}")
    for path in inputs:
        same = output.resolve() == path.resolve() or (output.exists() and os.path.samefile(output, path))
        if same:
            raise UsageError(f"refusing to overwrite the input {path}; choose another --output")
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"output folder does not exist: {folder}")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"output folder is not writable: {folder}")
    return suffix


def save_atomically(image: "Image.Image", output: Path, image_format: str, options: dict) -> None:
    """Encode a PIL image, then write it over ``output`` atomically (:func:`aipgan_hf.files.write_atomically`)."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    write_atomically(output, buffer.getvalue())


def _load_pipeline(args: argparse.Namespace):
    from aipgan_hf.pipeline import AIPGANPipeline  # heavy (torch, dlib): only once the paths are sane

    if not args.verbose:
        import diffusers.utils.logging

        diffusers.utils.logging.set_verbosity_error()  # its own stderr handler would add lines
    return AIPGANPipeline.from_pretrained(args.checkpoint)


def _offsets(args: argparse.Namespace) -> dict:
    """``expression_offsets=`` for the pipeline, only when ``--offset`` was given (older pipelines lack the keyword)."""
    return {"expression_offsets": dict(args.offset)} if args.offset else {}


def _save_image(image: "Image.Image", output: Path, suffix: str) -> None:
    image_format, options = OUTPUT_FORMATS[suffix]
    save_atomically(image, output, image_format, options)
    print(f"wrote {output} ({image.width}x{image.height})")


def run_transfer(args: argparse.Namespace) -> int:
    """``aipgan transfer``: validate paths, load the pipeline, transfer, write the result."""
    _check_input(args.source, "source")
    _check_input(args.target, "target")
    if args.source_reference is not None:
        _check_input(args.source_reference, "source reference")
    suffix = _check_output(args.output, [args.source, args.target, *([args.source_reference] if args.source_reference else [])])
    result = _load_pipeline(args)(
        source=args.source,
        target=args.target,
        expression_strength=args.strength,
        identity_mix=args.identity_mix,
        paste_back=not args.no_paste_back,
        source_face_index=args.source_face_index,
        target_face_index=args.face_index,
        source_reference=args.source_reference,
        mouth=args.mouth,
        **_offsets(args),
    )
    _save_image(result.image, args.output, suffix)
    return EXIT_OK


def run_synthesize(args: argparse.Namespace) -> int:
    """``aipgan synthesize``: a preset expression on the target photo."""
    _check_input(args.target, "target")
    suffix = _check_output(args.output, [args.target])
    result = _load_pipeline(args).synthesize(
        args.target, expression=args.expression, strength=args.strength, paste_back=not args.no_paste_back,
        target_face_index=args.face_index, mouth=args.mouth, **_offsets(args),
    )
    _save_image(result.image, args.output, suffix)
    return EXIT_OK


class _ProgressBars:
    """tqdm bars for the two passes of :func:`aipgan_hf.video.animate` (shown only when stderr is a terminal)."""

    LABELS = {"landmarks": "landmarks", "rendering": "rendering"}

    def __init__(self) -> None:
        self.bars: dict = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=self.LABELS.get(stage, stage), unit="frame", disable=None, leave=False)
        bar.total = max(bar.total or 0, total)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def run_animate(args: argparse.Namespace) -> int:
    """``aipgan animate``: drive the target photo with a clip, write an MP4 and a one-line summary."""
    from aipgan_hf.video import DEFAULT_MAX_SECONDS, animate, probe_clip

    _check_input(args.driving, "driving clip")
    _check_input(args.target, "target")
    _check_output(args.output, [args.driving, args.target], formats=(".mp4",))
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise UsageError(f"--max-seconds must be more than 0, got {args.max_seconds:g}")
    if args.smoothing < 0:
        raise UsageError(f"--smoothing must be 0 or more, got {args.smoothing:g}")
    probe_clip(args.driving, max_seconds=args.max_seconds or DEFAULT_MAX_SECONDS)  # a bad clip fails before the model loads
    pipeline = _load_pipeline(args)
    bars = _ProgressBars()
    try:
        result = animate(
            pipeline, args.driving, args.target, output=args.output, relative=not args.no_relative,
            smoothing=args.smoothing, paste_back=not args.no_paste_back, side_by_side=args.side_by_side,
            photo_texture=args.photo_texture,
            max_seconds=args.max_seconds or DEFAULT_MAX_SECONDS, progress=bars, reference=args.reference,
            expression_strength=args.strength, expression_offsets=dict(args.offset) or None,
            target_face_index=args.face_index, mouth=args.mouth,
        )
    finally:
        bars.close()
    print(f"wrote {args.output}: {result.summary()}")
    return EXIT_OK


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
    except (UsageError, AIPGANError) as error:
        return _fail(str(error), EXIT_BAD_INPUT)
    except OSError as error:  # missing file, permission denied, disk full ...
        where = f": {error.filename}" if error.filename else ""
        return _fail(f"{error.strerror or error}{where}", EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as error:  # noqa: BLE001 -- a bug: one line unless --verbose asks for the traceback
        if verbose:
            raise
        return _fail(f"unexpected {type(error).__name__}: {error} (rerun with --verbose for details)", EXIT_FAILURE)


if __name__ == "__main__":
    sys.exit(main())
