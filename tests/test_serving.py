"""aipgan_hf.serving: the pipeline pool, the model card's status line, example inputs."""

from __future__ import annotations

import threading

import torch

from aipgan_hf.configuration import AIPGANConfig
from aipgan_hf.modeling import AIPGANGenerator
from aipgan_hf.pipeline import AIPGANPipeline
from aipgan_hf.serving import PipelinePool, extra_examples, model_status


def test_model_status_is_the_cards_bold_line():
    card = "---\nlicense: mit\ntags: ['**x**']\n---\n\n# Title\n\n**UNTRAINED**: noise.\n\nMore text.\n"
    assert model_status(card) == "**UNTRAINED**: noise."
    assert model_status("---\na: 1\n---\n# Title\nplain\n") == ""


def test_pool_copies_share_the_generator_but_not_the_face_processor():
    torch.manual_seed(0)
    pipeline = AIPGANPipeline(AIPGANGenerator(**AIPGANConfig(resolution=64, base_channels=8).to_dict()))
    pool = PipelinePool(pipeline, 2)
    with pool.borrow() as first, pool.borrow() as second:
        assert first is pipeline and second is not first
        assert second.generator is first.generator and second.processor is not first.processor
    borrowed = []
    with pool.borrow():  # a third request waits until one is given back
        waiter = threading.Thread(target=lambda: borrowed.extend([pool.borrow().__enter__()]))
        with pool.borrow():
            waiter.start()
            waiter.join(timeout=0.2)
            assert waiter.is_alive() and not borrowed
    waiter.join(timeout=5)
    assert borrowed


def test_extra_examples_are_the_files_with_the_suffixes(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.MP4").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert extra_examples(str(tmp_path), (".png",)) == [tmp_path / "a.png"]
    assert extra_examples(str(tmp_path), (".mp4",)) == [tmp_path / "b.MP4"]
    assert extra_examples(None, (".png",)) == [] and extra_examples(str(tmp_path / "missing"), (".png",)) == []
