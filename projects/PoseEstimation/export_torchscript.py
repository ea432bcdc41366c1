#!/usr/bin/env python
"""Export a trained kpext model to TorchScript by tracing (Detectron2's TracingAdapter).

    .venv/bin/python projects/PoseEstimation/export_torchscript.py \
        --config-file configs/synthetic/keypoint_rcnn_R18_FPN_kpext.yaml \
        --image datasets/synthetic/val/images/000001.jpg --output output/export \
        MODEL.WEIGHTS output/demo/model_final.pth

Writes OUTPUT/model.ts and checks that the traced model gives the eager model's
keypoints on the example image (prints the largest difference).
"""

import argparse
import os
import sys

import torch

import kpext  # noqa: F401
from kpext.export import run_traced, trace_model

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.data import transforms as T
from detectron2.data.detection_utils import read_image
from detectron2.modeling import build_model


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", required=True)
    parser.add_argument(
        "--image", required=True, help="example image used for tracing and checking"
    )
    parser.add_argument("--output", default="output/export")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args()

    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    if not cfg.MODEL.WEIGHTS or not os.path.isfile(cfg.MODEL.WEIGHTS):
        sys.exit(f"export_torchscript: MODEL.WEIGHTS '{cfg.MODEL.WEIGHTS}' is not a file")
    if not os.path.isfile(args.image):
        sys.exit(f"export_torchscript: no image at {args.image}")
    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.eval()

    image = read_image(args.image, format=cfg.INPUT.FORMAT)
    resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    image = torch.as_tensor(
        resize.get_transform(image).apply_image(image).astype("float32").transpose(2, 0, 1)
    )
    traced, adapter = trace_model(model, image)
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, "model.ts")
    traced.save(path)

    eager = model.inference([{"image": image}], do_postprocess=False)[0]
    exported = run_traced(torch.jit.load(path), adapter, image)
    diff = (
        (exported.pred_keypoints - eager.pred_keypoints).abs().max().item() if len(eager) else 0.0
    )
    print(
        f"Wrote {path}; {len(eager)} detections; largest keypoint difference traced vs eager: {diff:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
