"""Where the ``aipgan`` command's results go: output formats, path checks made before any work, one target or a
folder / glob of them, and atomic saves that say the image was edited."""

from __future__ import annotations

import glob
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from aipgan_hf.files import write_atomically
from aipgan_hf.provenance import mark_edited, save_options

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
GLOB_CHARACTERS = ("*", "?", "[")


class UsageError(Exception):
    """A command-line problem the user can fix (reported as one ``error:`` line, exit status 2)."""


def check_input(path: Path, role: str) -> None:
    """A UsageError unless ``path`` is an existing file."""
    if not path.exists():
        raise UsageError(f"{role} file not found: {path}")
    if not path.is_file():
        raise UsageError(f"{role} is not a file: {path}")


def check_output(output: Path, inputs: Sequence[Path], formats: Sequence[str] = tuple(OUTPUT_FORMATS)) -> str:
    """Validate the output path before any work; returns its (lower-case) suffix, one of ``formats``."""
    if output.is_dir():  # before its suffix: a folder named "out" has none
        raise UsageError(f"output is a folder: {output}; name a file in it (a folder is for several targets)")
    suffix = output.suffix.lower()
    if suffix not in formats:
        choices = " or ".join(formats) if len(formats) < 3 else "one of " + ", ".join(formats)
        raise UsageError(f"cannot tell the output format from {output.name!r}; use {choices}")
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


def save_atomically(image: Image.Image, output: Path, image_format: str, options: dict) -> None:
    """Encode a PIL image, then write it over ``output`` atomically (:func:`aipgan_hf.files.write_atomically`)."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    write_atomically(output, buffer.getvalue())


def save_image(image: Image.Image, output: Path, suffix: str, edit: str, say: Callable[[str], None] = print) -> None:
    # Stamped again with this command's own wording (a batch's, a preset's), and the options passed explicitly too,
    # for Pillow releases that ignore a stamp on the image.
    image_format, options = OUTPUT_FORMATS[suffix]
    profile = {"icc_profile": image.info["icc_profile"]} if image.info.get("icc_profile") else {}
    save_atomically(mark_edited(image, edit), output, image_format, {**options, **save_options(edit), **profile})
    unlabelled = " (BMP has no field to say it is edited: prefer PNG or JPEG)" if image_format == "BMP" else ""
    say(f"wrote {output} ({image.width}x{image.height}){unlabelled}")


@dataclass(frozen=True)
class Job:
    """One target photo, where its result goes, and that file's format (its suffix)."""

    target: Path
    output: Path
    suffix: str


def photo_suffixes() -> frozenset[str]:
    """The file name suffixes of every image format Pillow reads (a folder's AVIF and GIF photos as well as the
    formats results are written in)."""
    return frozenset(suffix for suffix, name in Image.registered_extensions().items() if name in Image.OPEN)


def several_targets(target: Path) -> list[Path] | None:
    """The photos a folder (its image files) or a glob (every file it matches) names; None for a single target."""
    if target.is_dir():
        readable = photo_suffixes()
        photos = sorted(path for path in target.iterdir() if path.is_file() and path.suffix.lower() in readable)
        if not photos:
            raise UsageError(f"no photos (files of an image format such as .jpg or .png) in the target folder {target}")
        return photos
    text = str(target)
    if target.exists() or not any(character in text for character in GLOB_CHARACTERS):
        return None
    photos = sorted(Path(path) for path in glob.glob(text, recursive=True) if Path(path).is_file())
    if not photos:
        raise UsageError(f"no file matches the target pattern {text}")
    return photos


def plan_jobs(
    target: Path, output: Path, image_format: str | None, other_inputs: Sequence[Path]
) -> tuple[list[Job], bool]:
    """Check the targets and outputs before any work.

    Args:
        target: one photo, a folder of photos or a glob.
        output: the result file for one photo, else a folder (made when missing).
        image_format: with several targets, the results' suffix without its dot (None: each target's own).
        other_inputs: files that must not be overwritten (the source photo).

    Returns:
        The jobs, and whether there are several targets.
    """
    targets = several_targets(target)
    if targets is None:
        if image_format is not None:
            raise UsageError("--format is for a folder or glob of targets; one result takes the --output name's format")
        check_input(target, "target")
        return [Job(target, output, check_output(output, [*other_inputs, target]))], False
    folder = output
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"with several targets --output must be a folder, and {folder} is a file")
    if not folder.exists() and not (folder.parent if str(folder.parent) else Path(".")).is_dir():
        raise UsageError(f"output folder's parent does not exist: {folder.parent}")
    jobs = []
    for target in targets:
        suffix = f".{image_format}" if image_format else target.suffix.lower()
        suffix = suffix if suffix in OUTPUT_FORMATS else ".png"
        jobs.append(Job(target, folder / f"{target.stem}{suffix}", suffix))
    names = [job.output.name for job in jobs]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise UsageError(
            f"several targets would write {', '.join(clashes)} (photos of one name in several formats or folders); "
            "rename one, or use a narrower pattern"
        )
    inputs = {path.resolve() for path in [*targets, *other_inputs]}
    overwritten = [job.target for job in jobs if job.output.resolve() in inputs]
    if overwritten:
        raise UsageError(f"refusing to overwrite the input {overwritten[0]}; choose another --output or --format")
    folder.mkdir(exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise UsageError(f"output folder is not writable: {folder}")
    return jobs, True
