"""Evaluation pairs from a split's label columns (identity, expression, clip, frame, source; no image decoded).

* **same person** (reconstruction): target = one image of person P, source = another image of P (a different
  expression label or a distant video frame where possible); ground truth = the source itself, and the source's
  own change is measured from the target (reference = target).
* **cross person** (transfer): target = an image T of person P, source = an expressive image S of another person
  Q **whose neutral reference S0 is known** (:func:`choose_references`). The wanted change is Q's own, S - S0.
  Where P has a photo with S's expression label (other than T's label), it is kept as ``truth``: the old,
  secondary reference "the target person's own expression photo".

The split itself (train / validation / test by identity) is the dataset's: report on test, select on validation.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .measures import neutrality_scores

logger = logging.getLogger(__name__)

SAME_PERSON = "same person"
CROSS_PERSON = "cross person"
PAIR_KINDS = (SAME_PERSON, CROSS_PERSON)
NEUTRAL = "neutral"
MIN_FRAME_GAP = 15
"""Two frames of one clip closer than this are too alike to make an informative pair (or source / reference)."""
TRUTH_PREFERENCE = 0.75
"""Chance that a cross-person source is drawn among those whose label the target person also shows (so that the
secondary "own expression photo" columns have pairs), instead of uniformly."""


@dataclass(frozen=True)
class EvaluationPair:
    """Row indices (into the split) of one evaluation pair.

    Attributes:
        kind: :data:`SAME_PERSON` or :data:`CROSS_PERSON`.
        target: identity image T.
        source: expression image S.
        reference: S0, the source person's neutral reference (the target itself for same-person pairs).
        truth: the target person wearing the source's expression (the source for same-person pairs; the target
            person's own photo with the source's label for cross-person pairs, None when there is none).
    """

    kind: str
    target: int
    source: int
    reference: int
    truth: int | None = None


@dataclass(frozen=True)
class SplitColumns:
    """The label columns of a split, one entry per row (expression ``""`` = unknown, clip ``""`` = a photo)."""

    identities: Sequence[str]
    expressions: Sequence[str]
    clips: Sequence[str]
    frames: Sequence[int]
    sources: Sequence[str] | None = None  # lfw, london, grimace, video/<folder>, ...
    landmarks: np.ndarray | None = None  # (N, 68, 2) stored landmarks; without them references are "first"

    def __len__(self) -> int:
        return len(self.identities)

    def family(self, row: int) -> str:
        """The row's kind of data: the ``source`` column up to its first slash (``video/pc-avs`` -> ``video``)."""
        return self.sources[row].split("/")[0] if self.sources is not None else ""

    def far_apart(self, first: int, second: int) -> bool:
        """False for two frames of one clip closer than :data:`MIN_FRAME_GAP`."""
        same_clip = self.clips[first] and self.clips[first] == self.clips[second]
        return not same_clip or abs(int(self.frames[first]) - int(self.frames[second])) >= MIN_FRAME_GAP


# --------------------------------------------------------------------------------------------------
# Neutral references


def _most_neutral(columns: SplitColumns, candidates: list[int]) -> int:
    """The most neutral of a person's candidate rows (:func:`neutrality_scores`); the first one without landmarks."""
    if columns.landmarks is None or len(candidates) == 1:
        return candidates[0]
    shapes = columns.landmarks[candidates]  # (C, 68, 2)
    return candidates[int(np.argmin(neutrality_scores(shapes)))]


def choose_references(columns: SplitColumns) -> dict[int, int]:
    """The neutral reference S0 of every row that can be an expressive cross-person source.

    Rules (one reference per group, so every source of a group shares it):

    * a video clip: its most neutral frame; sources are the clip's frames at least :data:`MIN_FRAME_GAP` away;
    * a person's photos with a ``neutral`` label (London neutral, LFW): the most neutral neutral-labelled photo;
      sources are the person's photos with another label (London smiling, LFW happiness, ...);
    * a person's photos without any label (grimace): the most neutral photo; sources are the others;
    * labelled photos without a neutral one: no reference, so no source.

    "Most neutral" is the lowest :func:`aipgan_hf.evaluation.measures.neutrality_scores` (mouth opening plus
    distance to the group's median shape) on the stored landmarks, or the first row without landmarks.

    Returns:
        source row -> reference row.
    """
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in range(len(columns)):
        clip = columns.clips[row]
        groups[("clip", clip) if clip else ("photos", columns.identities[row])].append(row)
    references: dict[int, int] = {}
    for (kind, _), rows in sorted(groups.items()):
        labels = [columns.expressions[row] for row in rows]
        if kind == "clip" or not any(labels):
            reference = _most_neutral(columns, rows)
            sources = [row for row in rows if row != reference and columns.far_apart(row, reference)]
        elif NEUTRAL in labels:
            reference = _most_neutral(columns, [row for row in rows if columns.expressions[row] == NEUTRAL])
            sources = [row for row in rows if columns.expressions[row] not in ("", NEUTRAL)]
        else:
            continue
        references.update({row: reference for row in sources})
    return references


# --------------------------------------------------------------------------------------------------
# Pairs


def _same_person_pairs(
    columns: SplitColumns, rows: list[int], count: int, rng: np.random.Generator
) -> list[EvaluationPair]:
    """Up to ``count`` reconstruction pairs of one person, preferring two different known labels."""
    expressions = columns.expressions
    chosen: set[tuple[int, int]] = set()
    pairs = []
    for _ in range(count):
        picked = None
        for _attempt in range(20):  # prefer a different known label, then any informative pair
            target, source = (int(r) for r in rng.choice(rows, 2, replace=False))
            if (target, source) in chosen or not columns.far_apart(target, source):
                continue
            if expressions[target] and expressions[source] and expressions[target] != expressions[source]:
                picked = (target, source)
                break
            picked = picked or (target, source)
        if picked is not None:
            chosen.add(picked)
            pairs.append(EvaluationPair(SAME_PERSON, picked[0], picked[1], reference=picked[0], truth=picked[1]))
    return pairs


class _SourcePool:
    """Expressive rows with a reference, grouped for sampling: family -> identity -> rows, and label -> rows."""

    def __init__(self, columns: SplitColumns, references: dict[int, int]):
        self.columns = columns
        self.references = references
        self.by_family: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        self.by_label: dict[str, list[int]] = defaultdict(list)
        for row in sorted(references):
            self.by_family[columns.family(row)][columns.identities[row]].append(row)
            if columns.expressions[row]:
                self.by_label[columns.expressions[row]].append(row)

    def draw(self, identity: str, labels: set[str], rng: np.random.Generator) -> int | None:
        """A source row of another person: among ``labels`` with chance :data:`TRUTH_PREFERENCE`, else a family,
        a person of it and a row of that person, each uniformly (so ten thousand video frames count as few people)."""
        labelled = [
            row
            for label in sorted(labels)
            for row in self.by_label.get(label, [])
            if self.columns.identities[row] != identity
        ]
        if labelled and rng.random() < TRUTH_PREFERENCE:
            return int(labelled[rng.integers(len(labelled))])
        families = [f for f in sorted(self.by_family) if set(self.by_family[f]) - {identity}]
        if not families:
            return None
        people = self.by_family[families[rng.integers(len(families))]]
        others = sorted(set(people) - {identity})
        rows = people[others[rng.integers(len(others))]]
        return int(rows[rng.integers(len(rows))])


def _truth_row(columns: SplitColumns, rows: list[int], target: int, source: int) -> int | None:
    """A photo of the target's person with the source's label (not T's label), or None."""
    label = columns.expressions[source]
    if not label or label == columns.expressions[target]:
        return None
    matches = [row for row in rows if row != target and columns.expressions[row] == label]
    return matches[0] if matches else None


def _cross_person_pairs(
    columns: SplitColumns, rows: list[int], pool: _SourcePool, count: int, rng: np.random.Generator
) -> list[EvaluationPair]:
    """Up to ``count`` transfer pairs onto one person, each with a source of another person and its reference."""
    identity = columns.identities[rows[0]]
    pairs: list[EvaluationPair] = []
    for _ in range(count):
        target = int(rows[rng.integers(len(rows))])
        labels = {columns.expressions[r] for r in rows if columns.expressions[r]} - {columns.expressions[target]}
        source = pool.draw(identity, labels, rng)
        if source is None:
            break
        pair = EvaluationPair(
            CROSS_PERSON, target, source, pool.references[source], _truth_row(columns, rows, target, source)
        )
        if pair not in pairs:
            pairs.append(pair)
    return pairs


def _round_robin(pairs: list[EvaluationPair], sources: Sequence[str]) -> list[EvaluationPair]:
    """Reorder pairs so that the target's source cycles (a, b, c, a, b, c, ...), keeping the order within each."""
    groups: dict[str, list[EvaluationPair]] = defaultdict(list)
    for pair in pairs:
        groups[sources[pair.target]].append(pair)
    ordered = []
    for position in range(max((len(g) for g in groups.values()), default=0)):
        ordered += [groups[name][position] for name in sorted(groups) if position < len(groups[name])]
    return ordered


def build_pairs(
    columns: SplitColumns, max_pairs: int = 200, pairs_per_identity: int = 4, seed: int = 0
) -> list[EvaluationPair]:
    """Same-person and cross-person pairs of a split (see the module docstring).

    Args:
        columns: the split's label columns (and stored landmarks, to choose the most neutral references).
        max_pairs: at most this many pairs, half of each kind where both are available.
        pairs_per_identity: at most this many pairs of each kind with a given target person, so that people
            with hundreds of video frames do not crowd out everybody else.
        seed: seed of the random choices; the same columns and seed give the same pairs.

    Returns:
        Pairs, same-person ones first. With ``columns.sources``, each kind is ordered round-robin over the
        target's source, so a small clean set (London) is not crowded out by LFW.
    """
    if max_pairs < 1:
        raise ConfigError(f"max_pairs must be at least 1, got {max_pairs}")
    rng = np.random.default_rng(seed)
    rows_by_identity: dict[str, list[int]] = defaultdict(list)
    for row, identity in enumerate(columns.identities):
        rows_by_identity[identity].append(row)
    pool = _SourcePool(columns, choose_references(columns))
    same, cross = [], []
    for identity in sorted(rows_by_identity):
        rows = rows_by_identity[identity]
        if len(rows) >= 2:
            same += _same_person_pairs(columns, rows, pairs_per_identity, rng)
        cross += _cross_person_pairs(columns, rows, pool, pairs_per_identity, rng)
    rng.shuffle(same)
    rng.shuffle(cross)
    if columns.sources is not None:
        same, cross = _round_robin(same, columns.sources), _round_robin(cross, columns.sources)
    n_cross = min(len(cross), max_pairs // 2)
    n_same = min(len(same), max_pairs - n_cross)
    n_cross = min(len(cross), max_pairs - n_same)
    logger.info(
        "pairs: %d same-person of %d possible, %d cross-person of %d possible (%d sources with a reference)",
        n_same,
        len(same),
        n_cross,
        len(cross),
        len(pool.references),
    )
    return same[:n_same] + cross[:n_cross]
