"""ruff's lint rules and its formatter (pyproject.toml's [tool.ruff]) hold over the whole tree; CI runs both here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing_to_complain_about():
    checked = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_ruff_format_finds_nothing_to_reformat():
    checked = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--no-cache", "."],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
