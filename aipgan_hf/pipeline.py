"""AIPGANPipeline: photos in, photos out.

One pipeline, one ``__call__``: load both photos, detect and align the faces, run the generator,
paste the new face back into the target photo. A saved pipeline is a folder (local or on the Hub):

    generator/config.json
    generator/diffusion_pytorch_model.safetensors        (and/or .fp16.safetensors)
    processor_config.json                                 face-processing settings
    shape_model.safetensors                               the 68-point expression model (presets and sliders too)
    mouth_exemplar.safetensors                            optional: the open mouth presets borrow (compositing.mouth)
    README.md                                             model card
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file

from .checkpoint import (
    BUNDLED_CHECKPOINT,
    GENERATOR_SUBFOLDER,
    PROCESSOR_CONFIG_NAME,
    load_generator,
    read_processor_settings,
    resolve_folder,
    weights_filename,
)
from .errors import AIPGANError, ConfigError
from .encoders import EncoderOutput
from .faces.geometry import IDENTITY
from .files import atomic_directory
from .modeling import AIPGANGenerator, GeneratorOutput
from .motion import SHAPE_MODEL_NAME, ShapeModel, landmark_flow
from .compositing import (
    MOUTH_EXEMPLAR_NAME,
    DrivingFaces,
    MouthExemplar,
    PhotoWarper,
    TransferResult,
    check_mouth,
    compose,
    plan_mouth,
    source_reader,
    transfer_result,
)
from .faces import AlignedFace, FaceProcessor, Photo, image_to_tensor

logger = logging.getLogger(__name__)

MAX_EXPRESSION_STRENGTH = 1.5
SOURCE_ROLE = "the expression source photo"
TARGET_ROLE = "the identity target photo"
REFERENCE_ROLE = "the source person's neutral photo"


@dataclass
class PreparedTarget:
    """A target photo decoded, aligned and encoded once (for driving it frame after frame).

    Attributes:
        photo: the decoded photo (its full resolution is decoded once, at the first paste-back).
        face: its alignment. tensor: (1, 3, R, R) in [-1, 1].
        landmarks: (68, 2) float64 crop pixels. identity: the identity encoder's output for it.
        photo_texture: paste-back keeps the photo's fine texture under the repainted face (about 6 ms more per
            frame of a 1-MP photo; video driving turns it off unless asked).
    """

    photo: Photo
    face: AlignedFace
    tensor: torch.Tensor
    landmarks: np.ndarray
    identity: Any
    warper: PhotoWarper | None = field(default=None, repr=False)  # made at the first paste-back, then reused
    photo_texture: bool = True


def _naming(role: str, step: Any, *args: Any, **kwargs: Any) -> Any:
    """``step(*args, **kwargs)``; a project error keeps its type and gets the photo's role in front of its message."""
    try:
        return step(*args, **kwargs)
    except AIPGANError as error:
        raise type(error)(f"{role}: {error}") from None


def _check_range(name: str, value: float, low: float, high: float) -> float:
    value = float(value)
    if not low <= value <= high or np.isnan(value):
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _landmark_tensor(landmarks: Any, batch: int) -> torch.Tensor:
    values = torch.as_tensor(np.asarray(landmarks, dtype=np.float32))
    if values.shape != (batch, 68, 2):
        raise ConfigError(f"landmarks must be ({batch}, 68, 2) crop pixels, got {tuple(values.shape)}")
    return values


class AIPGANPipeline:
    """Expression transfer on photos.

    Example:
        >>> pipe = AIPGANPipeline.from_pretrained()          # bundled checkpoint
        >>> result = pipe(source="smiling.jpg", target="me.jpg")
        >>> result.image.save("me_smiling.png")
    """

    def __init__(self, generator: AIPGANGenerator, processor: FaceProcessor | None = None, shape_model: ShapeModel | None = None,
                 mouth_exemplar: MouthExemplar | None = None):
        """``mouth_exemplar``: the face whose open mouth lends presets and sliders its inside (``from_pretrained``
        reads the folder's); None gives them none. On a CPU the generator's weights are put in channels-last
        memory order (oneDNN's faster convolutions: about 12 % less network time, outputs within 1e-6)."""
        self.generator = generator.eval()
        if self.device.type == "cpu":
            self.generator.to(memory_format=torch.channels_last)
        self.processor = processor or FaceProcessor(resolution=generator.config.resolution)
        if self.processor.resolution != generator.config.resolution:
            raise ConfigError(f"processor resolution {self.processor.resolution} != generator resolution {generator.config.resolution}")
        self.shape_model = shape_model or ShapeModel.load(BUNDLED_CHECKPOINT / SHAPE_MODEL_NAME)
        if mouth_exemplar is not None and len(mouth_exemplar.crop) != self.resolution:
            raise ConfigError(f"the mouth exemplar is a {len(mouth_exemplar.crop)}-px crop, the generator works on {self.resolution} px")
        self.mouth_exemplar = mouth_exemplar

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
        return sorted(self.shape_model.presets)

    @property
    def sliders(self) -> list[str]:
        """Named expression directions (``expression_offsets`` keys): mouth_open, smile, brows_up, eyes_closed."""
        return sorted(self.shape_model.directions)

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
        folder = resolve_folder(path_or_hub_id, revision)
        generator = load_generator(folder, variant=variant, dtype=torch_dtype).to(device)
        settings = read_processor_settings(folder, generator.config.resolution)
        shape_model = ShapeModel.load(folder / SHAPE_MODEL_NAME)
        exemplar = folder / MOUTH_EXEMPLAR_NAME
        mouth_exemplar = MouthExemplar.load(exemplar, generator.config.resolution) if exemplar.is_file() else None
        return cls(generator, FaceProcessor(**settings), shape_model=shape_model, mouth_exemplar=mouth_exemplar)

    def save_pretrained(self, save_directory: str | os.PathLike, variant: str | None = None, model_card: str | None = None) -> Path:
        """Write the pipeline folder atomically (a temp folder renamed into place).

        Args:
            save_directory: destination; replaced if it exists.
            variant: ``"fp16"`` stores ``diffusion_pytorch_model.fp16.safetensors`` in half precision.
            model_card: README.md text; a generic card is written when omitted.
        """
        destination = Path(save_directory)
        with atomic_directory(destination) as staging:
            subfolder = staging / GENERATOR_SUBFOLDER
            subfolder.mkdir()
            self.generator.save_config(subfolder)
            dtype = torch.float16 if variant == "fp16" else torch.float32
            state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.generator.state_dict().items()}
            save_file(state, str(subfolder / weights_filename(variant)), metadata={"format": "pt"})
            (staging / PROCESSOR_CONFIG_NAME).write_text(json.dumps(self.processor_settings(), indent=2) + "\n")
            self.shape_model.save(staging / SHAPE_MODEL_NAME)
            if self.mouth_exemplar is not None:
                self.mouth_exemplar.save(staging / MOUTH_EXEMPLAR_NAME)
            (staging / "README.md").write_text(model_card or default_model_card())
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

    # ----------------------------------------------------------------- inference on aligned crops
    @torch.inference_mode()
    def decode_driven(self, target: torch.Tensor, target_landmarks: torch.Tensor, driving_landmarks: torch.Tensor,
                      source: torch.Tensor | None = None, identity_mix: float = 0.0, identity: Any = None,
                      return_intrinsic: bool = True, mouth: str = "own", source_landmarks: torch.Tensor | None = None,
                      source_found: torch.Tensor | None = None) -> GeneratorOutput:
        """Run the generator on aligned targets (B, 3, R, R) driven to (B, 68, 2) landmarks; computes the flow.
        ``identity``: a cached ``generator.encode_identity(target)`` output (video driving). ``mouth`` (one of
        ``compositing.MOUTH_SOURCES``): where an opened mouth's inside comes from; ``"source"`` reads ``source``
        at ``source_landmarks`` (B, 68, 2) (``source_found`` (B,) bool: which sources show a face)."""
        target = target.to(self.device, self.dtype)
        target_landmarks, driving_landmarks = target_landmarks.to(self.device), driving_landmarks.to(self.device)
        flow = landmark_flow(target_landmarks, driving_landmarks, self.resolution)
        generator = self.generator
        if identity is None or identity_mix != 0.0:
            output = generator(target, target_landmarks, driving_landmarks, flow, source=None if source is None else source.to(self.device, self.dtype),
                               identity_mix=identity_mix, return_intrinsic=return_intrinsic)
        else:
            output = generator.decode(identity, generator.encode_expression(driving_landmarks, target_landmarks, flow), target, flow)
        output.driving_landmarks = driving_landmarks
        output.flow = flow
        source = None if source is None else source.to(self.device, self.dtype)
        output.mouth_fill = plan_mouth(target_landmarks, driving_landmarks, self.resolution, mouth=mouth, target=target, source=source,
                                       source_landmarks=None if source is None else source_landmarks, source_found=source_found)
        output.painted = output.image
        output.image = output.mouth_fill.apply(output.image, output.warped_target, source)
        return output

    def transfer_aligned(
        self, source: torch.Tensor, target: torch.Tensor, source_landmarks: Any, target_landmarks: Any,
        expression_strength: float = 1.0, identity_mix: float = 0.0, driving_landmarks: Any = None,
        expression_offsets: dict[str, float] | None = None, replace_target_expression: bool = False,
        return_intrinsic: bool = True, reference_landmarks: Any = None, mouth: str = "source",
    ) -> GeneratorOutput:
        """Transfer between aligned crops (B, 3, R, R) in [-1, 1] with their (B, 68, 2) crop-pixel landmarks; no
        detection. ``driving_landmarks`` (B, 68, 2) overrides the shape model's retargeting;
        ``reference_landmarks`` (B, 68, 2): the source person's neutral face, for relative motion; ``mouth``: as
        in :meth:`__call__`."""
        expression_strength = _check_range("expression_strength", expression_strength, 0.0, MAX_EXPRESSION_STRENGTH)
        identity_mix = _check_range("identity_mix", identity_mix, 0.0, 1.0)
        batch = target.shape[0]
        mouth = check_mouth(mouth)
        target_landmarks = _landmark_tensor(target_landmarks, batch)
        source_landmarks = None if source_landmarks is None else _landmark_tensor(source_landmarks, batch)
        if driving_landmarks is None and source_landmarks is None:
            raise ConfigError("give the source's landmarks (or the driving landmarks) to transfer between crops")
        if driving_landmarks is None:
            driving_landmarks = self.shape_model.drive(
                target_landmarks.numpy(), source_landmarks.numpy(), strength=expression_strength,
                offset=self.expression_offset(expression_offsets), replace_target_expression=replace_target_expression,
                reference_landmarks=None if reference_landmarks is None else _landmark_tensor(reference_landmarks, batch).numpy())
        return self.decode_driven(target, target_landmarks, _landmark_tensor(driving_landmarks, batch), source=source,
                                  identity_mix=identity_mix, return_intrinsic=return_intrinsic, mouth=mouth,
                                  source_landmarks=source_landmarks)

    def expression_offset(self, sliders: dict[str, float] | None) -> np.ndarray | None:
        """Slider values ``{"mouth_open": 0.5, ...}`` (each within +-1.5) as one coefficient change of the shape
        model; None when no slider is set. Raises ConfigError for an unknown slider or a value out of range."""
        for name, value in (sliders or {}).items():
            _check_range(f"expression_offsets[{name!r}]", value, -MAX_EXPRESSION_STRENGTH, MAX_EXPRESSION_STRENGTH)
        try:
            return self.shape_model.offset(sliders)
        except ValueError as error:
            raise ConfigError(str(error)) from None

    # ----------------------------------------------------------------- photos in, photos out
    def __call__(
        self,
        source: Any,
        target: Any,
        expression_strength: float = 1.0,
        identity_mix: float = 0.0,
        paste_back: bool = True,
        source_face_index: int | None = None,
        target_face_index: int | None = None,
        expression_offsets: dict[str, float] | None = None,
        replace_target_expression: bool = False,
        return_intrinsic: bool = False,
        source_reference: Any = None,
        mouth: str = "source",
    ) -> TransferResult:
        """Give the target photo's face the source photo's expression.

        Args:
            source: expression source: path, bytes, PIL image or (H, W, C) array.
            target: identity target, same kinds.
            expression_strength: 0 (target's own expression, exactly) to 1.5 (source's, exaggerated).
            identity_mix: 0 (target's identity) to 1 (source's identity).
            paste_back: return the whole target photo (True) or only the aligned face (False).
            source_face_index, target_face_index: which face when a photo has several (largest first); default the largest.
            expression_offsets: slider values (-1.5 .. 1.5) along :attr:`sliders`, added to the expression.
            replace_target_expression: remove the target's own expression first (a smiling target, a neutral
                source); by default the source's change from its neutral is added to the target's face.
            return_intrinsic: also render the target's intrinsic face (``result.intrinsic``).
            source_reference: a neutral photo of the source person (same kinds as ``source``). The target then
                gets the source's own change from it (relative motion, as video driving does) instead of the
                change estimated from the source photo alone, which cannot tell a person's resting face from an
                expression (high brows, a wide mouth). Its largest face is used.
            mouth: where an opened mouth's inside (teeth, tongue) comes from: ``"source"`` (default) the target's
                own photo when its mouth is open about as wide, else the source photo's, at the source photo's
                resolution, else the network's paint; ``"own"`` never the source's (with ``identity_mix=0`` no
                pixel of the source reaches the output); ``"network"`` the network's paint only.
        """
        expression_strength = _check_range("expression_strength", expression_strength, 0.0, MAX_EXPRESSION_STRENGTH)
        identity_mix = _check_range("identity_mix", identity_mix, 0.0, 1.0)
        offset = self.expression_offset(expression_offsets)
        mouth = check_mouth(mouth)
        # Decoded here (PIL's lazy loading is not thread-safe: the same image object may be given twice), then
        # searched for faces at once: dlib releases the GIL.
        target_photo, source_photo = self._photo(target, TARGET_ROLE), self._photo(source, SOURCE_ROLE)
        reference_photo = None if source_reference is None else self._photo(source_reference, REFERENCE_ROLE)
        with ThreadPoolExecutor(max_workers=2) as helper:
            source_search = helper.submit(self._face, source_photo, SOURCE_ROLE, source_face_index)
            reference_search = None if reference_photo is None else helper.submit(self._face, reference_photo, REFERENCE_ROLE, None)
            target_face = self._face(target_photo, TARGET_ROLE, target_face_index)  # its error comes first, as before
            source_face = source_search.result()
            reference = None if reference_search is None else reference_search.result().crop_landmarks
        driving = self.shape_model.drive(target_face.crop_landmarks, source_face.crop_landmarks, reference_landmarks=reference,
                                         strength=expression_strength, offset=offset, replace_target_expression=replace_target_expression)
        output = self.decode_driven(
            image_to_tensor(target_face.crop)[None], torch.as_tensor(target_face.crop_landmarks, dtype=torch.float32)[None],
            torch.as_tensor(driving, dtype=torch.float32)[None], source=image_to_tensor(source_face.crop)[None], identity_mix=identity_mix,
            return_intrinsic=return_intrinsic, mouth=mouth, source_landmarks=torch.as_tensor(source_face.crop_landmarks, dtype=torch.float32)[None],
        )
        return transfer_result(output, source_face, target_face, target_photo, paste_back, source_photo=source_photo)

    def synthesize(self, target: Any, expression: str, strength: float = 1.0, paste_back: bool = True,
                   target_face_index: int | None = None, expression_offsets: dict[str, float] | None = None,
                   return_intrinsic: bool = False, mouth: str = "source") -> TransferResult:
        """Give the target a preset expression (no second photo): its landmarks move by the preset's mean
        expression-coefficient change (that label minus neutral, measured on the training split), times ``strength``.
        ``mouth``: as in :meth:`__call__`, the "source" being :attr:`mouth_exemplar` (a public-domain face)."""
        if expression not in self.expressions:
            raise ConfigError(f"unknown expression {expression!r}; this checkpoint has: {', '.join(self.expressions) or 'none'}")
        strength = _check_range("strength", strength, 0.0, MAX_EXPRESSION_STRENGTH)
        offset = self.expression_offset(expression_offsets)
        prepared = self.prepare_target(target, target_face_index, return_intrinsic=return_intrinsic)
        change = strength * self.shape_model.presets[expression] + (0.0 if offset is None else offset)
        return self.render(prepared, self.shape_model.apply(prepared.landmarks, change), paste_back=paste_back, mouth=mouth)

    def prepare_target(self, target: Any, face_index: int | None = None, return_intrinsic: bool = False,
                       photo_texture: bool = True) -> PreparedTarget:
        """Decode, align and encode a target once; :meth:`render` then drives it to any landmarks (and gives its
        intrinsic face when ``return_intrinsic``; ``photo_texture``: see :class:`PreparedTarget`)."""
        photo, face = self._photo_and_face(target, TARGET_ROLE, face_index)
        tensor = image_to_tensor(face.crop)[None].to(self.device, self.dtype)
        with torch.inference_mode():
            identity = self.generator.encode_identity(tensor, return_intrinsic=return_intrinsic)
        return PreparedTarget(photo=photo, face=face, tensor=tensor, landmarks=face.crop_landmarks.astype(np.float64), identity=identity,
                              photo_texture=photo_texture)

    def render(self, prepared: PreparedTarget, driving_landmarks: np.ndarray, paste_back: bool = True, mouth: str = "own") -> TransferResult:
        """One frame: the prepared target driven to (68, 2) crop-pixel landmarks (decode and paste-back only).
        ``mouth``: as in :meth:`__call__`, the "source" being :attr:`mouth_exemplar` (none: as "own")."""
        lend = check_mouth(mouth) == "source" and self.mouth_exemplar is not None
        exemplar = self.mouth_exemplar.tensors() if lend else (None, None)
        output = self.decode_driven(prepared.tensor, torch.as_tensor(prepared.landmarks, dtype=torch.float32)[None],
                                    _landmark_tensor(np.asarray(driving_landmarks)[None], 1), identity=prepared.identity, mouth=mouth,
                                    source=exemplar[0], source_landmarks=exemplar[1])
        # the exemplar is a crop: its pixels are crop pixels
        return transfer_result(output, prepared.face, prepared.face, prepared.photo, paste_back, self._warper(prepared, paste_back),
                               prepared.photo_texture, source_pixels=(self.mouth_exemplar.crop, IDENTITY) if lend else None)

    def render_batch(self, prepared: PreparedTarget, driving_landmarks: np.ndarray, paste_back: bool = True) -> list[np.ndarray]:
        """Frames for (N, 68, 2) driving landmarks, with one network call for all N: (H, W, 3) uint8 each (the
        photo, or the aligned face without paste-back). On a CPU a batch of 8 costs about half as much per frame
        as 8 calls of :meth:`render`. :meth:`drive_batch` and :meth:`compose_frame` are its two halves."""
        output = self.drive_batch(prepared, driving_landmarks)
        return [self.compose_frame(prepared, output, index, paste_back) for index in range(len(driving_landmarks))]

    def drive_batch(self, prepared: PreparedTarget, driving_landmarks: np.ndarray, sources: DrivingFaces | None = None,
                    mouth: str = "source") -> GeneratorOutput:
        """The network half of :meth:`render_batch`: the prepared target driven to (N, 68, 2) landmarks at once.
        ``mouth`` as in :meth:`__call__`, the sources being ``sources`` (the driving frames' faces); without them
        "source" is "own"."""
        mouth = check_mouth(mouth)
        count = len(driving_landmarks)
        identity = EncoderOutput(features=[f.expand(count, *f.shape[1:]) for f in prepared.identity.features],
                                 attention=prepared.identity.attention)
        target_landmarks = torch.as_tensor(prepared.landmarks, dtype=torch.float32)[None].expand(count, -1, -1)
        driving = _landmark_tensor(np.asarray(driving_landmarks), count)
        if sources is None:
            return self.decode_driven(prepared.tensor.expand(count, -1, -1, -1), target_landmarks, driving, identity=identity, mouth=mouth)
        return self.decode_driven(prepared.tensor.expand(count, -1, -1, -1), target_landmarks, driving, identity=identity, mouth=mouth,
                                  source=sources.crops, source_landmarks=_landmark_tensor(sources.landmarks, count),
                                  source_found=torch.as_tensor(sources.found))

    def compose_frame(self, prepared: PreparedTarget, output: GeneratorOutput, index: int, paste_back: bool = True,
                      sources: DrivingFaces | None = None) -> np.ndarray:
        """The picture half of :meth:`render_batch`: frame ``index`` of a :meth:`drive_batch` output, (H, W, 3) uint8
        (``sources``: the same as given to :meth:`drive_batch`, for the mouth's inside at the frames' resolution)."""
        reader = None
        if paste_back and sources is not None and sources.found[index]:
            reader = source_reader(output, index, sources.frames[index], sources.matrices[index], prepared.photo, prepared.face)
        return compose(output, index, prepared.face, prepared.photo, self._warper(prepared, paste_back), prepared.photo_texture, reader)[0]

    def _warper(self, prepared: PreparedTarget, paste_back: bool) -> PhotoWarper | None:
        if paste_back and prepared.warper is None:
            prepared.warper = PhotoWarper(prepared.photo.full_resolution(), prepared.face.matrix, self.resolution)
        return prepared.warper if paste_back else None

    def animate(self, driving: Any, target: Any, output: Any = None, relative: bool = True, **options: Any):
        """Drive the target photo with a video clip (``aipgan_hf.video.animate``; same arguments): the target is
        prepared once, each frame pays for its landmarks, the decode and the paste-back. Returns an AnimationResult."""
        from .video import animate

        return animate(self, driving, target, output=output, relative=relative, **options)

    def _photo_and_face(self, image: Any, role: str, face_index: int | None) -> tuple[Photo, AlignedFace]:
        """Decode (a large JPEG at reduced scale) and align one input; a failure keeps its error type and names
        the photo it concerns."""
        photo = self._photo(image, role)
        return photo, self._face(photo, role, face_index)

    def _photo(self, image: Any, role: str) -> Photo:
        return _naming(role, self.processor.load_photo, image)

    def _face(self, photo: Photo, role: str, face_index: int | None) -> AlignedFace:
        return _naming(role, self.processor.align, photo, face_index=face_index)


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
