"""The pipeline's steps around the networks: photos decoded and their faces found (errors naming the photo), a
preset's landmarks, and the faces whose mouths may lend an opened mouth its inside.

:class:`~aipgan_hf.pipeline.AIPGANPipeline` calls these; they hold no state of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .compositing import LENDING, DrivingFaces, MouthExemplar
from .driving import landmark_tensor
from .errors import AIPGANError, ConfigError
from .faces import AlignedFace, FaceProcessor, Photo, image_to_tensor
from .landmarks import NUM_LANDMARKS
from .motion import ShapeModel
from .motion.emotion import EmotionRead, EmotionReader, acted_on, worn_change
from .motion.lines import ESTIMATED, EXACT, EachFace, LineStrength

SOURCE_ROLE = "the expression source photo"
TARGET_ROLE = "the identity target photo"
REFERENCE_ROLE = "the source person's neutral photo"
logger = logging.getLogger(__name__)
MouthPixels = tuple[np.ndarray, np.ndarray] | None
"""Pixels an opened mouth's inside is read from at paste-back and their (2, 3) map to that face's crop."""


def _naming(role: str, step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``step(*args, **kwargs)``; a project error keeps its type and gets the photo's role in front of its message."""
    try:
        return step(*args, **kwargs)
    except AIPGANError as error:
        raise type(error)(f"{role}: {error}") from None


def check_one_way(
    expression: str | None,
    source: Any,
    driving_landmarks: np.ndarray | None,
    identity_mix: float,
    replace_target_expression: bool,
    source_reference: Any,
) -> None:
    """ConfigError unless the expression is given one way, and the source photo's controls come with one."""
    if expression is not None and (source is not None or driving_landmarks is not None):
        raise ConfigError("give the expression one way: source=, expression= or driving_landmarks=")
    if source is None and (identity_mix or replace_target_expression or source_reference is not None):
        raise ConfigError("identity_mix, replace_target_expression and source_reference need a source photo")


def check_told(source_emotion: str | None, source: Any, driving_landmarks: Any) -> None:
    """ConfigError unless a named ``source_emotion`` comes with a source photo that drives the target."""
    if source_emotion is not None and (source is None or driving_landmarks is not None):
        raise ConfigError("source_emotion names a source photo's emotion: give source= (and no driving_landmarks=)")


def read_photo(processor: FaceProcessor, image: Any, role: str) -> Photo:
    """Decode one input (a large JPEG at reduced scale); a failure keeps its error type and names the photo."""
    return _naming(role, processor.load_photo, image)


def find_face(processor: FaceProcessor, photo: Photo, role: str, face_index: int | None) -> AlignedFace:
    """Detect and align one face of a decoded photo; a failure keeps its error type and names the photo."""
    face = _naming(role, processor.align, photo, face_index=face_index)
    if face.faces_found > 1:
        logger.info("%s: %d faces found, number %d used (0 is the largest)", role, face.faces_found, face_index or 0)
    return face


KEPT_SMILE_NOTE = "The target photo already smiles, and keeps its smile under the source's expression"
"""For a user, where ``result.kept_smile``: the one-photo transfer adds the source's change to the target's own face."""


def faces_note(boxes: tuple[tuple[float, ...], ...], face_index: int | None, photo: str) -> str | None:
    """For a user, where the ``photo`` ("target", "source") had several faces (their ``boxes``, by number): which one
    was used (``face_index``; 0 or None: the largest) and which number each face is, from left to right; None where
    it had one."""
    if len(boxes) <= 1:
        return None
    used = "the largest" if not face_index else f"number {face_index} (0 is the largest)"
    order = sorted(range(len(boxes)), key=lambda number: boxes[number][0] + boxes[number][2])  # by the box's centre
    numbers = ", ".join(str(number) for number in order)
    return f"{len(boxes)} faces were found in the {photo} photo; {used} was used (from left to right: {numbers})"


def photo_and_face(
    processor: FaceProcessor, image: Any, role: str, face_index: int | None
) -> tuple[Photo, AlignedFace]:
    """Decode and align one input; a failure keeps its error type and names the photo it concerns."""
    photo = read_photo(processor, image, role)
    return photo, find_face(processor, photo, role, face_index)


@dataclass
class SourceFaces:
    """A transfer's photos decoded and their faces found: the target, the source and the source's neutral
    reference (its crop landmarks, or None without a reference photo)."""

    target_photo: Photo
    target_face: AlignedFace
    source_photo: Photo
    source_face: AlignedFace
    reference: np.ndarray | None

    def read_emotion(self, reader: EmotionReader | None) -> EmotionRead | None:
        """The source's emotion as ``reader`` reads its crop; None without a reader."""
        if reader is None:
            return None
        return reader.read(image_to_tensor(self.source_face.crop)[None])[0]

    def motion(
        self,
        driving_landmarks: np.ndarray | None,
        shape_model: ShapeModel,
        strength: float,
        offset: np.ndarray | None,
        replace_target_expression: bool,
        read: EmotionRead | None = None,
    ) -> tuple[np.ndarray, LineStrength | EachFace]:
        """Motion: where the target's landmarks go, (68, 2) crop pixels (``driving_landmarks`` when given, else
        retargeted from the source's face by :func:`source_motion`, wearing the emotion ``read`` in the source's
        face, :meth:`read_emotion`), and the strength of their lines."""
        if driving_landmarks is not None:
            return driving_landmarks, EXACT
        return source_motion(
            shape_model,
            self.target_face.crop_landmarks,
            self.source_face.crop_landmarks,
            reference_landmarks=self.reference,
            read=read,
            strength=strength,
            offset=offset,
            replace_target_expression=replace_target_expression,
        )


def source_motion(
    shape_model: ShapeModel,
    target_landmarks: np.ndarray,
    source_landmarks: np.ndarray,
    reference_landmarks: np.ndarray | None = None,
    read: EmotionRead | list[EmotionRead | None] | None = None,
    replace_target_expression: bool = False,
    **options: Any,
) -> tuple[np.ndarray, LineStrength | EachFace]:
    """A transfer's driving landmarks (:meth:`ShapeModel.drive`: ``options`` are its strength and offset) and the
    strength of their lines: a motion estimated from the source photo alone (no neutral reference) draws them at
    :data:`~aipgan_hf.motion.lines.ESTIMATED` (floored, halved), a source's change from its neutral photo in full.
    ``read``: the source's emotion as its reader saw it (one per face of a batch); a reading acted on
    (:func:`~aipgan_hf.motion.emotion.acted_on`: not a sadness the points' smile overrules, nor a smile beside a
    reference) is the source's expression (:func:`~aipgan_hf.motion.emotion.worn_change`), and a read preset draws
    its lines in full (a read smile's stay an estimate's). The pipeline, the evaluation and the benchmarks all call
    this, so that they drive and draw alike."""
    options["replace_target_expression"] = replace_target_expression
    exact = reference_landmarks is not None
    if read is None:
        driving = shape_model.drive(target_landmarks, source_landmarks, reference_landmarks, **options)
        return driving, EXACT if exact else ESTIMATED
    if exact:
        expression = shape_model.change(source_landmarks, reference_landmarks)  # (k,) or (N, k)
    else:
        expression = shape_model.estimate(source_landmarks)
    rows = np.atleast_2d(expression).copy()
    reads = [read] * len(rows) if isinstance(read, EmotionRead) else list(read)  # one reading: every face's
    strengths = [EXACT if exact else ESTIMATED] * len(reads)
    targets, sources = (
        np.broadcast_to(points, (len(rows), NUM_LANDMARKS, 2)) for points in (target_landmarks, source_landmarks)
    )
    for row, one in enumerate(reads):
        if acted_on(one, shape_model, sources[row], beside_reference=exact):
            rows[row] = worn_change(shape_model, one, sources[row], targets[row], replace_target_expression)
            strengths[row] = ESTIMATED if one.label == "happiness" else EXACT
    driving = shape_model.drive(
        target_landmarks,
        source_landmarks,
        reference_landmarks,
        source_expression=rows.reshape(expression.shape),
        **options,
    )
    if all(each == strengths[0] for each in strengths):
        return driving, strengths[0]
    return driving, EachFace(tuple(strengths))


def find_faces(
    processor: FaceProcessor,
    target: Any,
    source: Any,
    source_reference: Any,
    source_face_index: int | None,
    target_face_index: int | None,
) -> SourceFaces:
    """Faces in: decoded here (PIL's lazy loading is not thread-safe: the same image object may be given twice),
    then searched for faces at once: dlib releases the GIL. The target's error comes first."""
    target_photo, source_photo = read_photo(processor, target, TARGET_ROLE), read_photo(processor, source, SOURCE_ROLE)
    reference_photo = None if source_reference is None else read_photo(processor, source_reference, REFERENCE_ROLE)
    with ThreadPoolExecutor(max_workers=2) as helper:
        source_search = helper.submit(find_face, processor, source_photo, SOURCE_ROLE, source_face_index)
        reference_search = None
        if reference_photo is not None:
            reference_search = helper.submit(find_face, processor, reference_photo, REFERENCE_ROLE, None)
        target_face = find_face(processor, target_photo, TARGET_ROLE, target_face_index)  # its error comes first
        source_face = source_search.result()
        reference = None if reference_search is None else reference_search.result().crop_landmarks
    return SourceFaces(target_photo, target_face, source_photo, source_face, reference)


def preset_landmarks(
    shape_model: ShapeModel,
    expression: str | None,
    strength: float,
    offset: np.ndarray | None,
    target_landmarks: np.ndarray,
) -> np.ndarray:
    """Motion without a source photo: where the target's landmarks go, (68, 2) crop pixels, for a preset (or none)
    and the sliders' ``offset``."""
    change = expression_change(shape_model, expression, strength, offset, target_landmarks)
    return shape_model.apply(target_landmarks, change)


def expression_change(
    shape_model: ShapeModel,
    expression: str | None,
    strength: float,
    offset: np.ndarray | None,
    target_landmarks: np.ndarray,
) -> np.ndarray:
    """The shape model's coefficient change to a preset from the target's own expression (times ``strength``:
    0 leaves the target as it is) plus the sliders' ``offset``. A preset is a face's whole expression: added
    to a smiling photo, sadness would smile. The target's own is the raw estimate, camera and all: presets taken
    from it are named more often than from :meth:`~ShapeModel.estimate`, which keeps the size of a face seen from
    above or below (docs/design.md, "A face that balloons")."""
    if expression is None:
        if offset is None:
            raise ConfigError("give source=, expression=, driving_landmarks= or expression_offsets=")
        return offset
    change = shape_model.preset(expression) - shape_model.expression(target_landmarks)
    return strength * change + (0.0 if offset is None else offset)


def mouth_sources(
    exemplar: MouthExemplar | None, mouth: str, sources: DrivingFaces | None, count: int
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, list[MouthPixels]]:
    """For :meth:`~aipgan_hf.pipeline.AIPGANPipeline.render`: the crops (N, 3, R, R), landmarks (N, 68, 2) and
    found flags (N,) whose mouths may lend their inside, and per frame the pixels paste-back reads it from (None:
    none). "source": ``sources``, else the exemplar; "exemplar": the exemplar."""
    if mouth not in LENDING:
        return None, None, None, [None] * count
    if sources is not None and mouth == "source":
        pixels = [
            (frame, matrix) if found else None
            for frame, matrix, found in zip(sources.frames, sources.matrices, sources.found)
        ]
        landmarks = landmark_tensor(np.nan_to_num(sources.landmarks), count)  # a frame without a face is not read
        return sources.crops, landmarks, torch.as_tensor(sources.found), pixels
    if exemplar is None:
        return None, None, None, [None] * count
    crop, landmarks = exemplar.tensors()
    pixels = [exemplar.enlarged] * count  # paste-back reads it enlarged and sharpened
    return crop.expand(count, -1, -1, -1), landmarks.expand(count, -1, -1), None, pixels
