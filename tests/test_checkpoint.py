"""Tests for aipgan_hf.checkpoint, and a generator of damaged copies of a checkpoint folder.

``corruption_cases(folder)`` lists damaged variants of every JSON and safetensors file in a folder (configs as
a JSON list, as non-UTF-8 bytes, with an unknown key, a bad type, NaN, duplicate keys, out-of-range
resolutions; weights truncated, random, with NaN / inf / random tensor data, cast to int8, with a tensor
missing, added or of the wrong shape; files deleted). Point it at a real pipeline folder to test a loader:

    @pytest.mark.parametrize("case", corruption_cases(BUNDLED_CHECKPOINT), ids=lambda case: case.name)
    def test_damaged_checkpoint(tmp_path, case):
        folder = case.apply(BUNDLED_CHECKPOINT, tmp_path / "copy")
        with pytest.raises(CheckpointError, match=names_file(case.file)):
            AIPGANPipeline.from_pretrained(folder)

Here it runs the real loaders on a tiny generator's pipeline folder and on the shipped checkpoint.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from aipgan_hf.checkpoint import (
    BUNDLED_CHECKPOINT,
    GENERATOR_SUBFOLDER,
    PROCESSOR_CONFIG_NAME,
    check_keys,
    check_number_range,
    check_state_dict,
    check_tensor_shapes,
    load_generator,
    read_json_object,
    read_processor_settings,
    read_safetensors,
    weights_filename,
)
from aipgan_hf.compositing.exemplar import MOUTH_EXEMPLAR_NAME
from aipgan_hf.configuration import AIPGANConfig
from aipgan_hf.errors import CheckpointError
from aipgan_hf.modeling import AIPGANGenerator
from aipgan_hf.pipeline import AIPGANPipeline

# ------------------------------------------------------------------------------------------------ the generator

BAD_VALUES: Mapping[str, tuple[Any, ...]] = {"resolution": (64, 256, 2**20)}
"""Values of named config keys that a loader must refuse: they parse, but do not fit the weights or the presets."""


@dataclass(frozen=True)
class Corruption:
    """One damaged copy of a checkpoint folder.

    Attributes:
        name: "<file>: <what is wrong>".
        file: the damaged file, relative to the folder (the loader's message should name it).
        damage: changes a copy of the folder in place.
    """

    name: str
    file: str
    damage: Callable[[Path], None]

    def apply(self, source: Path, destination: Path) -> Path:
        """Copy ``source`` to ``destination``, damage the copy, return it."""
        shutil.copytree(source, destination)
        self.damage(destination)
        return destination


def _writer(file: str, content: bytes | None) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        if content is None:
            (folder / file).unlink()
        else:
            (folder / file).write_bytes(content)

    return damage


def _json_cases(file: str, data: dict[str, Any]) -> list[Corruption]:
    text = json.dumps(data, indent=2)
    numeric = [
        k for k, v in data.items() if not k.startswith("_") and isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    first = numeric[0] if numeric else next(iter(data), "resolution")
    variants: list[tuple[str, bytes | None]] = [
        ("a JSON list", json.dumps(list(data.values())).encode()),
        ("not UTF-8", text.encode("utf-16")),
        ("not JSON", text[: len(text) // 2].encode()),
        ("empty", b""),
        ("an unknown key", json.dumps({**data, "surprise_setting": 1}).encode()),
        (f"{first} as a string", json.dumps({**data, first: "128"}).encode()),
        (f"{first} as a boolean", json.dumps({**data, first: True}).encode()),
        (f"{first} NaN", json.dumps({**data, first: float("nan")}).encode()),
        ("a duplicate key", text.replace("{", "{\n" + f'  "{first}": 1,', 1).encode()),
        ("deleted", None),
    ]
    for key, values in BAD_VALUES.items():
        if key in data:
            variants += [(f"{key} {value}", json.dumps({**data, key: value}).encode()) for value in values]
    return [Corruption(f"{file}: {what}", file, _writer(file, content)) for what, content in variants]


def _tensor_writer(
    file: str, change: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        path = folder / file
        save_file({k: v.contiguous() for k, v in change(load_file(str(path))).items()}, str(path))

    return damage


def _replace(state: dict[str, torch.Tensor], name: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    return {**state, name: tensor}


def _random_like(tensor: torch.Tensor, seed: int) -> torch.Tensor:
    """The tensor's bytes replaced by random bytes (what a damaged disk block reads as)."""
    raw = np.random.default_rng(seed).integers(0, 256, tensor.numel() * tensor.element_size(), dtype=np.uint8)
    return torch.from_numpy(raw).view(tensor.dtype).reshape(tensor.shape).clone()


def _safetensors_cases(file: str, state: dict[str, torch.Tensor], seed: int) -> list[Corruption]:
    floats = [k for k, v in state.items() if v.is_floating_point() and v.numel() > 0]
    largest = max(floats, key=lambda k: state[k].numel())
    shaped = next(k for k in floats if state[k].ndim >= 1)

    def byte_damage(what: str, change: Callable[[bytes], bytes]) -> Corruption:
        def damage(folder: Path) -> None:
            path = folder / file
            path.write_bytes(change(path.read_bytes()))

        return Corruption(f"{file}: {what}", file, damage)

    def nan_at(value: float) -> Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        def change(s: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            tensor = s[largest].clone()
            tensor.view(-1)[0] = value
            return _replace(s, largest, tensor)

        return change

    tensor_changes: list[tuple[str, Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]]] = [
        (f"NaN in {largest}", nan_at(float("nan"))),
        (f"inf in {largest}", nan_at(float("-inf"))),
        (f"random data in {largest}", lambda s: _replace(s, largest, _random_like(s[largest], seed))),
        (
            "weights cast to int8",
            lambda s: {k: (v.to(torch.int8) if v.is_floating_point() else v) for k, v in s.items()},
        ),
        (f"{shaped} missing", lambda s: {k: v for k, v in s.items() if k != shaped}),
        ("an unexpected tensor", lambda s: {**s, "surprise.weight": torch.zeros(3)}),
        (f"{shaped} of the wrong shape", lambda s: _replace(s, shaped, torch.cat([s[shaped], s[shaped]]))),
    ]
    cases = [Corruption(f"{file}: {what}", file, _tensor_writer(file, change)) for what, change in tensor_changes]
    cases += [
        byte_damage("truncated to half", lambda b: b[: len(b) // 2]),
        byte_damage("truncated inside its header", lambda b: b[:20]),
        byte_damage("random bytes", lambda b: np.random.default_rng(seed).bytes(len(b))),
        byte_damage("empty", lambda b: b""),
        Corruption(f"{file}: deleted", file, _writer(file, None)),
    ]
    return cases


def corruption_cases(folder: Path, seed: int = 0) -> list[Corruption]:
    """Damaged variants of every ``*.json`` and ``*.safetensors`` file under ``folder``, in path order.

    Args:
        folder: a checkpoint folder (not changed: each case damages a copy, see :meth:`Corruption.apply`).
        seed: for the random bytes.
    """
    cases = []
    for path in sorted(folder.rglob("*")):
        file = path.relative_to(folder).as_posix()
        if path.suffix == ".json":
            cases += _json_cases(file, json.loads(path.read_text()))
        elif path.suffix == ".safetensors":
            cases += _safetensors_cases(file, load_file(str(path)), seed)
    return cases


# ------------------------------------------------------------------------------------------------ a tiny checkpoint

TINY_CONFIG = AIPGANConfig(resolution=128, base_channels=4, channel_multipliers=[1, 2, 4], intrinsic_channels=4)


def build_tiny_checkpoint(folder: Path) -> Path:
    """A pipeline folder as the real loaders read it, with a generator of a few kilobytes: ``generator/``
    (config.json and weights) and ``processor_config.json`` (the shipped settings)."""
    torch.manual_seed(0)
    AIPGANGenerator(**TINY_CONFIG.to_dict()).save_pretrained(folder / GENERATOR_SUBFOLDER)
    shutil.copy(BUNDLED_CHECKPOINT / PROCESSOR_CONFIG_NAME, folder / PROCESSOR_CONFIG_NAME)
    return folder


# built at import: the parametrisation below needs the case list before any fixture exists
_TINY_ROOT = Path(tempfile.mkdtemp(prefix="aipgan-tiny-checkpoint-"))
atexit.register(shutil.rmtree, _TINY_ROOT, True)
TINY_CHECKPOINT = build_tiny_checkpoint(_TINY_ROOT / "checkpoint")


def load_checkpoint(folder: Path) -> tuple[AIPGANGenerator, dict[str, Any]]:
    """The generator and face-processor settings, read by aipgan_hf.checkpoint's loaders as
    ``AIPGANPipeline.from_pretrained`` calls them."""
    generator = load_generator(folder)
    return generator, read_processor_settings(folder, generator.config.resolution)


def names_file(file: str) -> str:
    """A pattern for a message naming ``file``: its name after a separator or a space, so that
    ``processor_config.json`` does not count as naming a ``config.json``."""
    return r"(^|[\\/\s])" + re.escape(Path(file).name)


def test_the_tiny_checkpoint_loads_strictly():
    generator, settings = load_checkpoint(TINY_CHECKPOINT)
    assert generator.aipgan_config == TINY_CONFIG and settings["resolution"] == 128
    saved = load_file(str(TINY_CHECKPOINT / GENERATOR_SUBFOLDER / weights_filename(None)))
    loaded = generator.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[name], loaded[name]) for name in saved)


def test_corruption_cases_cover_every_file():
    cases = corruption_cases(TINY_CHECKPOINT)
    files = {case.file for case in cases}
    assert files == {"generator/config.json", "processor_config.json", "generator/diffusion_pytorch_model.safetensors"}
    assert len({case.name for case in cases}) == len(cases) == 2 * 10 + 2 * 3 + 12
    assert any("JSON list" in case.name for case in cases) and any("int8" in case.name for case in cases)


@pytest.mark.parametrize("case", corruption_cases(TINY_CHECKPOINT), ids=lambda case: case.name)
def test_every_damaged_copy_raises_a_checkpoint_error_naming_the_file(tmp_path, case):
    folder = case.apply(TINY_CHECKPOINT, tmp_path / "copy")
    with pytest.raises(CheckpointError, match=names_file(case.file)) as caught:
        load_checkpoint(folder)
    assert "\n" not in str(caught.value)


# ------------------------------------------------------------------------------------------------ the helpers


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"a": 1}', None),
        (b"[1, 2]", "must hold a JSON object"),
        (b'"text"', "holds a string"),
        ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
        (b'{"a": NaN}', "not valid JSON.*NaN"),
        (b'{"a": Infinity}', "not valid JSON"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'{"a": ', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_read_json_object(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    if message is None:
        assert read_json_object(path) == {"a": 1}
        return
    with pytest.raises(CheckpointError, match=message) as caught:
        read_json_object(path)
    assert str(path) in str(caught.value)


def test_read_json_object_missing_or_unreadable(tmp_path):
    with pytest.raises(CheckpointError, match="missing.json is missing"):
        read_json_object(tmp_path / "missing.json")
    with pytest.raises(CheckpointError, match="cannot be read"):
        read_json_object(tmp_path)  # a directory


SCHEMA = {"resolution": int, "scale": float, "name": str, "sizes": (list, tuple), "flag": bool}


@pytest.mark.parametrize(
    "data, message",
    [
        ({"resolution": 128, "scale": 1, "name": "x", "sizes": [1], "flag": False, "_class_name": "G"}, None),
        ({"resolution": 128, "surprise": 1}, "unknown key 'surprise'"),
        ({"resolution": "128"}, "key 'resolution' must be int, got string '128'"),
        ({"resolution": True}, "key 'resolution' must be int, got boolean"),
        ({"resolution": 128.0}, "key 'resolution' must be int, got number"),
        ({"scale": "1"}, "key 'scale' must be float"),
        ({"sizes": {"a": 1}}, "key 'sizes' must be list or tuple, got object"),
        ({"flag": 1}, "key 'flag' must be bool"),
        ({"name": None}, "key 'name' must be str, got null"),
        ({}, "required key 'resolution' is missing"),
    ],
)
def test_check_keys(data, message):
    if message is None:
        check_keys("config.json", data, SCHEMA, required=["resolution"])
        return
    with pytest.raises(CheckpointError, match=re.escape(message)) as caught:
        check_keys("config.json", data, SCHEMA, required=["resolution"])
    assert str(caught.value).startswith("config.json: ")


def test_check_keys_can_check_metadata_keys_too():
    with pytest.raises(CheckpointError, match="unknown key '_class_name'"):
        check_keys("config.json", {"_class_name": "G"}, SCHEMA, ignore_prefix=None)


@pytest.mark.parametrize(
    "tensor, message",
    [
        (torch.randn(3, 3), None),
        (torch.randn(3, 3).half(), None),
        (torch.randn(3, 3).bfloat16(), None),
        (torch.zeros(0), None),
        (torch.tensor([1.0, float("nan"), float("nan")]), "'w' holds 2 NaN or infinite values"),
        (torch.tensor([1.0, float("inf")]).half(), "'w' holds 1 NaN or infinite values"),
        (torch.tensor([1.0, 3e5]), "values up to 3e\\+05, more than 10000"),
        (torch.ones(3, dtype=torch.int8), "'w' has dtype int8; weights must be float"),
        (torch.ones(3, dtype=torch.bool), "dtype bool"),
        (torch.ones(3, dtype=torch.complex64), "dtype complex64"),
    ],
)
def test_check_state_dict(tensor, message):
    state = {"ok": torch.ones(2), "w": tensor}
    if message is None:
        check_state_dict("weights.safetensors", state)
        return
    with pytest.raises(CheckpointError, match=message) as caught:
        check_state_dict("weights.safetensors", state)
    assert str(caught.value).startswith("weights.safetensors: tensor 'w'")


def test_check_state_dict_options():
    check_state_dict("w.safetensors", {"steps": torch.tensor([5], dtype=torch.int64)}, integer_keys={"steps"})
    with pytest.raises(CheckpointError, match="dtype bool"):
        check_state_dict("w.safetensors", {"steps": torch.tensor([True])}, integer_keys={"steps"})
    check_state_dict("w.safetensors", {"w": torch.tensor([3e5])}, max_abs=None)
    with pytest.raises(CheckpointError, match="is a list, not a tensor"):
        check_state_dict("w.safetensors", {"w": [1.0]})  # type: ignore[dict-item]


def test_check_tensor_shapes():
    tensors = {"a": torch.zeros(4, 3), "b": torch.zeros(4), "c": torch.zeros(2, 5)}
    check_tensor_shapes("p.safetensors", tensors, {"a": (4, 3), "b": (4,), "c": (None, 5)})
    check_tensor_shapes("p.safetensors", tensors, {"a": (4, 3)}, allow_unexpected=True)
    with pytest.raises(CheckpointError, match=r"p.safetensors does not fit: tensors 1 missing \(d\)"):
        check_tensor_shapes("p.safetensors", tensors, {"a": (4, 3), "b": (4,), "c": (2, 5), "d": (1,)})
    with pytest.raises(CheckpointError, match=r"2 unexpected \(b, c\)"):
        check_tensor_shapes("p.safetensors", tensors, {"a": (4, 3)})
    with pytest.raises(CheckpointError, match=r"1 of the wrong shape \(b \(4,\) \(expected \(8,\)\)\)"):
        check_tensor_shapes("p.safetensors", tensors, {"a": (4, 3), "b": (8,), "c": (2, 5)})
    with pytest.raises(CheckpointError, match=r"a \(4, 3\) \(expected \(4, 3, any\)\)"):
        check_tensor_shapes("p.safetensors", tensors, {"a": (4, 3, None), "b": (4,), "c": (2, 5)})


@pytest.mark.parametrize("value", [8, 2**20, -1, True, "64", float("nan")])
def test_check_number_range_refuses(value):
    with pytest.raises(
        CheckpointError, match="config.json: key 'resolution' is .*outside the supported range 16..1024"
    ):
        check_number_range("config.json", {"resolution": value}, "resolution", 16, 1024)


def test_check_number_range_accepts():
    check_number_range("config.json", {"resolution": 128}, "resolution", 16, 1024)
    check_number_range("config.json", {}, "resolution", 16, 1024)  # absence is check_keys' business


def test_read_safetensors(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.ones(2)}, str(path))
    assert read_safetensors(path)["w"].tolist() == [1.0, 1.0]
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(CheckpointError, match="weights.safetensors is not a readable safetensors file"):
        read_safetensors(path)
    with pytest.raises(CheckpointError, match="missing.safetensors is missing"):
        read_safetensors(tmp_path / "missing.safetensors")


# --------------------------------------------------------------------------------------------------
# The real loader on damaged copies of the shipped checkpoint


@pytest.mark.parametrize("case", corruption_cases(BUNDLED_CHECKPOINT), ids=lambda case: case.name)
def test_damaged_copies_of_the_shipped_checkpoint_are_refused_naming_the_file(tmp_path, case):
    folder = case.apply(BUNDLED_CHECKPOINT, tmp_path / "copy")
    if case.name == f"{MOUTH_EXEMPLAR_NAME}: deleted":  # optional (a 0.3.0 folder has none): presets lend no teeth
        assert AIPGANPipeline.from_pretrained(folder).mouth_exemplar is None
        return
    with pytest.raises(CheckpointError, match=names_file(case.file)):
        AIPGANPipeline.from_pretrained(folder)


def test_a_local_path_never_reaches_the_hub(tmp_path, monkeypatch):
    monkeypatch.setattr("aipgan_hf.checkpoint.snapshot_download", lambda *a, **k: pytest.fail("network call"))
    for path in (tmp_path / "missing", "./relative/missing", "/abs/missing/folder"):
        with pytest.raises(CheckpointError, match="pipeline folder not found"):
            AIPGANPipeline.from_pretrained(path)
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="pipeline folder not found: runs/pipline "):
        AIPGANPipeline.from_pretrained("runs/pipline")  # reads as 'owner/name', but runs/ is a local folder
    folder = tmp_path / "list"
    shutil.copytree(BUNDLED_CHECKPOINT, folder)
    (folder / "generator" / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="config.json"):
        AIPGANPipeline.from_pretrained(folder)


def test_a_training_checkpoint_loads_the_pipeline_it_holds(tmp_path):
    checkpoint = tmp_path / "checkpoint-30"
    (checkpoint / "discriminator").mkdir(parents=True)
    shutil.copytree(BUNDLED_CHECKPOINT, checkpoint / "pipeline")
    loaded = AIPGANPipeline.from_pretrained(checkpoint)
    bundled = AIPGANPipeline.from_pretrained()
    for name, value in bundled.generator.state_dict().items():
        assert torch.equal(loaded.generator.state_dict()[name], value), name
