#!/usr/bin/env python
"""Export a trained kpext Keypoint R-CNN to ONNX (onnxruntime) or TorchScript.

    .venv/bin/python projects/PoseEstimation/export_model.py \\
        --config-file output/demo/config.yaml \\
        --format onnx --output output/export/model.onnx MODEL.WEIGHTS output/demo/model_final.pth

The graph is traced on an example image (``--image``, else the first image of
``DATASETS.TEST[0]``), which must give at least one detection; it then runs on any image
size and any number of detections. Every kpext head and Detectron2's stock head export.

Graph (both formats; see ``kpext/export.py``):
  inputs   image        float32 3 x H x W: ResizeShortestEdge(INPUT.MIN_SIZE_TEST,
                        INPUT.MAX_SIZE_TEST), channels in INPUT.FORMAT order (BGR), 0-255
           output_size  int64 [2]: original (height, width)
  outputs  boxes N x 4, scores N, classes N (int64), keypoints N x K x 3 (x, y, score),
           in original image pixels; MODEL.ROI_HEADS.SCORE_THRESH_TEST is baked in.

Run it with ``kpext.export.OnnxPredictor(path, cfg)`` (BGR image in, Instances out) or
``demo.py --onnx PATH``. Bad input (a config the export cannot honour, a missing
file, weights that do not fit the model the config builds: the error names the parameters and
the ``config.yaml`` saved beside the weights) stops with a one-line error and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Optional, Sequence

import cv2
import torch

import kpext  # noqa: F401  (registers kpext heads and datasets)
from kpext.engine.inference import one_line
from kpext.engine.weights import load_checked_weights
from kpext.export import EXPORT_FORMATS, ExportError, export_model, load_predictor, preprocess

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--format", choices=EXPORT_FORMATS, default="onnx")
    parser.add_argument("--output", required=True, metavar="PATH", help="file to write")
    parser.add_argument(
        "--image", help="example image to trace on (default: first image of DATASETS.TEST[0])"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser


def setup(args: argparse.Namespace):
    if not os.path.isfile(args.config_file):
        raise ExportError(f"config file not found: {args.config_file}")
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    try:
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
    except Exception as e:
        raise ExportError(f"bad config {args.config_file}: {one_line(e)}") from None
    cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    weights = cfg.MODEL.WEIGHTS
    if not weights:
        raise ExportError("no MODEL.WEIGHTS: add 'MODEL.WEIGHTS path/model_final.pth' at the end")
    if "://" not in weights and not os.path.isfile(weights):
        raise ExportError(f"weights file not found: {weights}")
    return cfg


def example_image_path(cfg, image: Optional[str]) -> str:
    if image:
        if not os.path.isfile(image):
            raise ExportError(f"example image not found: {image}")
        return image
    if cfg.DATASETS.TEST:
        try:
            records = DatasetCatalog.get(cfg.DATASETS.TEST[0])
        except Exception as e:
            raise ExportError(
                f"no --image, and DATASETS.TEST[0] cannot be read: {one_line(e)}"
            ) from None
        if records:
            return records[0]["file_name"]
    raise ExportError("no --image and no test image in DATASETS.TEST: give --image")


def run(args: argparse.Namespace) -> None:
    cfg = setup(args)
    image_path = example_image_path(cfg, args.image)
    image = cv2.imread(image_path)
    if image is None:
        raise ExportError(f"cannot read image {image_path}")
    model = build_model(cfg)
    try:
        load_checked_weights(model, cfg.MODEL.WEIGHTS, args.config_file)
    except ValueError as e:  # weights that do not fit the model, an unreadable file
        raise ExportError(str(e)) from None
    model.eval()
    start = time.perf_counter()
    export_model(model, cfg, image, args.output, args.format)
    took = time.perf_counter() - start
    # Check the written file against the eager model on the example image.
    tensor, size = preprocess(image, cfg)
    with torch.no_grad():
        inputs = {"image": tensor, "height": int(size[0]), "width": int(size[1])}
        eager = model([inputs])[0]["instances"]
    exported = load_predictor(args.output, cfg)(image)["instances"]
    diff = 0.0
    if len(eager) and len(exported) == len(eager):
        diff = float((exported.pred_keypoints[..., :2] - eager.pred_keypoints[..., :2]).abs().max())
    print(
        f"Wrote {args.output} ({args.format}, {took:.1f} s) traced on {image_path}: "
        f"{len(exported)} detections (eager {len(eager)}), largest keypoint difference "
        f"{diff:.2e} px"
    )


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    try:
        run(args)
    except ExportError as e:
        raise SystemExit(f"export_model.py: error: {e}") from None


if __name__ == "__main__":
    main()
