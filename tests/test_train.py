"""training/train.py: smoke run through `accelerate launch`, two CPU processes (gloo), SIGKILL + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "training" / "train.py")
SHAPE_MODEL = str(ROOT / "aipgan_hf" / "checkpoints" / "default" / "shape_model.safetensors")
TINY = [
    "--resolution",
    "64",
    "--base_channels",
    "8",
    "--train_batch_size",
    "2",
    "--report_to",
    "none",
    "--num_validation_pairs",
    "2",
    "--dataloader_num_workers",
    "0",
    "--shape_model",
    SHAPE_MODEL,
    "--adversarial_start_step",
    "1",
]


def same_state(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    """The same tensor names, and equal tensors under each (zip over values alone passes when keys are missing)."""
    return first.keys() == second.keys() and all(torch.equal(value, second[name]) for name, value in first.items())


def run(command: list[str], timeout: int = 300, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


def test_accelerate_launch_smoke(face_dataset, tmp_path):
    out = tmp_path / "run"
    result = run(
        [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--num_processes",
            "1",
            "--cpu",
            TRAIN,
            "--dataset_name",
            str(face_dataset),
            "--output_dir",
            str(out),
            "--max_train_steps",
            "2",
            "--checkpointing_steps",
            "2",
            "--validation_steps",
            "2",
            *TINY,
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for path in [
        "checkpoint-2/optimizer.bin",
        "checkpoint-2/optimizer_1.bin",
        "checkpoint-2/custom_checkpoint_0.pkl",
        "checkpoint-2/generator/diffusion_pytorch_model.safetensors",
        "checkpoint-2/discriminator/config.json",
        "checkpoint-2/pipeline/generator/config.json",
        "checkpoint-2/random_states_0.pkl",
        "pipeline/generator/diffusion_pytorch_model.safetensors",
        "pipeline/README.md",
        "pipeline/processor_config.json",
        "pipeline/shape_model.safetensors",
        "validation/step-000002.png",
    ]:
        assert (out / path).is_file(), f"missing {path}"
    from aipgan_hf.checkpoint import load_generator

    generator = load_generator(out / "pipeline")
    assert generator.config.resolution == 64 and generator.config.base_channels == 8


def test_two_cpu_processes_see_different_samples_and_write_one_checkpoint(face_dataset, tmp_path):
    out = tmp_path / "ddp"
    log = tmp_path / "samples"
    result = run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            TRAIN,
            "--dataset_name",
            str(face_dataset),
            "--output_dir",
            str(out),
            "--max_train_steps",
            "2",
            "--checkpointing_steps",
            "2",
            "--validation_steps",
            "0",
            "--sample_log",
            str(log),
            *TINY,
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 processes" in result.stderr
    ranks = [[json.loads(line) for line in Path(f"{log}.rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    assert all(len(steps) == 2 for steps in ranks)
    for step in range(2):
        rows0, rows1 = set(ranks[0][step]["targets"]), set(ranks[1][step]["targets"])
        assert rows0.isdisjoint(rows1), f"step {step}: both ranks drew rows {rows0 & rows1}"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(("checkpoint-", ".checkpoint-"))) == [
        "checkpoint-2"
    ]


def _state(checkpoint: Path) -> dict[str, torch.Tensor]:
    """Generator weights, EMA shadow weights and both optimizers' moments of one checkpoint, flattened."""
    state = {
        f"g.{k}": v for k, v in load_file(checkpoint / "generator" / "diffusion_pytorch_model.safetensors").items()
    }
    ema = torch.load(checkpoint / "custom_checkpoint_0.pkl", weights_only=False)
    state.update({f"ema.{i}": t for i, t in enumerate(ema["shadow_params"])})
    state["ema.step"] = torch.tensor(ema["optimization_step"])
    for name in ("optimizer.bin", "optimizer_1.bin"):
        optimizer = torch.load(checkpoint / name, weights_only=False)
        for index, moments in optimizer["state"].items():
            for key, value in moments.items():
                state[f"{name}.{index}.{key}"] = torch.as_tensor(value)
    return state


def test_sigkill_then_resume_continues_identically(face_dataset, tmp_path):
    common = [
        TRAIN,
        "--dataset_name",
        str(face_dataset),
        "--max_train_steps",
        "8",
        "--checkpointing_steps",
        "2",
        "--checkpoints_total_limit",
        "10",
        "--validation_steps",
        "0",
        *TINY,
    ]
    reference = run([sys.executable, *common, "--output_dir", str(tmp_path / "reference")])
    assert reference.returncode == 0, reference.stderr[-3000:]

    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, *common, "--output_dir", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while not (out / "checkpoint-2").is_dir() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "pipeline").exists()
    saved = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    assert saved and saved[-1] < 8

    resumed = run([sys.executable, *common, "--output_dir", str(out), "--resume_from_checkpoint", "latest"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed from {out / f'checkpoint-{saved[-1]}'} at step {saved[-1]}" in resumed.stderr
    # The state restored at the resume point equals the uninterrupted run's, and so does every later checkpoint.
    for step in [saved[-1], 8]:
        expected, actual = _state(tmp_path / "reference" / f"checkpoint-{step}"), _state(out / f"checkpoint-{step}")
        assert expected.keys() == actual.keys()
        for key in expected:
            assert torch.allclose(expected[key].float(), actual[key].float(), atol=1e-6), f"step {step}: {key} differs"


def short_runs(face_dataset, out: Path):
    """``train(steps, *flags)``: the tiny run in ``out``, one checkpoint per step, up to ``steps``."""
    common = [
        TRAIN,
        "--dataset_name",
        str(face_dataset),
        "--output_dir",
        str(out),
        "--checkpointing_steps",
        "1",
        "--checkpoints_total_limit",
        "10",
        "--validation_steps",
        "0",
        *TINY,
    ]
    return lambda steps, *flags: run([sys.executable, *common, "--max_train_steps", str(steps), *flags])


def test_learning_rates_given_on_resume_replace_the_saved_ones(face_dataset, tmp_path):
    out = tmp_path / "run"
    train = short_runs(face_dataset, out)
    first = train(1, "--learning_rate", "2e-4")
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = train(
        2, "--resume_from_checkpoint", "latest", "--learning_rate", "5e-5", "--discriminator_learning_rate", "3e-5"
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "learning rate 0.0002 -> 5e-05 (the flag's)" in resumed.stderr
    again = train(3, "--resume_from_checkpoint", "latest")  # no rate flags: the checkpoint's rates go on
    assert again.returncode == 0, again.stderr[-3000:]
    for step in (2, 3):
        for name, rate in (("optimizer.bin", 5e-5), ("optimizer_1.bin", 3e-5)):
            saved = torch.load(out / f"checkpoint-{step}" / name, weights_only=False)
            assert [group["lr"] for group in saved["param_groups"]] == [rate]


def test_a_run_from_before_the_mouth_critic_resumes_without_it(face_dataset, tmp_path):
    out = tmp_path / "run"
    train = short_runs(face_dataset, out)
    first = train(1, "--mouth_crop_size", "0")
    assert first.returncode == 0, first.stderr[-3000:]
    config = out / "checkpoint-1" / "discriminator" / "config.json"
    settings = json.loads(config.read_text())
    del settings["mouth_crop_size"]  # as written before the mouth critic existed
    config.write_text(json.dumps(settings))
    clash = train(2, "--resume_from_checkpoint", "latest", "--mouth_crop_size", "16")
    assert clash.returncode != 0 and "was trained with --mouth_crop_size 0" in clash.stderr
    resumed = train(2, "--resume_from_checkpoint", "latest")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((out / "checkpoint-2" / "discriminator" / "config.json").read_text())["mouth_crop_size"] == 0


def saved_checkpoint(
    folder: Path, discriminator_layers: int = 3
) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    """A training-checkpoint-like folder (generator/, discriminator/ without a mouth critic, pipeline/ with an EMA
    generator that differs from the raw one), at the sizes `create_models` builds for --resolution 64 --base_channels 8."""
    from aipgan_hf import AIPGANConfig, AIPGANDiscriminator, AIPGANGenerator
    from aipgan_hf.motion import ShapeModel
    from aipgan_hf.pipeline import AIPGANPipeline

    config = AIPGANConfig(resolution=64, base_channels=8, discriminator_layers=discriminator_layers)
    torch.manual_seed(1)
    raw, ema = AIPGANGenerator(**config.to_dict()), AIPGANGenerator(**config.to_dict())
    critics = AIPGANDiscriminator.from_aipgan_config(config)
    raw.save_pretrained(folder / "generator")
    critics.save_pretrained(folder / "discriminator")
    AIPGANPipeline(ema, shape_model=ShapeModel.load(SHAPE_MODEL)).save_pretrained(folder / "pipeline")
    return raw, ema, critics


def test_loss_weight_flags_fill_the_loss_weights():
    """Each LossWeights field has its ``--<name>_weight`` flag, defaulting to the field's default."""
    import dataclasses

    from aipgan_hf.losses import LossWeights
    from training.options import parse_args

    args = parse_args(
        ["--dataset_name", "unused", "--shape_model", SHAPE_MODEL, "--mask_weight", "0.25", "--adversarial_weight", "0"]
    )
    assert args.loss_weights == dataclasses.replace(LossWeights(), mask=0.25, adversarial=0.0)
    assert args.mask_weight == 0.25  # the flat value the trackers log


def test_init_from_a_checkpoint_keeps_its_weights_and_adds_a_fresh_mouth_critic(tmp_path):
    from accelerate import PartialState

    from training.options import parse_args
    from training.train import create_models

    PartialState()  # accelerate's logger needs it

    raw, ema_generator, critics = saved_checkpoint(tmp_path / "checkpoint-700")
    args = parse_args(
        [
            "--dataset_name",
            "unused",
            "--shape_model",
            SHAPE_MODEL,
            "--resolution",
            "64",
            "--base_channels",
            "8",
            "--init_from",
            str(tmp_path / "checkpoint-700"),
            "--mouth_crop_size",
            "16",
        ]
    )
    generator, discriminator, ema = create_models(args)
    assert same_state(generator.state_dict(), raw.state_dict())
    names = [name for name, _ in generator.named_parameters()]
    assert len(ema.shadow_params) == len(names)  # the EMA keeps one shadow per parameter, in parameter order
    shadow = dict(zip(names, ema.shadow_params))
    assert same_state(shadow, dict(ema_generator.named_parameters()))
    assert not same_state(shadow, dict(raw.named_parameters()))
    assert ema.optimization_step == 700  # the EMA keeps its decay
    saved = critics.state_dict()
    kept = {key: value for key, value in discriminator.state_dict().items() if not key.startswith("mouth.")}
    assert same_state(kept, saved)
    assert discriminator.mouth is not None and discriminator.config.mouth_crop_size == 16


def test_init_from_a_checkpoint_whose_critics_do_not_fit_stops(tmp_path):
    from accelerate import PartialState

    from training.options import parse_args
    from training.train import create_models

    PartialState()

    saved_checkpoint(tmp_path / "checkpoint-5", discriminator_layers=2)
    args = parse_args(
        [
            "--dataset_name",
            "unused",
            "--shape_model",
            SHAPE_MODEL,
            "--resolution",
            "64",
            "--base_channels",
            "8",
            "--init_from",
            str(tmp_path / "checkpoint-5"),
        ]
    )
    with pytest.raises(SystemExit, match="does not fit this discriminator"):
        create_models(args)


def tiny_args(face_dataset, out: Path, *flags: str) -> list[str]:
    """train.py's argv for a one-step tiny run in ``out``."""
    return ["--dataset_name", str(face_dataset), "--output_dir", str(out), "--max_train_steps", "1", *TINY, *flags]


def test_a_new_run_into_another_runs_checkpoints_is_refused_before_any_work(face_dataset, tmp_path):
    from training.train import main

    out = tmp_path / "run"
    (out / "checkpoint-20").mkdir(parents=True)  # another run's: rotation would delete it, then step 20 collides
    with pytest.raises(SystemExit, match="already holds checkpoints of another run .*--resume_from_checkpoint latest"):
        main(tiny_args(face_dataset, out, "--validation_steps", "0"))
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-20"]


def test_checkpointing_steps_must_be_positive(capsys):
    from training.options import parse_args

    with pytest.raises(SystemExit) as stopped:
        parse_args(["--dataset_name", "unused", "--shape_model", SHAPE_MODEL, "--checkpointing_steps", "0"])
    assert stopped.value.code == 2
    assert "--checkpointing_steps must be at least 1" in capsys.readouterr().err


def test_a_missing_dataset_folder_is_named_and_leaves_no_output_folder(tmp_path):
    from aipgan_hf.errors import ConfigError
    from training.train import main

    out = tmp_path / "new-run"
    with pytest.raises(ConfigError, match="dataset folder not found: ./no/such/corpus"):
        main(["--dataset_name", "./no/such/corpus", "--output_dir", str(out), *TINY])
    assert not out.exists()


@pytest.mark.parametrize(("flag", "trained", "given"), [("base_channels", 8, 16), ("resolution", 64, 128)])
def test_a_resume_with_another_architecture_stops_with_one_line(face_dataset, tmp_path, flag, trained, given):
    from training.train import main

    out = tmp_path / "run"
    saved_checkpoint(out / "checkpoint-3")  # resolution 64, base_channels 8
    argv = tiny_args(face_dataset, out, "--resume_from_checkpoint", "latest", f"--{flag}", str(given))
    with pytest.raises(SystemExit, match=f"was trained with --{flag} {trained}, not {given}: resume with that"):
        main(argv)


def test_a_run_stopped_by_its_data_leaves_no_output_folder(face_dataset, tmp_path):
    """The corpus is there but has no train split: the run stops after building its models, and has written
    nothing."""
    import shutil

    from aipgan_hf.errors import ConfigError
    from training.train import main

    corpus = tmp_path / "test-only"
    (corpus / "data").mkdir(parents=True)
    for shard in (face_dataset / "data").glob("train-*.parquet"):  # the same rows, as a test split
        shutil.copy(shard, corpus / "data" / shard.name.replace("train-", "test-"))
    out = tmp_path / "new-run"
    with pytest.raises(ConfigError, match="has no split 'train'"):
        main(["--dataset_name", str(corpus), "--output_dir", str(out), *TINY])
    assert not out.exists()


def test_a_corpus_without_validation_split_warns_that_training_people_validate(face_dataset, tmp_path, caplog):
    import shutil

    from accelerate import PartialState

    from training.options import parse_args
    from training.train import load_splits

    PartialState()
    corpus = tmp_path / "train-only"
    (corpus / "data").mkdir(parents=True)
    for shard in (face_dataset / "data").glob("train-*.parquet"):
        shutil.copy(shard, corpus / "data" / shard.name)
    args = parse_args(["--dataset_name", str(corpus), "--shape_model", SHAPE_MODEL, "--resolution", "64"])
    with caplog.at_level("WARNING"):
        pairs, validation = load_splits(args)
    assert len(validation) == len(pairs)  # the training rows stand in
    assert "no validation split: validating on the training people" in caplog.text
