"""aipgan-hf: AIP-GAN facial expression transfer, packaged for the Hugging Face ecosystem."""

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
from .modeling import AIPGANDiscriminator, AIPGANGenerator, GeneratorOutput

__version__ = "0.1.0"

_LAZY = {"AIPGANPipeline": "pipeline", "TransferResult": "pipeline", "FaceProcessor": "processing"}


def __getattr__(name: str):
    # The pipeline and face processing pull in dlib; import them on first use so `import aipgan_hf` stays light.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AIPGANConfig", "AIPGANGenerator", "AIPGANDiscriminator", "GeneratorOutput", "AIPGANPipeline", "TransferResult",
    "FaceProcessor", "AIPGANError", "CheckpointError", "ConfigError", "FaceIndexError", "FaceTooSmallError",
    "ImageTooLargeError", "ImageTooSmallError", "InvalidImageError", "NoFaceError", "TruncatedImageError",
    "UnsupportedImageError",
]
