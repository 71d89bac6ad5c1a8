"""Tests for the aipgan_hf.faces package: loading, detection, alignment, the face mask,
normalisation, errors, reduced-scale decoding of large JPEGs, grey photos."""

from __future__ import annotations

import errno
import io
import os
import pickle
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aipgan_hf.errors import (
    AIPGANError,
    FaceIndexError,
    FaceTooSmallError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    NoFaceError,
    TruncatedImageError,
    UnsupportedImageError,
)
from aipgan_hf.faces import (
    DEFAULT_MAX_PIXELS,
    FaceProcessor,
    Photo,
    apply_affine,
    face_mask,
    image_to_tensor,
    is_grey,
    load_image,
    load_photo,
    template_points,
    tensor_to_image,
    to_grey,
)
from aipgan_hf.faces.align import warp_to_crop
from aipgan_hf.landmarks import LEFT_EYE, RIGHT_EYE
from aipgan_hf.video.tracking import FaceTracker

# Where the faces are (detector box centres measured once by hand-checked runs), and their identities differ.
FACE_CENTRES = {"astronaut": (223.0, 127.0), "grace_hopper": (269.0, 245.0)}


@pytest.fixture(scope="module")
def processor() -> FaceProcessor:
    return FaceProcessor(resolution=128)


@pytest.fixture(scope="module")
def faces(astronaut, grace_hopper) -> dict[str, np.ndarray]:
    return {"astronaut": astronaut, "grace_hopper": grace_hopper}


def encode(image: np.ndarray | Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(buffer, fmt, **options)
    return buffer.getvalue()


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    return np.stack([landmarks[RIGHT_EYE].mean(axis=0), landmarks[LEFT_EYE].mean(axis=0)])


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` RGB pixels but carries almost no data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


# ------------------------------------------------------------------------------------------------
# detection and alignment
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_detects_the_face_in_both_portraits(processor, faces, name):
    detected = processor.detect(faces[name])
    assert len(detected) == 1
    x0, y0, x1, y1 = detected[0].box
    centre_x, centre_y = FACE_CENTRES[name]
    assert abs((x0 + x1) / 2 - centre_x) < 25 and abs((y0 + y1) / 2 - centre_y) < 25
    assert 60 < x1 - x0 < 300
    # the 68 landmarks lie on the face: eyes above the mouth, all near the box
    landmarks = detected[0].landmarks
    assert landmarks.shape == (68, 2) and landmarks.dtype == np.float32
    assert eye_centres(landmarks)[:, 1].max() < landmarks[48:68, 1].min()
    assert (landmarks[:, 0] > x0 - 20).all() and (landmarks[:, 0] < x1 + 20).all()


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_alignment_puts_the_eyes_on_the_template(processor, faces, name):
    aligned = processor.align(faces[name])
    template_eyes = template_points(128)[:2]
    assert aligned.crop.shape == (128, 128, 3) and aligned.crop.dtype == np.uint8
    assert np.linalg.norm(eye_centres(aligned.crop_landmarks) - template_eyes, axis=1).max() < 3.0
    # the crop's pixels, not only the matrix: landmarks found again on the crop itself land there too
    refound = processor.detect(aligned.crop)[0].landmarks
    assert np.linalg.norm(eye_centres(refound) - template_eyes, axis=1).max() < 4.0
    # crop_landmarks are the photo landmarks through the returned matrix
    np.testing.assert_allclose(apply_affine(aligned.matrix, aligned.landmarks), aligned.crop_landmarks, atol=1e-3)


@pytest.mark.parametrize("resolution", [64, 128, 256])
def test_align_at_any_resolution(astronaut, resolution):
    aligned = FaceProcessor(resolution=resolution).align(astronaut)
    assert aligned.crop.shape == (resolution, resolution, 3)
    eyes = eye_centres(aligned.crop_landmarks)
    assert np.linalg.norm(eyes - template_points(resolution)[:2], axis=1).max() < 3.0 * resolution / 128
    # same framing at every size: the crop brought to 64 px matches the 64 px crop
    reference = FaceProcessor(resolution=64).align(astronaut).crop.astype(float)
    small = np.asarray(Image.fromarray(aligned.crop).resize((64, 64), Image.Resampling.BOX)).astype(float)
    assert np.abs(small - reference).mean() < 8.0


@pytest.mark.parametrize(
    "scale, left, top",
    [(0.5, 20.0, 15.0), (1.0, 10.0, 20.0), (0.5, -150.0, -140.0), (0.25, -380.0, 10.0), (0.25, -70.0, -60.0)]
    + [(2.0, 60.0, -20.0), (0.5, 400.0, 10.0)],
)
def test_a_crop_past_the_photo_repeats_its_edge(astronaut, scale, left, top):
    # inside, partly outside on each side and on both sides of each axis, and wholly right of it: the crop of the
    # photo padded with its edge pixels beforehand, bit for bit
    photo = astronaut[::4, ::4].copy()  # 128 x 128
    matrix = np.array([[scale, 0.0, -left * scale], [0.0, scale, -top * scale]])
    margin = 1200
    padded = np.pad(photo, ((margin, margin), (margin, margin), (0, 0)), mode="edge")
    shifted = matrix.copy()
    shifted[:, 2] -= matrix[:, :2] @ [margin, margin]
    assert np.array_equal(warp_to_crop(photo, matrix, 64), warp_to_crop(padded, shifted, 64))


def test_detection_runs_on_a_downscaled_copy_but_reports_photo_coordinates(astronaut, processor):
    box_512 = np.array(processor.align(astronaut).box)
    big = np.asarray(Image.fromarray(astronaut).resize((1024, 1024), Image.Resampling.BICUBIC))
    aligned_big = processor.align(big)
    np.testing.assert_allclose(np.array(aligned_big.box) / 2, box_512, atol=10)
    small_crop = processor.align(astronaut).crop.astype(float)
    assert np.abs(aligned_big.crop.astype(float) - small_crop).mean() < 10.0


@pytest.fixture(scope="module")
def small_face_photo(astronaut) -> np.ndarray:
    # a face whose dlib box is about 55 px in a 1600 x 1200 photo (a group, or a phone's photo from afar): 22 px in
    # the detector's 640-px copy
    canvas = np.full((1200, 1600, 3), 128, np.uint8)
    canvas[700:980, 900:1180] = np.asarray(Image.fromarray(astronaut).resize((280, 280), Image.Resampling.BOX))
    return canvas


def test_a_small_face_in_a_large_photo_is_found(small_face_photo, processor):
    face = processor.find_faces(small_face_photo)[0]
    x0, y0, x1, y1 = face.box
    assert face.method == "small" and 30 < x1 - x0 < 70
    assert 900 < x0 < x1 < 1180 and 700 < y0 < y1 < 980
    with pytest.raises(NoFaceError):  # a video's tracker searches without it: a frame stays quick
        processor.find_faces(small_face_photo, small_faces=False)
    assert FaceTracker(processor).update(small_face_photo) is None


def test_a_small_face_is_kept_only_where_its_fit_holds(small_face_photo, monkeypatch):
    from aipgan_hf.faces.detect import DlibFaceDetector

    monkeypatch.setattr(DlibFaceDetector, "_fit_inconsistency", lambda *args: 1.0)  # as HOG's boxes on a coin may be
    with pytest.raises(NoFaceError):
        FaceProcessor().find_faces(small_face_photo)


def test_largest_face_first_and_face_index(two_faces, astronaut, processor):
    detected = processor.detect(two_faces)
    assert len(detected) == 2
    assert detected[0].box[0] < 320 < detected[1].box[0]  # grace hopper (larger) first
    second = processor.align(two_faces, face_index=1)
    np.testing.assert_allclose(second.box, detected[1].box)
    assert second.faces_found == processor.align(two_faces).faces_found == 2
    assert processor.align(astronaut).faces_found == 1
    with pytest.raises(FaceIndexError, match="only 2 faces"):
        processor.align(two_faces, face_index=2)


def test_a_quick_look_counts_the_other_faces_it_saw(astronaut, grace_hopper, processor):
    """Hopper's face at 328 px of a 1,400-px photo, the astronaut's at 190: both seen on the quick look's copy, the
    astronaut's too small beside Hopper's for the full search to be needed."""
    photo = np.full((1000, 1400, 3), 200, np.uint8)
    hopper = np.asarray(Image.fromarray(grace_hopper).resize((829, 972)))
    photo[:972, :829] = hopper
    photo[-607:, -506:] = np.asarray(Image.fromarray(astronaut[0:300, 100:350]).resize((506, 607)))
    quick = processor._faces.find_largest(photo)
    assert quick is not None and quick.method == "quick" and len(quick.others) == 1
    x0, y0, x1, y1 = quick.others[0]  # in the photo's pixels: the astronaut's face, lower right
    assert x0 > 829 and y1 > 1000 - 607 and x1 - x0 < quick.box[2] - quick.box[0]
    assert processor.align(photo).faces_found == 2


def test_the_largest_face_comes_from_a_quick_look_only_where_it_can_tell(
    astronaut, grace_hopper, processor, monkeypatch
):
    """align() looks for the largest face on a 320-px copy first (and once more on a larger copy for a smaller
    face), and runs the full search where it sees no face, or two faces of about one size."""
    from aipgan_hf.faces import detect

    height, width = grace_hopper.shape[:2]
    big = np.asarray(
        Image.fromarray(grace_hopper).resize((2 * width, 2 * height), Image.Resampling.BICUBIC)
    )  # face 1/3 of the side
    quick = processor._faces.find_largest(big)
    assert quick is not None and quick.method == "quick"
    full = processor.find_faces(big)[0]
    eyes = np.linalg.norm(full.landmarks[36:42].mean(0) - full.landmarks[42:48].mean(0))
    aligned = processor.align(big)
    np.testing.assert_allclose(aligned.landmarks, quick.landmarks)  # the quick look's face is the one aligned
    assert np.linalg.norm(aligned.landmarks - full.landmarks, axis=1).mean() < 0.05 * eyes  # and the full search's
    np.testing.assert_allclose(processor.align(big, quick_look=False).landmarks, full.landmarks)
    smaller = np.asarray(Image.fromarray(astronaut).resize((1024, 1024), Image.Resampling.BICUBIC))  # face 23 %: looked
    copies = []
    look = processor._faces._run_detector
    monkeypatch.setattr(
        processor._faces, "_run_detector", lambda grey, upsample: copies.append(grey.shape) or look(grey, upsample)
    )
    second = processor._faces.find_largest(smaller)  # for again on a 439-px copy
    assert copies == [(320, 320), (439, 439)]
    assert processor._faces.find_largest(smaller, limit=400) is None  # that copy would be larger than the full search's
    monkeypatch.undo()
    first = processor.find_faces(smaller)[0]
    its_eyes = np.linalg.norm(first.landmarks[36:42].mean(0) - first.landmarks[42:48].mean(0))
    assert second is not None and np.linalg.norm(second.landmarks - first.landmarks, axis=1).mean() < 0.05 * its_eyes
    tiny = np.full((2000, 2000, 3), 128, np.uint8)
    tiny[600:1200, 600:1200] = np.asarray(
        Image.fromarray(astronaut).resize((600, 600))
    )  # face 6 %: only the full search
    assert processor._faces.find_largest(tiny) is None and processor.align(tiny).box[0] > 600
    pair = np.full((1000, 2000, 3), 128, np.uint8)  # two faces of one size: the full search orders them
    pair[:, :1000] = pair[:, 1000:] = np.asarray(Image.fromarray(grace_hopper).resize((1000, 1000)))
    assert processor._faces.find_largest(pair) is None
    monkeypatch.setattr(detect, "QUICK_MIN_FACE", 10_000)  # the quick look never answers: the full search's face
    np.testing.assert_allclose(processor.align(big).landmarks, full.landmarks)


def test_tight_crop_inside_the_detector_box_is_still_aligned(astronaut, processor):
    x0, y0, x1, y1 = (int(round(v)) for v in processor.align(astronaut, quick_look=False).box)  # the full search's box
    inset = int(0.15 * (x1 - x0))
    tight = np.asarray(Image.fromarray(astronaut[y0 + inset : y1 - inset, x0 + inset : x1 - inset]).resize((128, 128)))
    grey = np.asarray(Image.fromarray(tight).convert("L"))
    assert len(processor.detector(grey, 2)) == 0  # the HOG detector alone finds nothing here ...
    aligned = processor.align(tight)  # ... the fallbacks do
    assert np.linalg.norm(eye_centres(aligned.crop_landmarks) - template_points(128)[:2], axis=1).max() < 4.0


def test_tilted_head_is_found_and_aligned_upright(astronaut, processor):
    tilted = np.asarray(Image.fromarray(astronaut).rotate(35, expand=True, fillcolor=(128, 128, 128)))
    aligned = processor.align(tilted)
    eyes = eye_centres(aligned.crop_landmarks)
    assert abs(eyes[0, 1] - eyes[1, 1]) < 3.0  # level eyes in the crop
    assert np.linalg.norm(eyes - template_points(128)[:2], axis=1).max() < 4.0


def test_descriptor_separates_identities(astronaut, grace_hopper, processor):
    astronaut_face = processor.align(astronaut)
    photo = processor.descriptor(astronaut)
    assert photo.shape == (128,) and photo.dtype == np.float32
    same = np.linalg.norm(photo - processor.descriptor(astronaut_face.crop, astronaut_face))
    other = np.linalg.norm(photo - processor.descriptor(grace_hopper))
    assert same < 0.3 < 0.6 < other
    # an alignment made on a crop-sized image refers to that image, not to a crop frame
    crop = astronaut_face.crop
    np.testing.assert_allclose(processor.descriptor(crop, processor.align(crop)), processor.descriptor(crop), atol=1e-6)


def test_processor_pickles_without_models(astronaut, processor):
    processor.align(astronaut)  # models loaded
    state = pickle.dumps(processor)
    assert len(state) < 10_000  # the 100 MB landmark model is not in it
    copy = pickle.loads(state)
    np.testing.assert_array_equal(copy.align(astronaut).crop, processor.align(astronaut).crop)


def test_faces_searched_from_several_threads_at_once_are_the_faces_found_alone(astronaut, grace_hopper):
    from concurrent.futures import ThreadPoolExecutor

    processor = FaceProcessor(resolution=64)
    photos = [astronaut, grace_hopper] * 4
    alone = [processor.align(photo) for photo in photos]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(processor.align, photos))
    for one, other in zip(alone, together):
        np.testing.assert_array_equal(one.landmarks, other.landmarks)
        np.testing.assert_array_equal(one.crop, other.crop)
    assert 1 <= processor._faces._idle_detectors.qsize() <= 4  # every detector returned; at most one per thread


@pytest.mark.data
def test_detection_rate_on_lfw(data_dir, processor):
    files = sorted((data_dir / "lfw" / "images").glob("*.jpg"))
    step = len(files) // 500
    picked = files[::step][:500]
    assert len(picked) == 500
    found = 0
    for path in picked:
        try:
            processor.align(path)
            found += 1
        except (NoFaceError, FaceTooSmallError):
            pass
    rate = found / len(picked)
    print(f"LFW detection rate: {found}/{len(picked)} = {rate:.1%}")
    assert rate >= 0.98, f"detection rate {rate:.1%} on 500 LFW images"


def test_face_mask_is_a_feathered_ellipse():
    mask = face_mask(128)
    assert mask.shape == (128, 128) and mask.dtype == np.float32
    assert mask.min() == 0.0 and mask.max() == 1.0
    assert mask[70, 64] == 1.0 and mask[0, 0] == 0.0 and mask[127, 127] == 0.0
    np.testing.assert_allclose(mask, mask[:, ::-1], atol=1e-6)  # left-right symmetric
    assert ((mask > 0) & (mask < 1)).sum() > 500  # a soft edge, not a hard cut-out
    assert mask[0].max() == 0.0 and mask[:, 0].max() == 0.0  # zero at the crop border


# ------------------------------------------------------------------------------------------------
# normalisation
# ------------------------------------------------------------------------------------------------


def test_normalisation_round_trip_is_exact():
    images = np.random.default_rng(0).integers(0, 256, (2, 16, 20, 3), dtype=np.uint8)
    tensor = image_to_tensor(images)
    assert tensor.shape == (2, 3, 16, 20) and tensor.dtype == torch.float32
    assert tensor.min() >= -1.0 and tensor.max() <= 1.0
    np.testing.assert_array_equal(tensor_to_image(tensor), images)
    single = image_to_tensor(images[0])
    assert single.shape == (3, 16, 20)
    np.testing.assert_array_equal(tensor_to_image(single), images[0])
    assert image_to_tensor(np.array([[[0, 255, 128]]], np.uint8)).flatten().tolist() == pytest.approx(
        [-1.0, 1.0, 128 / 127.5 - 1], abs=1e-6
    )


def test_tensor_to_image_clamps_out_of_range_and_nan():
    tensor = torch.tensor([2.0, -3.0, float("nan")]).view(3, 1, 1)
    assert tensor_to_image(tensor).ravel().tolist() == [255, 0, 128]


def test_image_to_tensor_refuses_non_uint8():
    with pytest.raises(UnsupportedImageError, match="uint8"):
        image_to_tensor(np.zeros((8, 8, 3), np.float32))


# ------------------------------------------------------------------------------------------------
# loading: every supported kind comes back as (H, W, 3) uint8
# ------------------------------------------------------------------------------------------------


def test_path_bytes_pil_and_array_load_identically(tmp_path, astronaut):
    data = encode(astronaut, "PNG")
    path = tmp_path / "face.png"
    path.write_bytes(data)
    for image in (str(path), path, data, bytearray(data), Image.open(io.BytesIO(data)), astronaut):
        loaded = load_image(image)
        assert loaded.shape == (512, 512, 3) and loaded.dtype == np.uint8
        np.testing.assert_array_equal(loaded, astronaut)


def test_grey_palette_and_cmyk_load_as_rgb(astronaut):
    grey = Image.fromarray(astronaut).convert("L")
    loaded = load_image(encode(grey, "PNG"))
    assert loaded.shape == (512, 512, 3)
    np.testing.assert_array_equal(loaded[..., 0], np.asarray(grey))
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 2])

    palette = Image.fromarray(astronaut).quantize(256)
    assert palette.mode == "P"
    loaded = load_image(encode(palette, "PNG"))
    assert np.abs(loaded.astype(int) - astronaut.astype(int)).mean() < 8

    cmyk = Image.fromarray(astronaut).convert("CMYK")
    for data in (encode(cmyk, "JPEG", quality=95), encode(cmyk, "TIFF")):
        loaded = load_image(data)
        assert loaded.shape == (512, 512, 3)
        assert np.abs(loaded.astype(int) - astronaut.astype(int)).mean() < 4


def test_rgba_is_composited_over_white(astronaut):
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    rgba[:100, :, 3] = 0  # transparent top band
    for image in (encode(rgba, "PNG"), rgba):
        loaded = load_image(image)
        assert loaded.shape == (512, 512, 3)
        assert (loaded[:100] == 255).all()
        np.testing.assert_array_equal(loaded[100:], astronaut[100:])
    grey_alpha = Image.fromarray(rgba).convert("LA")
    assert (load_image(encode(grey_alpha, "PNG"))[:100] == 255).all()


def test_16_bit_images_scale_to_8_bit(tmp_path):
    values = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    path = tmp_path / "deep.png"
    image.save(path)
    expected = np.round(values / 257.0).astype(np.uint8)
    for source in (path, values, image):
        loaded = load_image(source)
        assert loaded.shape == (64, 64, 3) and loaded.dtype == np.uint8
        np.testing.assert_array_equal(loaded[..., 1], expected)


def test_float_arrays_are_read_as_unit_range(astronaut):
    loaded = load_image(astronaut.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(loaded, astronaut)
    np.testing.assert_array_equal(load_image(astronaut.astype(np.float64)), astronaut)


def test_exif_orientation_is_applied(grace_hopper, processor):
    upright = grace_hopper  # 600 x 512 (H x W)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # what a sideways camera writes
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).size == (600, 512)  # stored sideways
    loaded = load_image(data)
    assert loaded.shape == upright.shape
    assert np.abs(loaded.astype(int) - upright.astype(int)).mean() < 4
    processor.align(loaded)  # and the face is upright enough to find


def test_pil_global_state_is_untouched():
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError):
        load_image(png_header(100_000, 100_000))
    assert Image.MAX_IMAGE_PIXELS == before


# ------------------------------------------------------------------------------------------------
# bad inputs: each raises its own typed error with a message a person understands
# ------------------------------------------------------------------------------------------------


def _text_file(tmp_path: Path, _faces) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("this is a shopping list, not a photo\n")
    return path


def _empty_file(tmp_path: Path, _faces) -> Path:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    return path


def _face_on_canvas(faces, size: int) -> np.ndarray:
    canvas = np.full((480, 480, 3), 90, np.uint8)
    canvas[100 : 100 + size, 120 : 120 + size] = np.asarray(
        Image.fromarray(faces["astronaut"]).resize((size, size), Image.Resampling.LANCZOS)
    )
    return canvas


def _channel_first(faces) -> np.ndarray:
    return np.ascontiguousarray(faces["astronaut"].transpose(2, 0, 1))


def _nan_image(faces) -> np.ndarray:
    image = faces["astronaut"].astype(np.float32) / 255
    image[10, 10, 0] = np.nan
    return image


def _fifo(tmp_path: Path, _faces) -> Path:
    path = tmp_path / "upload.jpg"
    os.mkfifo(path)
    return path


def _claims_to_be_huge(faces, width: int = 7000, height: int = 7000) -> bytes:
    """A ~1 KB JPEG whose frame header was edited to claim ``width`` x ``height`` (libjpeg would fill the rest grey)."""
    data = bytearray(encode(np.asarray(Image.fromarray(faces["astronaut"]).resize((32, 32))), "JPEG"))
    frame = data.find(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


BAD_INPUTS = [
    # (id, make(tmp_path, faces) -> input, processor keyword arguments, align keyword arguments, error, message part)
    ("text file", _text_file, {}, {}, InvalidImageError, "not an image"),
    ("empty file", _empty_file, {}, {}, InvalidImageError, "empty"),
    ("empty bytes", lambda t, f: b"", {}, {}, InvalidImageError, "empty"),
    ("random bytes", lambda t, f: np.random.default_rng(1).bytes(5000), {}, {}, InvalidImageError, "not an image"),
    ("truncated JPEG", lambda t, f: encode(f["astronaut"], "JPEG")[:9000], {}, {}, TruncatedImageError, "truncated"),
    ("truncated PNG", lambda t, f: encode(f["astronaut"], "PNG")[:20000], {}, {}, TruncatedImageError, "truncated"),
    (
        "PNG cut in its header",
        lambda t, f: encode(f["astronaut"], "PNG")[:20],
        {},
        {},
        TruncatedImageError,
        "starts like a PNG",
    ),
    (
        "an iPhone's HEIC",
        lambda t, f: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(2000),
        {},
        {},
        InvalidImageError,
        "is a HEIC / HEIF photo, which cannot be read here; save it as JPEG first",
    ),
    ("declares 100000x100000", lambda t, f: png_header(100_000, 100_000), {}, {}, ImageTooLargeError, "too large"),
    (
        "declares 9000x9000",
        lambda t, f: png_header(9000, 9000),
        {},
        {},
        ImageTooLargeError,
        f"limit of {DEFAULT_MAX_PIXELS:,}",
    ),
    (
        "above a custom cap",
        lambda t, f: f["astronaut"],
        {"max_pixels": 100_000},
        {},
        ImageTooLargeError,
        "limit of 100,000",
    ),
    ("8x8 image", lambda t, f: encode(np.zeros((8, 8, 3), np.uint8), "PNG"), {}, {}, ImageTooSmallError, "at least 16"),
    ("20x20 image", lambda t, f: np.zeros((20, 20, 3), np.uint8), {}, {}, ImageTooSmallError, "at least 32"),
    (
        "noise",
        lambda t, f: np.random.default_rng(2).integers(0, 256, (300, 300, 3), dtype=np.uint8),
        {},
        {},
        NoFaceError,
        "no face found",
    ),
    ("plain colour", lambda t, f: np.full((256, 256, 3), 150, np.uint8), {}, {}, NoFaceError, "no face found"),
    (
        "face too small",
        lambda t, f: _face_on_canvas(f, 256),
        {"min_face_size": 100},
        {},
        FaceTooSmallError,
        "at least 100 pixels",
    ),
    (
        "face index out of range",
        lambda t, f: f["astronaut"],
        {},
        {"face_index": 1},
        FaceIndexError,
        "only 1 face found",
    ),
    ("negative face index", lambda t, f: f["astronaut"], {}, {"face_index": -1}, FaceIndexError, "0 or more"),
    ("2-D bool array", lambda t, f: np.ones((64, 64), bool), {}, {}, UnsupportedImageError, "boolean"),
    ("float array with NaN", lambda t, f: _nan_image(f), {}, {}, InvalidImageError, "NaN"),
    (
        "float out of range",
        lambda t, f: np.linspace(-5, 300, 64 * 64 * 3).reshape(64, 64, 3),
        {},
        {},
        UnsupportedImageError,
        "expected 0..1",
    ),
    ("5-channel array", lambda t, f: np.zeros((64, 64, 5), np.uint8), {}, {}, UnsupportedImageError, "not an image"),
    ("channel-first array", lambda t, f: _channel_first(f), {}, {}, UnsupportedImageError, "channel-first"),
    ("4-D batch array", lambda t, f: f["astronaut"][None], {}, {}, UnsupportedImageError, "not an image"),
    (
        "complex dtype",
        lambda t, f: np.zeros((64, 64, 3), np.complex64),
        {},
        {},
        UnsupportedImageError,
        "dtype complex64",
    ),
    ("string array", lambda t, f: np.full((64, 64, 3), "x"), {}, {}, UnsupportedImageError, "are not images"),
    (
        "int values above 16 bit",
        lambda t, f: np.full((64, 64, 3), 70_000, np.int64),
        {},
        {},
        UnsupportedImageError,
        "integer image values",
    ),
    ("None", lambda t, f: None, {}, {}, InvalidImageError, "None"),
    ("nonexistent path", lambda t, f: t / "missing.jpg", {}, {}, InvalidImageError, "file not found"),
    ("directory path", lambda t, f: t, {}, {}, InvalidImageError, "is a directory"),
    ("list of numbers", lambda t, f: [[1, 2, 3]], {}, {}, InvalidImageError, "expected a file path"),
    ("torch tensor", lambda t, f: torch.zeros(3, 64, 64), {}, {}, UnsupportedImageError, "torch tensor"),
    (
        "file name over 255 characters",
        lambda t, f: t / ("x" * 300 + ".jpg"),
        {},
        {},
        InvalidImageError,
        "File name too long",
    ),
    ("path through a file", lambda t, f: _text_file(t, f) / "face.jpg", {}, {}, InvalidImageError, "file not found"),
    (
        "path with a NUL character",
        lambda t, f: str(t / "a\0b.jpg"),
        {},
        {},
        InvalidImageError,
        "not a usable file path",
    ),
    ("a named pipe", _fifo, {}, {}, InvalidImageError, "not a regular file"),
    (
        "JPEG claiming 7000x7000 in 1 KB",
        lambda t, f: _claims_to_be_huge(f),
        {},
        {},
        TruncatedImageError,
        "holds at least 95,703 bytes",
    ),
]


@pytest.mark.parametrize(
    "make, processor_options, align_options, error, message",
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_raises_its_typed_error(
    tmp_path, faces, processor, make, processor_options, align_options, error, message
):
    image = make(tmp_path, faces)
    chosen = FaceProcessor(**processor_options) if processor_options else processor
    with pytest.raises(AIPGANError) as caught:
        chosen.align(image, **align_options)
    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# ------------------------------------------------------------------------------------------------
# paths: every OSError becomes the project's error
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error, message",
    [
        (PermissionError(errno.EACCES, "Permission denied"), "no permission to read"),
        (OSError(errno.EIO, "Input/output error"), "cannot read .*: Input/output error"),
    ],
)
def test_os_errors_on_open_become_invalid_image_errors(tmp_path, astronaut, monkeypatch, error, message):
    path = tmp_path / "face.png"
    path.write_bytes(encode(astronaut, "PNG"))

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr("aipgan_hf.faces.decode.open", refuse, raising=False)  # root reads any file, so simulate
    with pytest.raises(InvalidImageError, match=message):
        load_image(path)


def test_a_very_long_path_is_shortened_in_the_message(tmp_path):
    with pytest.raises(InvalidImageError) as caught:
        load_image(tmp_path / ("y" * 5000 + ".jpg"))
    assert len(str(caught.value)) < 300 and "characters)" in str(caught.value)


# ------------------------------------------------------------------------------------------------
# over-size: the project's own message, and bounded memory for large JPEGs
# ------------------------------------------------------------------------------------------------


def test_pillows_decompression_bomb_text_is_never_shown():
    with pytest.raises(ImageTooLargeError) as caught:
        load_image(png_header(100_000, 100_000))
    message = str(caught.value)
    assert "10,000,000,000 pixels, more than the limit of 50,000,000" in message
    assert "bomb" not in message.lower() and "DOS" not in message
    # a cap above Pillow's own limit: the limit that applies is named
    with pytest.raises(ImageTooLargeError, match="300,000,000 pixels, more than the limit of 178,956,970"):
        FaceProcessor(max_pixels=400_000_000).align(png_header(20_000, 15_000))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_photo_is_decoded_at_reduced_scale_and_aligned_in_full_resolution_coordinates(astronaut, processor, fmt):
    canvas = Image.new("RGB", (3001, 2003), (90, 100, 110))
    canvas.paste(Image.fromarray(astronaut).resize((1200, 1200)), (1500, 300))
    data = encode(canvas, fmt)
    photo = load_photo(data)  # JPEG: libjpeg at 1/2 scale; PNG: decoded, then box-filtered to 1/2
    assert photo.reduced and photo.size == (3001, 2003) and photo.pixels.shape == (1002, 1501, 3)
    reduced, full = processor.align(photo), processor.align(load_image(data))
    assert reduced.photo_size == full.photo_size == (3001, 2003)
    assert np.abs(reduced.landmarks - full.landmarks).max() < 6.0  # photo coordinates, within 2 reduced pixels
    assert np.abs(reduced.crop.astype(int) - full.crop.astype(int)).mean() < 6.0
    assert photo.full_resolution().shape == (2003, 3001, 3)  # what paste-back decodes (test_compositing)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_large_plain_image_costs_memory_by_the_reduced_size(processor, fmt):
    data = encode(Image.new("L", (7000, 7000), 128), fmt)  # 49 MP in 290 KB (JPEG) or 62 KB (PNG): real bombs
    tracemalloc.start()
    try:
        with pytest.raises(NoFaceError):
            processor.align(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MB traced (a full decode costs 280 MB)"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_reduced_decode_maps_to_full_resolution_under_every_exif_orientation(orientation):
    canvas = np.full((803, 1001), 40, np.uint8)
    canvas[599:608, 697:706] = 255  # a 9x9 dot centred at (701, 603) in the upright photo
    upright = Image.fromarray(canvas)
    undo = {
        1: None,
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    stored = upright if undo is None else upright.transpose(undo)  # what a camera holding it that way writes
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = load_photo(encode(stored, "JPEG", quality=95, exif=exif.tobytes()), draft_pixels=20_000)
    assert photo.size == (1001, 803) and photo.pixels.shape[:2] == (101, 126)  # 1/8 scale
    weights = np.clip(photo.pixels[..., 0].astype(float) - 50, 0, None)
    rows, cols = np.nonzero(weights)
    centre = np.array([[np.average(cols, weights=weights[rows, cols]), np.average(rows, weights=weights[rows, cols])]])
    # a dot spans 2 reduced pixels, so its centroid is good to ~1.5 px; a map that ignored the partial 8-pixel
    # blocks at a flipped edge would be 5-7 px off
    np.testing.assert_allclose(apply_affine(photo.pixels_to_photo, centre)[0], (701, 603), atol=2.5)


# ------------------------------------------------------------------------------------------------
# grey photos stay grey
# ------------------------------------------------------------------------------------------------


def test_is_grey_and_to_grey(astronaut):
    assert not is_grey(astronaut)
    grey = to_grey(astronaut)
    assert is_grey(grey) and grey.shape == astronaut.shape and grey.dtype == np.uint8
    np.testing.assert_array_equal(grey[..., 0], np.asarray(Image.fromarray(astronaut).convert("L")))
    almost = grey.copy()
    almost[300, 400, 1] ^= 1  # one pixel off, away from the sampled grid
    assert not is_grey(almost)
    assert isinstance(load_photo(grey), Photo) and load_photo(grey).grey
