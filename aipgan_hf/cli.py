"""Command line: ``aipgan transfer --source S --target T --output O``.

Exit status 0 on success; 2 on any input a user can fix (bad or missing image, no face, bad option,
unwritable output), with exactly one ``error: ...`` line on stderr and no traceback; 1 on an unexpected
failure (rerun with ``--verbose`` for the traceback). The output is written atomically: a temporary
file in the destination folder is renamed over it, so a failure never leaves a partial or lost file.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Sequence

from aipgan_hf.errors import AIPGANError

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


def build_parser() -> argparse.ArgumentParser:
    """The ``aipgan`` argument parser with its subcommands."""
    from aipgan_hf import __version__

    parser = _ArgumentParser(prog="aipgan", description="AIP-GAN facial expression transfer.")
    parser.add_argument("--version", action="version", version=f"aipgan-hf {__version__}")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    subcommands.required = True

    transfer = subcommands.add_parser(
        "transfer",
        help="give the target photo's face the source photo's expression",
        description="Give the target photo's face the source photo's expression and write the result.",
    )
    transfer.add_argument("--source", required=True, type=Path, help="photo whose expression is copied")
    transfer.add_argument("--target", required=True, type=Path, help="photo whose person keeps their identity")
    transfer.add_argument("--output", required=True, type=Path, help="result image (.png, .jpg, .webp, .bmp, .tif)")
    transfer.add_argument("--strength", type=float, default=1.0, help="expression strength, 0 to 1.5 (default 1)")
    transfer.add_argument("--identity-mix", type=float, default=0.0, help="0 keeps the target's identity (default), 1 the source's")
    transfer.add_argument("--face-index", type=int, default=None, help="which face of the target, 0 = largest (default)")
    transfer.add_argument("--source-face-index", type=int, default=None, help="which face of the source, 0 = largest (default)")
    transfer.add_argument("--no-paste-back", action="store_true", help="write only the aligned face crop, not the whole photo")
    transfer.add_argument("--checkpoint", default=None, help="pipeline folder or Hub id (default: the bundled checkpoint)")
    transfer.add_argument("-v", "--verbose", action="store_true", help="log progress and show tracebacks")
    transfer.set_defaults(handler=run_transfer)
    return parser


def _check_input(path: Path, role: str) -> None:
    if not path.exists():
        raise UsageError(f"{role} file not found: {path}")
    if not path.is_file():
        raise UsageError(f"{role} is not a file: {path}")


def _check_output(output: Path, inputs: Sequence[Path]) -> tuple[str, dict]:
    """Validate the output path before any work; returns PIL's format name and save options."""
    suffix = output.suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise UsageError(f"cannot tell the output format from {output.name!r}; use one of {', '.join(OUTPUT_FORMATS)}")
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
    return OUTPUT_FORMATS[suffix]


def save_atomically(image: "Image.Image", output: Path, image_format: str, options: dict) -> None:
    """Save a PIL image to a temporary file next to ``output``, then rename it over ``output``."""
    folder = output.parent if str(output.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            image.save(stream, format=image_format, **options)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_transfer(args: argparse.Namespace) -> int:
    """``aipgan transfer``: validate paths, load the pipeline, transfer, write the result."""
    _check_input(args.source, "source")
    _check_input(args.target, "target")
    image_format, options = _check_output(args.output, [args.source, args.target])

    from aipgan_hf.pipeline import AIPGANPipeline  # heavy (torch, dlib): only once the paths are sane

    if not args.verbose:
        import diffusers.utils.logging

        diffusers.utils.logging.set_verbosity_error()  # its own stderr handler would add lines
    pipeline = AIPGANPipeline.from_pretrained(args.checkpoint)
    result = pipeline(
        source=args.source,
        target=args.target,
        expression_strength=args.strength,
        identity_mix=args.identity_mix,
        paste_back=not args.no_paste_back,
        source_face_index=args.source_face_index,
        target_face_index=args.face_index,
    )
    save_atomically(result.image, args.output, image_format, options)
    print(f"wrote {args.output} ({result.image.width}x{result.image.height})")
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
