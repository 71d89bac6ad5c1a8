"""Atomic writes: a reader (or a process killed half-way) never sees half a file or half a folder; and a folder's own
entries replaced one by one, the rest of it left alone (:func:`staged_entries`).

The helpers write beside the destination, or inside it (same file system, so the renames are atomic), and give the
result ordinary permissions (``0666`` / ``0777`` less the umask), not the ``0600`` / ``0700`` of temporary files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


def _umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux: /proc/self/status);
    elsewhere set and restored at once, which another thread creating a file at that moment could see."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_atomically(path: str | os.PathLike, data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it into place.

    Args:
        path: destination file; its folder is created when missing. An existing file is replaced.
        data: the complete contents.
        durable: flush the data to the disk before the rename (``fsync``), so that a power cut leaves the old file
            or the new one. False keeps only the atomicity for readers: for caches whose loss costs nothing.

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


@contextlib.contextmanager
def atomic_directory(destination: str | os.PathLike) -> Iterator[Path]:
    """Build a folder under a temporary name beside ``destination`` and rename it into place on success.

    On an exception inside the ``with`` block the temporary folder is removed and ``destination`` is left as
    it was. An existing ``destination`` is replaced: it is first renamed aside, then removed once the new
    folder is in place (if that rename fails, the old folder is put back).

    Example::

        with atomic_directory("runs/checkpoint-200") as staging:
            (staging / "weights.safetensors").write_bytes(data)

    Yields:
        The temporary folder to fill.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent))
    try:
        yield staging
        _apply_umask(staging)
        _replace_directory(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


STAGING_PREFIX = ".staging."
"""The temporary folder :func:`staged_entries` builds inside its destination (one a killed save left behind holds only
the owned entries of that save, old or new, and is removed by the next)."""


@contextlib.contextmanager
def staged_entries(destination: str | os.PathLike, owned: Iterable[str]) -> Iterator[Path]:
    """Build some entries of a folder under a temporary name inside it, then move them in on success: a file or
    folder of the same name is replaced, any other ``owned`` name is removed, and everything else in the folder is
    left alone (a pipeline saved into a training run's folder keeps its checkpoints and logs).

    Each entry moves in atomically, the set of them one by one: on an exception inside the ``with`` block, or while
    moving, the entries already moved go back (a folder the save created is removed again). Where even that fails,
    the previous entries are kept in the temporary folder, and the error says where.

    Raises:
        NotADirectoryError: ``destination`` is a file.

    Yields:
        The temporary folder to fill (its entries' names must be among ``owned``).
    """
    destination = Path(destination)
    if destination.exists() and not destination.is_dir():
        raise NotADirectoryError(f"{destination} is a file, not a folder")
    created = not destination.exists()
    destination.mkdir(parents=True, exist_ok=True)
    for stale in destination.glob(f"{STAGING_PREFIX}*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, suffix=".tmp", dir=destination))
    try:
        yield staging
        _apply_umask(staging)
        new = sorted(entry.name for entry in staging.iterdir())
        if set(new) - set(owned):
            raise ValueError(f"staged entries {sorted(set(new) - set(owned))} are not among the owned names")
        _swap_entries(staging, destination, sorted(set(owned)), new)
    except BaseException:
        if not _holds_previous_entries(staging):
            shutil.rmtree(staging, ignore_errors=True)
            if created:
                with contextlib.suppress(OSError):
                    destination.rmdir()  # only where nothing else was put there meanwhile
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _swap_entries(staging: Path, destination: Path, owned: list[str], new: list[str]) -> None:
    """The ``owned`` entries of ``destination`` moved aside (into ``staging``), the ``new`` ones of ``staging`` moved
    in; on a failure the moved ones go back."""
    aside = staging / ".replaced"
    aside.mkdir()
    moved_aside: list[str] = []
    moved_in: list[str] = []
    try:
        for name in owned:
            if os.path.lexists(destination / name):  # a link too, even one that leads nowhere
                os.replace(destination / name, aside / name)
                moved_aside.append(name)
        for name in new:
            os.replace(staging / name, destination / name)
            moved_in.append(name)
    except BaseException as error:
        try:
            for name in moved_in:
                os.replace(destination / name, staging / name)
            for name in moved_aside:
                os.replace(aside / name, destination / name)
        except OSError:
            raise OSError(
                f"saving into {destination} failed ({error}); its previous files are kept in {aside}"
            ) from error
        raise


def _holds_previous_entries(staging: Path) -> bool:
    aside = staging / ".replaced"
    return aside.is_dir() and any(aside.iterdir())


def _apply_umask(folder: Path) -> None:
    umask = _umask()
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _replace_directory(staging: Path, destination: Path) -> None:
    if not destination.exists():
        os.replace(staging, destination)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".old", dir=destination.parent))
    os.replace(destination, old / destination.name)
    try:
        os.replace(staging, destination)
    except BaseException:
        os.replace(old / destination.name, destination)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
