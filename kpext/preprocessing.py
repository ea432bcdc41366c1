"""Test-time preprocessing, written once: a BGR image -> the model's input, as Detectron2's
``DefaultPredictor`` prepares it. Pictures of predictions (:mod:`kpext.visualization`), the
exported graph's input (:func:`kpext.export.preprocess`) and the benchmarks' frozen detector
use it.

* the channels in ``INPUT.FORMAT``'s order (``RGB`` reverses a BGR image; ``BGR`` keeps it);
* the shortest edge resized to ``INPUT.MIN_SIZE_TEST``, the longest at most
  ``INPUT.MAX_SIZE_TEST`` (:func:`test_resize`);
* a 3 x H' x W' float32 tensor of the 0-255 values (the model normalises them), with the
  original image's height and width, to which the model scales its outputs back.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch

from detectron2.data import transforms as T

__all__ = ["test_resize", "model_input"]


def test_resize(cfg) -> T.ResizeShortestEdge:
    """The test-time resize (``DefaultPredictor``'s): shortest edge ``INPUT.MIN_SIZE_TEST``,
    longest at most ``INPUT.MAX_SIZE_TEST``."""
    return T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)


def model_input(image_bgr: np.ndarray, cfg) -> Dict[str, Any]:
    """A BGR H x W x 3 uint8 image -> ``{"image": 3 x H' x W' float32 tensor, "height": H,
    "width": W}``, one entry of the list a Detectron2 model takes (``DefaultPredictor``'s,
    tensor layout included: the channel axis moved first without a copy)."""
    image = image_bgr[:, :, ::-1] if cfg.INPUT.FORMAT == "RGB" else image_bgr
    height, width = image.shape[:2]
    resized = test_resize(cfg).get_transform(image).apply_image(image)
    tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
    return {"image": tensor, "height": height, "width": width}
