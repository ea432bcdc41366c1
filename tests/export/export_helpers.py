"""Models, images and comparisons shared by the export tests."""

from __future__ import annotations

from typing import Dict, List, Sequence

import cv2
import numpy as np
import torch
from engine_helpers import BASE_CONFIG, TINY_OVERRIDES, make_tiny_synthetic, train_on_one_batch

from kpext import add_kpext_config
from kpext.data import register_keypoint_coco
from kpext.export import preprocess

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from detectron2.structures import Instances

TRAIN_NAME = "kpext_test_export_train"
# Thin variants of every head, so that an export takes seconds.
HEAD_OVERRIDES = [
    "MODEL.KPEXT.GAUSSIAN.CONV_DIMS", "(32, 32)", "MODEL.KPEXT.HOURGLASS.CHANNELS", "32",
]  # fmt: skip
# The score threshold the parity models are exported at. The parity test checks on the eager
# model that it leaves at least three detection counts on parity_images, 0 among them (one
# count per image would hide a frozen one).
EXPORT_SCORE_THRESH = 0.5


def tiny_cfg(head: str = "KpextKRCNNHead", score_thresh: float = EXPORT_SCORE_THRESH, opts=()):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    cfg.merge_from_list(TINY_OVERRIDES + HEAD_OVERRIDES + list(opts))
    cfg.MODEL.ROI_KEYPOINT_HEAD.NAME = head
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = score_thresh
    cfg.DATASETS.TRAIN = (TRAIN_NAME,)
    return cfg


def train_tiny_detector(root):
    """Train the tiny model 20 steps on one batch of a tiny synthetic set under ``root``;
    returns (state_dict, root)."""
    make_tiny_synthetic(root)
    if TRAIN_NAME not in DatasetCatalog.list():
        register_keypoint_coco(
            TRAIN_NAME,
            str(root / "synthetic" / "annotations" / "person_keypoints_train.json"),
            str(root / "synthetic" / "train" / "images"),
        )
    cfg = tiny_cfg()
    cfg.SOLVER.BASE_LR = 0.01
    # One training batch on every Detectron2: kpext's loader draws its order from SEED (v0.6's
    # own sampler would draw it from numpy's global generator, upstream's from SEED).
    cfg.SEED = 0
    _, model, _ = train_on_one_batch(cfg, 20)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, root


def model_with_detector(head: str, state: Dict[str, torch.Tensor], opts=()):
    """A tiny model with ``head``, the trained detector's weights (its own keypoint head's
    where the names match, else seed 0's initialisation), in eval mode; and its config."""
    cfg = tiny_cfg(head, opts=opts)
    torch.manual_seed(0)
    model = build_model(cfg)
    own = model.state_dict()
    model.load_state_dict(
        {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}, strict=False
    )
    return model.eval(), cfg


def parity_images(root) -> List[np.ndarray]:
    """BGR images of three sizes: two synthetic val images (128 x 128), one scaled to 192 x 256,
    one pasted into a 96 x 240 grey strip, and a flat grey 150 x 200 image (no person)."""
    val = sorted((root / "synthetic" / "val" / "images").glob("*.jpg"))
    first, second = (cv2.imread(str(p)) for p in val[:2])
    strip = np.full((96, 240, 3), 127, np.uint8)
    strip[:, 60:156] = cv2.resize(second, (96, 96))
    return [
        first,
        cv2.resize(first, (256, 192)),
        second,
        strip,
        np.full((150, 200, 3), 127, np.uint8),
    ]


def eager_predict(model, cfg, image: np.ndarray) -> Instances:
    """DefaultPredictor's call on ``model``: resized image, postprocessed to the original size."""
    tensor, size = preprocess(image, cfg)
    with torch.no_grad():
        inputs = {"image": tensor, "height": int(size[0]), "width": int(size[1])}
        return model([inputs])[0]["instances"]


def assert_same_predictions(exported: Instances, eager: Instances, context: str = "") -> None:
    """Same count; boxes and keypoints within 1 px, scores within 1e-3."""
    assert len(exported) == len(eager), f"{context}: {len(exported)} vs {len(eager)} detections"
    if not len(eager):
        return
    box_error = (exported.pred_boxes.tensor - eager.pred_boxes.tensor).abs().max().item()
    assert box_error <= 1.0, f"{context}: boxes differ by {box_error:.3g} px"
    score_error = (exported.scores - eager.scores).abs().max().item()
    assert score_error <= 1e-3, f"{context}: scores differ by {score_error:.3g}"
    kp_error = (exported.pred_keypoints[..., :2] - eager.pred_keypoints[..., :2]).abs().max()
    assert kp_error.item() <= 1.0, f"{context}: keypoints differ by {kp_error.item():.3g} px"
    kp_score_error = (exported.pred_keypoints[..., 2] - eager.pred_keypoints[..., 2]).abs().max()
    assert kp_score_error.item() <= 1e-3, (
        f"{context}: keypoint scores differ by {kp_score_error:.3g}"
    )
    assert torch.equal(exported.pred_classes.long(), eager.pred_classes.long()), context


def counts(instances: Sequence[Instances]) -> List[int]:
    return [len(i) for i in instances]
