"""Tests for aipgan_hf.files: atomic file and folder writes."""

from __future__ import annotations

import os
import stat

import pytest

from aipgan_hf.files import atomic_directory, staged_entries, write_atomically


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


OWNED = ("model", "reader", "README.md")


def _save(folder, names=("model", "README.md")) -> None:
    """A stand-in pipeline save: ``names`` staged (a folder, then files) and moved into ``folder``."""
    with staged_entries(folder, OWNED) as staging:
        for name in names:
            (staging / name).mkdir() if name == "model" else (staging / name).write_text("new")


def _refuse_moving_in(monkeypatch, name: str, times: int = 1) -> None:
    """os.replace fails ``times`` times for ``name`` moved from the staging folder into its folder (the first the
    new entry, the next one the old one put back), as on a full disk."""
    real, refused = os.replace, []

    def replace(source, target):
        into_place = os.path.basename(target) == name and ".staging." not in str(target)
        if into_place and len(refused) < times:
            refused.append(target)
            raise OSError("disk full")
        return real(source, target)

    monkeypatch.setattr(os, "replace", replace)


def test_staged_entries_replace_their_own_and_leave_the_rest(tmp_path):
    folder = tmp_path / "run"
    (folder / "checkpoint-1").mkdir(parents=True)
    (folder / "reader").mkdir()  # owned, not saved again: removed
    (folder / "README.md").write_text("old")
    (folder / ".staging.dead.tmp").mkdir()  # a killed save's
    _save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "checkpoint-1", "model"]
    assert (folder / "README.md").read_text() == "new"


def test_staged_entries_put_everything_back_when_a_move_fails(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "reader").mkdir()
    (folder / "README.md").symlink_to(tmp_path / "nowhere")  # a link that leads nowhere is put back too
    _refuse_moving_in(monkeypatch, "README.md")
    with pytest.raises(OSError, match="disk full"):
        _save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "notes.txt", "reader"]
    assert os.readlink(folder / "README.md") == str(tmp_path / "nowhere")
    _refuse_moving_in(monkeypatch, "model")
    with pytest.raises(OSError, match="disk full"):
        _save(tmp_path / "new")
    assert not (tmp_path / "new").exists(), "a folder the failed save created is removed again"
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        _save(folder / "notes.txt")


def test_staged_entries_keep_the_previous_entries_where_they_cannot_be_put_back(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "weights").write_text("old")
    _refuse_moving_in(monkeypatch, "model", times=2)
    with pytest.raises(OSError, match="its previous files are kept in .*/\\.replaced"):
        _save(folder)
    kept = next(folder.glob(".staging.*.tmp")) / ".replaced" / "model" / "weights"
    assert kept.read_text() == "old"
