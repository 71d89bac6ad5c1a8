"""Validation of checkpoint files: every damaged or foreign file becomes a :class:`CheckpointError` that names
the file and the field or tensor at fault, before anything is built from it.

Used by :func:`load_generator` below and the pipeline's other loaders, which read a folder like::

    config = read_json_object(folder / "generator" / "config.json")
    check_keys(config_path, config, {"resolution": int, "base_channels": int, "channel_multipliers": list, ...})
    check_number_range(config_path, config, "resolution", 32, 512)
    state = read_safetensors(weights_path)
    check_state_dict(weights_path, state)
    check_tensor_shapes(weights_path, state, {name: tuple(t.shape) for name, t in model.state_dict().items()})
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import snapshot_download
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from aipgan_hf.configuration import ARCHITECTURE, AIPGANConfig
from aipgan_hf.errors import CheckpointError, ConfigError
from aipgan_hf.modeling import AIPGANGenerator

logger = logging.getLogger(__name__)

DEFAULT_MAX_ABS = 1e4
"""Largest weight magnitude :func:`check_state_dict` accepts by default (trained weights stay far below it;
random bytes read as floats do not)."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"duplicate key {duplicates[0]!r}")
    return dict(pairs)


def read_json_object(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON file that must hold one object (a config).

    NaN and Infinity (which Python's ``json`` would accept) and duplicate keys are refused.

    Raises:
        CheckpointError: naming the file, when it is missing or unreadable, not UTF-8, not JSON, or not an object.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except OSError as error:
        raise CheckpointError(f"{path} cannot be read: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CheckpointError(
            f"{path} is not UTF-8 text (byte {error.start} is invalid); is it a config file?"
        ) from None
    try:
        data = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_object)
    except (json.JSONDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object ({{...}}), but holds a {_json_type(data)}")
    return data


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a safetensors file into CPU tensors.

    Raises:
        CheckpointError: naming the file, when it is missing, truncated, or not a safetensors file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupt?): {error}") from None


def _json_type(value: Any) -> str:
    names = {
        list: "list",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
        dict: "object",
    }
    return names.get(type(value), type(value).__name__)


def _matches(value: Any, expected: type | tuple[type, ...]) -> bool:
    """isinstance, except that a bool is not a number and an int is an acceptable float (JSON writes 1.0 as 1)."""
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def check_keys(
    path: str | os.PathLike,
    data: Mapping[str, Any],
    schema: Mapping[str, type | tuple[type, ...]],
    required: Collection[str] = (),
    ignore_prefix: str | None = "_",
) -> None:
    """Check a config's keys against a schema of allowed keys and their types.

    Args:
        path: the file ``data`` was read from (for the message).
        data: the parsed object.
        schema: allowed key -> type or tuple of types (``float`` also accepts ints; ``int`` never accepts a bool).
        required: keys that must be present.
        ignore_prefix: keys starting with this are metadata and not checked (diffusers writes ``_class_name``,
            ``_diffusers_version``); ``None`` checks every key.

    Raises:
        CheckpointError: naming the file and the first unknown, missing or badly typed key.
    """
    for key in data:
        if ignore_prefix and key.startswith(ignore_prefix):
            continue
        if key not in schema:
            allowed = ", ".join(sorted(schema))
            raise CheckpointError(f"{path}: unknown key {key!r} (allowed: {allowed})")
    for key, expected in schema.items():
        if key in data and not _matches(data[key], expected):
            names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
            raise CheckpointError(f"{path}: key {key!r} must be {names}, got {_json_type(data[key])} {data[key]!r:.60}")
    for key in required:
        if key not in data:
            raise CheckpointError(f"{path}: required key {key!r} is missing")


def check_state_dict(
    path: str | os.PathLike,
    state: Mapping[str, torch.Tensor],
    integer_keys: Collection[str] = (),
    max_abs: float | None = DEFAULT_MAX_ABS,
) -> None:
    """Check that every tensor of a weights file holds finite floating-point values of plausible size.

    Args:
        path: the weights file (for the message).
        state: tensor name -> tensor, as read from it.
        integer_keys: tensors allowed to have an integer dtype (e.g. counters).
        max_abs: largest magnitude allowed; ``None`` for no limit.

    Raises:
        CheckpointError: naming the file and the first tensor that is not floating point, holds NaN or
            infinity, or exceeds ``max_abs``.
    """
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{path}: {name!r} is a {type(tensor).__name__}, not a tensor")
        if not tensor.is_floating_point():
            if name in integer_keys and not tensor.is_complex() and tensor.dtype != torch.bool:
                continue
            raise CheckpointError(
                f"{path}: tensor {name!r} has dtype {str(tensor.dtype).removeprefix('torch.')}; weights must be "
                "float32, float16 or bfloat16 (was the file cast or damaged?)"
            )
        if tensor.numel() == 0:
            continue
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise CheckpointError(f"{path}: tensor {name!r} holds {bad:,} NaN or infinite values (damaged weights)")
        largest = float(tensor.detach().abs().max())
        if max_abs is not None and largest > max_abs:
            raise CheckpointError(
                f"{path}: tensor {name!r} holds values up to {largest:.3g}, more than {max_abs:g}: not trained weights"
            )


def check_tensor_shapes(
    path: str | os.PathLike,
    tensors: Mapping[str, torch.Tensor],
    expected: Mapping[str, tuple[int | None, ...]],
    allow_unexpected: bool = False,
) -> None:
    """Check tensor names and shapes against what the model (or the presets) need.

    Args:
        path: the file the tensors came from (for the message).
        tensors: name -> tensor.
        expected: name -> shape; ``None`` in a shape matches any size on that axis.
        allow_unexpected: accept tensors not named in ``expected``.

    Raises:
        CheckpointError: naming the file and listing missing, unexpected and wrongly shaped tensors.
    """
    missing = sorted(set(expected) - set(tensors))
    unexpected = [] if allow_unexpected else sorted(set(tensors) - set(expected))
    wrong = [
        f"{name} {tuple(tensors[name].shape)} (expected {_shape_text(shape)})"
        for name, shape in sorted(expected.items())
        if name in tensors and not _shape_matches(tuple(tensors[name].shape), shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    if unexpected:
        problems.append(
            f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])}{', ...' if len(unexpected) > 3 else ''})"
        )
    if wrong:
        problems.append(f"{len(wrong)} of the wrong shape ({'; '.join(wrong[:3])}{'; ...' if len(wrong) > 3 else ''})")
    if problems:
        raise CheckpointError(f"{path} does not fit: tensors " + ", ".join(problems))


def _shape_matches(shape: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return (
        "(" + ", ".join("any" if size is None else str(size) for size in shape) + ("," if len(shape) == 1 else "") + ")"
    )


def check_number_range(path: str | os.PathLike, data: Mapping[str, Any], key: str, low: float, high: float) -> None:
    """Refuse a numeric config value outside ``[low, high]`` (or not finite), naming the file and the key."""
    value = data.get(key)
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise CheckpointError(f"{path}: key {key!r} is {value!r}, outside the supported range {low:g}..{high:g}")


# --------------------------------------------------------------------------------------------------
# Pipeline folders

BUNDLED_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"
GENERATOR_SUBFOLDER = "generator"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
PROCESSOR_CONFIG_NAME = "processor_config.json"
SUPPORTED_RESOLUTIONS = (64, 256)
"""Smallest and largest crop side the networks are built and tested for."""
PROCESSOR_SCHEMA = {"resolution": int, "min_face_size": (int, float), "max_pixels": int, "detection_size": int}


def weights_filename(variant: str | None) -> str:
    """``diffusion_pytorch_model.safetensors`` or, for a variant, ``diffusion_pytorch_model.<variant>.safetensors``."""
    return WEIGHTS_NAME if not variant else WEIGHTS_NAME.replace(".safetensors", f".{variant}.safetensors")


def _generator_schema() -> dict[str, type | tuple[type, ...]]:
    """Allowed keys of a generator config.json and their JSON types, from AIPGANConfig's fields."""
    kinds = {int: int, float: float, str: str}
    return {
        f.name: kinds.get(type(f.default), list) if f.default is not dataclasses.MISSING else list
        for f in dataclasses.fields(AIPGANConfig)
    }


def read_generator_config(config_path: Path) -> dict[str, Any]:
    """The generator's config.json, checked key by key; a first-version checkpoint is named as such."""
    if not config_path.is_file():
        raise CheckpointError(
            f"no generator config at {config_path}: is {config_path.parent.parent} an aipgan-hf pipeline folder?"
        )
    config = read_json_object(config_path)
    if "architecture" not in config:
        raise CheckpointError(
            f"{config_path} describes a checkpoint of aipgan-hf 0.1 (the appearance-only AIP-GAN, which did not move "
            f"expressions); this version needs an {ARCHITECTURE!r} checkpoint: use the bundled one "
            "(AIPGANPipeline.from_pretrained()) or retrain with training/train.py"
        )
    check_keys(config_path, config, _generator_schema())
    check_number_range(config_path, config, "resolution", *SUPPORTED_RESOLUTIONS)
    return config


def weights_file(subfolder: Path, variant: str | None) -> Path:
    """The weights of ``variant``; with none asked and only the fp16 file there, that one."""
    weights = subfolder / weights_filename(variant)
    if variant is None and not weights.is_file():
        if not (subfolder / weights_filename("fp16")).is_file():
            raise CheckpointError(
                f"no weights in {subfolder}: neither {weights.name} nor {weights_filename('fp16')} exists"
            )
        weights = subfolder / weights_filename("fp16")
    return weights


def load_strict(model: torch.nn.Module, weights: Path, config_path: Path) -> None:
    """Fill ``model`` from a safetensors file in which every tensor must match, or CheckpointError names the file."""
    state = read_safetensors(weights)
    check_state_dict(weights, state)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong_shape:
        raise CheckpointError(
            f"{weights} does not fit the {type(model).__name__} in {config_path}: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
            f"{len(wrong_shape)} of wrong shape (e.g. {wrong_shape[:3]})"
        )
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)


VARIANTS = (None, "fp16")
"""The weights' variants: float32 files, or half-precision ``.fp16.`` ones (diffusers' names)."""


def check_variant(variant: str | None) -> None:
    """ConfigError for a variant this package neither writes nor reads."""
    if variant not in VARIANTS:
        raise ConfigError(f'variant must be None (float32 weights) or "fp16" (half precision), got {variant!r}')


def as_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """A floating dtype from a ``torch.dtype`` or its name ("float16", "torch.bfloat16"); "auto" is float32, the
    fastest on a CPU. ConfigError otherwise."""
    if dtype == "auto":
        return torch.float32
    found = getattr(torch, dtype.removeprefix("torch."), None) if isinstance(dtype, str) else dtype
    if not isinstance(found, torch.dtype) or not found.is_floating_point:
        raise ConfigError(
            f'torch_dtype must be a floating torch dtype (torch.float16, "bfloat16", "auto"), got {dtype!r}'
        )
    return found


def cast(model: torch.nn.Module, dtype: torch.dtype | str) -> None:
    """``model``'s weights in ``dtype`` (:func:`as_dtype`), by nn.Module's cast: diffusers' own warns to use
    ``from_pretrained(torch_dtype=)``, which is what called it."""
    torch.nn.Module.to(model, dtype=as_dtype(dtype))


def save_model(model: torch.nn.Module, folder: Path, variant: str | None = None) -> None:
    """A network's config.json and weights (half precision for the ``"fp16"`` variant) into a new ``folder``, as
    :func:`load_strict` reads them back."""
    check_variant(variant)
    folder.mkdir()
    model.save_config(folder)
    dtype = torch.float16 if variant == "fp16" else torch.float32
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / weights_filename(variant)), metadata={"format": "pt"})


def load_generator(
    folder: str | os.PathLike, variant: str | None = None, dtype: torch.dtype = torch.float32
) -> AIPGANGenerator:
    """Load a generator strictly from ``folder/generator``: every tensor must match, or CheckpointError names the file.

    Args:
        folder: a saved pipeline folder.
        variant: ``None`` for full-precision weights, ``"fp16"`` for ``diffusion_pytorch_model.fp16.safetensors``;
            when ``None`` and only the fp16 file exists, that one is used.
        dtype: dtype of the returned model (weights are cast; float32 is fastest on CPU).
    """
    subfolder = Path(folder) / GENERATOR_SUBFOLDER
    config_path = subfolder / AIPGANGenerator.config_name
    config = read_generator_config(config_path)
    weights = weights_file(subfolder, variant)
    try:
        generator = AIPGANGenerator.from_config(config)
    except (TypeError, ValueError, ConfigError) as error:
        raise CheckpointError(f"{config_path} does not describe an AIPGANGenerator: {error}") from None
    load_strict(generator, weights, config_path)
    if dtype != torch.float32:
        cast(generator, dtype)
    return generator.eval()


def read_processor_settings(folder: Path, resolution: int) -> dict[str, Any]:
    """FaceProcessor keyword arguments from ``processor_config.json`` (optional), checked against the generator."""
    path = Path(folder) / PROCESSOR_CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path} is missing (every saved pipeline has one; was the folder copied in part?)")
    settings = read_json_object(path)
    check_keys(path, settings, PROCESSOR_SCHEMA, ignore_prefix=None)
    for key, low, high in (("min_face_size", 8, 4096), ("max_pixels", 1, 10**9), ("detection_size", 64, 8192)):
        check_number_range(path, settings, key, low, high)
    if settings.get("resolution", resolution) != resolution:
        generator_config = Path(folder) / GENERATOR_SUBFOLDER / AIPGANGenerator.config_name
        raise CheckpointError(
            f"{path}: resolution {settings['resolution']} disagrees with the generator's {resolution} ({generator_config})"
        )
    return {**settings, "resolution": resolution}


def names_a_local_path(text: str) -> bool:
    """Whether a checkpoint's or a dataset's name is a path here rather than a Hub id ("owner/name", or a dataset's
    bare "name"): it starts with '.', '/' or '~', has more than one '/', is there, or its first part is a folder here
    ("runs/pipline", "data_build/x": a Hub id's owner has no folder here)."""
    path = Path(text).expanduser()
    first_part_here = "/" in text and path.parent.is_dir()
    return text.startswith((".", "/", "~")) or text.count("/") > 1 or path.exists() or first_part_here


TRAINING_PIPELINE_SUBFOLDER = "pipeline"
"""Where ``training/train.py`` saves the EMA weights' pipeline inside each ``checkpoint-N`` folder."""


def resolve_folder(path_or_hub_id: str | os.PathLike | None, revision: str | None = None, **hub: Any) -> Path:
    """The bundled checkpoint (None), a local folder, or a Hub snapshot (downloaded only for an 'owner/name' id;
    ``revision`` and ``hub``: ``snapshot_download``'s keywords, unused for a folder here)."""
    if path_or_hub_id is None:
        if revision is not None:
            logger.warning("revision %r is for a Hub id; the bundled checkpoint is loaded as it is", revision)
        return BUNDLED_CHECKPOINT
    if not isinstance(path_or_hub_id, (str, os.PathLike)):
        raise CheckpointError(f"a checkpoint is a folder path or a Hub id, got {type(path_or_hub_id).__name__}")
    path = Path(path_or_hub_id).expanduser()
    if path.is_dir():
        if revision is not None:
            logger.warning("revision %r is for a Hub id; %s is a folder here, loaded as it is", revision, path)
        inner = path / TRAINING_PIPELINE_SUBFOLDER
        if not (path / PROCESSOR_CONFIG_NAME).is_file() and (inner / PROCESSOR_CONFIG_NAME).is_file():
            logger.info("%s is a training checkpoint: loading its pipeline, %s", path, inner)
            return inner
        return path
    text = str(path_or_hub_id)
    if names_a_local_path(text) or "/" not in text:  # a pipeline on the Hub always has an owner
        raise CheckpointError(f"pipeline folder not found: {text} (nor is it a Hub id of the form 'owner/name')")
    try:
        return Path(snapshot_download(text, revision=revision, **hub))
    except Exception as error:  # noqa: BLE001 -- any hub failure becomes one clear message
        raise CheckpointError(f"could not load {text} from the Hugging Face Hub (or its cache): {error}") from None
