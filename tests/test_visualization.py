"""aipgan_hf.visualization: landmarks and attention drawn where they belong."""

from __future__ import annotations

import numpy as np
from PIL import Image

from aipgan_hf.visualization import LANDMARK_DOT, attention_overlay, draw_landmarks


def test_attention_overlay_follows_the_map():
    face = Image.new("RGB", (128, 128), (128, 128, 128))
    attention = np.zeros((32, 32), np.float32)
    attention[:, 16:] = 1.0  # right half attended
    view = np.asarray(attention_overlay(face, attention)).astype(int)
    assert view.shape == (256, 256, 3)
    assert view[:, 200:].sum() > view[:, :56].sum() * 1.5, "attended half is not brighter"


def test_landmarks_are_drawn_where_they_are():
    photo = np.full((200, 300, 3), 128, np.uint8)
    landmarks = np.stack([np.linspace(100, 200, 68), np.linspace(60, 140, 68)], axis=1)  # (68, 2) x, y
    view = np.asarray(draw_landmarks(photo, landmarks, size=160)).astype(int)
    dots = np.abs(view - LANDMARK_DOT).max(axis=-1) < 40
    assert dots.sum() > 68
    rows, columns = np.nonzero(dots)
    assert abs(columns.mean() - view.shape[1] / 2) < 10 and abs(rows.mean() - view.shape[0] / 2) < 10  # centred
