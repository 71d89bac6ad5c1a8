"""Start-up checks and warnings of the training scripts: export_checkpoint's output folder and emotion reader,
fit_shape_model's calibration, and how a --dataset_name is told from a Hub id."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest

from aipgan_hf.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "aipgan_hf" / "checkpoints" / "default"


def test_export_needs_an_output_folder(tmp_path, capsys):
    from training.export_checkpoint import main

    with pytest.raises(SystemExit) as stopped:  # before anything is loaded: the shipped folder is never the default
        main(["--pipeline", str(tmp_path / "no-pipeline")])
    assert stopped.value.code == 2
    assert "--output_dir" in capsys.readouterr().err


def test_export_warns_without_an_emotion_reader_and_carries_one_over_when_asked(tmp_path, caplog):
    import torch

    from aipgan_hf.motion.emotion import EmotionReader
    from training.export_checkpoint import main

    with caplog.at_level(logging.WARNING, logger="training.export_checkpoint"):
        bare = main(["--untrained", "--resolution", "64", "--output_dir", str(tmp_path / "bare")])
    assert EmotionReader.load(bare) is None
    assert "will not read the source's emotion" in caplog.text and "--emotion_reader" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="training.export_checkpoint"):
        argv = ["--untrained", "--resolution", "64", "--output_dir", str(tmp_path / "read"), "--emotion_reader"]
        folder = main([*argv, str(SHIPPED)])
    assert "emotion" not in caplog.text
    shipped, carried = EmotionReader.load(SHIPPED).state_dict(), EmotionReader.load(folder).state_dict()
    assert shipped.keys() == carried.keys() and all(torch.equal(shipped[k], carried[k]) for k in shipped)


def test_export_refuses_an_emotion_reader_folder_without_one(tmp_path, capsys):
    from training.export_checkpoint import main

    with pytest.raises(SystemExit):
        main(["--untrained", "--output_dir", str(tmp_path / "out"), "--emotion_reader", str(tmp_path)])
    assert "has no emotion_reader/ folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_calibration_warns_when_its_pairs_are_few_or_a_gain_is_capped(caplog):
    from training.fit_shape_model import MIN_CALIBRATION_PAIRS, warn_about_calibration

    with caplog.at_level(logging.INFO, logger="training.fit_shape_model"):
        warn_about_calibration(1661, np.array([1.0, 1.2, 1.7, 2.9, 2.2]), 4.0)  # the full corpus's validation split
    assert "1661 held-out pairs" in caplog.text
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="training.fit_shape_model"):
        warn_about_calibration(16, np.array([1.0, 1.69, 4.0, 1.69, 1.53]), 4.0)  # the review's 9-person corpus
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "only 16 pairs" in warnings[0] and str(MIN_CALIBRATION_PAIRS) in warnings[0]
    assert "corner_lift reached --max_slope_gain 4" in warnings[1]
    assert "--calibration_split ''" in warnings[1] and "lower --max_slope_gain" in warnings[1]


def train_only_corpus(folder: Path) -> Path:
    """A parquet dataset folder with a train split alone."""
    import datasets

    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_dict({"identity": ["a", "b"]}).to_parquet(
        str(folder / "data" / "train-00000-of-00001.parquet")
    )
    return folder


def test_a_missing_calibration_split_names_the_splits_there_are(tmp_path):
    from training.fit_shape_model import load_columns

    corpus = train_only_corpus(tmp_path / "corpus")
    with pytest.raises(ConfigError, match="has no split 'validation'; it has: train"):
        load_columns(str(corpus), "validation")


def test_a_mistyped_local_dataset_folder_is_not_looked_up_on_the_hub(tmp_path, monkeypatch):
    from training.fit_shape_model import load_columns

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data_build").mkdir()
    for name in ("data_build/aipgan-faces-12", "./corpus", str(tmp_path / "corpus"), "runs/a/b"):
        with pytest.raises(ConfigError, match=f"dataset folder not found: {re.escape(name)}"):
            load_columns(name)


def test_hub_ids_are_not_taken_for_local_folders(tmp_path, monkeypatch):
    from training.pairs import check_dataset_name

    monkeypatch.chdir(tmp_path)
    for hub_id in ("someone/aipgan-faces", "mnist"):  # no folder "someone" here: left to the Hub
        check_dataset_name(hub_id)


def test_a_name_neither_here_nor_on_the_hub_is_one_line(tmp_path, monkeypatch):
    import datasets

    from training.pairs import load_corpus

    def unreachable(name, *args, **kwargs):
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(ConfigError, match="dataset not found: someone/corpus is no folder here, and the Hub says"):
        load_corpus("someone/corpus")
