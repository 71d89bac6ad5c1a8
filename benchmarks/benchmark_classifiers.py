#!/usr/bin/env python
"""How the expression classifiers of the evaluation read faces: what their "agreement" figures can and cannot show.

    python benchmarks/benchmark_classifiers.py --dataset data_build/aipgan-faces-128 --split test
    python benchmarks/benchmark_classifiers.py --dataset ... --split validation --max_pairs 240 --strengths 1,1.5

On the evaluation's cross-person pairs (those of ``python -m aipgan_hf.evaluation`` with the same ``--max_pairs`` and
its default seed and pairs per person), for each classifier:
- **agreement** of the single-photo output's label with the source's (the evaluation's figure), and with the
  *target's* (a classifier that reads the person more than the expression agrees with the target), at each
  ``--strengths`` value of ``expression_strength``;
- **stability**: the share of the source crops themselves that keep their label after a Gaussian blur of 0.5 and
  0.8 px (a real photo, a little softer: the ceiling of any agreement for an output that is not pixel-sharp);
- the labels it gives the sources' neutral references S0 (each reference once).
And how sharp the outputs are (at the first ``--strengths`` value): the median ratio of their Laplacian energy to
the targets' (inside the face), beside that of the targets blurred by each of :data:`SHARPNESS_BLURS`.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipgan_hf.driving import drive_crops  # noqa: E402
from aipgan_hf.evaluation.data import SplitData, decode_rows, load_split, split_columns, stacked  # noqa: E402
from aipgan_hf.evaluation.networks import CLASSIFIERS, ExpressionClassifier  # noqa: E402
from aipgan_hf.evaluation.pairs import CROSS_PERSON, EvaluationPair, build_pairs  # noqa: E402
from aipgan_hf.faces import image_to_tensor, tensor_to_image  # noqa: E402
from aipgan_hf.pipeline import AIPGANPipeline  # noqa: E402

BLURS = (0.5, 0.8)
"""Gaussian sigmas (crop pixels) of the stability check."""
SHARPNESS_BLURS = (0.4, 0.5, 0.8)
"""Gaussian sigmas (crop pixels) of the targets the outputs' sharpness is set beside."""


def outputs(pipe, pairs, data, strength: float, batch_size: int = 16) -> list[np.ndarray]:
    """Single-photo transfers of the pairs at ``expression_strength=strength``, (R, R, 3) uint8 each."""
    images = []
    for start in range(0, len(pairs), batch_size):
        sources, targets = zip(*[(p.source, p.target) for p in pairs[start : start + batch_size]])
        source_landmarks = torch.from_numpy(stacked(data, sources, "landmarks")).float()
        target_landmarks = torch.from_numpy(stacked(data, targets, "landmarks")).float()
        driving = pipe.shape_model.drive(target_landmarks.numpy(), source_landmarks.numpy(), strength=strength)
        result = drive_crops(
            pipe.generator,
            image_to_tensor(stacked(data, targets)),
            target_landmarks,
            torch.as_tensor(np.asarray(driving, dtype=np.float32)),
            source=image_to_tensor(stacked(data, sources)),
            source_landmarks=source_landmarks,
            return_intrinsic=False,
            mouth="source",
            lines=pipe.lines,
        )
        images.extend(tensor_to_image(result.image.float().cpu()))
    return images


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey face (the crop's middle, where the face is)."""
    from scipy.ndimage import laplace

    side = image.shape[0]
    return float(
        laplace(
            image.astype(np.float64).mean(axis=2)[side * 3 // 16 : side * 7 // 8, side * 3 // 16 : side * 13 // 16]
        ).var()
    )


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """(R, R, 3) uint8 ``image`` blurred by a Gaussian of ``sigma`` pixels (not across channels)."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(image.astype(np.float64), (sigma, sigma, 0)).round().clip(0, 255).astype(np.uint8)


def classifier_row(
    classifier: ExpressionClassifier,
    pairs: list[EvaluationPair],
    data: SplitData,
    target_images: list[np.ndarray],
    made: dict[float, list[np.ndarray]],
) -> tuple[dict, list[int]]:
    """One classifier's figures: how often the outputs (per strength) agree with the source's and the target's
    labels, how often a blurred source keeps its label, and what the neutral references read as; and those
    references."""

    def read(images) -> np.ndarray:
        return np.array(classifier.predict(list(images)))

    source_labels, target_labels = read(data.images[p.source] for p in pairs), read(target_images)
    row = {"target_agrees_with_source": float(np.mean(target_labels == source_labels))}
    for strength, images in made.items():
        labels = read(images)
        row[f"strength {strength:g}"] = {
            "agrees_with_source": float(np.mean(labels == source_labels)),
            "agrees_with_target": float(np.mean(labels == target_labels)),
        }
    for sigma in BLURS:
        blurred = read(blur(data.images[p.source], sigma) for p in pairs)
        row[f"source kept after a {sigma:g}-px blur"] = float(np.mean(blurred == source_labels))
    references = sorted({p.reference for p in pairs})
    row["neutral references read as"] = dict(Counter(map(str, read(data.images[r] for r in references))).most_common(3))
    return row, references


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="dataset folder from training/prepare_dataset.py")
    parser.add_argument("--split", default="test")
    parser.add_argument("--checkpoint", default=None, help="pipeline folder (default: the bundled checkpoint)")
    parser.add_argument("--max_pairs", type=int, default=200, help="pairs of both kinds drawn, as the evaluation's")
    parser.add_argument("--strengths", default="1", help="comma list of expression strengths")
    args = parser.parse_args(argv)

    dataset = load_split(args.dataset, args.split)
    pairs = [p for p in build_pairs(split_columns(dataset), max_pairs=args.max_pairs) if p.kind == CROSS_PERSON]
    data = decode_rows(dataset, {row for p in pairs for row in (p.source, p.target, p.reference)})
    pipe = AIPGANPipeline.from_pretrained(args.checkpoint)
    strengths = [float(value) for value in args.strengths.split(",")]
    made = {strength: outputs(pipe, pairs, data, strength) for strength in strengths}
    figures: dict = {"pairs": len(pairs)}
    print(f"{len(pairs)} cross-person pairs of {args.split!r}\n")
    target_images = [data.images[p.target] for p in pairs]

    def ratio(images: list[np.ndarray]) -> float:
        return float(np.median([sharpness(a) / sharpness(t) for a, t in zip(images, target_images)]))

    figures["sharpness against the targets"] = {
        "outputs": ratio(made[strengths[0]]),
        **{
            f"targets blurred {sigma:g} px": ratio([blur(t, sigma) for t in target_images]) for sigma in SHARPNESS_BLURS
        },
    }
    print(
        "Laplacian energy against the targets': "
        + ", ".join(f"{k} {v:.2f}" for k, v in figures["sharpness against the targets"].items())
        + "\n"
    )
    for name in sorted(CLASSIFIERS):
        row, references = classifier_row(ExpressionClassifier(name), pairs, data, target_images, made)
        figures[name] = row
        print(f"{name}: target unchanged agrees with the source {row['target_agrees_with_source']:.2f}")
        for strength in strengths:
            cell = row[f"strength {strength:g}"]
            print(
                f"  output at strength {strength:g}: agrees with the source {cell['agrees_with_source']:.2f}, "
                f"with the target {cell['agrees_with_target']:.2f}"
            )
        print(
            "  "
            + ", ".join(
                f"sources keep their label after a {sigma:g}-px blur: {row[f'source kept after a {sigma:g}-px blur']:.2f}"
                for sigma in BLURS
            )
        )
        print(f"  the {len(references)} neutral references read as {row['neutral references read as']}")
    return figures


if __name__ == "__main__":
    main()
