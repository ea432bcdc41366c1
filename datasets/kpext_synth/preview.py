"""A picture of the synthetic people's styles: one example image per style, with
its labels drawn underneath (``datasets/make_synthetic.py --preview``, which made
``docs/synthetic_styles.jpg``)."""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from kpext.data.builtin import SYNTHETIC_CATEGORY
from kpext.data.keypoint_metadata import keypoint_metadata_from_category
from kpext.io import atomic_imwrite

from .people_config import DEFAULT_SPLITS, HELDOUT_STYLES, STYLES, SyntheticConfig
from .render import image_rng
from .scene import render_image

__all__ = ["style_example", "style_preview", "write_style_preview"]

_HEADER_PX = 26
_TRIES = 60


def style_example(
    style: str, cfg: Optional[SyntheticConfig] = None, seed: int = 0
) -> Tuple[np.ndarray, List[dict]]:
    """A telling example image of ``style``: the first (deterministic) image with 2-4
    people, one of them at least a third of the image tall.

    Args:
        cfg: the look (size, variety) to draw with; the train split's by default.
    Returns:
        (H, W, 3) uint8 BGR image and its labels (dicts of :func:`render_people`).
    """
    cfg = dataclasses.replace(cfg or DEFAULT_SPLITS["train"], styles=(style,))
    fallback = None
    for index in range(_TRIES):
        image, anns = render_image(cfg, image_rng(seed, f"preview_{style}", index))
        fallback = fallback or (image, anns)
        tallest = max((a["bbox"][3] for a in anns), default=0.0)
        if 2 <= len(anns) <= 4 and tallest >= cfg.height / 3:
            return image, anns
    return fallback


def _header(width: int, text: str, held_out: bool) -> np.ndarray:
    strip = np.full((_HEADER_PX, width, 3), 40 if held_out else 245, dtype=np.uint8)
    color = (245, 245, 245) if held_out else (30, 30, 30)
    cv2.putText(strip, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, color, 1, cv2.LINE_AA)
    return strip


def style_preview(styles: Sequence[str] = STYLES, seed: int = 0) -> np.ndarray:
    """A grid (BGR uint8): one column per style, named on top (held-out styles on a
    dark strip); the example image above, the same with its labelled skeletons
    (occluded keypoints as rings) below."""
    from kpext.visualization import draw_annotations  # imports detectron2: only when drawing

    metadata = keypoint_metadata_from_category(SYNTHETIC_CATEGORY)
    columns = []
    for style in styles:
        image, anns = style_example(style, seed=seed)
        labelled = draw_annotations(image, [a["keypoints"] for a in anns], metadata)
        held_out = style in HELDOUT_STYLES
        name = f"{style} (held out)" if held_out else style
        column = np.concatenate([_header(image.shape[1], name, held_out), image, labelled])
        columns.extend([column, np.full((column.shape[0], 4, 3), 255, np.uint8)])  # white gap
    return np.concatenate(columns[:-1], axis=1)


def write_style_preview(path: str, styles: Sequence[str] = STYLES, quality: int = 85) -> None:
    """Write :func:`style_preview` as a JPEG (whole or not at all: :mod:`kpext.io`)."""
    atomic_imwrite(path, style_preview(styles), [cv2.IMWRITE_JPEG_QUALITY, quality])
