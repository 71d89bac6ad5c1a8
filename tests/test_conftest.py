"""The CI rule in conftest.py: with AIPGAN_REQUIRE_PACKAGES=1 a test skipped for a missing package fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = """
import pytest

def test_needs_a_missing_package():
    pytest.importorskip("aipgan_no_such_package")

def test_skipped_for_another_reason():
    pytest.skip("needs a GPU")

def test_passes():
    pass
"""


def _run(folder: Path, require: bool) -> subprocess.CompletedProcess:
    environment = {**os.environ, "AIPGAN_REQUIRE_PACKAGES": "1" if require else "0"}
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-c", os.devnull, str(folder)]
    return subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def suite(tmp_path) -> Path:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(TESTS)
    return tmp_path


def test_missing_package_skips_fail_when_packages_are_required(suite):
    completed = _run(suite, require=True)
    assert completed.returncode == 1, completed.stdout
    assert "1 failed, 1 passed, 1 skipped" in completed.stdout, completed.stdout
    assert "skipped for a missing package: could not import 'aipgan_no_such_package'" in completed.stdout


def test_a_module_skipped_for_a_missing_package_stops_the_run(suite):
    (suite / "test_module_level.py").write_text('import pytest\npytest.importorskip("aipgan_no_such_package")\n')
    completed = _run(suite, require=True)
    assert completed.returncode == 2, completed.stdout  # a collection error: pytest stops, CI fails
    assert "ERROR collecting test_module_level.py" in completed.stdout
    assert "skipped for a missing package" in completed.stdout


def test_without_the_switch_they_stay_skips(suite):
    (suite / "test_module_level.py").write_text('import pytest\npytest.importorskip("aipgan_no_such_package")\n')
    completed = _run(suite, require=False)
    assert completed.returncode == 0, completed.stdout
    assert "1 passed, 3 skipped" in completed.stdout, completed.stdout
