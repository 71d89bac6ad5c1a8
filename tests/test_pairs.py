"""training/pairs.py: pair sampling, neutral references, augmentation and the fixed validation pairs."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from aipgan_hf.errors import ConfigError
from aipgan_hf.faces import image_to_tensor
from training.dataset.shards import dataset_features
from training.pairs import PairDataset, augment_source_image, build_pair_index, fixed_validation_pairs

SIZE = 32

# identity, expression, source, clip, frame
ROWS = [
    ("london/001", "neutral", "london", "", -1),
    ("london/001", "happiness", "london", "", -1),
    ("lfw/Ann", "surprise", "lfw", "", -1),
    ("lfw/Ann", "neutral", "lfw", "", -1),
    ("lfw/Ann", "", "lfw", "", -1),
    ("video/v/talker", "anger", "video/v", "clip1", 0),
    ("video/v/talker", "anger", "video/v", "clip1", 6),
    ("video/v/talker", "neutral", "video/v", "clip2", 0),  # video frames never count as neutral references
    ("canada/003f", "neutral", "canada", "", -1),
    ("celeba/000001", "", "celeba", "", -1),
]


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _make_split(rows=ROWS, size: int = SIZE, image_bytes=None):
    """A split with the dataset's real features; each row's image is a flat colour that encodes its row."""
    import datasets

    rng = np.random.default_rng(0)
    colours = [np.full((size, size, 3), (20 * k + 10, 200 - 15 * k, 60 + 10 * k), np.uint8) for k in range(len(rows))]
    columns = {
        "image": [{"bytes": image_bytes or _jpeg(colour), "path": None} for colour in colours],
        "landmarks": [rng.uniform(0, size, (68, 2)).astype(np.float32) for _ in rows],
        "identity": [row[0] for row in rows],
        "expression": [row[1] for row in rows],
        "source": [row[2] for row in rows],
        "clip": [row[3] for row in rows],
        "frame": [row[4] for row in rows],
        "path": [f"file{k}" for k in range(len(rows))],
    }
    return datasets.Dataset.from_dict(columns, features=dataset_features())


@pytest.fixture(scope="module")
def split():
    return _make_split()


def test_items_have_contract_shapes_and_ranges(split):
    pairs = PairDataset(split, resolution=SIZE, seed=0)
    assert len(pairs) == len(ROWS)
    item = pairs[3]
    for key in ("source", "target", "ground_truth", "neutral"):
        assert item[key].shape == (3, SIZE, SIZE) and item[key].dtype == torch.float32
        assert item[key].min() >= -1.0 and item[key].max() <= 1.0
    for key in ("source_landmarks", "target_landmarks"):
        assert item[key].shape == (68, 2) and item[key].dtype == torch.float32
    assert item["same_person"].dtype == torch.bool and item["has_neutral"].dtype == torch.bool
    batch = next(iter(torch.utils.data.DataLoader(pairs, batch_size=4)))
    assert batch["source"].shape == (4, 3, SIZE, SIZE) and batch["same_person"].shape == (4,)


def test_same_person_pairs_share_identity_and_cross_pairs_do_not(split):
    identities = np.array([row[0] for row in ROWS])
    pairs = PairDataset(split, resolution=SIZE, cross_person_prob=0.5, seed=3)
    seen = {True: 0, False: 0}
    for epoch in range(6):
        pairs.set_epoch(epoch)
        for index in range(len(pairs)):
            item = pairs[index]
            source, target = int(item["source_index"]), int(item["target_index"])
            same = bool(item["same_person"])
            seen[same] += 1
            assert source != target
            assert (identities[source] == identities[target]) == same
    assert seen[True] > 10 and seen[False] > 10

    always_same = PairDataset(split, resolution=SIZE, cross_person_prob=0.0)
    items = [always_same[index] for index in range(len(always_same))]
    assert all(bool(item["same_person"]) for item in items)
    # single-photo people (canada, celeba) are replaced by a person with several rows as target
    assert all(identities[int(item["target_index"])] not in ("canada/003f", "celeba/000001") for item in items)
    always_cross = PairDataset(split, resolution=SIZE, cross_person_prob=1.0)
    assert not any(bool(always_cross[index]["same_person"]) for index in range(len(always_cross)))


def test_ground_truth_is_clean_source_or_target(split):
    pairs = PairDataset(split, resolution=SIZE, cross_person_prob=0.5, augment_source=True, seed=5)
    checked = {True: 0, False: 0}
    for index in range(len(pairs)):
        item = pairs[index]
        clean_source = image_to_tensor(pairs.load_crop(int(item["source_index"]))[0])
        if bool(item["same_person"]):
            assert torch.equal(item["ground_truth"], clean_source)
        else:
            assert torch.equal(item["ground_truth"], item["target"])
        assert not torch.equal(item["source"], clean_source)  # augmented
        checked[bool(item["same_person"])] += 1
    assert checked[True] and checked[False]
    plain = PairDataset(split, resolution=SIZE, augment_source=False, seed=5)
    item = plain[0]
    assert torch.equal(item["source"], image_to_tensor(plain.load_crop(int(item["source_index"]))[0]))


def test_neutral_reference_comes_from_labelled_photos_only(split):
    pairs = PairDataset(split, resolution=SIZE, cross_person_prob=1.0, seed=0)
    for index in range(len(pairs)):
        item = pairs[index]
        target = int(item["target_index"])
        identity = ROWS[target][0]
        if identity == "video/v/talker":  # only a video frame is labelled neutral: not a reference
            assert not bool(item["has_neutral"])
            assert torch.equal(item["neutral"], item["target"])
        elif identity == "celeba/000001":
            assert not bool(item["has_neutral"])
        else:
            assert bool(item["has_neutral"])
            expected = {"london/001": 0, "lfw/Ann": 3, "canada/003f": 8}[identity]
            assert torch.equal(item["neutral"], image_to_tensor(pairs.load_crop(expected)[0]))


def test_draws_are_deterministic_per_seed_and_epoch(split):
    first = PairDataset(split, resolution=SIZE, seed=11)
    second = PairDataset(split, resolution=SIZE, seed=11)
    draws = [(int(first[i]["source_index"]), bool(first[i]["same_person"])) for i in range(len(first))]
    assert draws == [(int(second[i]["source_index"]), bool(second[i]["same_person"])) for i in range(len(second))]
    assert torch.equal(first[2]["source"], second[2]["source"])
    changed = []
    for epoch in range(1, 4):
        first.set_epoch(epoch)
        changed.append([(int(first[i]["source_index"]), bool(first[i]["same_person"])) for i in range(len(first))])
    assert any(epoch_draws != draws for epoch_draws in changed)


def test_resolution_resizes_crops_and_scales_landmarks(split):
    full = PairDataset(split, resolution=SIZE, augment_source=False)
    half = PairDataset(split, resolution=SIZE // 2, augment_source=False)
    item = half[4]
    assert item["target"].shape == (3, SIZE // 2, SIZE // 2)
    target = int(item["target_index"])
    np.testing.assert_allclose(item["target_landmarks"].numpy(), full.landmarks[target] * 0.5, rtol=1e-6)


def test_augmentation_is_photometric_only():
    rng = np.random.default_rng(0)
    image = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    augmented = augment_source_image(image, rng)
    assert augmented.shape == image.shape and augmented.dtype == np.uint8
    assert not np.array_equal(augmented, image)
    grey = augment_source_image(image, rng, greyscale_prob=1.0)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    # brightness order of pixels is kept (no geometric change, monotone per channel)
    flat = image[..., 1].ravel()
    darker, brighter = np.argmin(flat), np.argmax(flat)
    assert augmented[..., 1].ravel()[darker] <= augmented[..., 1].ravel()[brighter]


def test_index_is_built_without_decoding_images():
    undecodable = _make_split(image_bytes=b"not an image at all")
    index = build_pair_index(undecodable)
    assert list(index.identities) == sorted({row[0] for row in ROWS})
    assert [len(rows) for rows in index.rows_by_identity] == [1, 1, 3, 2, 3]
    assert sorted(index.multi_photo_rows.tolist()) == [0, 1, 2, 3, 4, 5, 6, 7]
    neutral = {index.identities[k]: rows.tolist() for k, rows in enumerate(index.neutral_rows_by_identity)}
    assert neutral == {"canada/003f": [8], "celeba/000001": [], "lfw/Ann": [3], "london/001": [0], "video/v/talker": []}


def test_fixed_validation_pairs_are_cross_person_and_fixed(split):
    identities = [row[0] for row in ROWS]
    pairs = fixed_validation_pairs(split, 8)
    assert len(pairs) == 8 and pairs == fixed_validation_pairs(split, 8)
    assert all(identities[source] != identities[target] for source, target in pairs)
    assert {ROWS[source][1] for source, _ in pairs} <= {"happiness", "surprise", "anger"}  # expressive sources
    assert len({identities[target] for _, target in pairs[:5]}) == 5  # targets spread over the people
    assert fixed_validation_pairs(split, 8, seed=1) != pairs


def test_bad_arguments_raise_config_errors(split):
    with pytest.raises(ConfigError):
        PairDataset(split, cross_person_prob=1.5)
    one_person = _make_split(rows=[("lfw/Ann", "", "lfw", "", -1)] * 2)
    with pytest.raises(ConfigError, match="two people"):
        PairDataset(one_person, resolution=SIZE)
    singles = _make_split(rows=[("a/1", "", "x", "", -1), ("a/2", "", "x", "", -1)])
    with pytest.raises(ConfigError, match="two or more"):
        PairDataset(singles, resolution=SIZE, cross_person_prob=0.5)
    assert len(PairDataset(singles, resolution=SIZE, cross_person_prob=1.0)) == 2
    with pytest.raises(ConfigError):
        fixed_validation_pairs(one_person, 4)


def test_selected_or_shuffled_split_keeps_rows_aligned(split):
    subset = split.shuffle(seed=0).select(range(6))  # an indices mapping over the Arrow table
    pairs = PairDataset(subset, resolution=SIZE, augment_source=False)
    expected = np.asarray(subset.with_format("numpy")["landmarks"], dtype=np.float32)  # (6, 68, 2)
    np.testing.assert_array_equal(pairs.landmarks, expected)
    assert list(pairs.index.identities[pairs.index.identity_codes]) == subset["identity"]
    item = pairs[0]
    target = int(item["target_index"])
    assert torch.equal(item["target"], image_to_tensor(np.asarray(subset[target]["image"])))


def test_source_geometry_augmentation_moves_landmarks_with_the_image(astronaut):
    from aipgan_hf.faces import FaceProcessor
    from training.pairs import augment_source_geometry

    processor = FaceProcessor(resolution=128)
    face = processor.align(astronaut)
    warped, landmarks = augment_source_geometry(face.crop, face.crop_landmarks, np.random.default_rng(3))
    assert warped.shape == face.crop.shape and not np.array_equal(warped, face.crop)
    assert np.linalg.norm(landmarks - face.crop_landmarks, axis=1).mean() > 1.0  # it really moved
    measured = processor.landmarks68(warped, processor.align(warped).box)
    assert np.linalg.norm(measured - landmarks, axis=1).mean() < 1.5  # and the landmarks moved with it


def test_session_pairs_come_from_one_clip_or_session(split):
    """Session pairs: the London person or one clip; clip2 has one frame, so it never forms a session pair."""
    index = build_pair_index(split)
    assert sorted(sorted(int(r) for r in g) for g in index.session_groups) == [[0, 1], [5, 6]]
    pairs = PairDataset(split, resolution=SIZE, cross_person_prob=0.0, session_prob=1.0, seed=3)
    for item in range(len(pairs)):
        sample = pairs[item]
        source, target = int(sample["source_index"]), int(sample["target_index"])
        assert {source, target} in ({0, 1}, {5, 6})


def test_driving_landmarks_are_the_source_own_or_retargeted(split):
    from aipgan_hf.checkpoint import BUNDLED_CHECKPOINT
    from aipgan_hf.motion import ShapeModel

    same = PairDataset(split, resolution=SIZE, cross_person_prob=0.0, seed=1)[0]
    assert torch.equal(same["driving_landmarks"], same["clean_source_landmarks"])
    model = ShapeModel.load(BUNDLED_CHECKPOINT / "shape_model.safetensors")
    cross = PairDataset(split, resolution=SIZE, cross_person_prob=1.0, seed=1, shape_model=model)[0]
    expected = model.drive(cross["target_landmarks"].numpy(), cross["source_landmarks"].numpy())
    assert np.allclose(cross["driving_landmarks"].numpy(), expected, atol=1e-4)
    assert not torch.allclose(cross["driving_landmarks"], cross["source_landmarks"])


def test_colour_jitter_is_shared_by_target_and_ground_truth(split):
    plain = PairDataset(split, resolution=SIZE, cross_person_prob=1.0, seed=2)[3]
    jittered = PairDataset(split, resolution=SIZE, cross_person_prob=1.0, seed=2, colour_jitter=True)[3]
    assert torch.equal(jittered["target"], jittered["ground_truth"])  # cross-person: the ground truth is the target
    assert not torch.equal(jittered["target"], plain["target"])
