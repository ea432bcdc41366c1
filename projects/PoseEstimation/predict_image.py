#!/usr/bin/env python
"""Run a trained kpext model on one image and print each person's box, score and keypoints.

python projects/PoseEstimation/predict_image.py CONFIG WEIGHTS IMAGE
"""

import argparse

import cv2

import kpext  # registers kpext's heads and datasets: import it before building a model

from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog
from detectron2.engine import DefaultPredictor

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument(
    "config", help="model config, e.g. configs/synthetic/keypoint_rcnn_R18_FPN_kpext.yaml"
)
parser.add_argument("weights", help="trained checkpoint, e.g. output/demo/model_final.pth")
parser.add_argument("image")
args = parser.parse_args()

cfg = get_cfg()
kpext.add_kpext_config(cfg)
cfg.merge_from_file(args.config)
cfg.MODEL.WEIGHTS = args.weights
cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.5  # people scoring less are dropped
predictor = DefaultPredictor(cfg)  # eval mode, test-time resize, BGR input
keypoint_names = MetadataCatalog.get(cfg.DATASETS.TEST[0]).keypoint_names

image = cv2.imread(args.image)  # H x W x 3, BGR
if image is None:
    raise SystemExit(f"cannot read image {args.image}")
instances = predictor(image)["instances"].to("cpu")
for i in range(len(instances)):
    x0, y0, x1, y1 = instances.pred_boxes.tensor[i].tolist()
    print(
        f"person {i}: box ({x0:.1f}, {y0:.1f}, {x1:.1f}, {y1:.1f}), score {instances.scores[i]:.3f}"
    )
    # (x, y) in image pixels (Detectron2's convention: the image's top-left corner is (0, 0))
    for name, (x, y, score) in zip(keypoint_names, instances.pred_keypoints[i].tolist()):
        print(f"  {name:>15}: {x:6.1f}, {y:6.1f}  (score {score:.2f})")
