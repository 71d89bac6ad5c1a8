"""aipgan-hf: AIP-GAN facial expression transfer, packaged for the Hugging Face ecosystem."""

import importlib

from .configuration import AIPGANConfig
from .errors import (
    AIPGANError,
    CheckpointError,
    ConfigError,
    FaceIndexError,
    FaceTooSmallError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    NoFaceError,
    TruncatedImageError,
    UnsupportedImageError,
)

__version__ = "0.26.0"

_LAZY = {
    "AIPGANGenerator": "modeling",
    "AIPGANDiscriminator": "modeling",
    "GeneratorOutput": "modeling",
    "AIPGANPipeline": "pipeline",
    "TransferResult": "pipeline",
    "FaceProcessor": "faces",
}


def __getattr__(name: str):
    # Networks pull in diffusers, the pipeline and face processing dlib: import them on first use, so that
    # `import aipgan_hf` stays fast.
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})  # the lazy names too, for dir() and tab completion


__all__ = [
    "AIPGANConfig",
    "AIPGANGenerator",
    "AIPGANDiscriminator",
    "GeneratorOutput",
    "AIPGANPipeline",
    "TransferResult",
    "FaceProcessor",
    "AIPGANError",
    "CheckpointError",
    "ConfigError",
    "FaceIndexError",
    "FaceTooSmallError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "InvalidImageError",
    "NoFaceError",
    "TruncatedImageError",
    "UnsupportedImageError",
]
