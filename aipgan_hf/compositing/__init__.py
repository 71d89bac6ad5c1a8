"""Compositing: after the networks, the new face goes back into the photo; postprocessing in one place.

========================  ==========================================================================
module                    what it does
========================  ==========================================================================
``compositing.mouth``     where an opened mouth's inside comes from (the target's photo, the source's, an
                          exemplar's, or the network's paint), decided in crop space
``compositing.exemplar``  the public-domain face whose open mouth lends its inside (:class:`MouthExemplar`)
``compositing.photo``     the photo warped by the crop's flow and the face pasted in at the photo's
                          resolution (:class:`PhotoWarper`); another photo read at its own (:class:`PhotoReader`)
``compositing.paste``     one output of a batch composed into its photo, and the typed :class:`TransferResult`
========================  ==========================================================================

The data flows faces in (:mod:`aipgan_hf.faces`) -> motion (:mod:`aipgan_hf.motion`) -> networks
(:mod:`aipgan_hf.modeling`) -> compositing; nothing here is imported by those.
"""

from .exemplar import MOUTH_EXEMPLAR_NAME, MouthExemplar
from .mouth import (
    DEFAULT_MOUTH,
    LENDING,
    MOUTH_SOURCES,
    DrivingFaces,
    MouthFill,
    check_mouth,
    lighting_gain,
    mouth_shares,
    plan_mouth,
)
from .paste import DrivenBatch, TransferResult, compose, source_reader, transfer_result
from .photo import PhotoReader, PhotoWarper

__all__ = [
    "DEFAULT_MOUTH",
    "LENDING",
    "MOUTH_EXEMPLAR_NAME",
    "MOUTH_SOURCES",
    "DrivenBatch",
    "DrivingFaces",
    "MouthExemplar",
    "MouthFill",
    "PhotoReader",
    "PhotoWarper",
    "TransferResult",
    "check_mouth",
    "compose",
    "lighting_gain",
    "mouth_shares",
    "plan_mouth",
    "source_reader",
    "transfer_result",
]
