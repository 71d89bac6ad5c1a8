"""The measures of an expression transfer, kept importable from here.

The code lives in :mod:`aipgan_hf.evaluation`, one module per topic: ``landmark_fidelity`` (alignment, motion
fidelity, NME, MAR / EAR), ``identity``, ``image_quality`` (SSIM, PSNR, Frechet distance), ``networks`` (the
expression classifiers, the FID Inception network) and ``statistics`` (bootstrap intervals).
"""

from aipgan_hf.evaluation.identity import SAME_PERSON_THRESHOLD, descriptor_distance
from aipgan_hf.evaluation.image_quality import PSNR_CAP_DB, frechet_distance, psnr, ssim
from aipgan_hf.evaluation.landmark_fidelity import (
    ANCHOR_POINTS,
    MIN_RELATIVE_DISPLACEMENT,
    align_landmarks,
    apply_matrix,
    displacement_fidelity,
    eye_aspect_ratio,
    interocular_distance,
    motion_fidelity,
    mouth_aspect_ratio,
    normalized_landmark_error,
    region_fidelities,
    similarity_matrix,
)
from aipgan_hf.evaluation.networks import CLASSIFIERS, FID_WEIGHTS_SHA1, ExpressionClassifier, InceptionFeatures
from aipgan_hf.evaluation.statistics import Estimate, bootstrap_mean, percentile_interval

__all__ = [
    "SAME_PERSON_THRESHOLD", "descriptor_distance", "PSNR_CAP_DB", "frechet_distance", "psnr", "ssim",
    "ANCHOR_POINTS", "MIN_RELATIVE_DISPLACEMENT", "align_landmarks", "apply_matrix", "displacement_fidelity",
    "eye_aspect_ratio", "interocular_distance", "motion_fidelity", "mouth_aspect_ratio", "normalized_landmark_error",
    "region_fidelities", "similarity_matrix", "CLASSIFIERS", "FID_WEIGHTS_SHA1", "ExpressionClassifier",
    "InceptionFeatures", "Estimate", "bootstrap_mean", "percentile_interval",
]
