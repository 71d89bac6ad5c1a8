"""Large JPEGs cheaply: a reduced-scale decode (libjpeg's DCT scaling through Pillow's ``Image.draft``) and the
map from its pixels to the full-resolution photo, and a refusal of files too short to hold the pixels they claim."""

from __future__ import annotations

import logging
import os
from typing import BinaryIO

import numpy as np
from PIL import Image

from aipgan_hf.errors import TruncatedImageError
from aipgan_hf.faces.geometry import compose_affine, invert_affine, orientation_matrix, scale_affine

logger = logging.getLogger(__name__)

DRAFT_MAX_PIXELS = 4_000_000
"""Pixel budget of :func:`~aipgan_hf.faces.decode.load_photo`: a JPEG with more pixels is decoded at the smallest of
1/2, 1/4, 1/8 scale that fits (or at 1/8), any other format is box-filtered to fit after decoding."""


def draft(pil: Image.Image, draft_pixels: int | None) -> int:
    """Ask libjpeg for a 1/2, 1/4 or 1/8 scale decode of a large JPEG; returns the factor it will use."""
    width, height = pil.size
    if draft_pixels is None or pil.format not in ("JPEG", "MPO") or width * height <= draft_pixels:
        return 1
    wanted = next((f for f in (2, 4) if width * height <= draft_pixels * f * f), 8)
    try:
        drafted = pil.draft(pil.mode, (max(1, width // wanted), max(1, height // wanted)))
    except Exception as error:  # noqa: BLE001 -- a damaged header: decode at full size, which reports it
        logger.debug("no reduced decode for %s: %s", pil, error)
        return 1
    return 1 if drafted is None else max(1, round(width / drafted[1][2]))


def reduced_to_full(
    factor: int, orientation: int, full_size: tuple[int, int], reduced_size: tuple[int, int]
) -> np.ndarray:
    """Displayed reduced-scale (x, y) -> displayed full-resolution (x, y)."""
    reduced_display_to_stored = invert_affine(orientation_matrix(orientation, *reduced_size))
    stored_to_full = compose_affine(scale_affine(factor), reduced_display_to_stored)
    return compose_affine(orientation_matrix(orientation, *full_size), stored_to_full)


def check_jpeg_length(stream: BinaryIO, size: tuple[int, int], origin: str) -> None:
    """Refuse a Huffman-coded JPEG too short to hold its pixels (each 8x8 luma block costs at least one bit),
    before libjpeg fills the missing blocks with grey: a 1 KB file claiming 7000x7000 would otherwise cost
    0.5-0.7 s and, progressive, 150 MB of coefficient buffers for nothing. Arithmetic-coded frames (no such bound) are left to the decoder."""
    position = stream.tell()
    stream.seek(0)
    head = stream.read(1 << 18)
    length = stream.seek(0, os.SEEK_END)
    stream.seek(position)
    if _jpeg_frame_marker(head) not in (0xC0, 0xC1, 0xC2):
        return
    needed = -(-size[0] // 8) * -(-size[1] // 8) // 8  # bytes for one bit per luma block
    if length < needed:
        raise TruncatedImageError(
            f"{origin} is truncated or damaged: a {size[0]}x{size[1]} JPEG holds at least {needed:,} bytes of "
            f"image data, this file has {length:,}"
        )


def _jpeg_frame_marker(head: bytes) -> int | None:
    """The start-of-frame marker (0xC0..0xCF) of a JPEG, found by walking its segments; None if not in ``head``."""
    index = 2
    while index + 4 <= len(head) and head[index] == 0xFF:
        marker = head[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return marker
        elif marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            return None
        else:
            index += 2 + int.from_bytes(head[index + 2 : index + 4], "big")
    return None
