#!/usr/bin/env python
"""Make the README's figures from the public-domain faces (astronaut: NASA; Grace Hopper: matplotlib's sample).

    python docs/make_figures.py [--checkpoint PATH] [--output_dir docs]

    python docs/make_figures.py --dataset data_build/aipgan-faces-128   # also emotions.jpg (test-split sources)

Writes transfer.jpg (astronaut's smile -> Hopper and back, with the warp alone and the network's own mouth
paint for comparison), mouth.jpg (the mouths of the source, the target and the pasted-back results, enlarged),
strength.jpg (strength 0 / 0.5 / 1 / 1.5), presets.jpg (the seven presets on both faces), sliders.jpg (each
slider at 1 on Hopper), zoom.jpg (brows, eyes and mouth of four presets at the photo's resolution), with
``--dataset`` emotions.jpg (one labelled test-split source per emotion onto both faces), and prints the dlib
mouth measures of each output, so a reader can check that the mouth moved.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from skimage import data

from aipgan_hf.evaluation.data import decode_rows, load_split, split_columns
from aipgan_hf.faces import image_to_tensor, tensor_to_image
from aipgan_hf.landmarks import MOUTH, inner_lip_gap
from aipgan_hf.motion import landmark_flow, warp
from aipgan_hf.pipeline import AIPGANPipeline

logger = logging.getLogger(__name__)


def faces() -> tuple[np.ndarray, np.ndarray]:
    import matplotlib.cbook  # the app extra

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
        hopper = np.asarray(Image.open(file).convert("RGB"))
    return data.astronaut(), hopper


def strip(images: list[Image.Image], labels: list[str], size: int = 192) -> Image.Image:
    """Images side by side at ``size`` px with a caption under each."""
    canvas = Image.new("RGB", (size * len(images), size + 22), "white")
    draw = ImageDraw.Draw(canvas)
    for index, (image, label) in enumerate(zip(images, labels)):
        canvas.paste(image.convert("RGB").resize((size, size), Image.LANCZOS), (index * size, 0))
        draw.text((index * size + 4, size + 4), label, fill="black")
    return canvas


def mouth_gap(pipe, image: Image.Image) -> float:
    """Inner-lip gap over mouth width, read by dlib on the image (the measure a user's eye agrees with)."""
    landmarks = pipe.processor.align(np.asarray(image.convert("RGB"))).crop_landmarks
    mouth = landmarks[MOUTH]
    return float(inner_lip_gap(landmarks) / np.linalg.norm(mouth[6] - mouth[0]))  # over the corner-to-corner width


def mouth_close_up(photo: Image.Image, landmarks: np.ndarray) -> Image.Image:
    """The mouth of a photo (its 20 mouth landmarks, photo pixels): a square of 1.6 mouth widths."""
    mouth = landmarks[MOUTH]
    centre, half = mouth.mean(axis=0), 0.8 * np.linalg.norm(mouth[6] - mouth[0])  # 6 and 0: the corners
    return photo.convert("RGB").crop((*(centre - half).round().astype(int), *(centre + half).round().astype(int)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--output_dir", default=str(Path(__file__).resolve().parent))
    parser.add_argument("--dataset", default=None, help="dataset folder: also the test-split sources figure")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    pipe = AIPGANPipeline.from_pretrained(args.checkpoint)
    astronaut, hopper = faces()
    out = Path(args.output_dir)
    crop = lambda photo: Image.fromarray(pipe.processor.align(photo).crop)
    forward = pipe(hopper, source=astronaut, paste_back=False)
    painted = pipe(hopper, source=astronaut, paste_back=False, mouth="network")  # no teeth from any photo
    back = pipe(astronaut, source=hopper, paste_back=False, replace_target_expression=True)
    warp_only = _warp_alone(pipe, hopper, forward.driving_landmarks)
    strip(
        [crop(astronaut), crop(hopper), warp_only, painted.face, forward.face, back.face],
        ["source: astronaut", "target: Hopper", "warp alone", "network's mouth", "AIP-GAN", "Hopper -> astronaut"],
    ).save(out / "transfer.jpg")
    for name, image in [
        ("astronaut", crop(astronaut)),
        ("hopper", crop(hopper)),
        ("hopper smiling", forward.face),
        ("hopper smiling, network's mouth", painted.face),
        ("warp alone", warp_only),
        ("astronaut neutral", back.face),
    ]:
        logger.info(f"mouth opening (dlib, gap / width) {name}: {mouth_gap(pipe, image):.3f}")
    sweep = [pipe(hopper, source=astronaut, expression_strength=s, paste_back=False).face for s in (0.0, 0.5, 1.0, 1.5)]
    strip(sweep, ["strength 0", "0.5", "1", "1.5"]).save(out / "strength.jpg")
    pasted = pipe(hopper, source=astronaut)  # what a user gets: the whole photo, the face pasted back
    painted_back = pipe(hopper, source=astronaut, mouth="network")
    close_ups = [
        mouth_close_up(Image.fromarray(astronaut), pasted.source_landmarks),
        mouth_close_up(Image.fromarray(hopper), pasted.target_landmarks),
        mouth_close_up(painted_back.image, pasted.target_landmarks),
        mouth_close_up(pasted.image, pasted.target_landmarks),
    ]
    strip(
        close_ups,
        ["astronaut (source)", "Hopper (target)", "network's mouth, pasted back", "AIP-GAN, pasted back"],
        size=256,
    ).save(out / "mouth.jpg")
    emotion_figures(pipe, astronaut, hopper, out, args.dataset)
    logger.info(f"wrote the figures in {out}")


def emotion_figures(
    pipe: AIPGANPipeline, astronaut: np.ndarray, hopper: np.ndarray, out: Path, dataset: str | None
) -> None:
    """presets.jpg, sliders.jpg, zoom.jpg and (with a dataset) emotions.jpg."""
    crop = lambda photo: Image.fromarray(pipe.processor.align(photo).crop)  # noqa: E731
    rows = [
        strip(
            [crop(face)] + [pipe(face, expression=name, paste_back=False).face for name in pipe.expressions],
            ["neutral" if face is hopper else "as photographed", *pipe.expressions],
            size=160,
        )
        for face in (hopper, astronaut)
    ]
    stack(rows).save(out / "presets.jpg")
    sliders = [pipe(hopper, paste_back=False, expression_offsets={name: 1.0}).face for name in pipe.sliders]
    stack([strip(sliders[i : i + 8], pipe.sliders[i : i + 8], size=160) for i in range(0, len(sliders), 8)]).save(
        out / "sliders.jpg"
    )
    zoom = [brows_to_mouth(pipe(hopper, expression=name)) for name in ("anger", "sadness", "surprise", "disgust")]
    strip(
        [brows_to_mouth(pipe(hopper, expression="anger", expression_strength=0.0))] + zoom,
        ["Hopper", "anger", "sadness", "surprise", "disgust"],
        size=256,
    ).save(out / "zoom.jpg")
    if dataset:
        sources, labels = labelled_sources(dataset)
        rows = [strip([Image.fromarray(source) for source in sources], labels, size=160)]
        rows += [
            strip(
                [pipe(face, source=source, paste_back=False).face for source in sources],
                [f"onto {name}" for _ in sources],
                size=160,
            )
            for face, name in ((hopper, "Hopper"), (astronaut, "astronaut"))
        ]
        stack(rows).save(out / "emotions.jpg")


def stack(rows: list[Image.Image]) -> Image.Image:
    """Strips one under the other (left-aligned on white)."""
    canvas = Image.new("RGB", (max(row.width for row in rows), sum(row.height for row in rows)), "white")
    for index, row in enumerate(rows):
        canvas.paste(row, (0, sum(r.height for r in rows[:index])))
    return canvas


def brows_to_mouth(result) -> Image.Image:
    """The pasted-back photo from above the brows to below the mouth, at the photo's resolution."""
    points = result.target_landmarks
    left, right = points[:, 0].min(), points[:, 0].max()
    top, bottom = points[17:27, 1].min() - 0.15 * (right - left), points[48:68, 1].max() + 0.1 * (right - left)
    side = max(right - left, bottom - top)
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    return result.image.crop((*(centre - side / 2).round().astype(int), *(centre + side / 2).round().astype(int)))


def labelled_sources(dataset: str) -> tuple[list[np.ndarray], list[str]]:
    """The first labelled test-split crop of each emotion (people the project never trained on)."""
    split = load_split(dataset, "test")
    labels = np.asarray(split_columns(split).expressions, dtype=str)
    emotions = ["happiness", "sadness", "surprise", "fear", "anger", "disgust", "contempt"]
    rows = {emotion: int(np.flatnonzero(labels == emotion)[0]) for emotion in emotions if (labels == emotion).any()}
    images = decode_rows(split, set(rows.values())).images
    return [images[row] for row in rows.values()], list(rows)


def _warp_alone(pipe, target_photo: np.ndarray, driving_landmarks: np.ndarray) -> Image.Image:
    """The target's crop moved by the landmark flow alone (what the generator starts from), as a picture."""
    face = pipe.processor.align(target_photo)
    to_tensor = lambda points: torch.as_tensor(points, dtype=torch.float32)[None]  # noqa: E731 -- (1, 68, 2)
    flow = landmark_flow(to_tensor(face.crop_landmarks), to_tensor(driving_landmarks), pipe.resolution)
    return Image.fromarray(tensor_to_image(warp(image_to_tensor(face.crop)[None], flow)[0]))


if __name__ == "__main__":
    main()
