"""training/prepare_dataset.py and training/dataset/: discovery, identity splits, caching, the video frames, and a
real end-to-end build on small folders."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from aipgan_hf.errors import ConfigError
from training import prepare_dataset
from training.dataset import cache
from training.dataset import sources as dataset_sources
from training.dataset.sources import MediaItem, Source, expression_from_video_name, shared_video_identity
from training.dataset.splits import assign_splits, limit_items, split_for_identity

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESOLUTION = 64


def _names_per_split(count_per_split: int) -> dict[str, list[str]]:
    """Synthetic person names, ``count_per_split`` of them landing in each split."""
    found: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    k = 0
    while min(len(names) for names in found.values()) < count_per_split:
        name = f"person{k:03d}"
        split = split_for_identity(f"photos/{name}")
        if len(found[split]) < count_per_split:
            found[split].append(name)
        k += 1
    return found


def _face_region(image: np.ndarray, box: tuple[int, int, int, int], side: int = 200) -> Image.Image:
    return Image.fromarray(image).crop(box).resize((side, side), Image.BICUBIC)


def _write_clip(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _zoomed_frames(image: np.ndarray, centre: tuple[int, int], side: int, count: int) -> list[np.ndarray]:
    """``count`` 160x160 frames sliding and zooming over a face."""
    frames = []
    for t in range(count):
        half = side / (2 * (1 + 0.03 * t))
        x, y = centre[0] + 4 * t - 20, centre[1] + 2 * t - 10
        box = tuple(int(round(v)) for v in (x - half, y - half, x + half, y + half))
        frames.append(np.asarray(Image.fromarray(image).crop(box).resize((160, 160), Image.BICUBIC)))
    return frames


@pytest.fixture(scope="module")
def user_folders(tmp_path_factory, astronaut, grace_hopper) -> dict:
    """A photo folder (6 synthetic people, 2 per split, + one face-less image) and a video folder (3 clips)."""
    root = tmp_path_factory.mktemp("user_data")
    faces = [
        _face_region(astronaut, (123, 27, 323, 227)),  # face box about (179, 83, 267, 171)
        _face_region(grace_hopper, (69, 45, 469, 445)),  # face box about (161, 137, 377, 353)
    ]
    names = _names_per_split(2)
    photos = root / "photos"
    labels = []
    for k, name in enumerate(sorted(n for split_names in names.values() for n in split_names)):
        person = photos / name
        person.mkdir(parents=True)
        face = faces[k % 2]
        face.save(person / "plain.jpg", quality=95)
        face.transpose(Image.FLIP_LEFT_RIGHT).save(person / "flipped.jpg", quality=95)
        ImageEnhance.Brightness(face.rotate(8, resample=Image.BICUBIC)).enhance(1.2).save(person / "tilted.jpg")
        labels += [(f"{name}/plain.jpg", "neutral"), (f"{name}/flipped.jpg", "happiness")]
    Image.new("RGB", (120, 120), (128, 128, 128)).save(photos / names["train"][0] / "blank.jpg")
    with open(photos / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("image", "expression"), *labels])

    clips = root / "clips"
    clips.mkdir()
    _write_clip(clips / "happy_talk_clip1.mp4", _zoomed_frames(grace_hopper, (269, 245), 400, 12))
    _write_clip(clips / "happy_talk_clip2.mp4", _zoomed_frames(grace_hopper, (269, 245), 380, 12))
    _write_clip(clips / "plain.mp4", _zoomed_frames(astronaut, (223, 127), 200, 8))
    identity_map = root / "identity_map.csv"
    identity_map.write_text("video,identity\nhappy_talk_clip1.mp4,talker\nhappy_talk_clip2.mp4,talker\n")
    return {"root": root, "photos": photos, "clips": clips, "identity_map": identity_map, "names": names}


@pytest.fixture(scope="module")
def built(user_folders) -> dict:
    """One real build with two worker processes (the expensive step, shared by the tests below)."""
    root = user_folders["root"]
    argv = [
        "--image_folder",
        str(user_folders["photos"]),
        "--video_folder",
        str(user_folders["clips"]),
        "--video_identity_map",
        str(user_folders["identity_map"]),
        "--output_dir",
        str(root / "out"),
        "--cache_dir",
        str(root / "cache"),
        "--resolution",
        str(RESOLUTION),
        "--fps",
        "5",
        "--num_workers",
        "2",
    ]
    stats = prepare_dataset.main(argv)
    return {"argv": argv, "stats": stats, "out": root / "out", "cache": root / "cache", "hf_cache": root / "hf_cache"}


def test_built_dataset_loads_with_features_and_shapes(built):
    import datasets

    dataset = datasets.load_dataset(str(built["out"]), cache_dir=str(built["hf_cache"]))
    assert set(dataset) == {"train", "validation", "test"}
    features = dataset["train"].features
    assert isinstance(features["image"], datasets.Image)
    assert isinstance(features["landmarks"], datasets.Array2D)
    assert features["landmarks"].shape == (68, 2) and features["landmarks"].dtype == "float32"
    assert features["frame"].dtype == "int32"
    assert list(features) == ["image", "landmarks", "identity", "expression", "source", "clip", "frame", "path"]

    row = dataset["train"].with_format("numpy")[0]
    assert row["landmarks"].shape == (68, 2) and row["landmarks"].dtype == np.float32
    image = dataset["train"][0]["image"]
    assert image.size == (RESOLUTION, RESOLUTION) and image.mode == "RGB"
    raw = dataset["train"].cast_column("image", datasets.Image(decode=False))[0]["image"]["bytes"]
    assert raw[:3] == b"\xff\xd8\xff"  # stored as JPEG bytes

    for split in dataset.values():
        landmarks = np.asarray(split.with_format("numpy")["landmarks"])  # (N, 68, 2)
        centre = landmarks.mean(axis=1)  # (N, 2): faces are centred in aligned crops
        assert np.all((centre > 0.3 * RESOLUTION) & (centre < 0.7 * RESOLUTION))


def test_built_dataset_labels_splits_and_video_frames(built, user_folders):
    import datasets

    dataset = datasets.load_dataset(str(built["out"]), cache_dir=str(built["hf_cache"]))
    frames = {name: split.to_pandas().drop(columns=["image", "landmarks"]) for name, split in dataset.items()}
    identities = {name: set(frame["identity"]) for name, frame in frames.items()}
    assert not identities["train"] & identities["validation"]
    assert not identities["train"] & identities["test"]
    assert not identities["validation"] & identities["test"]
    for split, names in user_folders["names"].items():
        assert {f"photos/{name}" for name in names} <= identities[split]

    rows = datasets.concatenate_datasets(list(dataset.values())).to_pandas().drop(columns=["image", "landmarks"])
    photos = rows[rows["source"] == "photos"]
    assert len(photos) == 18  # 6 people x 3 photos; the blank image has no face
    assert (photos["frame"] == -1).all() and (photos["clip"] == "").all()
    by_path = photos.set_index("path")
    name = user_folders["names"]["test"][0]
    assert by_path.loc[f"{name}/plain.jpg", "expression"] == "neutral"
    assert by_path.loc[f"{name}/flipped.jpg", "expression"] == "happiness"
    assert by_path.loc[f"{name}/tilted.jpg", "expression"] == ""

    videos = rows[rows["source"] == "video/clips"]
    talker = videos[videos["identity"] == "video/clips/talker"]
    assert set(talker["clip"]) == {"happy_talk_clip1", "happy_talk_clip2"}  # merged by the identity map
    assert (talker["expression"] == "happiness").all()
    plain = videos[videos["clip"] == "plain"]
    assert set(plain["identity"]) == {"video/clips/plain"} and (plain["expression"] == "").all()
    # 8 frames at 10 fps sampled at 5 fps: every second frame
    assert sorted(plain["frame"]) == [0, 2, 4, 6]
    assert sorted(talker[talker["clip"] == "happy_talk_clip1"]["frame"]) == [0, 2, 4, 6, 8, 10]
    assert set(plain["path"]) == {"plain.mp4"}


def test_card_stats_and_failures(built):
    card = (built["out"] / "README.md").read_text()
    front_matter = card.split("---")[1]
    for split in ("train", "validation", "test"):
        assert f"- split: {split}\n    path: data/{split}-*.parquet" in front_matter
    assert "| photos |" in card and "NoFaceError 1" in card

    stats = json.loads((built["out"] / "stats.json").read_text())
    assert stats["detection"]["photos"] == {"attempted": 19, "failed": 1, "reasons": {"NoFaceError": 1}}
    assert stats["detection"]["video/clips"]["attempted"] == 6 + 6 + 4
    assert (
        sum(stats["rows_per_split"].values())
        == 18 + stats["detection"]["video/clips"]["attempted"] - stats["detection"]["video/clips"]["failed"]
    )
    with open(built["out"] / "detection_failures.csv", newline="") as handle:
        failures = list(csv.DictReader(handle))
    assert [
        (row["source"], row["path"].endswith("blank.jpg"), row["reason"])
        for row in failures
        if row["source"] == "photos"
    ] == [("photos", True, "NoFaceError")]


def test_rerun_uses_cache_and_compact_is_smaller(built, monkeypatch):
    def no_processing(task):
        raise AssertionError("a cached unit was processed again")

    monkeypatch.setattr(cache, "process_task", no_processing)
    compact_dir = built["out"].parent / "compact"
    argv = [arg if arg != str(built["out"]) else str(compact_dir) for arg in built["argv"]]
    stats = prepare_dataset.main(argv + ["--compact", "--num_workers", "1"])
    assert stats["rows_per_split"] == built["stats"]["rows_per_split"]
    assert stats["jpeg_quality"] == 75
    assert stats["data_bytes"] < built["stats"]["data_bytes"]


def test_rebuilt_folder_never_loads_stale_rows(built, tmp_path):
    """datasets caches local folders by card metadata, not files (huggingface/datasets#2956): the card's split
    sizes must change with the content, or a rebuilt dataset would load the old rows."""
    import datasets

    folder = tmp_path / "faces"
    argv = [arg if arg != str(built["out"]) else str(folder) for arg in built["argv"]] + ["--num_workers", "1"]
    prepare_dataset.main(argv)
    first = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf_cache"))
    stats = prepare_dataset.main(argv + ["--split_fractions", "0.4", "0.3", "0.3"])
    second = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf_cache"))
    assert {name: len(split) for name, split in second.items()} == stats["rows_per_split"]
    assert {name: len(split) for name, split in first.items()} != stats["rows_per_split"]


def test_interrupted_run_redoes_only_missing_units(built, monkeypatch, tmp_path):
    cache_files = sorted(built["cache"].glob("photos-*.parquet"))
    assert len(cache_files) == 1
    video_files = sorted(built["cache"].glob("video-clips-*.parquet"))
    assert len(video_files) == 3
    video_files[0].unlink()  # as if the run had stopped before this clip was written
    calls = []
    real_process_task = cache.process_task

    def counting(task):
        calls.append(task)
        return real_process_task(task)

    monkeypatch.setattr(cache, "process_task", counting)
    argv = [arg if arg != str(built["out"]) else str(tmp_path / "again") for arg in built["argv"]]
    stats = prepare_dataset.main(argv + ["--num_workers", "1"])
    assert len(calls) == 1 and calls[0][1][0][1].is_video
    assert video_files[0].is_file()
    assert stats["rows_per_split"] == built["stats"]["rows_per_split"]


def test_built_split_feeds_pair_dataset(built):
    import datasets

    from training.pairs import PairDataset

    train = datasets.load_dataset(str(built["out"]), split="train", cache_dir=str(built["hf_cache"]))
    pairs = PairDataset(train, resolution=RESOLUTION, cross_person_prob=0.5, seed=1)
    item = pairs[0]
    assert item["source"].shape == (3, RESOLUTION, RESOLUTION)
    assert item["target_landmarks"].shape == (68, 2)


def test_split_is_by_identity_deterministic_and_balanced():
    identities = [f"source{k % 7}/person_{k}" for k in range(20_000)]
    splits = [split_for_identity(identity) for identity in identities]
    assert splits == [split_for_identity(identity) for identity in identities]
    shares = {name: splits.count(name) / len(splits) for name in ("train", "validation", "test")}
    assert abs(shares["train"] - 0.8) < 0.015
    assert abs(shares["validation"] - 0.1) < 0.01 and abs(shares["test"] - 0.1) < 0.01
    custom = [split_for_identity(identity, (0.5, 0.25, 0.25)) for identity in identities[:4000]]
    assert abs(custom.count("train") / 4000 - 0.5) < 0.03
    with pytest.raises(ConfigError):
        split_for_identity("x", (0.8, 0.1, 0.2))


def test_assign_splits_never_puts_a_person_in_two_splits():
    rng = np.random.default_rng(0)
    people = [f"lfw/Person_{k}" for k in range(3000)]
    items = [MediaItem(f"/data/{k}.jpg", f"{k}.jpg", people[rng.integers(len(people))], "", "lfw") for k in range(9000)]
    # the same people appear again in a second source (e.g. video clips merged with LFW identities)
    clips = [MediaItem(f"/v/{k}.mp4", f"{k}.mp4", people[k], "", "video/x", clip=f"c{k}") for k in range(0, 3000, 3)]
    celeba = [MediaItem(f"/c/{k}.jpg", f"{k}.jpg", f"celeba/{k:06d}", "", "celeba") for k in range(500)]
    sources = [Source("lfw", items), Source("video/x", clips), Source("celeba", celeba, train_only=True)]
    split_of = assign_splits(sources)
    rows_per_split: dict[str, set[str]] = {"train": set(), "validation": set(), "test": set()}
    for source in sources:
        for item in source.items:
            rows_per_split[split_of[item.identity]].add(item.identity)
    assert not rows_per_split["train"] & rows_per_split["validation"]
    assert not rows_per_split["train"] & rows_per_split["test"]
    assert not rows_per_split["validation"] & rows_per_split["test"]
    assert all(split_of[item.identity] == "train" for item in celeba)
    assert len(rows_per_split["validation"]) > 200 and len(rows_per_split["test"]) > 200
    # the split of a person does not depend on who else is in the data
    assert assign_splits([Source("video/x", clips[::-1])]) == {c.identity: split_of[c.identity] for c in clips}


def test_styletalk_clips_are_grouped_by_person():
    def person(name: str) -> str:
        return shared_video_identity("video/styletalk", f"videos/styletalk/{name}.mp4")

    assert {person(f"video__Obama_clip{k}") for k in (1, 2, 3)} == {"video/styletalk/Obama"}
    furious = {person(f"video__furious_talk2_clip{k}") for k in range(1, 8)} | {person("video__furious_talk1_clip2")}
    assert furious == {"video/styletalk/furious_talk"}  # one man in two sessions (merged alias)
    assert person("video__trump_clip1") == "lfw/Donald_Trump"  # one identity across sources
    assert person("video__feifeili_clip2_short") == person("video__feifeili_clip1") == "video/styletalk/feifeili"
    assert person("video__andrew_clip_1") == person("video__andrew_clip_2") == "video/styletalk/andrew"
    assert person("video__KristiNoem") == "video/styletalk/KristiNoem"
    assert shared_video_identity("video/pc-avs", "videos/pc-avs/00002.mp4") == "video/pc-avs/00002"
    assert shared_video_identity("video/pc-avs", "videos/pc-avs/517600055.mp4") == "video/pc-avs/00002"
    assert shared_video_identity("video/liveportrait", "videos/liveportrait/d0.mp4") == "video/liveportrait/d0"


def test_split_links_share_a_split_but_keep_identities():
    clips = [MediaItem(f"/v/{k}.mp4", f"{k}.mp4", f"video/v/{k}", "", "video/v", clip=str(k)) for k in range(200)]
    photos = [MediaItem(f"/p/{k}.jpg", f"{k}.jpg", f"lfw/P{k}", "", "lfw") for k in range(200)]
    links = {f"video/v/{k}": f"lfw/P{k}" for k in range(200)}
    split_of = assign_splits([Source("video/v", clips), Source("lfw", photos)], split_links=links)
    assert all(split_of[f"video/v/{k}"] == split_of[f"lfw/P{k}"] for k in range(200))
    unlinked = assign_splits([Source("video/v", clips), Source("lfw", photos)])
    assert any(unlinked[f"video/v/{k}"] != unlinked[f"lfw/P{k}"] for k in range(200))


def test_expression_from_video_name():
    assert expression_from_video_name("video__furious_talk2_clip3") == "anger"
    assert expression_from_video_name("video__sadfather_clip1") == "sadness"
    assert expression_from_video_name("video__vscodehappy_clip1") == "happiness"
    assert expression_from_video_name("video__surprisegirl_clip2") == "surprise"
    assert expression_from_video_name("video__Obama_clip1") == ""
    assert expression_from_video_name("d10") == ""


def test_limit_items_spreads_over_sources_whole_people_first():
    lfw = [MediaItem(f"/l/{p}_{k}.jpg", f"{p}_{k}.jpg", f"lfw/P{p}", "", "lfw") for p in range(200) for k in range(3)]
    clips = [MediaItem(f"/v/{k}.mp4", f"{k}.mp4", f"video/v/{k}", "", "video/v", clip=str(k)) for k in range(40)]
    reduced = limit_items([Source("lfw", lfw), Source("video/v", clips)], max_images=60)
    photos, videos = reduced[0].items, reduced[1].items
    assert len(photos) == 30
    people = {item.identity for item in photos}
    assert len(people) == 10  # whole people: 10 x 3 photos
    assert all(sum(item.identity == person for item in photos) == 3 for person in people)
    assert sum(item.max_frames for item in videos) <= 30 and all(item.max_frames >= 2 for item in videos)
    assert limit_items([Source("lfw", lfw)], None)[0].items == lfw
    with pytest.raises(ConfigError):
        limit_items([Source("lfw", lfw)], 0)


def test_bad_folders_raise_typed_errors(tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        dataset_sources.discover_image_folder(tmp_path / "missing")
    (tmp_path / "loose").mkdir()
    Image.new("RGB", (64, 64)).save(tmp_path / "loose" / "a.jpg")
    with pytest.raises(ConfigError, match="person subfolders"):
        dataset_sources.discover_image_folder(tmp_path / "loose")
    bad_map = tmp_path / "map.csv"
    bad_map.write_text("file,person\na.mp4,x\n")
    with pytest.raises(ConfigError, match="'video' and 'identity'"):
        dataset_sources.read_video_identity_map(bad_map)


def test_cli_reports_bad_input_without_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "training/prepare_dataset.py",
            "--image_folder",
            str(tmp_path / "nope"),
            "--output_dir",
            str(tmp_path / "out"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "is not a folder" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.data
def test_shared_data_discovery(data_dir):
    sources = {source.name: source for source in dataset_sources.discover_shared_data(data_dir)}
    assert set(sources) == set(dataset_sources.SHARED_SOURCE_INFO)
    lfw = sources["lfw"].items
    assert len(lfw) == 13_233 and len({item.identity for item in lfw}) == 5_749
    assert sum(item.expression == "neutral" for item in lfw) == 6_713
    london = sources["london"].items
    assert len(london) == 204 and len({item.identity for item in london}) == 102
    assert {item.expression for item in london} == {"neutral", "happiness"}
    assert {item.expression for item in sources["canada"].items} == {"neutral"}
    grimace = sources["grimace"].items
    assert len({item.identity for item in grimace}) == 18 and {item.expression for item in grimace} == {""}
    assert sources["celeba"].train_only and len(sources["celeba"].items) == 558
    clips = [item for name, source in sources.items() if name.startswith("video/") for item in source.items]
    assert len(clips) == 60 and all(item.is_video and item.clip for item in clips)
    styletalk = {item.clip: item.identity for item in sources["video/styletalk"].items}
    assert styletalk["video__Obama_clip1"] == styletalk["video__Obama_clip3"]
    assert styletalk["video__furious_talk2_clip1"] == styletalk["video__furious_talk2_clip7"]
    assert len(set(styletalk.values())) == 15  # 29 clips, 15 people
    # every alias and split link names identities that exist in the data
    identities = {item.identity for source in sources.values() for item in source.items}
    assert set(dataset_sources.SHARED_IDENTITY_ALIASES.values()) <= identities
    assert set(dataset_sources.SHARED_SPLIT_LINKS) | set(dataset_sources.SHARED_SPLIT_LINKS.values()) <= identities


@pytest.mark.data
@pytest.mark.slow  # 10-30 s on two shared cores (two worker processes load torch and dlib)
def test_shared_data_small_build(data_dir, tmp_path):
    import datasets

    stats = prepare_dataset.main(
        ["--data_dir", str(data_dir), "--output_dir", str(tmp_path / "out"), "--max_images", "300"]
    )
    dataset = datasets.load_dataset(str(tmp_path / "out"), cache_dir=str(tmp_path / "hf_cache"))
    assert set(dataset) == {"train", "validation", "test"}
    total = sum(len(split) for split in dataset.values())
    assert 250 <= total <= 330 and total == sum(stats["rows_per_split"].values())
    identities = {name: set(split["identity"]) for name, split in dataset.items()}
    assert not identities["train"] & (identities["validation"] | identities["test"])
    assert not identities["validation"] & identities["test"]
    sources = set(dataset["train"]["source"])
    assert {"lfw", "london", "canada", "grimace", "celeba"} <= sources and any(s.startswith("video/") for s in sources)
    assert "celeba" not in set(dataset["validation"]["source"]) | set(dataset["test"]["source"])


def test_video_frames_are_sampled_from_the_video_drivers_decoder(tmp_path, astronaut):
    from aipgan_hf.video.clips import probe_clip, read_frames

    path = tmp_path / "clip.mp4"
    _write_clip(path, _zoomed_frames(astronaut, (223, 127), 200, 12), fps=10)
    decoded = [frame for frame, _ in read_frames(probe_clip(path))]
    sampled = list(cache.sample_frames(str(path), fps=5.0))
    assert [index for index, _ in sampled] == [0, 2, 4, 6, 8, 10]  # every other frame of a 10 fps clip
    for index, frame in sampled:
        np.testing.assert_array_equal(frame, decoded[index])
        assert frame.flags["C_CONTIGUOUS"]
    assert [index for index, _ in cache.sample_frames(str(path), fps=5.0, max_frames=2)] == [0, 2]
    assert len(list(cache.sample_frames(str(path), fps=0))) == 12


def test_labels_keyed_by_bare_file_names_apply_and_bad_rows_warn_once(tmp_path, caplog):
    photos = tmp_path / "photos"
    for person, files in (("Aaron_Peirsol", ["Aaron_Peirsol_0001.jpg"]), ("Abdullah", ["Abdullah_0001.jpg", "1.jpg"])):
        (photos / person).mkdir(parents=True)
        for name in files:
            Image.new("RGB", (32, 32)).save(photos / person / name)
    (photos / "Aaron_Peirsol" / "1.jpg").write_bytes((photos / "Abdullah" / "1.jpg").read_bytes())
    rows = [
        ("Aaron_Peirsol_0001.jpg", "happiness"),  # a bare name one photo has
        ("Abdullah/Abdullah_0001.jpg", "Sadness"),  # the path, as before
        ("1.jpg", "neutral"),  # two photos have it: ambiguous
        ("Nobody_0001.jpg", "neutral"),
        ("Abdullah/1.jpg", "smiling"),
        ("Aaron_Peirsol/1.jpg", "grinning"),
    ]
    with open(photos / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("image", "expression"), *rows])
    with caplog.at_level("WARNING", logger="training.dataset.sources"):
        source = dataset_sources.discover_image_folder(photos)
    labels = {item.rel_path: item.expression for item in source.items}
    assert labels == {
        "Aaron_Peirsol/1.jpg": "",
        "Aaron_Peirsol/Aaron_Peirsol_0001.jpg": "happiness",
        "Abdullah/1.jpg": "",
        "Abdullah/Abdullah_0001.jpg": "sadness",
    }
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2, warnings
    assert "['grinning', 'smiling']" in warnings[0] and "neutral, happiness" in warnings[0]
    assert "2 of 6 rows match no photo" in warnings[1] and "<person>/<file>" in warnings[1]


def test_a_folder_without_faces_stops_with_an_error(tmp_path):
    for person in ("thing1", "thing2"):
        (tmp_path / "photos" / person).mkdir(parents=True)
        Image.new("RGB", (120, 120), (128, 128, 128)).save(tmp_path / "photos" / person / "blank.jpg")
    argv = ["--image_folder", str(tmp_path / "photos"), "--output_dir", str(tmp_path / "out"), "--num_workers", "1"]
    with pytest.raises(ConfigError, match="no face found in the 2 photos and frames given: no row written"):
        prepare_dataset.main(argv)


def test_empty_validation_and_test_splits_warn(tmp_path, astronaut, caplog):
    person = tmp_path / "photos" / _names_per_split(1)["train"][0]  # one person, in train
    person.mkdir(parents=True)
    _face_region(astronaut, (123, 27, 323, 227)).save(person / "plain.jpg", quality=95)
    argv = ["--image_folder", str(tmp_path / "photos"), "--output_dir", str(tmp_path / "out"), "--num_workers", "1"]
    with caplog.at_level("WARNING", logger="training.prepare_dataset"):
        stats = prepare_dataset.main([*argv, "--resolution", str(RESOLUTION)])
    assert stats["rows_per_split"] == {"train": 1, "validation": 0, "test": 0}
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2, warnings
    assert "the validation split is empty: too few people" in warnings[0]
    assert "validates on the training people" in warnings[0]
    assert "the test split is empty" in warnings[1]
    caplog.clear()
    with caplog.at_level("WARNING", logger="training.prepare_dataset"):  # no test split asked for: none missed
        prepare_dataset.main([*argv, "--resolution", str(RESOLUTION), "--split_fractions", "0.9", "0.1", "0"])
    assert [record.getMessage()[:32] for record in caplog.records] == ["the validation split is empty: t"]
