"""Tests for aipgan_hf.files: atomic file and folder writes."""

from __future__ import annotations

import os
import stat

import pytest

from aipgan_hf.files import atomic_directory, write_atomically


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_write_atomically_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "out.png"
    assert write_atomically(path, b"first") == path
    write_atomically(path, b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.png"]
    assert _mode(path) == 0o666 & ~_umask()  # ordinary permissions, not mkstemp's 0600


def test_write_atomically_syncs_to_disk_unless_told_it_is_a_cache(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(os, "fsync", lambda descriptor: synced.append(descriptor))
    write_atomically(tmp_path / "kept.bin", b"data")
    assert len(synced) == 1
    write_atomically(tmp_path / "cache.bin", b"data", durable=False)
    assert len(synced) == 1 and (tmp_path / "cache.bin").read_bytes() == b"data"


def test_write_atomically_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomically(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_atomic_directory_appears_whole_or_not_at_all(tmp_path):
    destination = tmp_path / "checkpoint-200"
    with atomic_directory(destination) as staging:
        assert not destination.exists() and staging.parent == tmp_path
        (staging / "nested").mkdir()
        (staging / "nested" / "weights.bin").write_bytes(b"w")
    assert (destination / "nested" / "weights.bin").read_bytes() == b"w"
    assert _mode(destination) == 0o777 & ~_umask()
    assert _mode(destination / "nested" / "weights.bin") == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-200"]


def test_atomic_directory_replaces_an_existing_folder(tmp_path):
    destination = tmp_path / "pipeline"
    destination.mkdir()
    (destination / "old.txt").write_text("old")
    with atomic_directory(destination) as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in destination.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["pipeline"]


def test_atomic_directory_cleans_up_and_keeps_the_old_folder_on_error(tmp_path):
    destination = tmp_path / "pipeline"
    destination.mkdir()
    (destination / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_directory(destination) as staging:
            (staging / "half.txt").write_text("half")
            raise RuntimeError("killed half-way")
    assert [p.name for p in destination.iterdir()] == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["pipeline"]
