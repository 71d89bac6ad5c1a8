"""Training pairs for expression transfer, sampled from a split of the face dataset.

Each item is an (expression source, identity target) pair of aligned crops. With probability
``1 - cross_person_prob`` both show the same person (two frames of a clip or video person, two LFW photos,
a London neutral/smiling pair, two grimaces): then the clean source image is the ground truth of "the target
wearing the source's expression". Otherwise the source is another person (transfer without ground truth).
The source is augmented so it cannot carry identity to the output: photometrically (colours) and
geometrically (a small random similarity warp, landmarks warped with it), so that copying the source's
pixels no longer matches the ground truth; the ground truth and ``clean_source_landmarks`` stay unwarped.

The pair index is built from the label columns only (no image is decoded to build it).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from aipgan_hf.checkpoint import names_a_local_path
from aipgan_hf.errors import ConfigError
from aipgan_hf.faces import apply_affine, image_to_tensor, load_image, warp_to_crop

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ("identity", "expression", "source", "clip")
SESSION_SOURCES = ("grimace", "london")
"""Photo sources whose photos of one person come from one session (same light, camera and background)."""


@dataclasses.dataclass
class PairIndex:
    """Row groups of one split, by identity.

    Attributes:
        identity_codes: (N,) int, identity of each row as an index into ``identities``.
        identities: (P,) identity strings.
        rows_by_identity: list of P int arrays, the rows of each identity.
        multi_photo_rows: rows whose identity has at least two rows (usable as same-person targets).
        neutral_rows_by_identity: list of P int arrays, rows labelled neutral from photos (not video frames).
        expressions: (N,) expression label of each row.
        session_groups: list of int arrays, rows taken in one session (one video clip; one grimace or London
            person), each with >= 2 rows: pairs within them differ in expression and little else.
    """

    identity_codes: np.ndarray
    identities: np.ndarray
    rows_by_identity: list[np.ndarray]
    multi_photo_rows: np.ndarray
    neutral_rows_by_identity: list[np.ndarray]
    expressions: np.ndarray
    session_groups: list[np.ndarray] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.identity_codes)


def _group_rows(codes: np.ndarray, num_groups: int, mask: np.ndarray | None = None) -> list[np.ndarray]:
    """Rows of each code (optionally only where ``mask``), via one stable argsort."""
    rows = np.arange(len(codes)) if mask is None else np.flatnonzero(mask)
    selected_codes = codes[rows]
    order = np.argsort(selected_codes, kind="stable")
    counts = np.bincount(selected_codes, minlength=num_groups)
    return np.split(rows[order], np.cumsum(counts)[:-1])


def build_pair_index(split) -> PairIndex:
    """Group the rows of a dataset split by identity, reading the label columns only.

    Args:
        split: a ``datasets.Dataset`` with the columns identity, expression, source, clip.
    """
    missing = [name for name in LABEL_COLUMNS if name not in split.column_names]
    if missing:
        raise ConfigError(f"the dataset split lacks the columns {missing}; build it with training/prepare_dataset.py")
    labels: pd.DataFrame = split.select_columns(list(LABEL_COLUMNS)).to_pandas()
    codes, identities = pd.factorize(labels["identity"], sort=True)
    codes = codes.astype(np.int64)
    rows_by_identity = _group_rows(codes, len(identities))
    sizes = np.bincount(codes, minlength=len(identities))
    is_photo = ~labels["source"].str.startswith("video").to_numpy()
    is_neutral = (labels["expression"] == "neutral").to_numpy()
    # A clip's first frame is not reliably neutral, so only labelled photos count as neutral references.
    neutral_rows = _group_rows(codes, len(identities), mask=is_photo & is_neutral)
    sources = labels["source"].to_numpy(dtype=str)
    in_session = ~is_photo | np.isin(sources, SESSION_SOURCES)
    session_keys = np.where(~is_photo, labels["source"] + "/" + labels["clip"].astype(str), labels["identity"])
    session_codes, session_names = pd.factorize(pd.Series(session_keys).where(in_session), sort=True)
    sessions = [
        g for g in _group_rows(np.maximum(session_codes, 0), len(session_names), mask=session_codes >= 0) if len(g) >= 2
    ]
    return PairIndex(
        identity_codes=codes,
        identities=np.asarray(identities, dtype=object),
        rows_by_identity=rows_by_identity,
        multi_photo_rows=np.flatnonzero(sizes[codes] >= 2),
        neutral_rows_by_identity=neutral_rows,
        expressions=labels["expression"].to_numpy(dtype=object),
        session_groups=sessions,
    )


def check_dataset_name(dataset_name: str) -> None:
    """ConfigError where ``--dataset_name`` names a local folder that is not there (the evaluation's message),
    instead of a failed Hub download later."""
    if names_a_local_path(dataset_name) and not Path(dataset_name).exists():
        raise ConfigError(f"dataset folder not found: {dataset_name}")


def load_corpus(dataset_name: str):
    """``datasets.load_dataset(dataset_name)`` after :func:`check_dataset_name`; a name that is neither a folder
    here nor a dataset the Hub gives is a one-line ConfigError."""
    import datasets

    check_dataset_name(dataset_name)
    try:
        return datasets.load_dataset(dataset_name)
    except (ConnectionError, FileNotFoundError) as error:  # FileNotFoundError: also the Hub's DatasetNotFoundError
        if Path(dataset_name).exists():
            raise
        raise ConfigError(f"dataset not found: {dataset_name} is no folder here, and the Hub says: {error}") from None


def _landmark_array(split) -> np.ndarray:
    """All landmarks of a split as one (N, 68, 2) float32 array, straight from Arrow (no per-row Python)."""
    import pyarrow as pa

    column = split.select_columns(["landmarks"]).with_format("arrow")[:]["landmarks"].combine_chunks()
    if isinstance(column, pa.ExtensionArray):  # datasets.Array2D wraps a list<list<float>> storage
        column = column.storage
    values = column.flatten().flatten().to_numpy(zero_copy_only=False)  # (N * 68 * 2,) nested lists -> flat
    return values.astype(np.float32).reshape(len(split), -1, 2)  # (N, 68, 2)


def augment_source_image(image: np.ndarray, rng: np.random.Generator, greyscale_prob: float = 0.1) -> np.ndarray:
    """Photometric jitter of a (H, W, 3) uint8 crop: brightness, contrast, saturation, colour cast, greyscale.

    Only colours change (never geometry), so the crop's landmarks stay valid.
    """
    pixels = image.astype(np.float32) / 255.0  # (H, W, 3) in [0, 1]
    pixels = pixels * rng.uniform(0.9, 1.1, size=3).astype(np.float32)  # colour cast, per channel
    grey = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # (H, W) luma
    pixels = grey[..., None] + (pixels - grey[..., None]) * rng.uniform(0.6, 1.4)  # saturation
    pixels = pixels.mean() + (pixels - pixels.mean()) * rng.uniform(0.75, 1.25)  # contrast
    pixels = pixels * rng.uniform(0.75, 1.25)  # brightness
    if rng.random() < greyscale_prob:
        grey = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        pixels = np.repeat(grey[..., None], 3, axis=-1)  # (H, W) -> (H, W, 3)
    return (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def augment_source_geometry(
    image: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator,
    max_shift: float = 0.06,
    max_scale: float = 0.08,
    max_rotation_degrees: float = 8.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A random similarity warp about the crop centre (shift up to ``max_shift`` of the side, scale and
    rotation up to the given amounts); returns the warped (R, R, 3) crop and its (68, 2) landmarks."""
    side = image.shape[0]
    angle = np.deg2rad(rng.uniform(-max_rotation_degrees, max_rotation_degrees))
    scale = rng.uniform(1 - max_scale, 1 + max_scale)
    shift = rng.uniform(-max_shift, max_shift, size=2) * side
    centre = np.array([(side - 1) / 2, (side - 1) / 2])
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = np.concatenate([linear, (centre + shift - linear @ centre)[:, None]], axis=1)  # (2, 3) old -> new crop
    return warp_to_crop(image, matrix, side), apply_affine(matrix, landmarks).astype(np.float32)


class PairDataset(torch.utils.data.Dataset):
    """(expression source, identity target) pairs from one split of the face dataset.

    Item ``index`` uses row ``index`` as the target, except for a same-person draw on a person with a single
    row: the target is then another row drawn from people with several, so the share of same-person pairs is
    exactly ``1 - cross_person_prob``. Draws depend only on (seed, epoch, index): call :meth:`set_epoch` to get
    new pairs each epoch; results do not depend on the DataLoader's worker count.

    Args:
        split: a ``datasets.Dataset`` split made by ``training/prepare_dataset.py``.
        resolution: side of the returned images; crops of another size are resized (landmarks scaled with them).
        cross_person_prob: probability that source and target are different people.
        augment_source: photometric jitter and a small similarity warp of the source (the ground truth stays clean).
        seed: seed of all draws.
        source_warp: scales the geometric augmentation of the source (0: photometric only).
        session_prob: share of same-person pairs drawn from one session (a clip, a grimace or London person),
            where the two images differ in expression and little else; the rest are two photos of a person.
        shape_model: an ``aipgan_hf.motion.ShapeModel``; cross-person pairs then get driving landmarks (the
            target's face moved by the source's expression). Same-person pairs are driven by the source's own.
        colour_jitter: one random colour jitter applied alike to target, ground truth and neutral (appearance
            variety for the few people with clips; the pair stays consistent).

    Items are dicts of tensors: ``source``, ``target``, ``ground_truth``, ``neutral`` (3, R, R) float in [-1, 1];
    ``source_landmarks``, ``target_landmarks`` (68, 2) float32 (x, y) crop pixels at ``resolution``, the source's
    as warped by the augmentation; ``clean_source_landmarks`` the source's before it;
    ``driving_landmarks`` (68, 2) where the target's landmarks must go (the clean source's for same-person pairs);
    ``same_person``, ``has_neutral`` bool scalars; ``source_index``, ``target_index`` int64 rows of the split.
    ``ground_truth`` is the clean source for same-person pairs, else the target. ``neutral`` is a neutral-labelled
    photo of the target's person when one exists (``has_neutral``), else the target itself.
    """

    def __init__(
        self,
        split,
        resolution: int = 128,
        cross_person_prob: float = 0.5,
        augment_source: bool = True,
        seed: int = 0,
        source_warp: float = 1.0,
        session_prob: float = 0.0,
        shape_model=None,
        colour_jitter: bool = False,
    ) -> None:
        import datasets

        if not 0.0 <= cross_person_prob <= 1.0:
            raise ConfigError(f"cross_person_prob must be in [0, 1], got {cross_person_prob}")
        if resolution < 8:
            raise ConfigError(f"resolution must be at least 8, got {resolution}")
        self.index = build_pair_index(split)
        if len(self.index) == 0:
            raise ConfigError("the dataset split is empty")
        if cross_person_prob > 0 and len(self.index.identities) < 2:
            raise ConfigError("cross-person pairs need at least two people in the split")
        if cross_person_prob < 1 and len(self.index.multi_photo_rows) == 0:
            raise ConfigError("same-person pairs need a person with two or more images; set cross_person_prob=1")
        self.images = split.select_columns(["image"]).cast_column("image", datasets.Image(decode=False))
        self.landmarks = _landmark_array(split)  # (N, 68, 2)
        self.resolution = resolution
        self.cross_person_prob = cross_person_prob
        self.augment_source = augment_source
        self.source_warp = source_warp
        self.session_prob = session_prob
        self.shape_model = shape_model
        self.colour_jitter = colour_jitter
        self.session_rows = (
            np.concatenate(self.index.session_groups) if self.index.session_groups else np.zeros(0, np.int64)
        )
        self.session_of_row = (
            np.concatenate([np.full(len(g), i) for i, g in enumerate(self.index.session_groups)])
            if self.index.session_groups
            else self.session_rows
        )
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        """Draw different pairs for a new epoch (call before iterating, in the main process)."""
        self.epoch = epoch

    def _other_person_row(self, row: int, rng: np.random.Generator) -> int:
        identity = self.index.identity_codes[row]
        while True:  # at least two people exist, and most rows are someone else: a few draws at most
            candidate = int(rng.integers(len(self.index)))
            if self.index.identity_codes[candidate] != identity:
                return candidate

    def sample_pair(self, index: int, rng: np.random.Generator) -> tuple[int, int, bool]:
        """Rows (source, target) of item ``index`` and whether they show the same person."""
        target = int(index)
        same_person = rng.random() >= self.cross_person_prob
        if not same_person:
            return self._other_person_row(target, rng), target, False
        if len(self.session_rows) and rng.random() < self.session_prob:
            pick = int(rng.integers(len(self.session_rows)))
            members = self.index.session_groups[self.session_of_row[pick]]
            target = int(self.session_rows[pick])
            return int(rng.choice(members[members != target])), target, True
        if len(self.index.rows_by_identity[self.index.identity_codes[target]]) < 2:
            target = int(rng.choice(self.index.multi_photo_rows))
        members = self.index.rows_by_identity[self.index.identity_codes[target]]
        others = members[members != target]
        return int(rng.choice(others)), target, True

    def neutral_row(self, target: int, rng: np.random.Generator) -> tuple[int, bool]:
        """A neutral photo of the target's person (another one when possible), or the target with False."""
        candidates = self.index.neutral_rows_by_identity[self.index.identity_codes[target]]
        if len(candidates) == 0:
            return target, False
        others = candidates[candidates != target]
        return int(rng.choice(others if len(others) else candidates)), True

    def load_crop(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ``row`` as ((R, R, 3) uint8 crop, (68, 2) float32 landmarks) at this dataset's resolution."""
        stored = self.images[int(row)]["image"]
        crop = load_image(stored["bytes"] if stored["bytes"] is not None else stored["path"])
        landmarks = self.landmarks[row].copy()
        height, width = crop.shape[:2]
        if (height, width) != (self.resolution, self.resolution):
            crop = np.asarray(Image.fromarray(crop).resize((self.resolution, self.resolution), Image.BICUBIC))
            landmarks *= np.array([self.resolution / width, self.resolution / height], dtype=np.float32)
        return crop, landmarks

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        source_row, target_row, same_person = self.sample_pair(index, rng)
        neutral_row, has_neutral = self.neutral_row(target_row, rng)
        source, source_landmarks = self.load_crop(source_row)
        target, target_landmarks = self.load_crop(target_row)
        neutral = target if neutral_row == target_row else self.load_crop(neutral_row)[0]
        ground_truth = source if same_person else target
        clean_source_landmarks = source_landmarks
        if same_person or self.shape_model is None:
            driving_landmarks = source_landmarks
        else:
            driving_landmarks = self.shape_model.drive(target_landmarks, source_landmarks).astype(np.float32)
        if self.colour_jitter:
            jitter = int(rng.integers(2**31))
            target, ground_truth, neutral = (
                augment_source_image(image, np.random.default_rng(jitter)) for image in (target, ground_truth, neutral)
            )
        if self.augment_source:
            source = augment_source_image(source, rng)
            if self.source_warp > 0:
                w = self.source_warp
                source, source_landmarks = augment_source_geometry(
                    source, source_landmarks, rng, max_shift=0.06 * w, max_scale=0.08 * w, max_rotation_degrees=8.0 * w
                )
        return {
            "source": image_to_tensor(source),  # (3, R, R) in [-1, 1]
            "target": image_to_tensor(target),
            "ground_truth": image_to_tensor(ground_truth),
            "neutral": image_to_tensor(neutral),
            "source_landmarks": torch.from_numpy(source_landmarks),  # (68, 2) x, y crop pixels
            "target_landmarks": torch.from_numpy(target_landmarks),
            "clean_source_landmarks": torch.from_numpy(clean_source_landmarks),
            "driving_landmarks": torch.from_numpy(np.ascontiguousarray(driving_landmarks, dtype=np.float32)),
            "same_person": torch.tensor(same_person),
            "has_neutral": torch.tensor(has_neutral),
            "source_index": torch.tensor(source_row, dtype=torch.int64),
            "target_index": torch.tensor(target_row, dtype=torch.int64),
        }


def fixed_validation_pairs(split, n: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n`` fixed cross-person (source row, target row) pairs of a split, for the validation grid.

    Targets are spread over as many people as possible; sources cycle through the labelled non-neutral
    expressions (any row when the split has none) and always show another person than their target. The same
    split and seed always give the same pairs.
    """
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    index = build_pair_index(split)
    if len(index.identities) < 2:
        raise ConfigError("cross-person validation pairs need at least two people in the split")
    rng = np.random.default_rng(seed)
    people = rng.permutation(len(index.identities))
    expressive = [
        np.flatnonzero(index.expressions == label) for label in sorted(set(index.expressions) - {"", "neutral"})
    ]
    source_pools: Sequence[np.ndarray] = [pool for pool in expressive if len(pool)] or [np.arange(len(index))]
    fallbacks = (np.concatenate(source_pools), np.arange(len(index)))
    pairs = []
    for k in range(n):
        members = index.rows_by_identity[people[k % len(people)]]
        target = int(members[rng.integers(len(members))])
        # this expression, else any expressive row, else any row, always of another person
        for pool in (source_pools[k % len(source_pools)], *fallbacks):
            pool = pool[index.identity_codes[pool] != index.identity_codes[target]]
            if len(pool):
                break
        pairs.append((int(pool[rng.integers(len(pool))]), target))
    return pairs
