"""AIPGANPipeline: photos in, photos out.

One pipeline, one ``__call__``: faces in (decode, detect, align), motion (driving landmarks and their flow),
the networks, compositing (the mouth's inside, paste-back into the photo), one typed :class:`TransferResult` out.
Many frames of one target: :meth:`AIPGANPipeline.prepare` once, then :meth:`AIPGANPipeline.render` per frame or
batch. A saved pipeline is a folder (local or on the Hub):

    generator/config.json
    generator/diffusion_pytorch_model.safetensors        (and/or .fp16.safetensors)
    processor_config.json                                 face-processing settings
    shape_model.safetensors                               the 68-point expression model (presets and sliders too)
    mouth_exemplar.safetensors                            optional: the open mouth presets borrow (compositing.mouth)
    emotion_reader/config.json, ...fp16.safetensors       optional: reads a source photo's emotion (motion.emotion)
    README.md                                             model card
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from huggingface_hub import HfApi

from .checkpoint import (
    BUNDLED_CHECKPOINT,
    GENERATOR_SUBFOLDER,
    PROCESSOR_CONFIG_NAME,
    as_dtype,
    cast,
    check_variant,
    load_generator,
    read_processor_settings,
    resolve_folder,
    save_model,
)
from .compositing import (
    DEFAULT_MOUTH,
    MOUTH_EXEMPLAR_NAME,
    DrivingFaces,
    MouthExemplar,
    TransferResult,
    check_mouth,
    transfer_result,
)
from .driving import PreparedTarget, check_range, drive_crops, landmark_rows, landmark_tensor
from .errors import AIPGANError, CheckpointError, ConfigError
from .faces import FaceProcessor, image_to_tensor
from .files import staged_entries
from .model_card import default_model_card
from .modeling import AIPGANGenerator
from .motion import MAX_EXPRESSION_STRENGTH, SHAPE_MODEL_NAME, ExpressionLines, ShapeModel
from .motion.emotion import EMOTION_READER_SUBFOLDER, EmotionReader, acted_on, smiles, told_emotion
from .motion.lines import EachFace, LineStrength
from .pipeline_steps import (
    TARGET_ROLE,
    SourceFaces,
    check_one_way,
    check_told,
    find_faces,
    mouth_sources,
    photo_and_face,
    preset_landmarks,
)
from .provenance import DEFAULT_EDIT
from .video import AnimationResult, animate

logger = logging.getLogger(__name__)

MODEL_CARD_NAME = "README.md"
PIPELINE_ENTRIES = (
    GENERATOR_SUBFOLDER,
    EMOTION_READER_SUBFOLDER,
    PROCESSOR_CONFIG_NAME,
    SHAPE_MODEL_NAME,
    MOUTH_EXEMPLAR_NAME,
    MODEL_CARD_NAME,
)
"""What :meth:`AIPGANPipeline.save_pretrained` writes into a folder; nothing else there is touched."""


class AIPGANPipeline:
    """Expression transfer on photos.

    Example:
        >>> pipe = AIPGANPipeline.from_pretrained()          # bundled checkpoint
        >>> pipe("me.jpg", source="smiling.jpg").image.save("me_smiling.png")
        >>> pipe("me.jpg", expression="happiness", expression_offsets={"mouth_open": 0.5})
        >>> prepared = pipe.prepare("me.jpg")                 # many frames of one target
        >>> frames = pipe.render(prepared, driving_landmarks)  # (68, 2) -> one result, (N, 68, 2) -> N
    """

    def __init__(
        self,
        generator: AIPGANGenerator,
        processor: FaceProcessor | None = None,
        shape_model: ShapeModel | None = None,
        mouth_exemplar: MouthExemplar | None = None,
        emotion_reader: EmotionReader | None = None,
    ):
        """``mouth_exemplar``: the face whose open mouth lends presets and sliders its inside (``from_pretrained``
        reads the folder's); None gives them none. ``emotion_reader``: reads a source photo's emotion, which a
        transfer then wears where the reader is sure (:mod:`~aipgan_hf.motion.emotion`). On a CPU
        the generator's weights are put in channels-last memory order, where oneDNN's convolutions are faster
        (docs/benchmarks.md)."""
        self.generator = generator.eval()
        if self.device.type == "cpu":
            self.generator.to(memory_format=torch.channels_last)
        self.processor = processor or FaceProcessor(resolution=generator.config.resolution)
        if self.processor.resolution != generator.config.resolution:
            raise ConfigError(
                f"processor resolution {self.processor.resolution} != generator resolution "
                f"{generator.config.resolution}"
            )
        self.shape_model = shape_model or ShapeModel.load(BUNDLED_CHECKPOINT / SHAPE_MODEL_NAME)
        if mouth_exemplar is not None and len(mouth_exemplar.crop) != self.resolution:
            raise ConfigError(
                f"the mouth exemplar is a {len(mouth_exemplar.crop)}-px crop, the generator works on "
                f"{self.resolution} px"
            )
        self.mouth_exemplar = mouth_exemplar
        self.lines = ExpressionLines(self.shape_model, self.resolution)  # the FACS units' creases
        self.emotion_reader = None if emotion_reader is None else emotion_reader.eval()

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
        """Names of the preset expressions this checkpoint carries (``pipe(target, expression=...)``)."""
        return sorted(self.shape_model.presets)

    @property
    def sliders(self) -> list[str]:
        """Named expression directions (``expression_offsets`` keys): mouth_open, smile, brows_up, eyes_closed and one
        per FACS action unit, e.g. AU4_brow_lowerer."""
        return sorted(self.shape_model.directions)

    # ----------------------------------------------------------------- loading and saving
    @classmethod
    def from_pretrained(
        cls,
        path_or_hub_id: str | os.PathLike | None = None,
        variant: str | None = None,
        torch_dtype: torch.dtype | str = torch.float32,
        device: str | torch.device = "cpu",
        revision: str | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
    ) -> "AIPGANPipeline":
        """Load a pipeline folder: ``None`` for the checkpoint bundled with the package, a local folder,
        or a Hub id (downloaded only then). Weights load strictly; problems raise CheckpointError.

        Args:
            variant: ``"fp16"`` reads ``diffusion_pytorch_model.fp16.safetensors`` (read anyway where it is the only
                weights file).
            torch_dtype: the generator's dtype (``torch.float16``, ``"bfloat16"``, ``"auto"``: float32, the fastest on
                a CPU). Compositing stays in float32.
            device: where the networks run.
            revision, cache_dir, token, local_files_only: for a Hub id, as ``huggingface_hub.snapshot_download``
                takes them.
        """
        hub = {"revision": revision, "cache_dir": cache_dir, "token": token, "local_files_only": local_files_only}
        folder = resolve_folder(path_or_hub_id, **hub)
        generator = load_generator(folder, variant=variant, dtype=as_dtype(torch_dtype))
        settings = read_processor_settings(folder, generator.config.resolution)
        shape_model = ShapeModel.load(folder / SHAPE_MODEL_NAME)
        exemplar = folder / MOUTH_EXEMPLAR_NAME
        mouth_exemplar = MouthExemplar.load(exemplar, generator.config.resolution) if exemplar.is_file() else None
        reader = EmotionReader.load(folder)
        return cls(generator, FaceProcessor(**settings), shape_model, mouth_exemplar, reader).to(device)

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | str | None = None) -> "AIPGANPipeline":
        """Move the networks to ``device`` and the generator to ``dtype`` (as ``from_pretrained`` takes it; a dtype
        alone may come first, as ``nn.Module.to`` takes it); returns the pipeline itself."""
        if isinstance(device, torch.dtype):
            device, dtype = None, device
        if dtype is not None:
            cast(self.generator, dtype)
        if device is not None:
            self.generator.to(device)
            if self.emotion_reader is not None:
                self.emotion_reader.to(device)
        return self

    def save_pretrained(
        self, save_directory: str | os.PathLike, variant: str | None = None, model_card: str | None = None
    ) -> Path:
        """Write the pipeline's files into a folder: built under a temporary name inside it, then moved into place.

        Args:
            save_directory: destination, created if needed. The pipeline's own entries (:data:`PIPELINE_ENTRIES`)
                are replaced, or removed where this pipeline has none (no emotion reader, no mouth exemplar);
                anything else in the folder stays (a training run's checkpoints, your notes).
            variant: ``"fp16"`` stores ``diffusion_pytorch_model.fp16.safetensors`` in half precision; None (the
                default) in float32. No other variant.
            model_card: README.md text; a generic card is written when omitted.
        """
        check_variant(variant)
        destination = Path(save_directory).expanduser()
        with staged_entries(destination, PIPELINE_ENTRIES) as staging:
            save_model(self.generator, staging / GENERATOR_SUBFOLDER, variant)
            if self.emotion_reader is not None:
                save_model(self.emotion_reader, staging / EMOTION_READER_SUBFOLDER, variant)
            (staging / PROCESSOR_CONFIG_NAME).write_text(json.dumps(self.processor_settings(), indent=2) + "\n")
            self.shape_model.save(staging / SHAPE_MODEL_NAME)
            if self.mouth_exemplar is not None:
                self.mouth_exemplar.save(staging / MOUTH_EXEMPLAR_NAME)
            (staging / MODEL_CARD_NAME).write_text(model_card or default_model_card())
        return destination

    def processor_settings(self) -> dict[str, Any]:
        """The face processor's settings, as ``processor_config.json`` stores them."""
        processor = self.processor
        return {
            "resolution": processor.resolution,
            "min_face_size": processor.min_face_size,
            "max_pixels": processor.max_pixels,
            "detection_size": processor.detection_size,
        }

    def push_to_hub(
        self,
        repo_id: str,
        variant: str | None = "fp16",
        private: bool = False,
        token: str | None = None,
        model_card: str | None = None,
        commit_message: str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
    ) -> str:
        """Save to a temporary folder and upload it as a Hub model repo; returns the commit URL. A failure (no
        network, a bad id, no permission) raises CheckpointError."""
        check_variant(variant)
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                folder = self.save_pretrained(Path(tmp) / "pipeline", variant=variant, model_card=model_card)
                commit = api.upload_folder(
                    repo_id=repo_id,
                    folder_path=str(folder),
                    commit_message=commit_message,
                    revision=revision,
                    create_pr=create_pr,
                )
        except AIPGANError:
            raise
        except Exception as error:  # noqa: BLE001 -- any Hub failure becomes one clear message, as from_pretrained's
            raise CheckpointError(f"could not push to {repo_id!r} on the Hugging Face Hub: {error}") from None
        return str(commit)

    def expression_offset(self, sliders: dict[str, float] | None) -> np.ndarray | None:
        """Slider values ``{"mouth_open": 0.5, ...}`` (each within +-1.5) as one coefficient change of the shape
        model; None when no slider is set. Raises ConfigError for an unknown slider or a value out of range."""
        if sliders is not None and not isinstance(sliders, Mapping):
            raise ConfigError(f"expression_offsets must be a dict of slider values, got {type(sliders).__name__}")
        for name, value in (sliders or {}).items():
            check_range(f"expression_offsets[{name!r}]", value, -MAX_EXPRESSION_STRENGTH, MAX_EXPRESSION_STRENGTH)
        try:
            return self.shape_model.offset(sliders)
        except ValueError as error:
            raise ConfigError(str(error)) from None

    # ----------------------------------------------------------------- photos in, photos out
    def __call__(
        self,
        target: Any,
        *,
        source: Any = None,
        expression: str | None = None,
        driving_landmarks: np.ndarray | None = None,
        expression_strength: float = 1.0,
        expression_offsets: dict[str, float] | None = None,
        identity_mix: float = 0.0,
        replace_target_expression: bool = False,
        source_reference: Any = None,
        paste_back: bool = True,
        source_face_index: int | None = None,
        target_face_index: int | None = None,
        return_intrinsic: bool = False,
        mouth: str = DEFAULT_MOUTH,
        read_emotion: bool = True,
        source_emotion: str | None = None,
    ) -> TransferResult:
        """Give the target photo's face a new expression: a source photo's, a preset's, or given landmarks'.

        Args:
            target: identity target: path, bytes, PIL image or (H, W, C) array.
            source: expression source photo, same kinds; the target gets its expression.
            expression: a preset's name (:attr:`expressions`) instead of a source photo: the whole expression,
                from neutral (the target's own expression, as estimated from its photo, is replaced by it).
            driving_landmarks: (68, 2) crop pixels to send the target's landmarks to, instead of retargeting (a
                source photo, if also given, still lends its identity to ``identity_mix`` and, with
                ``mouth="source"``, its mouth's inside). Without any of the three, ``expression_offsets`` alone
                move the target's face.
            expression_strength: 0 (target's own expression, exactly) to 1.5 (exaggerated); expression_offsets:
                slider values (-1.5 .. 1.5) along :attr:`sliders`, added to the expression.
            identity_mix: 0 (target's identity) to 1 (source's identity); needs ``source``.
            replace_target_expression: remove the target's own expression first (a smiling target, a neutral
                source); by default the source's change from its neutral is added to the target's face.
            source_reference: a neutral photo of the source person: the target gets the source's own change from
                it (relative motion) instead of the change estimated from the source alone, unless the reading
                (``read_emotion``) is worn: a sure emotion other than happiness.
            paste_back: return the whole target photo (True) or only the aligned face (False).
            source_face_index, target_face_index: which face when a photo has several (largest first).
            return_intrinsic: also render the target's intrinsic face (``result.intrinsic``).
            mouth: where an opened mouth's inside (teeth, tongue) comes from, one of
                :data:`~aipgan_hf.compositing.MOUTH_SOURCES`: ``"exemplar"`` (default) the target's own photo when
                its mouth is open about as wide, else the checkpoint's public-domain exemplar face's, else the
                network's paint: with ``identity_mix=0`` no pixel of the source person reaches the output;
                ``"source"`` the source photo's instead of the exemplar's (the exemplar's without one); ``"own"``
                never another face's; ``"network"`` the network's paint only.
            read_emotion: a transfer from a source photo wears the emotion the checkpoint's reader is sure it
                sees in the source's face: that emotion's preset, or the source's own smile completed
                (:mod:`~aipgan_hf.motion.emotion`; beside a ``source_reference`` a smile is the exact change).
                False: the motion of the source's 68 points alone, or their exact change from the reference.
            source_emotion: the source's emotion as you name it (one of :attr:`expressions`), worn as a reading
                of it at full certainty would be (a smile completed in full; beside a ``source_reference`` a smile
                is the exact change), in place of what the reader reads: for a source it misreads.
        """
        strength = check_range("expression_strength", expression_strength, 0.0, MAX_EXPRESSION_STRENGTH)
        identity_mix = check_range("identity_mix", identity_mix, 0.0, 1.0)
        offset = self.expression_offset(expression_offsets)
        mouth = check_mouth(mouth)
        check_one_way(expression, source, driving_landmarks, identity_mix, replace_target_expression, source_reference)
        check_told(source_emotion, source, driving_landmarks)
        told = None if source_emotion is None else told_emotion(source_emotion, self.shape_model, read_emotion)
        if source is not None:
            faces = find_faces(self.processor, target, source, source_reference, source_face_index, target_face_index)
            reader = self.emotion_reader if read_emotion and driving_landmarks is None else None
            read = told or faces.read_emotion(reader)
            motion = faces.motion(
                driving_landmarks, self.shape_model, strength, offset, replace_target_expression, read
            )
            result = self._transfer(faces, motion, identity_mix, paste_back, return_intrinsic, mouth)
            points, beside = faces.source_face.crop_landmarks, faces.reference is not None
            worn = acted_on(read, self.shape_model, points, beside_reference=beside)
            result.emotion = read if worn and strength > 0 else None
            result.reading = None if told else read
            result.source_face_boxes = faces.source_face.face_boxes
            target_points = faces.target_face.crop_landmarks
            result.kept_smile = (
                not replace_target_expression and strength > 0 and smiles(self.shape_model, target_points)
            )
            return result
        prepared = self.prepare(target, target_face_index, return_intrinsic=return_intrinsic)
        if driving_landmarks is not None:
            return self.render(prepared, driving_landmarks, paste_back=paste_back, mouth=mouth)
        driving_landmarks = preset_landmarks(self.shape_model, expression, strength, offset, prepared.landmarks)
        edit = "expression sliders" if expression is None else f"preset expression: {expression}"
        return self.render(prepared, driving_landmarks, paste_back=paste_back, mouth=mouth, edit=edit)

    def prepare(
        self, target: Any, face_index: int | None = None, return_intrinsic: bool = False, photo_texture: bool = True
    ) -> PreparedTarget:
        """Decode, align and encode a target once; :meth:`render` then drives it to any landmarks (and gives its
        intrinsic face when ``return_intrinsic``; ``photo_texture``: see :class:`PreparedTarget`)."""
        photo, face = photo_and_face(self.processor, target, TARGET_ROLE, face_index)
        tensor = image_to_tensor(face.crop)[None].to(self.device)  # (1, 3, R, R)
        with torch.inference_mode():
            identity = self.generator.encode_identity(tensor.to(self.dtype), return_intrinsic=return_intrinsic)
        return PreparedTarget(
            photo=photo,
            face=face,
            tensor=tensor,
            landmarks=face.crop_landmarks.astype(np.float64),
            identity=identity,
            photo_texture=photo_texture,
        )

    def render(
        self,
        prepared: PreparedTarget,
        driving_landmarks: np.ndarray,
        paste_back: bool = True,
        mouth: str = DEFAULT_MOUTH,
        sources: DrivingFaces | None = None,
        edit: str = DEFAULT_EDIT,
    ) -> TransferResult | list[TransferResult]:
        """Draw the prepared target driven to (68, 2) crop-pixel landmarks: one result; or to (N, 68, 2): a list
        of N, from one network call (a video's batch).

        Args:
            mouth: as in :meth:`__call__`; with "source", the source is ``sources`` (the driving frames' faces,
                one per row), else the checkpoint's exemplar face.
            edit: what the images' stamp says was done (:func:`~aipgan_hf.provenance.mark_edited`).
        """
        rows = landmark_rows(driving_landmarks)  # (N, 68, 2), checked
        count = len(rows)
        if check_mouth(mouth) == "source" and sources is None:
            mouth = "exemplar"  # no source photo: the exemplar lends, as it does by default
        source, source_landmarks, source_found, pixels = mouth_sources(self.mouth_exemplar, mouth, sources, count)
        target_landmarks = torch.as_tensor(prepared.landmarks, dtype=torch.float32)[None].expand(count, -1, -1)
        output = drive_crops(
            self.generator,
            prepared.tensor.expand(count, -1, -1, -1),
            target_landmarks,
            rows,
            source=source,
            source_landmarks=source_landmarks,
            source_found=source_found,
            identity=prepared.identity_for(count),
            mouth=mouth,
            lines=self.lines,
        )
        warper = prepared.photo_warper(self.resolution) if paste_back else None
        results = [
            transfer_result(
                output,
                index,
                prepared.face,
                prepared.face,
                prepared.photo,
                paste_back,
                warper,
                prepared.photo_texture,
                source_pixels=pixels[index],
                edit=edit,
            )
            for index in range(count)
        ]
        return results[0] if np.ndim(driving_landmarks) == 2 else results

    def animate(
        self,
        driving: str | os.PathLike,
        target: Any,
        output: str | os.PathLike | None = None,
        relative: bool = True,
        **options: Any,
    ) -> AnimationResult:
        """Drive the target photo with a video clip (:func:`aipgan_hf.video.animate`, same arguments): the target
        is prepared once, each frame pays for its landmarks, the decode and the paste-back."""
        return animate(self, driving, target, output=output, relative=relative, **options)

    # ----------------------------------------------------------------- steps
    def _transfer(
        self,
        faces: SourceFaces,
        motion: tuple[np.ndarray, LineStrength | EachFace],
        identity_mix: float,
        paste_back: bool,
        return_intrinsic: bool,
        mouth: str,
    ) -> TransferResult:
        """:meth:`__call__` with a source photo, after its faces are found and its ``motion`` known
        (:meth:`SourceFaces.motion`: the driving landmarks and the strength of their lines)."""
        source_face, target_face = faces.source_face, faces.target_face
        driving_landmarks, line_strength = motion
        # 3. the networks and the mouth's inside, 4. paste-back
        source_crop = image_to_tensor(source_face.crop)[None]  # (1, 3, R, R)
        source_landmarks = torch.as_tensor(source_face.crop_landmarks, dtype=torch.float32)[None]  # (1, 68, 2)
        if mouth == "source":  # the source photo's own mouth, read at its resolution at paste-back
            lender, lender_landmarks, pixels = source_crop, source_landmarks, [None]
        else:
            lender, lender_landmarks, _, pixels = mouth_sources(self.mouth_exemplar, mouth, None, 1)
        target_landmarks = torch.as_tensor(target_face.crop_landmarks, dtype=torch.float32)[None]  # (1, 68, 2)
        output = drive_crops(
            self.generator,
            image_to_tensor(target_face.crop)[None],
            target_landmarks,
            landmark_tensor(np.asarray(driving_landmarks)[None], 1),
            source=lender,
            source_landmarks=lender_landmarks,
            identity_mix=identity_mix,
            return_intrinsic=return_intrinsic,
            mouth=mouth,
            identity_source=source_crop,
            lines=self.lines,
            line_strength=line_strength,
        )
        return transfer_result(
            output,
            0,
            source_face,
            target_face,
            faces.target_photo,
            paste_back,
            source_pixels=pixels[0],
            source_photo=faces.source_photo if mouth == "source" else None,
        )
