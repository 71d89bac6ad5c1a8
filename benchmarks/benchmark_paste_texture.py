#!/usr/bin/env python
"""How much of the photo's own texture a transfer keeps at paste-back, per texture scale.

    python benchmarks/benchmark_paste_texture.py --dataset data_build/aipgan-faces-128 --split validation \
        --data_dir ../shared/data --scales 1,2,3,4

The split's studio portraits (London and Canada neutral photos, 512 px: a face two to three times the crop) are the
targets; each is driven by the split's other London smiling photos and two angry, sad and surprised LFW sources.
Per transfer, over the face inside its jaw line and brows less a box about the mouth, the root-mean-square of two
bands of the grey output (Gaussian differences, sigma 0.7-2 px "fine" and 2-5 px "mid") over the target photo's
(1.0: as textured as the photo itself); and dlib's descriptor distance from the output to the target photo. The
scale is :data:`aipgan_hf.compositing.photo.TEXTURE_SCALE`, set here for each row.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.draw import polygon

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipgan_hf import AIPGANPipeline  # noqa: E402
from aipgan_hf.compositing import photo as photo_module  # noqa: E402
from aipgan_hf.evaluation.data import load_split  # noqa: E402

BANDS = {"fine": (0.7, 2.0), "mid": (2.0, 5.0)}


def face_region(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: inside the jaw line and the brows raised by 15 % of the face's height, less the mouth's box
    grown by 30 % (the mouth's inside is painted, not textured)."""
    lift = np.array([0.0, 0.15 * (landmarks[8, 1] - landmarks[27, 1])])
    outline = np.concatenate([landmarks[0:17], landmarks[26:16:-1] - lift])
    region = np.zeros(shape, bool)
    rows, cols = polygon(outline[:, 1], outline[:, 0], shape)
    region[rows, cols] = True
    mouth = landmarks[48:68]
    low, high = mouth.min(0) - 0.3 * np.ptp(mouth, 0), mouth.max(0) + 0.3 * np.ptp(mouth, 0)
    region[int(low[1]) : int(high[1]), int(low[0]) : int(high[0])] = False
    return region


def band_ratios(output: np.ndarray, photo: np.ndarray, region: np.ndarray) -> dict[str, float]:
    grey_out, grey_photo = output.mean(axis=2), photo.mean(axis=2)
    ratios = {}
    for name, (fine, coarse) in BANDS.items():
        energy = [
            ((gaussian_filter(g, fine) - gaussian_filter(g, coarse))[region] ** 2).mean()
            for g in (grey_out, grey_photo)
        ]
        ratios[name] = float(np.sqrt(energy[0] / energy[1]))
    return ratios


def pairs(dataset: str, split: str, data_dir: Path) -> list[tuple[Path, Path]]:
    rows = load_split(dataset, split).select_columns(["identity", "expression", "source", "path"]).to_pandas()
    targets = rows[rows.source.isin(["london", "canada"]) & (rows.expression == "neutral")]
    sources = rows[(rows.source == "london") & (rows.expression == "happiness")]
    chosen = [(identity, path) for identity, path in zip(sources.identity, sources.path)]
    for emotion in ("anger", "sadness", "surprise"):
        lfw = rows[(rows.source == "lfw") & (rows.expression == emotion)].drop_duplicates("identity")[:2]
        chosen += list(zip(lfw.identity, lfw.path))
    return [
        (data_dir / target, data_dir / source)
        for target_identity, target in zip(targets.identity, targets.path)
        for source_identity, source in chosen
        if source_identity != target_identity
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="the built dataset (for the split's people)")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--data_dir", default="../shared/data", help="the original photos")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--scales", default="1,3", help="texture scales in crop pixels, comma-separated")
    args = parser.parse_args(argv)
    pipe = AIPGANPipeline.from_pretrained(args.checkpoint)
    work = pairs(args.dataset, args.split, Path(args.data_dir))
    photos = {path: np.asarray(Image.open(path).convert("RGB")) for path, _ in work}
    own = {path: pipe.processor.descriptor(photo) for path, photo in photos.items()}
    print(f"{len(work)} transfers onto {len(photos)} portraits ({args.split})")
    print("| texture scale (crop px) | fine band | mid band | distance to the target |\n|---|---|---|---|")
    for scale in (float(value) for value in args.scales.split(",")):
        photo_module.TEXTURE_SCALE = scale  # a module constant: this script's rows compare its values
        fine, mid, distance = [], [], []
        for target, source in work:
            result = pipe(photos[target], source=str(source))
            output = np.asarray(result.image)
            ratios = band_ratios(output, photos[target], face_region(result.target_landmarks, output.shape[:2]))
            fine.append(ratios["fine"])
            mid.append(ratios["mid"])
            distance.append(float(np.linalg.norm(pipe.processor.descriptor(output) - own[target])))
        print(f"| {scale:g} | {np.mean(fine):.3f} | {np.mean(mid):.3f} | {np.mean(distance):.3f} |", flush=True)


if __name__ == "__main__":
    main()
