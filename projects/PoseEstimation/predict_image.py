#!/usr/bin/env python
"""Run a trained kpext model on one image and print each person's box, score and keypoints.

python projects/PoseEstimation/predict_image.py CONFIG WEIGHTS IMAGE

CONFIG is best the ``config.yaml`` the training run saved beside WEIGHTS: weights that do not
fit the model CONFIG builds stop it with a one-line error naming that file.
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

import cv2

import kpext  # noqa: F401  (registers kpext's heads and datasets: import it before building a model)
from kpext.engine.predictor import KpextPredictor

from detectron2.data import MetadataCatalog


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="model config, e.g. output/demo/config.yaml")
    parser.add_argument("weights", help="trained checkpoint, e.g. output/demo/model_final.pth")
    parser.add_argument("image")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    try:
        # eval mode, test-time resize, BGR input; people scoring less than 0.5 are dropped
        predictor = KpextPredictor.from_config_file(args.config, args.weights, score_threshold=0.5)
    except ValueError as e:  # a bad config, weights that do not fit the model it builds
        raise SystemExit(f"predict_image.py: error: {e}") from None
    cfg = predictor.cfg
    keypoint_names = MetadataCatalog.get(cfg.DATASETS.TEST[0]).keypoint_names

    image = cv2.imread(args.image)  # H x W x 3, BGR
    if image is None:
        raise SystemExit(f"predict_image.py: error: cannot read image {args.image}")
    instances = predictor(image)["instances"].to("cpu")
    for i in range(len(instances)):
        x0, y0, x1, y1 = instances.pred_boxes.tensor[i].tolist()
        print(
            f"person {i}: box ({x0:.1f}, {y0:.1f}, {x1:.1f}, {y1:.1f}), "
            f"score {instances.scores[i]:.3f}"
        )
        # (x, y) in image pixels (Detectron2's convention: the image's top-left corner is (0, 0))
        for name, (x, y, score) in zip(keypoint_names, instances.pred_keypoints[i].tolist()):
            print(f"  {name:>15}: {x:6.1f}, {y:6.1f}  (score {score:.2f})")


if __name__ == "__main__":
    main()
