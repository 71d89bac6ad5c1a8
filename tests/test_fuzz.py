"""Seeded fuzz test of face processing on damaged photos: every outcome is a result or an AIPGANError.

Photos of a real face (skimage's astronaut, head and shoulders at 128 px) are encoded in many formats and modes (JPEG baseline /
progressive / grey / CMYK / EXIF-rotated, PNG RGB / RGBA / grey / palette / 16 bit / 1 bit, WebP lossy and
lossless, GIF, TIFF raw / LZW / CMYK / 16 bit / float, BMP), then damaged by one to three mutations: byte
flips, random or extreme bytes, truncation, deleted / duplicated / inserted spans, and format-aware header
edits (claimed sizes from 0 to 2^31, bit depths, colour types, sampling factors, with PNG CRCs fixed so the
edit reaches the decoder). Each case runs the path a user's upload takes: ``load_photo`` (a third of the cases
with a tiny draft budget, so the reduced JPEG decode and its coordinate map are exercised), ``align`` and
the pipeline's paste-back (``compositing.PhotoWarper`` on the photo decoded again at full resolution).

About 300 cases by default; ``-m slow`` runs 10,000. A failure names its case number; ``fuzz_case(n)``
rebuilds that input. Figures (outcomes by error type, slowest input by CPU time, peak RSS) are printed (``-s`` shows them).
"""

from __future__ import annotations

import collections
import io
import resource
import struct
import time
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from aipgan_hf.compositing import PhotoWarper
from aipgan_hf.errors import AIPGANError
from aipgan_hf.faces import FaceProcessor, face_mask, load_photo
from aipgan_hf.motion import identity_grid

SEED = 20240613
EXTREME_SIZES = (0, 1, 15, 16, 17, 255, 4097, 7000, 50_000, 65_535, 2**31 - 1)


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def base_photos() -> dict[str, tuple[str, bytes]]:
    """name -> (format, encoded bytes) of one face photo in many formats and modes."""
    from skimage import data

    rgb = Image.fromarray(data.astronaut()[10:250, 100:340]).resize(
        (128, 128), Image.Resampling.LANCZOS
    )  # head and shoulders
    grey = rgb.convert("L")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((128, 128)))
    deep = Image.fromarray((np.asarray(grey).astype(np.uint16) * 257))
    photos = {
        "jpeg": ("JPEG", _encode(rgb, "JPEG", quality=90)),
        "jpeg-progressive": ("JPEG", _encode(rgb, "JPEG", quality=80, progressive=True)),
        "jpeg-grey": ("JPEG", _encode(grey, "JPEG")),
        "jpeg-cmyk": ("JPEG", _encode(rgb.convert("CMYK"), "JPEG")),
        "jpeg-exif-6": ("JPEG", _encode(rgb.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=_exif(6))),
        "png": ("PNG", _encode(rgb, "PNG")),
        "png-rgba": ("PNG", _encode(rgba, "PNG")),
        "png-grey": ("PNG", _encode(grey, "PNG")),
        "png-palette": ("PNG", _encode(rgb.quantize(64), "PNG")),
        "png-16bit": ("PNG", _encode(deep, "PNG")),
        "png-1bit": ("PNG", _encode(grey.convert("1"), "PNG")),
        "webp": ("WEBP", _encode(rgb, "WEBP", quality=80)),
        "webp-lossless-rgba": ("WEBP", _encode(rgba, "WEBP", lossless=True)),
        "gif": ("GIF", _encode(rgb.quantize(128), "GIF")),
        "tiff": ("TIFF", _encode(rgb, "TIFF")),
        "tiff-lzw": ("TIFF", _encode(rgb, "TIFF", compression="tiff_lzw")),
        "tiff-cmyk": ("TIFF", _encode(rgb.convert("CMYK"), "TIFF")),
        "tiff-16bit": ("TIFF", _encode(deep, "TIFF")),
        "tiff-float": ("TIFF", _encode(grey.convert("F"), "TIFF")),
        "bmp": ("BMP", _encode(rgb, "BMP")),
    }
    return photos


# ------------------------------------------------------------------------------------------------ mutations


def _flip_bits(data: bytearray, rng: np.random.Generator) -> str:
    positions = rng.integers(0, len(data), size=int(rng.integers(1, 9)))
    for position in positions:
        data[position] ^= 1 << int(rng.integers(0, 8))
    return f"flip {len(positions)} bits"


def _set_bytes(data: bytearray, rng: np.random.Generator) -> str:
    start = int(rng.integers(0, len(data)))
    count = int(rng.integers(1, 17))
    value = int(rng.choice([0x00, 0xFF, 0x7F, 0x80])) if rng.random() < 0.5 else None
    for position in range(start, min(len(data), start + count)):
        data[position] = int(rng.integers(0, 256)) if value is None else value
    return f"set {count} bytes at {start} to {'random' if value is None else hex(value)}"


def _truncate(data: bytearray, rng: np.random.Generator) -> str:
    keep = int(rng.integers(0, len(data)))
    del data[keep:]
    return f"truncate to {keep}"


def _delete_span(data: bytearray, rng: np.random.Generator) -> str:
    start = int(rng.integers(0, len(data)))
    count = int(rng.integers(1, 65))
    del data[start : start + count]
    return f"delete {count} at {start}"


def _duplicate_span(data: bytearray, rng: np.random.Generator) -> str:
    start = int(rng.integers(0, len(data)))
    span = data[start : start + int(rng.integers(1, 257))]
    at = int(rng.integers(0, len(data) + 1))
    data[at:at] = span
    return f"copy {len(span)} from {start} to {at}"


def _insert_random(data: bytearray, rng: np.random.Generator) -> str:
    at = int(rng.integers(0, len(data) + 1))
    data[at:at] = rng.bytes(int(rng.integers(1, 33)))
    return f"insert random at {at}"


def _png_header(data: bytearray, rng: np.random.Generator) -> str:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 33:
        return _set_bytes(data, rng)
    field = int(rng.integers(0, 4))
    if field < 2:
        data[16 + 4 * field : 20 + 4 * field] = struct.pack(">I", int(rng.choice(EXTREME_SIZES)))
    else:
        data[24 + field - 2] = int(rng.choice([0, 1, 2, 3, 4, 6, 7, 8, 16, 255]))
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # a valid CRC: the edit reaches the decoder
    return f"PNG IHDR field {field} edited"


def _jpeg_header(data: bytearray, rng: np.random.Generator) -> str:
    frame = max(data.find(b"\xff\xc0"), data.find(b"\xff\xc2"))
    if frame < 0 or frame + 12 > len(data):
        return _set_bytes(data, rng)
    if rng.random() < 0.7:
        axis = int(rng.integers(0, 2))
        data[frame + 5 + 2 * axis : frame + 7 + 2 * axis] = struct.pack(">H", int(rng.choice(EXTREME_SIZES)) & 0xFFFF)
        return f"JPEG frame {'height' if axis == 0 else 'width'} edited"
    data[frame + 11] = int(rng.integers(0, 256))  # first component's sampling factors
    return "JPEG sampling edited"


def _other_header(data: bytearray, rng: np.random.Generator) -> str:
    """GIF screen / BMP / WebP / TIFF: overwrite a size-like field near the start with an extreme value."""
    offsets = {b"GIF": (6, 8), b"BM": (18, 22, 28), b"RIFF": (24, 26, 27, 30), b"II*": (16, 28, 40, 52)}
    chosen = next((positions for magic, positions in offsets.items() if data.startswith(magic)), (4, 8, 12))
    at = int(rng.choice(chosen))
    value = int(rng.choice(EXTREME_SIZES))
    data[at : at + 4] = struct.pack("<I", value)[: len(data[at : at + 4])]
    return f"header bytes {at}.. set to {value}"


MUTATIONS: list[Callable[[bytearray, np.random.Generator], str]] = [
    _flip_bits,
    _set_bytes,
    _truncate,
    _delete_span,
    _duplicate_span,
    _insert_random,
    _png_header,
    _jpeg_header,
    _other_header,
]


def fuzz_case(index: int, photos: dict[str, tuple[str, bytes]]) -> tuple[bytes, str, int | None]:
    """Case ``index``: (damaged bytes, description, draft budget for load_photo). Deterministic in ``index``."""
    rng = np.random.default_rng([SEED, index])
    names = sorted(photos)
    name = names[int(rng.integers(0, len(names)))]
    data = bytearray(photos[name][1])
    steps = []
    for _ in range(int(rng.integers(1, 4))):
        if not data:
            break
        steps.append(MUTATIONS[int(rng.integers(0, len(MUTATIONS)))](data, rng))
    draft = [None, 4_000_000, 4096][int(rng.integers(0, 3))]
    return bytes(data), f"{name}: {'; '.join(steps) or 'unchanged'}", draft


def run_case(processor: FaceProcessor, data: bytes, draft: int | None) -> str:
    """The path of an upload: decode (maybe reduced), align, paste back. Returns 'success' or the error's type."""
    try:
        photo = load_photo(data, max_pixels=processor.max_pixels, draft_pixels=draft)
        face = processor.align(photo)
        full = photo.full_resolution()
        warper = PhotoWarper(full, face.matrix, processor.resolution)
        result = warper.composite(
            identity_grid(1, processor.resolution)[0], 255 - face.crop, face_mask(processor.resolution)
        )
        assert result.shape == full.shape == (photo.size[1], photo.size[0], 3)
        return "success"
    except AIPGANError as error:
        assert str(error) and "\n" not in str(error), f"message {error!r}"
        assert "decompression bomb" not in str(error).lower(), f"Pillow's text leaked: {error}"
        return type(error).__name__


def fuzz(count: int) -> dict:
    photos = base_photos()
    processor = FaceProcessor(resolution=64, min_face_size=24)
    processor.align(photos["png"][1])  # load the dlib models first: the timings are of the inputs alone
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    outcomes: collections.Counter[str] = collections.Counter()
    slowest = (0.0, "")
    started = time.perf_counter()
    for index in range(count):
        data, description, draft = fuzz_case(index, photos)
        began = time.process_time()  # CPU time: a loaded machine must not make a cheap input look slow
        try:
            outcome = run_case(processor, data, draft)
        except Exception as error:  # noqa: BLE001 -- the finding this test exists for
            raise AssertionError(f"case {index} ({description}, draft {draft}) raised {error!r}") from error
        elapsed = time.process_time() - began
        outcomes[outcome] += 1
        slowest = max(slowest, (elapsed, f"case {index}: {description}, draft {draft}"))
    return {
        "cases": count,
        "outcomes": dict(outcomes.most_common()),
        "seconds": time.perf_counter() - started,
        "slowest_seconds": slowest[0],
        "slowest": slowest[1],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_before_mb": rss_before,
    }


def _report(figures: dict) -> None:
    print(
        f"\nfuzz: {figures['cases']} cases in {figures['seconds']:.1f} s; outcomes {figures['outcomes']}; "
        f"slowest {figures['slowest_seconds'] * 1000:.0f} ms of CPU ({figures['slowest']}); "
        f"peak RSS of this process {figures['peak_rss_mb']:.0f} MB ({figures['peak_rss_before_mb']:.0f} MB before the cases)"
    )


def test_fuzz_every_damaged_photo_gives_a_result_or_a_project_error():
    figures = fuzz(300)
    _report(figures)
    assert sum(figures["outcomes"].values()) == 300
    assert figures["outcomes"].get("success", 0) > 10  # the mutations leave many photos decodable: the whole path ran
    assert len(figures["outcomes"]) >= 3  # and many are refused, for more than one reason


@pytest.mark.slow
def test_fuzz_10000_cases():
    figures = fuzz(10_000)
    _report(figures)
    assert sum(figures["outcomes"].values()) == 10_000


def test_fuzz_cases_are_reproducible():
    photos = base_photos()
    assert fuzz_case(17, photos) == fuzz_case(17, photos)
    assert fuzz_case(17, photos)[0] != fuzz_case(18, photos)[0]
