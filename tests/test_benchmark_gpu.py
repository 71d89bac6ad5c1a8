"""benchmarks/benchmark_gpu.py runs anywhere: CPU figures always, GPU figures only with CUDA."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "benchmark_gpu.py"


@pytest.fixture(scope="module")
def benchmark_gpu():
    spec = importlib.util.spec_from_file_location("benchmark_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from aipgan_hf import AIPGANConfig, AIPGANGenerator
    from aipgan_hf.pipeline import AIPGANPipeline

    config = AIPGANConfig(resolution=64, base_channels=4, channel_multipliers=[1, 2, 2], intrinsic_channels=4)
    return AIPGANPipeline(AIPGANGenerator(**config.to_dict())).save_pretrained(tmp_path_factory.mktemp("ckpt") / "tiny")


def test_flop_count_matches_a_hand_count(benchmark_gpu):
    """The counter's convention (2 FLOPs per multiply-add) on a model whose FLOPs are known exactly."""

    class OneConv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("Config", (), {"resolution": 8})()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)

        def forward(self, target, target_landmarks, driving_landmarks, flow, return_intrinsic=True):
            return self.conv(target)  # landmarks and flow are inputs, not computed here

    assert benchmark_gpu.flops_per_transfer(OneConv(), 8) == 2 * (3 * 9) * 4 * 8 * 8


def test_cpu_figures_and_clean_exit_without_cuda(benchmark_gpu, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "gpu.json"
    figures = benchmark_gpu.main(
        [
            "--checkpoint",
            str(tiny_checkpoint),
            "--cpu_batch_size",
            "2",
            "--seconds",
            "0.2",
            "--batch_size",
            "4",
            "--json",
            str(out),
        ]
    )
    assert figures["resolution"] == 64
    assert figures["gflops_per_transfer"] > 0
    assert figures["cpu transfers/s (fp32 eager)"] > 0
    assert json.loads(out.read_text()) == figures
    printed = capsys.readouterr().out
    assert "| cpu transfers/s (fp32 eager) |" in printed
    if torch.cuda.is_available():
        assert 0 < figures["gpu share of bf16 peak (best)"] < 1
    else:
        assert "CUDA is not available" in printed and figures["gpu"].startswith("none")
