"""Typed errors. Every failure a user can cause raises a subclass of :class:`AIPGANError`
with a message a person understands; the CLI and the app show ``str(error)`` and nothing else."""


class AIPGANError(Exception):
    """Base class of every error aipgan-hf raises on purpose."""


class InvalidImageError(AIPGANError):
    """The input is not an image that can be decoded."""


class TruncatedImageError(InvalidImageError):
    """The file starts like an image but its data ends early."""


class UnsupportedImageError(InvalidImageError):
    """The image decodes but its mode or layout cannot be turned into RGB."""


class ImageTooLargeError(AIPGANError):
    """The image has more pixels than the configured cap (decompression-bomb guard)."""


class ImageTooSmallError(AIPGANError):
    """The image is too small to hold a face the model can use."""


class NoFaceError(AIPGANError):
    """No face was found in the image."""


class FaceTooSmallError(AIPGANError):
    """A face was found but is smaller than the minimum size."""


class FaceIndexError(AIPGANError):
    """A face index was asked for that the image does not have."""


class CheckpointError(AIPGANError):
    """A checkpoint folder or weights file is missing, truncated or does not fit the model."""


class ConfigError(AIPGANError, ValueError):
    """A configuration value is out of range or inconsistent."""
