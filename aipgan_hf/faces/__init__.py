"""Faces in, faces out, along the data's path; nothing here has weights of its own.

======================  ==========================================================================
module                  what it does
======================  ==========================================================================
``faces.decode``        path / bytes / PIL / array -> (H, W, 3) uint8 RGB, or a typed error; :class:`Photo`
``faces.jpeg``          large JPEGs decoded at 1/2, 1/4 or 1/8 scale; files too short for their size refused
``faces.pixels``        dtype, channel, alpha and 16-bit conversion of arrays; grey detection
``faces.detector``      the detector seam: :class:`LandmarkDetector` (faces -> boxes + landmarks in a named scheme)
``faces.detect``        dlib face detection + 68 landmarks, and the fallbacks for missed faces (the default detector)
``faces.align``         the face template and its mask, the similarity fit, the warp into an aligned crop
``faces.tensors``       uint8 images <-> [-1, 1] tensors (the one conversion training and inference share)
``faces.geometry``      (2, 3) affine helpers
``faces.processor``     :class:`FaceProcessor`, which composes the steps
======================  ==========================================================================
"""

from aipgan_hf.faces.align import (
    CANONICAL_BOX,
    TEMPLATE_5,
    TEMPLATE_WEIGHTS,
    AlignedFace,
    align_face,
    face_mask,
    five_points,
    similarity_transform,
    template_points,
    warp_to_crop,
)
from aipgan_hf.faces.decode import Photo, load_image, load_photo
from aipgan_hf.faces.detect import DEFAULT_DETECTION_SIZE, DlibFaceDetector, dlib_model_path
from aipgan_hf.faces.detector import DetectedFace, LandmarkDetector
from aipgan_hf.faces.geometry import apply_affine, compose_affine, invert_affine
from aipgan_hf.faces.jpeg import DRAFT_MAX_PIXELS
from aipgan_hf.faces.pixels import DEFAULT_MAX_PIXELS, MIN_IMAGE_SIDE, is_grey, to_grey
from aipgan_hf.faces.processor import FaceProcessor
from aipgan_hf.faces.tensors import image_to_tensor, tensor_to_image

__all__ = [
    "CANONICAL_BOX",
    "DEFAULT_DETECTION_SIZE",
    "DEFAULT_MAX_PIXELS",
    "DRAFT_MAX_PIXELS",
    "MIN_IMAGE_SIDE",
    "TEMPLATE_5",
    "TEMPLATE_WEIGHTS",
    "AlignedFace",
    "DetectedFace",
    "DlibFaceDetector",
    "FaceProcessor",
    "LandmarkDetector",
    "Photo",
    "align_face",
    "apply_affine",
    "compose_affine",
    "dlib_model_path",
    "face_mask",
    "five_points",
    "image_to_tensor",
    "invert_affine",
    "is_grey",
    "load_image",
    "load_photo",
    "similarity_transform",
    "template_points",
    "tensor_to_image",
    "to_grey",
    "warp_to_crop",
]
