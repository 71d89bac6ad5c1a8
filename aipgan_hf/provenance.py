"""Edited images say so: a PNG text chunk and an EXIF field on every image aipgan-hf makes.

Pillow reads save options from ``image.encoderinfo`` as well as from ``Image.save``'s keywords and keeps them after a
save (documented under ``Image.save``; python-pillow/Pillow#8483, #8942, #9001, 2025; checked on Pillow 12.3), so a
stamped image keeps its label through any number of plain ``image.save("out.jpg")`` calls. Older Pillow releases ignore
or drop it: our own save paths (CLI, app) therefore also pass :func:`save_options`, which works with any Pillow.
EXIF reaches JPEG, PNG (eXIf chunk), WebP and TIFF; PNG also gets tEXt chunks; BMP and GIF have no such field. A copy
(``copy``, ``convert``, ``resize``) starts unstamped.
"""

from __future__ import annotations

import functools

from PIL import ExifTags, Image, PngImagePlugin

from . import __version__

SOFTWARE = f"aipgan-hf {__version__}"
DEFAULT_EDIT = "expression transfer"
NOTICE = "Edited with aipgan-hf: this face's expression is synthetic"


def description(edit: str = DEFAULT_EDIT) -> str:
    """The sentence stored in the image, e.g. "Edited with aipgan-hf 0.7.0 (expression transfer): ..."."""
    return f"Edited with {SOFTWARE} ({edit}): this face's expression is synthetic"


@functools.cache
def _exif_bytes(edit: str) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.ImageDescription] = description(edit)
    exif[ExifTags.Base.Software] = SOFTWARE
    return exif.tobytes()


@functools.cache
def _png_text(edit: str) -> PngImagePlugin.PngInfo:
    # Read-only once made: Pillow only reads a PngInfo while saving, so one object serves every image.
    text = PngImagePlugin.PngInfo()
    text.add_text("Description", description(edit))
    text.add_text("Software", SOFTWARE)
    return text


def mark_edited(image: Image.Image, edit: str = DEFAULT_EDIT) -> Image.Image:
    """Stamp ``image`` (in place) so that every later ``image.save`` writes who edited it and how.

    The stamp outranks ``exif=`` / ``pnginfo=`` given to ``save`` (Pillow lets ``encoderinfo`` win).

    Args:
        image: an image made by aipgan-hf.
        edit: what was done, e.g. "expression transfer" or "preset expression".

    Returns:
        The same image, for use inside expressions.
    """
    image.encoderinfo = {**(getattr(image, "encoderinfo", None) or {}), **save_options(edit)}
    return image


def save_options(edit: str = DEFAULT_EDIT) -> dict[str, object]:
    """Keywords for ``Image.save`` that write the stamp (formats without a field ignore them)."""
    return {"exif": _exif_bytes(edit), "pnginfo": _png_text(edit)}


def edit_description(image: Image.Image) -> str | None:
    """The stored description of a saved (and reopened) image, or None when it carries none."""
    text = getattr(image, "text", {}).get("Description")  # PNG tEXt
    return text or image.getexif().get(ExifTags.Base.ImageDescription)
