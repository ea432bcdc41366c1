#!/usr/bin/env python
"""Speed of exported models: images/s of eager PyTorch, TorchScript and onnxruntime on this CPU.

    .venv/bin/python projects/Benchmarks/bench_export.py     # part of `make bench`
    taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python projects/Benchmarks/bench_export.py

Two settings, KpextKRCNNHead: the demo config (configs/synthetic/keypoint_rcnn_R18_FPN_kpext.yaml,
256 px; output/demo/model_final.pth if it exists, else untrained weights) and full size
(configs/coco/keypoint_rcnn_R50_FPN_kpext.yaml, R50-FPN, 800 px short side, untrained weights,
TEST.DETECTIONS_PER_IMAGE 20).
Each runtime is timed on the whole predictor call (BGR image in, Instances out) in one
process, the three alternating image by image; the median over repeats is reported, with
the ratios to eager. Untrained weights give as many detections as TEST.DETECTIONS_PER_IMAGE
allows (the table says how many): the keypoint head's share is then larger than a trained
model's. Torch and onnxruntime use the same number of threads (torch's).
Writes output/bench/export.json and output/bench/export.md (BENCH_EXPORT_OUT to change).
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List

import cv2
import numpy as np
import torch
from kpext_bench.machine import cpu_model_name
from kpext_bench.reports import write_report

import kpext  # noqa: F401
from kpext.export import OnnxPredictor, TorchScriptPredictor, export_model, preprocess

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.engine import DefaultPredictor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.environ.get("BENCH_EXPORT_OUT", os.path.join(REPO, "output", "bench"))
DEMO_WEIGHTS = os.path.join(REPO, "output", "demo", "model_final.pth")
SETTINGS = [
    # name, config, repeats per runtime
    ("demo 256 px (R18-FPN)", "configs/synthetic/keypoint_rcnn_R18_FPN_kpext.yaml", 15),
    ("full 800 px (R50-FPN)", "configs/coco/keypoint_rcnn_R50_FPN_kpext.yaml", 3),
]
RUNTIMES = ("eager", "torchscript", "onnxruntime")
# BENCH_QUICK=1 (make bench's smoke run): the demo setting only, 3 repeats: every path runs,
# the numbers are not a result.
QUICK = os.environ.get("BENCH_QUICK", "0") not in ("", "0")


def settings() -> list:
    return [(name, config, 3) for name, config, _ in SETTINGS[:1]] if QUICK else SETTINGS


def setting_cfg(config: str):
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(os.path.join(REPO, config))
    cfg.MODEL.DEVICE = "cpu"
    trained = "synthetic" in config and os.path.isfile(DEMO_WEIGHTS)
    cfg.MODEL.WEIGHTS = DEMO_WEIGHTS if trained else ""
    if "coco" in config:
        # COCO's 100 detections per image would time the 8-conv keypoint head on 100 RoIs:
        # 20, a busy street's worth of people.
        cfg.TEST.DETECTIONS_PER_IMAGE = 20
    if not trained:
        # Random weights through 50 FrozenBN layers blow up into no detection at all: BN, its
        # statistics calibrated on the bench image (see calibrate_norms); an affine per
        # channel at inference, as FrozenBN.
        cfg.MODEL.RESNETS.NORM = "BN"
    return cfg, trained


def calibrate_norms(model, image, cfg) -> None:
    """Untrained weights: set the backbone's BatchNorm statistics from the image itself, so
    that the untrained model detects (as many boxes as TEST.DETECTIONS_PER_IMAGE allows)."""
    tensor, _ = preprocess(image, cfg)
    for m in model.backbone.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.backbone.train()
    with torch.no_grad():
        images = model.preprocess_image([{"image": tensor}])
        model.backbone(images.tensor)
    model.eval()


def bench_image() -> np.ndarray:
    """A synthetic val image when the set exists (256 x 256), else a smooth random one."""
    path = os.path.join(REPO, "datasets", "synthetic", "val", "images", "000001.jpg")
    if os.path.isfile(path):
        return cv2.imread(path)
    rng = np.random.default_rng(0)
    return cv2.resize(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), (256, 256))


def time_alternating(runners: Dict[str, Callable], image, repeats: int) -> Dict[str, List[float]]:
    for run in runners.values():  # warm-up: first-call allocations, lazy initialisation
        run(image)
    seconds: Dict[str, List[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run(image)
            seconds[name].append(time.perf_counter() - start)
    return seconds


def bench_setting(name: str, config: str, repeats: int, image, folder: str) -> dict:
    cfg, trained = setting_cfg(config)
    torch.manual_seed(0)
    eager = DefaultPredictor(cfg)
    if trained:
        DetectionCheckpointer(eager.model).load(cfg.MODEL.WEIGHTS)
    else:
        calibrate_norms(eager.model, image, cfg)
    onnx_path = os.path.join(folder, "model.onnx")
    ts_path = os.path.join(folder, "model.ts")
    start = time.perf_counter()
    export_model(eager.model, cfg, image, onnx_path, "onnx")
    export_model(eager.model, cfg, image, ts_path, "torchscript")
    export_seconds = time.perf_counter() - start
    runners = {
        "eager": eager,
        "torchscript": TorchScriptPredictor(ts_path, cfg),
        "onnxruntime": OnnxPredictor(onnx_path, cfg),
    }
    detections = {k: len(run(image)["instances"]) for k, run in runners.items()}
    seconds = time_alternating(runners, image, repeats)
    median = {k: statistics.median(v) for k, v in seconds.items()}
    h, w = image.shape[:2]
    scale = cfg.INPUT.MIN_SIZE_TEST / min(h, w)
    scale = min(scale, cfg.INPUT.MAX_SIZE_TEST / max(h, w))
    return {
        "setting": name,
        "config": config,
        "weights": "output/demo/model_final.pth"
        if trained
        else "untrained (seed 0, BN calibrated)",
        "input_size": [int(round(h * scale)), int(round(w * scale))],
        "detections": detections,
        "repeats": repeats,
        "export_seconds": round(export_seconds, 1),
        "onnx_mib": round(os.path.getsize(onnx_path) / 2**20, 1),
        "seconds": {k: [round(s, 4) for s in v] for k, v in seconds.items()},
        "images_per_second": {k: round(1 / v, 3) for k, v in median.items()},
        "ratio_to_eager": {k: round(median["eager"] / v, 2) for k, v in median.items()},
    }


def markdown(report: dict) -> str:
    lines = [
        f"Exported-model speed, {report['date']}, {report['cpu']}, "
        f"{report['torch_threads']} thread(s); images/s (ratio to eager), median of repeats.",
        "",
        "| setting | input | weights | detections | eager | TorchScript | onnxruntime |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["settings"]:
        ips, ratio = row["images_per_second"], row["ratio_to_eager"]
        cells = [f"{ips[k]:.2f} ({ratio[k]:.2f}x)" for k in RUNTIMES]
        h, w = row["input_size"]
        lines.append(
            f"| {row['setting']} | {h} x {w} | {row['weights']} | {row['detections']['eager']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    image = bench_image()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, config, repeats in settings():
            print(f"{name}: exporting and timing ...", flush=True)
            rows.append(bench_setting(name, config, repeats, image, folder))
            print(json.dumps(rows[-1]["images_per_second"]), flush=True)
    report = {
        "date": datetime.date.today().isoformat(),
        "quick": QUICK,
        "cpu": cpu_model_name(),
        "torch": torch.__version__,
        "onnxruntime": __import__("onnxruntime").__version__,
        "torch_threads": torch.get_num_threads(),
        "command": " ".join(["python", *sys.argv]),
        "settings": rows,
    }
    table = markdown(report)
    write_report(OUT, "export", report, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
