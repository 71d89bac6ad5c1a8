"""``python -m aipgan_hf.evaluate``: the evaluation command, and the evaluation's names, kept importable from here.

The code lives in the :mod:`aipgan_hf.evaluation` package, one module per step along the data's path (data,
pairs, methods, crops, scoring, report; the command line is :mod:`aipgan_hf.evaluation.run`).
"""

import sys

from aipgan_hf.evaluation.crops import CropMeasurement, CropMeasurer
from aipgan_hf.evaluation.data import (
    REQUIRED_COLUMNS,
    SplitData,
    decode_rows,
    fid_reference_rows,
    load_split,
    split_columns,
)
from aipgan_hf.evaluation.methods import (
    BASELINES,
    MODEL_METHOD,
    Method,
    Retarget,
    aligned_source_retarget,
    baseline_methods,
    model_method,
    oracle_landmarks,
    piecewise_affine_warp,
)
from aipgan_hf.evaluation.pairs import CROSS_PERSON, PAIR_KINDS, SAME_PERSON, EvaluationPair, SplitColumns, build_pairs
from aipgan_hf.evaluation.run import (
    DEFAULT_CLASSIFIERS,
    main,
    parse_args,
    parse_baselines,
    parse_classifiers,
    write_atomically,
)
from aipgan_hf.evaluation.scoring import REFERENCE_METHOD, EvaluationResult, PairFaces, evaluate, pair_scores

__all__ = [
    "CropMeasurement", "CropMeasurer", "REQUIRED_COLUMNS", "SplitData", "decode_rows", "fid_reference_rows",
    "load_split", "split_columns", "BASELINES", "MODEL_METHOD", "Method", "Retarget", "aligned_source_retarget",
    "baseline_methods", "model_method", "oracle_landmarks", "piecewise_affine_warp", "CROSS_PERSON", "PAIR_KINDS",
    "SAME_PERSON", "EvaluationPair", "SplitColumns", "build_pairs", "DEFAULT_CLASSIFIERS", "main", "parse_args",
    "parse_baselines", "parse_classifiers", "write_atomically", "REFERENCE_METHOD", "EvaluationResult", "PairFaces",
    "evaluate", "pair_scores",
]

if __name__ == "__main__":
    sys.exit(main())
