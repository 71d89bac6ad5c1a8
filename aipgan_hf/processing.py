"""Faces in, faces out: the names of :mod:`aipgan_hf.faces`, kept importable from here.

The code lives in the :mod:`aipgan_hf.faces` package, one module per step along the data's path (decode,
detect, align, paste, tensors; :class:`FaceProcessor` composes them). ``from aipgan_hf.processing import X``
keeps working for every public name this module has always had.
"""

from aipgan_hf.faces import *  # noqa: F401,F403 -- a re-export module
from aipgan_hf.faces import __all__ as _faces_names

__all__ = list(_faces_names)
