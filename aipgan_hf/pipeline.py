"""AIPGANPipeline: photos in, photos out.

One pipeline, one ``__call__``: load both photos, detect and align the faces, run the generator,
paste the new face back into the target photo. A saved pipeline is a folder (local or on the Hub):

    generator/config.json
    generator/diffusion_pytorch_model.safetensors        (and/or .fp16.safetensors)
    processor_config.json                                 face-processing settings
    expression_presets.safetensors                        optional: preset expression directions
    README.md                                             model card
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import AIPGANError, CheckpointError, ConfigError
from .modeling import AIPGANGenerator, GeneratorOutput
from .processing import AlignedFace, FaceProcessor, image_to_tensor, load_image, tensor_to_image

logger = logging.getLogger(__name__)

BUNDLED_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"
GENERATOR_SUBFOLDER = "generator"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
PROCESSOR_CONFIG_NAME = "processor_config.json"
PRESETS_NAME = "expression_presets.safetensors"
MAX_EXPRESSION_STRENGTH = 1.5
SOURCE_ROLE = "the expression source photo"
TARGET_ROLE = "the identity target photo"


def weights_filename(variant: str | None) -> str:
    """``diffusion_pytorch_model.safetensors`` or, for a variant, ``diffusion_pytorch_model.<variant>.safetensors``."""
    return WEIGHTS_NAME if not variant else WEIGHTS_NAME.replace(".safetensors", f".{variant}.safetensors")


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {error}") from None


def load_generator(folder: str | os.PathLike, variant: str | None = None, dtype: torch.dtype = torch.float32) -> AIPGANGenerator:
    """Load a generator strictly from ``folder/generator``: every tensor must match, or CheckpointError names the file.

    Args:
        folder: a saved pipeline folder.
        variant: ``None`` for full-precision weights, ``"fp16"`` for ``diffusion_pytorch_model.fp16.safetensors``;
            when ``None`` and only the fp16 file exists, that one is used.
        dtype: dtype of the returned model (weights are cast; float32 is fastest on CPU).
    """
    subfolder = Path(folder) / GENERATOR_SUBFOLDER
    config_path = subfolder / AIPGANGenerator.config_name
    if not config_path.is_file():
        raise CheckpointError(f"no generator config at {config_path}: is {folder} an aipgan-hf pipeline folder?")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{config_path} is not valid JSON: {error}") from None
    weights = subfolder / weights_filename(variant)
    if variant is None and not weights.is_file() and (subfolder / weights_filename("fp16")).is_file():
        weights = subfolder / weights_filename("fp16")
    try:
        generator = AIPGANGenerator.from_config(config)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{config_path} does not describe an AIPGANGenerator: {error}") from None
    state = _read_safetensors(weights)
    expected = generator.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong_shape:
        raise CheckpointError(
            f"{weights} does not fit the generator in {config_path}: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
            f"{len(wrong_shape)} of wrong shape (e.g. {wrong_shape[:3]})"
        )
    generator.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
    if dtype != torch.float32:
        generator = generator.to(dtype=dtype)
    return generator.eval()


def _resolve_folder(path_or_hub_id: str | os.PathLike | None, revision: str | None) -> Path:
    if path_or_hub_id is None:
        return BUNDLED_CHECKPOINT
    path = Path(path_or_hub_id).expanduser()
    if path.is_dir():
        return path
    text = str(path_or_hub_id)
    if path.exists() or text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise CheckpointError(f"{text} is neither a pipeline folder nor a Hub id of the form 'owner/name'")
    from huggingface_hub import snapshot_download  # only when the caller names a Hub id

    try:
        return Path(snapshot_download(text, revision=revision))
    except Exception as error:  # noqa: BLE001 -- any hub failure becomes one clear message
        raise CheckpointError(f"could not download {text} from the Hugging Face Hub: {error}") from None


def _apply_umask(folder: Path) -> None:
    """mkdtemp makes 0700 folders (and some writers 0600 files); give the saved pipeline ordinary permissions."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


@dataclass
class TransferResult:
    """Result of one transfer.

    Attributes:
        image: the whole target photo with the new expression (``paste_back=True``), else the aligned crop.
        face: the aligned output crop (R x R).
        intrinsic: the target's intrinsic (expression-free) face as the identity encoder sees it.
        source_landmarks, target_landmarks: (68, 2) float32 landmarks in photo coordinates.
        expression_attention: (R/4, R/4) float32 in [0, 1], the expression encoder's attention on the source.
        source_face, target_face: the aligned input crops.
        mask: (R, R) float32 in [0, 1], where the decoder repainted the target.
    """

    image: Image.Image
    face: Image.Image
    intrinsic: Image.Image
    source_landmarks: np.ndarray
    target_landmarks: np.ndarray
    expression_attention: np.ndarray
    source_face: Image.Image
    target_face: Image.Image
    mask: np.ndarray = field(repr=False, default=None)


def _check_range(name: str, value: float, low: float, high: float) -> float:
    value = float(value)
    if not low <= value <= high or np.isnan(value):
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


class AIPGANPipeline:
    """Expression transfer on photos.

    Example:
        >>> pipe = AIPGANPipeline.from_pretrained()          # bundled checkpoint
        >>> result = pipe(source="smiling.jpg", target="me.jpg")
        >>> result.image.save("me_smiling.png")
    """

    def __init__(self, generator: AIPGANGenerator, processor: FaceProcessor | None = None, presets: dict[str, torch.Tensor] | None = None):
        self.generator = generator.eval()
        self.processor = processor or FaceProcessor(resolution=generator.config.resolution)
        if self.processor.resolution != generator.config.resolution:
            raise ConfigError(f"processor resolution {self.processor.resolution} != generator resolution {generator.config.resolution}")
        self.presets = dict(presets or {})

    @property
    def resolution(self) -> int:
        return int(self.generator.config.resolution)

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.generator.parameters()).dtype

    @property
    def expressions(self) -> list[str]:
        """Names of the preset expressions this checkpoint carries (for :meth:`synthesize`)."""
        return sorted({key.split(".")[0] for key in self.presets} - {"neutral"})

    # ----------------------------------------------------------------- loading and saving
    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike | None = None,
        variant: str | None = None,
        torch_dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        revision: str | None = None,
    ) -> "AIPGANPipeline":
        """Load a pipeline folder: ``None`` for the checkpoint bundled with the package, a local folder,
        or a Hub id (downloaded only then). Weights load strictly; problems raise CheckpointError."""
        folder = _resolve_folder(path_or_hub_id, revision)
        generator = load_generator(folder, variant=variant, dtype=torch_dtype).to(device)
        settings: dict[str, Any] = {}
        processor_path = folder / PROCESSOR_CONFIG_NAME
        if processor_path.is_file():
            try:
                settings = json.loads(processor_path.read_text())
            except json.JSONDecodeError as error:
                raise CheckpointError(f"{processor_path} is not valid JSON: {error}") from None
        settings["resolution"] = generator.config.resolution
        presets_path = folder / PRESETS_NAME
        presets = _read_safetensors(presets_path) if presets_path.is_file() else None
        return cls(generator, FaceProcessor(**settings), presets=presets)

    def save_pretrained(self, save_directory: str | os.PathLike, variant: str | None = None, model_card: str | None = None) -> Path:
        """Write the pipeline folder atomically (a temp folder renamed into place).

        Args:
            save_directory: destination; replaced if it exists.
            variant: ``"fp16"`` stores ``diffusion_pytorch_model.fp16.safetensors`` in half precision.
            model_card: README.md text; a generic card is written when omitted.
        """
        destination = Path(save_directory)
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
        try:
            subfolder = staging / GENERATOR_SUBFOLDER
            subfolder.mkdir()
            self.generator.save_config(subfolder)
            dtype = torch.float16 if variant == "fp16" else torch.float32
            state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.generator.state_dict().items()}
            save_file(state, str(subfolder / weights_filename(variant)), metadata={"format": "pt"})
            (staging / PROCESSOR_CONFIG_NAME).write_text(json.dumps(self.processor_settings(), indent=2) + "\n")
            if self.presets:
                save_file({k: v.detach().cpu().contiguous() for k, v in self.presets.items()}, str(staging / PRESETS_NAME))
            (staging / "README.md").write_text(model_card or default_model_card())
            _apply_umask(staging)
            if destination.exists():
                shutil.rmtree(destination)
            os.replace(staging, destination)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return destination

    def processor_settings(self) -> dict[str, Any]:
        processor = self.processor
        return {"resolution": processor.resolution, "min_face_size": processor.min_face_size,
                "max_pixels": processor.max_pixels, "detection_size": processor.detection_size}

    def push_to_hub(self, repo_id: str, variant: str | None = "fp16", private: bool = False, token: str | None = None, model_card: str | None = None) -> str:
        """Save to a temporary folder and upload it as a Hub model repo; returns the commit URL."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "pipeline", variant=variant, model_card=model_card)
            return str(api.upload_folder(repo_id=repo_id, folder_path=str(folder)))

    # ----------------------------------------------------------------- inference
    @torch.inference_mode()
    def transfer_aligned(
        self, source: torch.Tensor, target: torch.Tensor, expression_strength: float = 1.0, identity_mix: float = 0.0, return_intrinsic: bool = True
    ) -> GeneratorOutput:
        """Run the generator on aligned crops (B, 3, R, R) in [-1, 1]; no detection."""
        expression_strength = _check_range("expression_strength", expression_strength, 0.0, MAX_EXPRESSION_STRENGTH)
        identity_mix = _check_range("identity_mix", identity_mix, 0.0, 1.0)
        source = source.to(self.device, self.dtype)
        target = target.to(self.device, self.dtype)
        return self.generator(source, target, expression_strength=expression_strength, identity_mix=identity_mix, return_intrinsic=return_intrinsic)

    def __call__(
        self,
        source: Any,
        target: Any,
        expression_strength: float = 1.0,
        identity_mix: float = 0.0,
        paste_back: bool = True,
        source_face_index: int | None = None,
        target_face_index: int | None = None,
    ) -> TransferResult:
        """Give the target photo's face the source photo's expression.

        Args:
            source: expression source: path, bytes, PIL image or (H, W, C) array.
            target: identity target, same kinds.
            expression_strength: 0 (target's own expression) to 1.5 (source's, exaggerated).
            identity_mix: 0 (target's identity) to 1 (source's identity).
            paste_back: return the whole target photo (True) or only the aligned face (False).
            source_face_index, target_face_index: which face when a photo has several (largest first); default the largest.
        """
        expression_strength = _check_range("expression_strength", expression_strength, 0.0, MAX_EXPRESSION_STRENGTH)
        identity_mix = _check_range("identity_mix", identity_mix, 0.0, 1.0)
        target_photo, target_face = self._photo_and_face(target, TARGET_ROLE, target_face_index)
        source_photo, source_face = self._photo_and_face(source, SOURCE_ROLE, source_face_index)
        output = self.transfer_aligned(
            image_to_tensor(source_face.crop)[None], image_to_tensor(target_face.crop)[None], expression_strength, identity_mix
        )
        return self._result(output, source_face, target_face, target_photo, paste_back)

    def synthesize(self, target: Any, expression: str, strength: float = 1.0, paste_back: bool = True, target_face_index: int | None = None) -> TransferResult:
        """Give the target a preset expression (no second photo): the target's own expression features moved
        along the preset's direction (mean features of that expression minus mean neutral features, measured on
        training data when the checkpoint was built), scaled by ``strength`` (0 to 1.5)."""
        if expression not in self.expressions:
            raise ConfigError(f"unknown expression {expression!r}; this checkpoint has: {', '.join(self.expressions) or 'none'}")
        strength = _check_range("strength", strength, 0.0, MAX_EXPRESSION_STRENGTH)
        target_photo, target_face = self._photo_and_face(target, TARGET_ROLE, target_face_index)
        target_tensor = image_to_tensor(target_face.crop)[None].to(self.device, self.dtype)
        with torch.inference_mode():
            generator = self.generator
            own = generator.encode_expression(target_tensor)
            features = [f + strength * self.presets[f"{expression}.{i}"].to(f) - strength * self.presets[f"neutral.{i}"].to(f) for i, f in enumerate(own.features)]
            identity = generator.encode_identity(target_tensor)
            image, mask = generator.decode(identity.features, features, target_tensor)
        output = GeneratorOutput(image=image, landmark_heatmaps=own.landmark_heatmaps, intrinsic_image=identity.intrinsic_image,
                                 expression_attention=own.attention, identity_attention=identity.attention, mask=mask)
        return self._result(output, target_face, target_face, target_photo, paste_back)

    def _photo_and_face(self, image: Any, role: str, face_index: int | None) -> tuple[np.ndarray, AlignedFace]:
        """Decode and align one input; a failure keeps its error type and names the photo it concerns."""
        try:
            photo = load_image(image, max_pixels=self.processor.max_pixels)
            return photo, self.processor.align(photo, face_index=face_index)
        except AIPGANError as error:
            raise type(error)(f"{role}: {error}") from None

    def _result(self, output: GeneratorOutput, source_face: AlignedFace, target_face: AlignedFace, target_photo: np.ndarray, paste_back: bool) -> TransferResult:
        face = tensor_to_image(output.image[0].float().cpu())
        mask = output.mask[0, 0].float().cpu().numpy()  # (R, R): where the generator repainted the target
        # Pasting through the repaint mask keeps the photo's own full-resolution pixels wherever the model left
        # the target unchanged (the crop there is only a resampled copy of them).
        image = self.processor.paste_back(target_photo, face, target_face, weight=mask) if paste_back else face
        return TransferResult(
            image=Image.fromarray(image),
            face=Image.fromarray(face),
            intrinsic=Image.fromarray(tensor_to_image(output.intrinsic_image[0].float().cpu())),
            source_landmarks=source_face.landmarks.astype(np.float32),
            target_landmarks=target_face.landmarks.astype(np.float32),
            expression_attention=output.expression_attention[0, 0].float().cpu().numpy(),
            source_face=Image.fromarray(source_face.crop),
            target_face=Image.fromarray(target_face.crop),
            mask=mask,
        )


def default_model_card(extra: str = "", trained: bool = True, metadata: dict[str, Any] | None = None) -> str:
    """A model card with Hub metadata; ``extra`` is appended as markdown."""
    meta = {"library_name": "aipgan-hf", "license": "apache-2.0", "pipeline_tag": "image-to-image",
            "tags": ["expression-transfer", "gan", "aipgan", "face"]}
    meta.update(metadata or {})
    front = "\n".join(f"{k}: {json.dumps(v)}" for k, v in meta.items())
    warning = "" if trained else "\n**UNTRAINED**: randomly initialised weights, for tests and plumbing only. Outputs are noise.\n"
    return (
        f"---\n{front}\n---\n\n# AIP-GAN expression transfer\n{warning}\n"
        "Load with `aipgan_hf.AIPGANPipeline.from_pretrained(...)`; see https://arxiv.org/abs/2005.00499 for the method.\n"
        f"{extra}"
    )
