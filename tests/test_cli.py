"""Tests for the ``aipgan`` command line, run as a user would: ``python -m aipgan_hf.cli`` in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from aipgan_hf.cli import main
from aipgan_hf.motion.emotion import EmotionRead, EmotionReader
from aipgan_hf.provenance import edit_description
from benchmarks import benchmark_animate as bench

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aipgan_hf.cli", *map(str, args)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut, grace_hopper) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    paths = {
        "astronaut": folder / "astronaut.png",
        "grace": folder / "grace hopper.jpg",  # a space in the name on purpose
        "noise": folder / "noise.png",
        "text": folder / "notes.jpg",
    }
    Image.fromarray(astronaut).save(paths["astronaut"])
    Image.fromarray(grace_hopper).save(paths["grace"], quality=95)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(paths["noise"])
    paths["text"].write_text("not a photo\n")
    paths["clip"] = bench.write_clip(folder / "clip.mp4", bench.astronaut_frames(12), fps=24)
    paths["voice"] = bench.write_clip(folder / "voice.m4a", [], audio_hz=300.0)
    return paths


def assert_single_error_line(completed: subprocess.CompletedProcess) -> str:
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in completed.stderr
    return lines[0]


def test_transfer_writes_an_image_of_the_target_size(photos, grace_hopper, tmp_path):
    output = tmp_path / "result.png"
    completed = run_cli("transfer", "--source", photos["astronaut"], "--target", photos["grace"], "--output", output)
    assert completed.returncode == 0, completed.stderr
    # the astronaut's smile is read, and the user is told so on one line (stdout stays the results')
    assert completed.stderr.startswith("The source reads as happiness (") and completed.stderr.count("\n") == 1
    with Image.open(output) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == (grace_hopper.shape[1], grace_hopper.shape[0])
        result = np.asarray(image)
    # the face changed, the border of the photo did not (JPEG input: compare against its decoded pixels)
    target = np.asarray(Image.open(photos["grace"]).convert("RGB"))
    assert np.abs(result[200:350, 200:330].astype(int) - target[200:350, 200:330].astype(int)).mean() > 1.0
    np.testing.assert_array_equal(result[:40], target[:40])
    assert list(tmp_path.iterdir()) == [output]  # no temporary files left behind
    with Image.open(output) as image:
        assert "aipgan-hf" in edit_description(image) and "expression transfer" in edit_description(image)
    umask = os.umask(0)
    os.umask(umask)
    assert output.stat().st_mode & 0o777 == 0o666 & ~umask, (
        "ordinary permissions, as any program saves (not mkstemp's 0600)"
    )


def test_transfer_wears_a_named_source_emotion_and_refuses_an_unknown_one(photos, tmp_path, capsys, monkeypatch):
    output = tmp_path / "named.png"
    args = ["transfer", "--source", str(photos["astronaut"]), "--target", str(photos["grace"]), "--output"]
    assert main([*args, str(output), "--source-emotion", "sadness", "--no-paste-back"]) == 0
    assert capsys.readouterr().err == "The target wears sadness, as named for the source\n"
    assert main([*args, str(tmp_path / "read.png"), "--no-paste-back"]) == 0
    assert not np.array_equal(np.asarray(Image.open(output)), np.asarray(Image.open(tmp_path / "read.png")))
    capsys.readouterr()
    monkeypatch.setattr(EmotionReader, "read", lambda self, crops: [EmotionRead("fear", 0.3)])
    assert main([*args, str(tmp_path / "unsure.png"), "--no-paste-back"]) == 0
    unsure = capsys.readouterr().err
    assert unsure.startswith("The reader is not sure of the source's emotion (at most fear, 30%)")
    assert unsure.endswith("(--source-emotion to name it)\n") and unsure.count("\n") == 1
    unknown = run_cli(*args, tmp_path / "joy.png", "--source-emotion", "joy")
    line = assert_single_error_line(unknown)
    assert "unknown --source-emotion 'joy'" in line and "happiness" in line
    both = run_cli(*args, tmp_path / "both.png", "--source-emotion", "anger", "--no-read-emotion")
    assert "--no-read-emotion: not allowed with argument --source-emotion" in assert_single_error_line(both)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["named.png", "read.png", "unsure.png"]


def test_transfer_replaces_the_target_s_expression_when_asked(photos, tmp_path, capsys):
    # the astronaut given her own smile: added (the default) it doubles, replaced it is about hers
    from aipgan_hf.faces import FaceProcessor

    args = ["transfer", "--source", str(photos["astronaut"]), "--target", str(photos["astronaut"]), "--no-paste-back"]
    assert main([*args, "--output", str(tmp_path / "added.png")]) == 0
    assert "astronaut.png: The target photo already smiles, and keeps its smile" in capsys.readouterr().err
    assert main([*args, "--output", str(tmp_path / "replaced.png"), "--replace-target-expression"]) == 0
    assert "already smiles" not in capsys.readouterr().err
    own = np.asarray(FaceProcessor().align(photos["astronaut"]).crop, dtype=float)
    added, replaced = (np.asarray(Image.open(tmp_path / name), dtype=float) for name in ("added.png", "replaced.png"))
    assert np.abs(replaced - own).mean() < 0.7 * np.abs(added - own).mean()


def test_transfer_without_paste_back_writes_the_face_crop(photos, tmp_path, capsys):
    output = tmp_path / "face.jpg"
    status = main(
        [
            "transfer",
            "--source",
            str(photos["grace"]),
            "--target",
            str(photos["astronaut"]),
            "--output",
            str(output),
            "--no-paste-back",
            "--strength",
            "0.5",
            "--identity-mix",
            "0.2",
            "--face-index",
            "0",
            "--source-face-index",
            "0",
            "--source-reference",
            str(photos["astronaut"]),
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"wrote {output}" in captured.out
    assert "reads as" not in captured.err  # her smile, beside a neutral reference, is the exact change
    with Image.open(output) as image:
        assert image.format == "JPEG"
        assert image.width == image.height and image.width in (64, 128, 256)
        assert "expression transfer" in edit_description(image)


def test_transfer_mouth_choice(photos, tmp_path, capsys):
    """--mouth own keeps the source's pixels out: the astronaut's teeth are not put in Hopper's opened mouth."""
    outputs = {mouth: tmp_path / f"{mouth}.png" for mouth in ("source", "own")}
    for mouth, output in outputs.items():
        assert (
            main(
                [
                    "transfer",
                    "--source",
                    str(photos["astronaut"]),
                    "--target",
                    str(photos["grace"]),
                    "--output",
                    str(output),
                    "--mouth",
                    mouth,
                ]
            )
            == 0
        ), capsys.readouterr().err
    source, own = (np.asarray(Image.open(outputs[mouth]), dtype=int) for mouth in ("source", "own"))
    assert (np.abs(source - own).max(axis=2) > 40).sum() > 200  # the opened mouth's inside, not one pixel
    presets = {mouth: tmp_path / f"preset-{mouth}.png" for mouth in ("source", "own")}
    for mouth, output in presets.items():  # a preset borrows the checkpoint's exemplar mouth unless --mouth own
        assert (
            main(
                [
                    "synthesize",
                    "--target",
                    str(photos["grace"]),
                    "--expression",
                    "surprise",
                    "--output",
                    str(output),
                    "--mouth",
                    mouth,
                ]
            )
            == 0
        ), capsys.readouterr().err
    source, own = (np.asarray(Image.open(presets[mouth]), dtype=int) for mouth in ("source", "own"))
    assert (np.abs(source - own).max(axis=2) > 40).sum() > 200


BAD_RUNS = [
    # (id, run in a subprocess (else in-process through main()), arguments with {placeholders}, message part)
    (
        "missing source",
        True,
        ["--source", "{missing}", "--target", "{grace}", "--output", "{out}"],
        "source file not found",
    ),
    ("target is text", True, ["--source", "{astronaut}", "--target", "{text}", "--output", "{out}"], "not an image"),
    ("no face in source", True, ["--source", "{noise}", "--target", "{grace}", "--output", "{out}"], "no face found"),
    (
        "overwrite an input",
        True,
        ["--source", "{astronaut}", "--target", "{grace}", "--output", "{grace}"],
        "refusing to overwrite",
    ),
    (
        "source is a directory",
        False,
        ["--source", "{folder}", "--target", "{grace}", "--output", "{out}"],
        "not a file",
    ),
    (
        "face index out of range",
        False,
        ["--source", "{astronaut}", "--target", "{grace}", "--output", "{out}", "--face-index", "3"],
        "face index 3",
    ),
    (
        "strength out of range",
        False,
        ["--source", "{astronaut}", "--target", "{grace}", "--output", "{out}", "--strength", "9"],
        "between 0.0 and 1.5",
    ),
    (
        "strength not a number",
        False,
        ["--source", "{astronaut}", "--target", "{grace}", "--output", "{out}", "--strength", "lots"],
        "invalid float value",
    ),
    (
        "unknown output format",
        False,
        ["--source", "{astronaut}", "--target", "{grace}", "--output", "{folder}/result.xyz"],
        "output format",
    ),
    (
        "output is a folder",
        False,
        ["--source", "{astronaut}", "--target", "{grace}", "--output", "{folder}"],
        "output is a folder",
    ),
    (
        "output folder missing",
        False,
        ["--source", "{astronaut}", "--target", "{grace}", "--output", "{folder}/no/such/out.png"],
        "does not exist",
    ),
    (
        "output under a file",
        False,
        ["--source", "{astronaut}", "--target", "{grace}", "--output", "{text}/out.png"],
        "does not exist",
    ),
    ("missing --target", False, ["--source", "{astronaut}", "--output", "{out}"], "--target"),
    (
        "missing source reference",
        False,
        ["--source", "{astronaut}", "--target", "{grace}", "--output", "{out}", "--source-reference", "{missing}"],
        "source reference file not found",
    ),
    (
        "a reference and the target's expression replaced",
        False,
        ["--source", "{astronaut}", "--target", "{grace}", "--output", "{out}", "--source-reference", "{grace}"]
        + ["--replace-target-expression"],
        "not allowed with argument --source-reference",
    ),
    (
        "no face in source reference",
        False,
        ["--source", "{astronaut}", "--target", "{grace}", "--output", "{out}", "--source-reference", "{noise}"],
        "neutral photo: no face found",
    ),
    (
        "bad checkpoint",
        False,
        ["--source", "{astronaut}", "--target", "{grace}", "--output", "{out}", "--checkpoint", "{folder}"],
        "config",
    ),
]


@pytest.mark.parametrize(
    "via_subprocess, arguments, message", [case[1:] for case in BAD_RUNS], ids=[case[0] for case in BAD_RUNS]
)
def test_bad_input_exits_2_with_one_error_line(photos, tmp_path, capsys, via_subprocess, arguments, message):
    output = tmp_path / "out.png"
    output.write_bytes(b"previous result")  # a failure must not destroy an existing output
    names = {key: str(path) for key, path in photos.items()}
    names.update(missing=str(tmp_path / "missing.jpg"), folder=str(tmp_path), out=str(output))
    argv = ["transfer", *(argument.format(**names) for argument in arguments)]
    if via_subprocess:
        completed = run_cli(*argv)
    else:  # same code path without paying the interpreter start-up again
        status = main(argv)
        captured = capsys.readouterr()
        completed = subprocess.CompletedProcess(argv, status, captured.out, captured.err)
    line = assert_single_error_line(completed)
    assert message in line
    assert output.read_bytes() == b"previous result"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.png"]  # nothing else written


def test_no_subcommand_is_an_error():
    assert "COMMAND" in assert_single_error_line(run_cli())


def _in_process(argv: list[str], capsys) -> subprocess.CompletedProcess:
    status = main(argv)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(argv, status, captured.out, captured.err)


def test_synthesize_writes_a_preset_expression(photos, tmp_path, capsys):
    from aipgan_hf.pipeline import AIPGANPipeline

    expression = AIPGANPipeline.from_pretrained().expressions[0]
    output = tmp_path / "happy.webp"
    completed = _in_process(
        [
            "synthesize",
            "--target",
            str(photos["astronaut"]),
            "--expression",
            expression,
            "--output",
            str(output),
            "--strength",
            "1.2",
        ],
        capsys,
    )
    assert completed.returncode == 0, completed.stderr
    assert f"wrote {output} (512x512)" in completed.stdout
    with Image.open(output) as image:
        assert image.format == "WEBP" and image.size == (512, 512)
        assert f"preset expression: {expression}" in edit_description(image)


def test_a_photo_with_several_faces_says_which_was_used(photos, two_faces, tmp_path, capsys):
    group = tmp_path / "two.png"
    Image.fromarray(two_faces).save(group)
    arguments = ["transfer", "--source", str(group), "--target", str(group), "--no-read-emotion"]
    completed = _in_process([*arguments, "--face-index", "1", "--output", str(tmp_path / "out.png")], capsys)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.splitlines() == [
        "two.png: 2 faces were found in the target photo; number 1 (0 is the largest) was used (from left to right: "
        "0, 1) (--face-index N picks another)",
        "two.png: The target photo already smiles, and keeps its smile under the source's expression "
        "(--replace-target-expression takes it away first; best on a frontal portrait)",  # face 1 is the astronaut
        "2 faces were found in the source photo; the largest was used (from left to right: 0, 1) "
        "(--source-face-index N picks another)",
    ]
    alone = ["synthesize", "--target", str(photos["astronaut"]), "--expression", "happiness"]
    completed = _in_process([*alone, "--output", str(tmp_path / "alone.png")], capsys)
    assert completed.returncode == 0 and completed.stderr == ""


def test_a_result_keeps_its_targets_colour_profile(photos, grace_hopper, tmp_path, capsys):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    target = tmp_path / "phone.jpg"
    Image.fromarray(grace_hopper).save(target, quality=95, icc_profile=profile)
    for output in (tmp_path / "out.jpg", tmp_path / "out.png", tmp_path / "out.webp"):
        args = ["synthesize", "--target", str(target), "--expression", "sadness", "--output", str(output)]
        assert _in_process(args, capsys).returncode == 0
        with Image.open(output) as image:
            assert image.info.get("icc_profile") == profile, output.suffix


def test_a_bmp_result_says_it_carries_no_edited_label(photos, tmp_path, capsys):
    output = tmp_path / "sad.bmp"
    args = ["synthesize", "--target", str(photos["astronaut"]), "--expression", "sadness", "--output", str(output)]
    completed = _in_process(args, capsys)
    assert completed.returncode == 0 and "BMP has no field to say it is edited" in completed.stdout
    with Image.open(output) as image:
        assert image.format == "BMP" and edit_description(image) is None


def test_a_folder_of_targets_gives_one_result_each_and_skips_a_bad_photo(photos, tmp_path, capsys, monkeypatch):
    folder, results = tmp_path / "targets", tmp_path / "results"
    folder.mkdir()
    shutil.copy(photos["astronaut"], folder / "astronaut.png")
    shutil.copy(photos["grace"], folder / "grace.jpg")
    shutil.copy(photos["text"], folder / "broken.jpg")
    Image.open(photos["astronaut"]).save(folder / "palette.gif")  # read, though results are never GIFs
    (folder / "notes.txt").write_text("not a photo, and not named like one: not a target")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # tqdm draws its bar only on a terminal
    completed = _in_process(
        [
            "synthesize",
            "--target",
            str(folder),
            "--expression",
            "surprise",
            "--output",
            str(results),
            "--format",
            "png",
        ],
        capsys,
    )
    assert completed.returncode == 2, completed.stderr
    assert sorted(path.name for path in results.iterdir()) == ["astronaut.png", "grace.png", "palette.png"]
    assert f"skipped {folder / 'broken.jpg'}: " in completed.stderr and "not an image" in completed.stderr
    assert "4/4" in completed.stderr, "no progress bar"
    assert completed.stderr.strip().splitlines()[-1] == "error: 1 of 4 targets skipped: broken.jpg"
    assert "wrote 3 of 4 results to" in completed.stdout
    single = tmp_path / "single.png"  # the same pixels as one target at a time
    assert (
        main(["synthesize", "--target", str(photos["grace"]), "--expression", "surprise", "--output", str(single)]) == 0
    )
    with Image.open(single) as one, Image.open(results / "grace.png") as batch:
        np.testing.assert_array_equal(np.asarray(one), np.asarray(batch))
        assert "preset expression: surprise" in edit_description(batch)


def test_targets_that_would_write_one_result_are_refused_naming_it(photos, tmp_path, capsys):
    folder = tmp_path / "targets"
    folder.mkdir()
    shutil.copy(photos["astronaut"], folder / "astronaut.png")
    Image.open(photos["astronaut"]).save(folder / "astronaut.gif")  # its result would be astronaut.png too
    args = ["synthesize", "--target", str(folder), "--expression", "surprise", "--output", str(tmp_path / "out")]
    completed = _in_process(args, capsys)
    line = assert_single_error_line(completed)
    assert "several targets would write astronaut.png (photos of one name in several formats or folders)" in line
    assert not (tmp_path / "out").exists()


def test_a_glob_of_targets_keeps_their_format_and_refuses_to_overwrite_them(photos, tmp_path, capsys):
    folder = tmp_path / "targets"
    folder.mkdir()
    for name in ("one.jpg", "two.jpg"):
        shutil.copy(photos["grace"], folder / name)
    shutil.copy(photos["astronaut"], folder / "three.png")
    argv = ["transfer", "--source", str(photos["astronaut"]), "--target", str(folder / "*.jpg"), "--strength", "0.5"]
    completed = _in_process([*argv, "--output", str(tmp_path / "out")], capsys)
    assert completed.returncode == 0, completed.stderr
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["one.jpg", "two.jpg"]
    with Image.open(tmp_path / "out" / "one.jpg") as image:
        assert image.format == "JPEG" and "expression transfer" in edit_description(image)
    line = assert_single_error_line(_in_process([*argv, "--output", str(folder)], capsys))
    assert "refusing to overwrite the input" in line
    line = assert_single_error_line(
        _in_process([*argv[:-2], "--target", str(folder / "*.gif"), "--output", str(folder)], capsys)
    )
    assert "no file matches" in line


CLIP_RUN = ["--driving", "{clip}", "--target", "{astronaut}", "--output", "{out}"]
ANIMATE_BAD_RUNS = [
    # (id, arguments with {placeholders}, message part)
    ("driving is text", ["--driving", "{text}", "--target", "{astronaut}", "--output", "{out}"], "it looks like text"),
    ("driving is audio only", ["--driving", "{voice}", "--target", "{astronaut}", "--output", "{out}"], "only audio"),
    ("driving too long", [*CLIP_RUN, "--max-seconds", "0.2"], "more than the limit of 0.2 s"),
    (
        "missing driving",
        ["--driving", "{missing}", "--target", "{astronaut}", "--output", "{out}"],
        "clip file not found",
    ),
    ("output not mp4", ["--driving", "{clip}", "--target", "{astronaut}", "--output", "{folder}/out.avi"], "use .mp4"),
    ("negative limit", [*CLIP_RUN, "--max-seconds", "-1"], "--max-seconds must be more than 0"),
    ("smoothing not a number", [*CLIP_RUN, "--smoothing", "nan"], "--smoothing must be 0 or more, got nan"),
    ("strength out of range", [*CLIP_RUN, "--strength", "2"], "--strength must be between 0.0 and 1.5, got 2.0"),
    ("bad offset", [*CLIP_RUN, "--offset", "smile"], "expected NAME=VALUE"),
    ("unknown emotion", [*CLIP_RUN, "--source-emotion", "joy"], "unknown --source-emotion 'joy'"),
    (
        "named and not read",
        [*CLIP_RUN, "--source-emotion", "anger", "--no-read-emotion"],
        "--no-read-emotion: not allowed with argument --source-emotion",
    ),
    ("named, absolute motion", [*CLIP_RUN, "--source-emotion", "anger", "--no-relative"], "relative motion only"),
]


@pytest.mark.parametrize(
    "arguments, message", [case[1:] for case in ANIMATE_BAD_RUNS], ids=[case[0] for case in ANIMATE_BAD_RUNS]
)
def test_animate_bad_input_exits_2_with_one_error_line(photos, tmp_path, capsys, arguments, message):
    output = tmp_path / "out.mp4"
    output.write_bytes(b"previous result")
    names = {key: str(path) for key, path in photos.items()}
    names.update(missing=str(tmp_path / "missing.mp4"), folder=str(tmp_path), out=str(output))
    line = assert_single_error_line(_in_process(["animate", *(a.format(**names) for a in arguments)], capsys))
    assert message in line
    assert output.read_bytes() == b"previous result"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.mp4"]


def test_synthesize_unknown_expression_exits_2(photos, tmp_path):
    completed = run_cli(
        "synthesize", "--target", photos["astronaut"], "--expression", "smug", "--output", tmp_path / "o.png"
    )
    assert "unknown expression 'smug'" in assert_single_error_line(completed)


def test_animate_writes_the_clip_and_a_summary(photos, tmp_path, capsys):
    output = tmp_path / "animated.mp4"
    completed = _in_process(
        [
            "animate",
            "--driving",
            str(photos["clip"]),
            "--target",
            str(photos["grace"]),
            "--output",
            str(output),
            "--side-by-side",
        ],
        capsys,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"wrote {output}: 12 frames at 24 fps, 0 without a face"), completed.stdout
    assert list(tmp_path.iterdir()) == [output]
    # the astronaut smiles in every frame: relative motion alone would lose it, so the reading says what is worn
    told = completed.stderr.splitlines()  # its frames read as smiling too: nothing of their own to add
    assert len(told) == 1 and told[0].startswith("The clip's resting face reads as happiness (")
    assert told[0].endswith(
        "the target wears it where a frame reads no other emotion of its own "
        "(--source-emotion to name another; --no-read-emotion: none)"
    )


def test_animate_wears_a_named_clip_emotion(photos, tmp_path, capsys):
    args = ["animate", "--driving", str(photos["clip"]), "--target", str(photos["grace"]), "--no-paste-back"]
    named = _in_process([*args, "--output", str(tmp_path / "named.mp4"), "--source-emotion", "anger"], capsys)
    assert named.returncode == 0 and named.stderr == "The target wears anger, as named for the clip\n"
    off = _in_process([*args, "--output", str(tmp_path / "off.mp4"), "--no-read-emotion"], capsys)
    assert off.returncode == 0 and off.stderr == ""
    assert (tmp_path / "named.mp4").read_bytes() != (tmp_path / "off.mp4").read_bytes()


@pytest.mark.parametrize("flag, kept", [((), True), (("--no-photo-texture",), False)])
def test_animate_keeps_the_photo_texture_unless_told_not_to(photos, tmp_path, capsys, monkeypatch, flag, kept):
    import aipgan_hf.cli as cli

    asked = []

    def animated(*args, **kwargs):
        asked.append(kwargs["photo_texture"])
        return real(*args, **kwargs)

    real = cli.animate
    monkeypatch.setattr(cli, "animate", animated)
    args = ["animate", "--driving", str(photos["clip"]), "--target", str(photos["grace"]), "--no-paste-back", *flag]
    assert _in_process([*args, "--output", str(tmp_path / "out.mp4")], capsys).returncode == 0
    assert asked == [kept]


def test_animate_says_what_the_frames_wore_of_their_own(photos, tmp_path, capsys, monkeypatch):
    """Frames that read another emotion than the clip's resting one are counted on stderr (the resting one is not)."""
    import dataclasses

    import aipgan_hf.cli as cli

    def animated(*args, **kwargs):
        result = real(*args, **kwargs)
        return dataclasses.replace(result, frame_emotions=("anger",) * 3 + ("happiness",) * 6 + ("",) * 3)

    real = cli.animate
    monkeypatch.setattr(cli, "animate", animated)
    args = ["animate", "--driving", str(photos["clip"]), "--target", str(photos["grace"]), "--no-paste-back"]
    told = _in_process([*args, "--output", str(tmp_path / "read.mp4")], capsys).stderr.splitlines()
    assert len(told) == 2 and told[0].startswith("The clip's resting face reads as happiness (")
    assert told[1] == (
        "Read frame by frame, the target wears anger in 25% of the frames "
        "(--source-emotion to name one for all; --no-read-emotion: none)"
    )


def test_messages_name_the_flags_but_leave_file_names_alone():
    from aipgan_hf.cli import in_flags
    from aipgan_hf.errors import ConfigError, InvalidImageError

    assert in_flags(ConfigError("expression_offsets['smile'] must be between -1.5 and 1.5, got 3.0")).startswith(
        "--offset smile must be"
    )
    said = in_flags(ConfigError("/data/identity_mix/source_emotion.png: expression_strength must be between 0 and 1"))
    assert said == "/data/identity_mix/source_emotion.png: --strength must be between 0 and 1"
    assert in_flags(InvalidImageError("identity_mix.png is not an image")) == "identity_mix.png is not an image"


def test_animate_scales_a_large_target_to_max_side(photos, tmp_path, capsys):
    large = tmp_path / "large.png"
    Image.open(photos["astronaut"]).resize((1200, 1200)).save(large)
    for side, expected in (("300", 300), ("0", 1200)):
        output = tmp_path / f"side{side}.mp4"
        arguments = ["animate", "--driving", str(photos["clip"]), "--target", str(large), "--output", str(output)]
        completed = _in_process([*arguments, "--max-side", side], capsys)
        assert completed.returncode == 0, completed.stderr
        with av.open(str(output)) as container:
            assert container.streams.video[0].codec_context.width == expected
    completed = _in_process([*arguments, "--max-side", "10"], capsys)
    assert completed.returncode == 2 and "--max-side must be 64 pixels or more" in completed.stderr
