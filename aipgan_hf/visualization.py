"""Pictures of what the model sees: landmarks on a photo, the expression encoder's attention, and one strip of the
views of a transfer (the app's "Inside the model")."""

from __future__ import annotations

import matplotlib
import numpy as np
from PIL import Image, ImageDraw

from .landmarks import INNER_LIPS, JAW, LEFT_BROW, LEFT_EYE, NOSE, OUTER_LIPS, RIGHT_BROW, RIGHT_EYE
from .pipeline import TransferResult

LANDMARK_VIEW_SIZE = 320
ATTENTION_VIEW_SIZE = 256
LANDMARK_DOT = (255, 64, 64)
LANDMARK_LINE = (0, 255, 128)


def draw_landmarks(photo: np.ndarray, landmarks: np.ndarray, size: int = LANDMARK_VIEW_SIZE) -> Image.Image:
    """The face region of ``photo`` with its 68 landmarks (photo coordinates) drawn as contours and dots."""
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    margin = 0.35 * float((high - low).max())
    height, width = photo.shape[:2]
    x0, y0 = max(0.0, low[0] - margin), max(0.0, low[1] - margin)
    x1, y1 = min(float(width), high[0] + margin), min(float(height), high[1] + margin)
    scale = size / max(x1 - x0, y1 - y0)
    view = Image.fromarray(photo).crop((round(x0), round(y0), round(x1), round(y1)))
    size_in_view = (max(1, round(view.width * scale)), max(1, round(view.height * scale)))
    view = view.resize(size_in_view, Image.Resampling.LANCZOS)
    points = (landmarks - np.array([round(x0), round(y0)])) * scale  # (68, 2) view coordinates
    draw = ImageDraw.Draw(view)
    for group, closed in (
        (JAW, False),
        (RIGHT_BROW, False),
        (LEFT_BROW, False),
        (NOSE, False),
        (RIGHT_EYE, True),
        (LEFT_EYE, True),
        (OUTER_LIPS, True),
        (INNER_LIPS, True),
    ):
        line = [tuple(p) for p in points[group].tolist()]
        draw.line(line + line[:1] if closed else line, fill=LANDMARK_LINE, width=1)
    radius = max(1.5, size / 160)
    for x, y in points.tolist():
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=LANDMARK_DOT)
    return view


def attention_overlay(face: Image.Image, attention: np.ndarray, size: int = ATTENTION_VIEW_SIZE) -> Image.Image:
    """The (h, w) attention map in [0, 1], upsampled and colour-mapped (inferno), blended over the aligned face."""
    heat = Image.fromarray(np.clip(attention, 0.0, 1.0).astype(np.float32))
    heat = heat.resize((size, size), Image.Resampling.BILINEAR)
    colours = matplotlib.colormaps["inferno"](np.asarray(heat))[..., :3]  # (size, size, 3) in [0, 1]
    colour_map = Image.fromarray((colours * 255).round().astype(np.uint8))
    return Image.blend(face.convert("RGB").resize((size, size), Image.Resampling.LANCZOS), colour_map, alpha=0.55)


def model_views(
    result: TransferResult, source_photo: np.ndarray, target_photo: np.ndarray, height: int = 240
) -> Image.Image:
    """One picture, left to right: source landmarks, target landmarks, the driving landmarks on the aligned target,
    the expression encoder's attention there, the intrinsic face."""
    views = [
        draw_landmarks(source_photo, result.source_landmarks),
        draw_landmarks(target_photo, result.target_landmarks),
        draw_landmarks(np.asarray(result.target_face.convert("RGB")), result.driving_landmarks),
        attention_overlay(result.target_face, result.expression_attention),
        result.intrinsic.convert("RGB"),
    ]
    views = [
        view.resize((max(1, round(view.width * height / view.height)), height), Image.Resampling.BILINEAR)
        for view in views
    ]
    gap = 6
    strip = Image.new("RGB", (sum(view.width for view in views) + gap * (len(views) - 1), height), (255, 255, 255))
    left = 0
    for view in views:
        strip.paste(view, (left, 0))
        left += view.width + gap
    return strip
