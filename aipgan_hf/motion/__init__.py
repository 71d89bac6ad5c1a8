"""Motion: from landmarks to a dense flow, in one place.

    source landmarks --ShapeModel.expression--> identity-free expression coefficients
    target landmarks + coefficient change --ShapeModel.drive--> driving landmarks
    (target landmarks, driving landmarks) --landmark_flow--> dense flow --warp--> warped features / pixels

The generator receives the flow as a tensor and never re-derives it; sliders and presets act on the shape
model's coefficients, not on network features. What happens to pixels after the networks (paste-back, an opened
mouth's inside) is :mod:`aipgan_hf.compositing`.
"""

from .flow import identity_grid, landmark_flow, warp
from .shape_model import MAX_EXPRESSION_STRENGTH, SHAPE_MODEL_NAME, STABLE_POINTS, ShapeModel

__all__ = ["MAX_EXPRESSION_STRENGTH", "SHAPE_MODEL_NAME", "STABLE_POINTS", "ShapeModel", "identity_grid", "landmark_flow", "warp"]
