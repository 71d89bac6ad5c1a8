"""The face-detector seam (aipgan_hf.faces.detector): another detector plugs into FaceProcessor, and through it
into the pipeline, with no dlib search; a detector in another landmark scheme is refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from aipgan_hf.errors import ConfigError, FaceTooSmallError, NoFaceError
from aipgan_hf.faces import DetectedFace, DlibFaceDetector, FaceProcessor, LandmarkDetector
from aipgan_hf.landmarks import LANDMARK_SCHEME


class GivenFaces:
    """A stand-in detector that answers with the faces it was given and records what it was asked."""

    scheme = LANDMARK_SCHEME

    def __init__(self, faces: list[DetectedFace]) -> None:
        self.faces = faces
        self.calls: list[str] = []

    def find(self, rgb: np.ndarray, detection_size: int, grey: Image.Image | None = None) -> list[DetectedFace]:
        self.calls.append("find")
        return list(self.faces)

    def find_largest(
        self, rgb: np.ndarray, detection_size: int, limit: int, grey: Image.Image | None = None
    ) -> DetectedFace | None:
        self.calls.append("find_largest")
        return None  # no quick look: the processor must fall back to find

    def fit_landmarks(self, rgb: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
        self.calls.append("fit_landmarks")
        return self.faces[0].landmarks


@pytest.fixture(scope="module")
def astronaut_face(astronaut) -> DetectedFace:
    """dlib's full-search answer for the astronaut: the faces the stand-in detector hands back."""
    return FaceProcessor().find_faces(astronaut)[0]


@pytest.fixture
def no_dlib(monkeypatch):
    """Any use of dlib's face search fails the test."""
    for name in ("find", "find_largest", "fit_landmarks"):
        monkeypatch.setattr(DlibFaceDetector, name, lambda *args, **kwargs: pytest.fail("dlib's search ran"))


def test_dlib_is_the_default_detector_and_fits_the_interface():
    processor = FaceProcessor()
    assert isinstance(processor.face_detector, DlibFaceDetector) and processor.face_detector.scheme == LANDMARK_SCHEME
    detector: LandmarkDetector = DlibFaceDetector()  # type-checks as the interface
    assert callable(detector.find) and callable(detector.find_largest) and callable(detector.fit_landmarks)


def test_a_plugged_in_detector_aligns_as_dlib_does_from_the_same_landmarks(astronaut, astronaut_face, no_dlib):
    detector = GivenFaces([astronaut_face])
    processor = FaceProcessor(detector=detector)
    aligned = processor.align(astronaut)
    assert detector.calls == ["find_largest", "find"]
    np.testing.assert_array_equal(aligned.landmarks, astronaut_face.landmarks)
    reference = FaceProcessor().align_with_landmarks(astronaut, astronaut_face.landmarks, astronaut_face.box)
    np.testing.assert_array_equal(aligned.crop, reference.crop)
    np.testing.assert_array_equal(processor.landmarks68(astronaut, astronaut_face.box), astronaut_face.landmarks)
    assert [face.box for face in processor.find_faces(astronaut)] == [astronaut_face.box]


def test_a_plugged_in_detector_gets_the_processor_s_checks(astronaut, astronaut_face, no_dlib):
    with pytest.raises(NoFaceError):
        FaceProcessor(detector=GivenFaces([])).align(astronaut)
    small = DetectedFace((10.0, 10.0, 30.0, 30.0), astronaut_face.landmarks, "given")
    with pytest.raises(FaceTooSmallError):
        FaceProcessor(detector=GivenFaces([small])).align(astronaut)


def test_a_detector_in_another_landmark_scheme_is_refused():
    class FivePoints(GivenFaces):
        scheme = "five-points"

    with pytest.raises(ConfigError, match="five-points.*ibug-68"):
        FaceProcessor(detector=FivePoints([]))
    with pytest.raises(ConfigError, match="None"):
        FaceProcessor(detector=object())  # type: ignore[arg-type]  # no scheme at all


def test_the_pipeline_runs_on_a_plugged_in_detector(astronaut, astronaut_face, no_dlib):
    """Nothing in motion/ or the networks changes: the pipeline takes the processor as it is."""
    from aipgan_hf.pipeline import AIPGANPipeline

    bundled = AIPGANPipeline.from_pretrained()
    pipe = AIPGANPipeline(
        bundled.generator, FaceProcessor(detector=GivenFaces([astronaut_face])), shape_model=bundled.shape_model
    )
    result = pipe(astronaut, expression=pipe.expressions[0])
    np.testing.assert_array_equal(result.target_landmarks, astronaut_face.landmarks)
    assert result.image.size == (astronaut.shape[1], astronaut.shape[0])
    assert not np.array_equal(np.asarray(result.image), astronaut)  # the expression changed the face
