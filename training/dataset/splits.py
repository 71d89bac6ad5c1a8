"""Who goes where: people (never images) to train / validation / test by a hash of their identity, and the
``--max_images`` subsets for quick runs."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence

from aipgan_hf.errors import ConfigError

from .sources import Source

SPLITS = ("train", "validation", "test")


def _unit_interval(text: str, salt: str = "") -> float:
    """A number in [0, 1) fixed by ``text`` (SHA-256), the same on every machine and Python version."""
    digest = hashlib.sha256((salt + text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_for_identity(identity: str, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """The split (train / validation / test) of a person, from a hash of the identity string alone.

    Deterministic and independent of the other people, so adding data never moves anyone between splits.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    position = _unit_interval(identity)
    if position < fractions[0]:
        return "train"
    if position < fractions[0] + fractions[1]:
        return "validation"
    return "test"


def assign_splits(
    sources: Sequence[Source], fractions: Sequence[float] = (0.8, 0.1, 0.1), split_links: dict[str, str] | None = None
) -> dict[str, str]:
    """Split of every identity of ``sources``.

    Identities of train-only sources (no identity labels) go to train; an identity in ``split_links`` takes the
    split of the identity it is linked to (a probable same person kept as a separate identity).
    """
    split_links = split_links or {}
    train_only = {item.identity for source in sources if source.train_only for item in source.items}
    identities = {item.identity for source in sources for item in source.items}
    return {
        identity: "train"
        if identity in train_only
        else split_for_identity(split_links.get(identity, identity), fractions)
        for identity in sorted(identities)
    }


def limit_items(sources: Sequence[Source], max_images: int | None) -> list[Source]:
    """Keep at most about ``max_images`` photos and frames in all, spread evenly over the sources (quick runs).

    Photos are taken a whole person at a time, in an order fixed by a salted hash of the identity (so the subset
    spans all splits); a video source's share is spread over its clips (at least 2 frames each, so every clip
    kept can give a same-person pair).
    """
    if max_images is None:
        return list(sources)
    if max_images < 1:
        raise ConfigError(f"--max_images must be at least 1, got {max_images}")
    per_source = math.ceil(max_images / max(len(sources), 1))
    reduced = []
    for source in sources:
        videos = [item for item in source.items if item.is_video]
        photos = sorted(
            (item for item in source.items if not item.is_video),
            key=lambda item: (_unit_interval(item.identity, salt="subset"), item.rel_path),
        )[:per_source]
        if videos:
            per_clip = max(2, math.ceil(per_source / len(videos)))
            kept = videos[: max(1, per_source // per_clip)]
            videos = [dataclasses.replace(item, max_frames=per_clip) for item in kept]
        items = sorted(photos, key=lambda item: item.rel_path) + videos
        reduced.append(dataclasses.replace(source, items=items))
    return reduced
