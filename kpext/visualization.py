"""Pictures of keypoint predictions, drawn with Detectron2's Visualizer."""
from __future__ import annotations

import os
from typing import List

import cv2
import numpy as np
import torch

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T
from detectron2.structures import Instances
from detectron2.utils import visualizer as d2_visualizer
from detectron2.utils.visualizer import ColorMode, Visualizer


def scale_instances(instances: Instances, factor: float) -> Instances:
    """Copy of predictions with boxes and keypoint coordinates multiplied by ``factor``."""
    out = Instances(
        (int(round(instances.image_size[0] * factor)), int(round(instances.image_size[1] * factor)))
    )
    for name, value in instances.get_fields().items():
        if name == "pred_boxes":
            value = value.clone()
            value.scale(factor, factor)
        elif name == "pred_keypoints":
            value = value.clone()
            value[..., :2] *= factor
        out.set(name, value)
    return out


def draw_keypoint_predictions(
    image_bgr: np.ndarray,
    instances: Instances,
    metadata,
    keypoint_threshold: float = 0.05,
    min_size: int = 0,
) -> np.ndarray:
    """Draw boxes, scores and skeletons; returns a BGR image.

    ``keypoint_threshold`` hides keypoints whose score is lower; images whose
    short side is below ``min_size`` are enlarged first so that labels stay legible.
    """
    factor = max(1.0, min_size / min(image_bgr.shape[:2]))
    if factor > 1.0:
        image_bgr = cv2.resize(image_bgr, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
        instances = scale_instances(instances.to("cpu"), factor)
    previous = d2_visualizer._KEYPOINT_THRESHOLD
    # The Visualizer reads its keypoint threshold from a module constant.
    d2_visualizer._KEYPOINT_THRESHOLD = keypoint_threshold
    try:
        vis = Visualizer(image_bgr[:, :, ::-1], metadata, instance_mode=ColorMode.IMAGE)
        drawn = vis.draw_instance_predictions(instances.to("cpu"))
    finally:
        d2_visualizer._KEYPOINT_THRESHOLD = previous
    return drawn.get_image()[:, :, ::-1]


def detections_to_draw(instances: Instances, score_threshold: float, max_detections: int = 0) -> Instances:
    """The detections scoring at least ``score_threshold``, best first, at most
    ``max_detections`` of them (0: all)."""
    instances = instances[instances.scores >= score_threshold]
    order = torch.argsort(instances.scores, descending=True)
    if max_detections > 0:
        order = order[:max_detections]
    return instances[order]


@torch.no_grad()
def save_prediction_pictures(cfg, model, dataset_name: str, out_dir: str, num_images: int) -> List[str]:
    """Run ``model`` on the first ``num_images`` of a dataset and save pictures of its predictions.

    Returns the written file paths.
    """
    os.makedirs(out_dir, exist_ok=True)
    records = DatasetCatalog.get(dataset_name)[:num_images]
    metadata = MetadataCatalog.get(dataset_name)
    resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    was_training = model.training
    model.eval()
    written = []
    for record in records:
        image = cv2.imread(record["file_name"])
        if image is None:
            raise FileNotFoundError(f"{dataset_name}: cannot read image {record['file_name']}")
        resized = resize.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))
        height, width = image.shape[:2]
        output = model([{"image": tensor, "height": height, "width": width}])[0]["instances"]
        output = detections_to_draw(output, cfg.TEST.KPEXT.VIS_SCORE_THRESHOLD, cfg.TEST.KPEXT.VIS_MAX_DETECTIONS)
        picture = draw_keypoint_predictions(
            image, output, metadata, cfg.TEST.KPEXT.VIS_KEYPOINT_THRESHOLD, cfg.TEST.KPEXT.VIS_MIN_SIZE
        )
        path = os.path.join(out_dir, os.path.splitext(os.path.basename(record["file_name"]))[0] + ".jpg")
        cv2.imwrite(path, picture)
        written.append(path)
    model.train(was_training)
    return written
