"""Shared fixtures: public-domain faces that ship in wheels, the ../shared/data switch, and the CI rule that a
test skipped for a missing package fails instead (AIPGAN_REQUIRE_PACKAGES=1)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("AIPGAN_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
REQUIRE_DATA = os.environ.get("AIPGAN_REQUIRE_DATA", "") == "1"
REQUIRE_PACKAGES = os.environ.get("AIPGAN_REQUIRE_PACKAGES", "") == "1"
MISSING_PACKAGE = re.compile(r"could not import|no module named|not installed|pip install", re.IGNORECASE)
"""Skip reasons that mean a package is missing (pytest.importorskip says "could not import 'x'")."""


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _fail_missing_package_skip(report) -> None:
    """With AIPGAN_REQUIRE_PACKAGES=1, a skip for a missing package becomes a failure (CI installs everything)."""
    if REQUIRE_PACKAGES and report.skipped and MISSING_PACKAGE.search(_skip_reason(report)):
        reason = _skip_reason(report)
        report.outcome = "failed"
        report.longrepr = f"AIPGAN_REQUIRE_PACKAGES=1 but this was skipped for a missing package: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_missing_package_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield  # a module-level pytest.importorskip skips the whole module while it is collected
    _fail_missing_package_skip(outcome.get_result())


def pytest_collection_modifyitems(config, items):
    """Tests marked ``data`` (which use the ``data_dir`` fixture) skip without ../shared/data, unless CI requires it."""
    if DATA_DIR.is_dir() or REQUIRE_DATA:
        return  # with REQUIRE_DATA the `data_dir` fixture fails the test instead
    for item in items:
        if "data" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"needs the face data at {DATA_DIR}"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        if REQUIRE_DATA:
            pytest.fail(f"AIPGAN_REQUIRE_DATA=1 but {DATA_DIR} is missing")
        pytest.skip(f"needs the face data at {DATA_DIR}")
    return DATA_DIR


BUILT_DATASET = PROJECT_ROOT / "data_build" / "aipgan-faces-128"


@pytest.fixture(scope="session")
def built_dataset(data_dir: Path) -> Path:
    """The dataset ``training/prepare_dataset.py`` builds from the face data, at data_build/aipgan-faces-128: used
    where it is built; built there first where the data is required (CI: about 5 minutes on 2 cores, then cached);
    else skipped."""
    if not BUILT_DATASET.is_dir():
        if not REQUIRE_DATA:
            pytest.skip(f"needs the built dataset at {BUILT_DATASET} (training/prepare_dataset.py)")
        from training import prepare_dataset

        prepare_dataset.main(["--data_dir", str(data_dir), "--output_dir", str(BUILT_DATASET)])
    return BUILT_DATASET


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """Eileen Collins, NASA portrait (public domain), 512x512 RGB uint8."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """Grace Hopper portrait (public domain), 600x512 RGB uint8, from matplotlib's sample data."""
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        return np.asarray(Image.open(f).convert("RGB"))


@pytest.fixture(scope="session")
def two_faces(astronaut, grace_hopper) -> np.ndarray:
    """Hopper (face about 135 px) left of the astronaut (about 88 px) on a 640x480 grey canvas."""
    from PIL import Image

    canvas = np.full((480, 640, 3), 200, np.uint8)
    canvas[0:375, 0:320] = np.asarray(Image.fromarray(grace_hopper).resize((320, 375)))
    canvas[50:350, 360:610] = astronaut[0:300, 100:350]
    return canvas


@pytest.fixture(scope="session")
def ballooned():
    """``ballooned(model, amount)``: a shape model's mean face (crop pixels) with its jaw line pushed out from the
    nose by ``amount`` of its distance and its lower jaw (points 5-11) down by half that (a negative amount pulls them
    in and up): what a face seen from below or close to the lens (from above, far from it) looks like to one photo's
    expression estimate."""

    def face(model, amount: float) -> np.ndarray:
        points = model.mean.copy()
        points[:17] += amount * (points[:17] - points[27:36].mean(axis=0))
        points[5:12, 1] += amount * 0.5
        return points * 60 + 64

    return face


@pytest.fixture(scope="session")
def smiling_clip(tmp_path_factory) -> Path:
    """The astronaut (public domain, smiling in every frame) moving a few pixels a frame: 12 frames at 24 fps, with
    a tone for audio (the video benchmark's synthetic clip)."""
    from benchmarks import benchmark_animate as bench

    return bench.write_clip(tmp_path_factory.mktemp("clip") / "smiling.mp4", bench.astronaut_frames(12), fps=24)


def _variants(face: np.ndarray, count: int, seed: int) -> list[np.ndarray]:
    """Photometric and small geometric variants of one photo (flip, brightness, shift)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        image = face[:, ::-1] if k % 2 else face
        image = np.clip(image.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-15, 15), 0, 255).astype(
            np.uint8
        )
        dy, dx = rng.integers(-8, 9, size=2)
        out.append(np.roll(image, (int(dy), int(dx)), axis=(0, 1)))
    return out


@pytest.fixture(scope="session")
def face_dataset(tmp_path_factory, astronaut, grace_hopper) -> Path:
    """A tiny dataset built by training/prepare_dataset.py from the wheel faces: 8 'people' (tinted variants of
    the two faces), 4 photos each, 64-px crops, split 50/25/25 by identity."""
    from PIL import Image

    from training.prepare_dataset import main as prepare

    root = tmp_path_factory.mktemp("faces")
    photos = root / "photos"
    for person in range(8):
        face = (astronaut, grace_hopper)[person % 2]
        tint = np.array([1.0, 1.0, 1.0]) + 0.08 * np.array([person % 3 - 1, (person // 3) % 3 - 1, 0])
        face = np.clip(face.astype(np.float32) * tint, 0, 255).astype(np.uint8)
        folder = photos / f"person{person}"
        folder.mkdir(parents=True)
        for k, image in enumerate(_variants(face, 4, seed=person)):
            Image.fromarray(image).save(folder / f"{k}.jpg", quality=92)
    output = root / "dataset"
    prepare(
        [
            "--image_folder",
            str(photos),
            "--output_dir",
            str(output),
            "--resolution",
            "64",
            "--split_fractions",
            "0.5",
            "0.25",
            "0.25",
            "--num_workers",
            "1",
        ]
    )
    return output
