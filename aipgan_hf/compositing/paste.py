"""Paste-back: the network's crop into the target photo, at the photo's resolution, and the typed result.

The photo is warped at its own resolution by the crop's flow, then the repainted pixels are pasted through the
repaint mask (:class:`~aipgan_hf.compositing.photo.PhotoWarper`); an opened mouth's inside is read from the photo
it comes from at that photo's resolution (:class:`~aipgan_hf.compositing.photo.PhotoReader`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from ..faces.align import AlignedFace, face_mask
from ..faces.decode import Photo
from ..faces.geometry import compose_affine
from ..faces.pixels import to_grey
from ..faces.tensors import tensor_to_image
from ..landmarks import mouth_interior
from ..modeling import GeneratorOutput
from ..motion import warp
from ..provenance import DEFAULT_EDIT, mark_edited
from .mouth import CAVITY, MouthFill
from .photo import PhotoReader, PhotoWarper

if TYPE_CHECKING:
    from ..motion.emotion import EmotionRead


@dataclass
class TransferResult:
    """Result of one transfer.

    Attributes:
        image: the whole target photo with the new expression (``paste_back=True``), else the aligned crop.
        face: the aligned output crop (R x R).
        intrinsic: the target's intrinsic (expression-free) face as the identity encoder sees it; None unless
            asked for (``return_intrinsic=True``).
        source_landmarks, target_landmarks: (68, 2) float32 landmarks in photo coordinates.
        driving_landmarks: (68, 2) float32 where the target's landmarks were sent, in crop pixels.
        expression_attention: (R/4, R/4) float32 in [0, 1], the expression encoder's attention.
        source_face, target_face: the aligned input crops.
        mask: (R, R) float32 in [0, 1], where the decoder repainted the warped target.
        mouth: where the opened mouth's inside mostly comes from: "own", "source", "network" or "closed"
            (:meth:`~aipgan_hf.compositing.mouth.MouthFill.origin`).
        emotion: the source's emotion as the checkpoint's reader read it, or as named (``source_emotion=``,
            ``told``), where the transfer wears it
            (:func:`~aipgan_hf.motion.emotion.acted_on`); None otherwise (no reading, unsure, neutral, overruled
            by the source's smile, a smile beside a reference). reading: what the reader read, worn or not (None
            where nothing was read: no reader, ``read_emotion=False``, a named emotion, driving landmarks).
        kept_smile: the target photo smiles and keeps its smile under the source's expression (a transfer from a
            source photo without ``replace_target_expression``: :func:`~aipgan_hf.motion.emotion.smiles`).
        target_face_boxes, source_face_boxes: the boxes of the faces found in the target photo and in the source
            photo (none without one), by number, the one used included (:attr:`AlignedFace.face_boxes
            <aipgan_hf.faces.AlignedFace.face_boxes>`; :func:`~aipgan_hf.pipeline_steps.faces_note` says which is
            which to a user); ``target_faces`` and ``source_faces`` count them.
    """

    image: Image.Image
    face: Image.Image
    intrinsic: Image.Image | None
    source_landmarks: np.ndarray = field(repr=False)  # arrays: a repr of a few lines, not ninety
    target_landmarks: np.ndarray = field(repr=False)
    expression_attention: np.ndarray = field(repr=False)
    source_face: Image.Image
    target_face: Image.Image
    mask: np.ndarray = field(repr=False, default=None)
    driving_landmarks: np.ndarray = field(repr=False, default=None)
    mouth: str = "closed"
    emotion: EmotionRead | None = None
    reading: EmotionRead | None = None
    target_face_boxes: tuple[tuple[float, float, float, float], ...] = ()
    source_face_boxes: tuple[tuple[float, float, float, float], ...] = ()
    kept_smile: bool = False

    @property
    def target_faces(self) -> int:
        """Faces found in the target photo, the one used included."""
        return max(1, len(self.target_face_boxes))

    @property
    def source_faces(self) -> int:
        """Faces found in the source photo (0 without one)."""
        return len(self.source_face_boxes)


@dataclass
class DrivenBatch:
    """A batch of target crops driven to new landmarks: the network's output and what compositing adds.

    Attributes:
        network: the generator's output, as it returned it (its ``image`` is the decoder's alone).
        image: (B, 3, R, R) in [-1, 1]: ``network.image`` with the opened mouth's inside filled (``mouth``) and the
            expression lines drawn.
        driving_landmarks: (B, 68, 2) crop pixels where the target's landmarks were sent.
        flow: (B, R, R, 2) the landmark flow that moved the target (grid_sample units).
        mouth: where each opened mouth's inside comes from.
        filled: ``image`` before the expression lines (what paste-back pastes: it draws the lines at the photo's
            resolution). shade: (B, 3, R, R) the lines' factor for the skin, or None where there are none.
        still: (B,) bool, driven nowhere (the driving landmarks are the target's): those give back the target.
    """

    network: GeneratorOutput
    image: torch.Tensor
    driving_landmarks: torch.Tensor
    flow: torch.Tensor
    mouth: MouthFill
    filled: torch.Tensor | None = None
    shade: torch.Tensor | None = None
    still: torch.Tensor | None = None


def as_photo(photo: Photo) -> Callable[[np.ndarray], np.ndarray]:
    """A picture as the photo is: grey for a grey photo (the network paints in colour), else unchanged."""
    return to_grey if photo.grey else (lambda picture: picture)


def transfer_result(
    output: DrivenBatch,
    index: int,
    source_face: AlignedFace,
    target_face: AlignedFace,
    target_photo: Photo,
    paste_back: bool,
    warper: PhotoWarper | None = None,
    photo_texture: bool = True,
    source_photo: Photo | None = None,
    source_pixels: tuple[np.ndarray, np.ndarray] | None = None,
    edit: str = DEFAULT_EDIT,
) -> TransferResult:
    """The :class:`TransferResult` of output ``index`` of a batch. ``source_photo`` (with ``source_face``) or
    ``source_pixels`` (pixels, their (2, 3) map to the source crop): where paste-back reads the source's mouth
    inside. ``edit``: what the images' stamp says was done."""
    resolution = output.image.shape[-1]
    if paste_back and warper is None:
        warper = PhotoWarper(target_photo.full_resolution(), target_face.matrix, resolution)
    reader = None
    if paste_back and source_photo is not None:  # its decode, maybe reduced, is fine enough for a mouth
        source_pixels = source_photo.pixels, compose_affine(source_face.matrix, source_photo.pixels_to_photo)
    if paste_back and source_pixels is not None:
        reader = source_reader(output, index, *source_pixels, target_photo, target_face)
    warper = warper if paste_back else None
    image, face, mask = compose(output, index, target_face, target_photo, warper, photo_texture, reader)
    network, intrinsic = output.network, None
    if network.intrinsic_image is not None:
        picture = tensor_to_image(network.intrinsic_image[index].float().cpu())
        intrinsic = Image.fromarray(as_photo(target_photo)(picture))
    return TransferResult(
        image=in_profile(mark_edited(Image.fromarray(image), edit), target_photo.icc_profile),  # through save()
        face=in_profile(mark_edited(Image.fromarray(face), edit), target_photo.icc_profile),
        intrinsic=intrinsic,
        source_landmarks=source_face.landmarks.astype(np.float32),
        target_landmarks=target_face.landmarks.astype(np.float32),
        expression_attention=network.expression_attention[index, 0].float().cpu().numpy(),
        source_face=Image.fromarray(source_face.crop),
        target_face=Image.fromarray(target_face.crop),
        mask=mask,
        driving_landmarks=output.driving_landmarks[index].float().cpu().numpy(),
        mouth=output.mouth.origin(index),
        target_face_boxes=target_face.face_boxes,
    )


def in_profile(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """``image`` (in place) saved with the colour profile of the photo its pixels come from: without it a phone's
    Display P3 photo would come back in duller colours. Pillow writes a save option kept in ``encoderinfo``
    (as :func:`~aipgan_hf.provenance.mark_edited` relies on), over an ``icc_profile=`` given to ``save``; ``info``
    keeps it for copies, and for PNG on older releases."""
    if icc_profile:
        image.info["icc_profile"] = icc_profile
        image.encoderinfo = {**(getattr(image, "encoderinfo", None) or {}), "icc_profile": icc_profile}
    return image


def source_reader(
    output: DrivenBatch,
    index: int,
    pixels: np.ndarray,
    pixels_to_crop: np.ndarray,
    target_photo: Photo,
    target_face: AlignedFace,
) -> PhotoReader | None:
    """The source photo's mouth inside at its own resolution, for output ``index``; None where none is used."""
    fill = output.mouth
    if fill.source_read is None or not bool((fill.source[index] > 0).any()):
        return None
    gain = 1.0 if fill.source_gain is None else fill.source_gain[index].float().cpu().numpy()  # (3,)
    target_scale = 1.0 / math.sqrt(abs(np.linalg.det(target_face.matrix[:, :2])))  # target photo px per crop px
    read = fill.source_read[index : index + 1].float().cpu()  # (1, R, R, 2)
    support = fill.source[index, 0].float().cpu().numpy()  # (R, R)
    cavity = None if fill.cavity is None else fill.cavity[index, 0].float().cpu().numpy()  # (R, R)
    return PhotoReader(
        pixels,
        pixels_to_crop,
        output.image.shape[-1],
        read,
        grey=target_photo.grey,
        gain=gain,
        support=support,
        output_scale=target_scale,
        cavity=cavity,
        colour=tuple(255.0 * c for c in CAVITY),
    )


def compose(
    output: DrivenBatch,
    index: int,
    target_face: AlignedFace,
    target_photo: Photo,
    warper: PhotoWarper | None,
    photo_texture: bool = True,
    source_reader: PhotoReader | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo or face, face, repaint mask) of one output of a batch; without a warper, no paste-back.
    ``source_reader``: the source photo, for the mouth's inside at its resolution (else the crop's is pasted)."""
    # a grey photo comes back grey: the network's colour is dropped, only its luma is kept
    as_output = as_photo(target_photo)
    face = as_output(tensor_to_image(output.image[index].float().cpu()))
    mask = output.network.mask[index, 0].float().cpu().numpy()  # (R, R): where the generator repainted the warp
    if output.still is not None and bool(output.still[index]):
        return (face if warper is None else warper.photo.copy()), face, np.zeros_like(mask)
    if warper is None:
        return face, face, mask
    resolution = output.image.shape[-1]
    # The photo is warped at its own resolution by the same flow, then the repainted pixels are pasted
    # through the mask: texture the network did not repaint keeps the photo's sharpness, not the crop's.
    alpha = face_mask(resolution) * mask  # the paste-back ellipse, times the repaint mask
    fill, over = output.mouth, None
    filled = output.image if output.filled is None else output.filled
    pasted = as_output(tensor_to_image(filled[index].float().cpu()))
    if source_reader is not None or not bool((fill.source[index] > 0).any()):
        # the mouth's inside at the photos' resolution: the target's own from the warped photo itself, the
        # source's from its reader; under both, the decoder's paint as it was before the crop's fill
        pasted = as_output(tensor_to_image(output.network.image[index].float().cpu()))
        alpha = alpha * (1.0 - fill.own[index, 0].float().cpu().numpy())
        over = None if source_reader is None else (fill.source[index, 0].float().cpu().numpy(), source_reader)
    shade = None if output.shade is None else output.shade[index].float().cpu()  # (3, R, R)
    if shade is not None and target_photo.grey:
        shade = shade[1:2].expand(3, -1, -1)  # the luma ratio alone: a grey photo stays grey
    shade = None if shade is None else shade.permute(1, 2, 0).numpy()
    flow = output.flow[index : index + 1].float().cpu()
    if not photo_texture:
        return warper.composite(flow[0], pasted, alpha, fill=over, shade=shade), face, mask
    # the photo's own fine texture under the paint, except inside the driving mouth and wherever the warp
    # carries the target's own mouth interior (a closing mouth squeezes its teeth under the painted lips)
    own = warp(mouth_interior(torch.as_tensor(target_face.crop_landmarks, dtype=torch.float32)[None], resolution), flow)
    interior = torch.maximum(fill.interior[index : index + 1].float().cpu(), own)
    return warper.composite(flow[0], pasted, alpha, 1.0 - interior[0, 0].numpy(), fill=over, shade=shade), face, mask
