"""Motion: from landmarks to a dense flow, in one place.

    source landmarks --ShapeModel.expression--> identity-free expression coefficients
    target landmarks + coefficient change --ShapeModel.drive--> driving landmarks
    (target landmarks, driving landmarks) --landmark_flow--> dense flow --warp--> warped features / pixels
    driving landmarks --keep_inside--> no point pushed out of the crop
    a narrowing eye's flow --keep_eyeballs--> its lid slides over the eyeball
    (target, driving landmarks) --ExpressionLines.shade--> the FACS units' creases, as a ratio for the skin

FACS action units, their sliders and the seven emotion presets are directions of the shape model
(:mod:`~aipgan_hf.motion.action_units`).

The generator receives the flow as a tensor and never re-derives it; sliders and presets act on the shape
model's coefficients, not on network features. What happens to pixels after the networks (paste-back, an opened
mouth's inside) is :mod:`aipgan_hf.compositing`.
"""

from .flow import identity_grid, keep_eyeballs, keep_inside, landmark_flow, warp
from .lines import ExpressionLines
from .shape_model import MAX_EXPRESSION_STRENGTH, SHAPE_MODEL_NAME, STABLE_POINTS, ShapeModel

__all__ = [
    "MAX_EXPRESSION_STRENGTH",
    "SHAPE_MODEL_NAME",
    "STABLE_POINTS",
    "ExpressionLines",
    "ShapeModel",
    "identity_grid",
    "keep_eyeballs",
    "keep_inside",
    "landmark_flow",
    "warp",
]
