#!/usr/bin/env python
"""Compare keypoint heads in one run: same data, seed, backbone and schedule.

    make bench                    # full run (about 50 minutes on a 2-core CPU)
    BENCH_QUICK=1 make bench      # smoke run: a few iterations per head

For each head: train on kpext_synth_train with the synthetic CPU config, evaluate
on kpext_synth_val (COCOEvaluator, OKS keypoint AP), time training iterations and
the keypoint branch (pool + head + decode) on 20 fixed boxes. A second table times
the keypoint branch of the full-size R50-FPN COCO configs (Detectron2's 8 x 512 stock
head) on a 480 x 640 image, untrained. Writes output/bench/heads.json and heads.md.

Environment: BENCH_QUICK=1, BENCH_ITERS (default: the config's), BENCH_HEADS
(comma-separated row names), BENCH_OUT (default output/bench), BENCH_FULLSIZE_ONLY=1
(only the full-size timing table, written to fullsize.json/md).
"""
import json
import logging
import os
import statistics
import sys
import time

import torch

import kpext  # noqa: F401  (registers heads and datasets)
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.data.detection_utils import read_image
from detectron2.data import transforms as T
from detectron2.engine import HookBase
from detectron2.modeling import build_model
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

from kpext.benchmark.timing import count_parameters, time_keypoint_branch
from kpext.data.synthetic.people import DEFAULT_SPLITS, ensure_synthetic_dataset
from kpext.engine import KpextTrainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED = 0

# (row name, synthetic config, full-size COCO config)
VARIANTS = [
    ("stock", "keypoint_rcnn_R18_FPN_stock.yaml", "keypoint_rcnn_R50_FPN_stock.yaml"),
    ("kpext_krcnn", "keypoint_rcnn_R18_FPN_kpext.yaml", "keypoint_rcnn_R50_FPN_kpext.yaml"),
    ("gaussian", "keypoint_rcnn_R18_FPN_gaussian.yaml", "keypoint_rcnn_R50_FPN_gaussian.yaml"),
    ("hourglass", "keypoint_rcnn_R18_FPN_hourglass.yaml", "keypoint_rcnn_R50_FPN_hourglass.yaml"),
    ("gaussian_oks", "keypoint_rcnn_R18_FPN_gaussian_oks.yaml", "keypoint_rcnn_R50_FPN_gaussian_oks.yaml"),
]
AP_FIELDS = ("AP", "AP50", "AP75", "APm", "APl")

logger = logging.getLogger("kpext.bench")


class IterationTimes(HookBase):
    """Wall time of each training iteration (data loading included)."""

    def __init__(self):
        self.times = []

    def before_step(self):
        self._start = time.perf_counter()

    def after_step(self):
        self.times.append(time.perf_counter() - self._start)

    def median_after_warmup(self) -> float:
        steady = self.times[len(self.times) // 5 :] or self.times
        return statistics.median(steady)


def load_cfg(path: str, overrides=()):
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(path)
    cfg.merge_from_list(list(overrides))
    return cfg


def synthetic_overrides(name: str, out_root: str, quick: bool):
    opts = ["OUTPUT_DIR", os.path.join(out_root, name), "SEED", str(SEED), "TEST.EVAL_PERIOD", "0"]
    iters = os.environ.get("BENCH_ITERS") or ("20" if quick else None)
    if iters:
        n = int(iters)
        opts += ["SOLVER.MAX_ITER", str(n), "SOLVER.STEPS", f"({int(n * 0.8)}, {int(n * 0.92)})",
                 "SOLVER.WARMUP_ITERS", str(min(50, n // 2)), "SOLVER.CHECKPOINT_PERIOD", str(10 * n)]
    return opts


def first_val_image(cfg) -> torch.Tensor:
    record = DatasetCatalog.get(cfg.DATASETS.TEST[0])[0]
    image = read_image(record["file_name"], format=cfg.INPUT.FORMAT)
    resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    image = resize.get_transform(image).apply_image(image)
    return torch.as_tensor(image.astype("float32").transpose(2, 0, 1))


def train_and_measure(name: str, config: str, out_root: str, quick: bool) -> dict:
    cfg = load_cfg(os.path.join(REPO, "configs", "synthetic", config), synthetic_overrides(name, out_root, quick))
    cfg.freeze()
    seed_all_rng(SEED)
    trainer = KpextTrainer(cfg)
    timer = IterationTimes()
    trainer.register_hooks([timer])
    trainer.resume_or_load(resume=False)
    trainer.train()
    # DefaultTrainer keeps the final evaluation here (train() returns it only with TEST.EXPECTED_RESULTS).
    results = getattr(trainer, "_last_eval_results", None) or KpextTrainer.test(cfg, trainer.model)
    timing = time_keypoint_branch(trainer.model, first_val_image(cfg), repeats=3 if quick else 9)
    row = {
        "name": name,
        "head": cfg.MODEL.ROI_KEYPOINT_HEAD.NAME,
        "config": f"configs/synthetic/{config}",
        "iterations": cfg.SOLVER.MAX_ITER,
        "train_s_per_iter": timer.median_after_warmup(),
        "branch_ms_per_box": timing.branch_ms,
        "pool_ms_per_box": timing.pool_ms,
        "head_ms_per_box": timing.head_ms,
        "decode_ms_per_box": timing.decode_ms,
        "params": count_parameters(trainer.model.roi_heads.keypoint_head),
    }
    keypoints = results.get("keypoints", {}) if results else {}
    for field in AP_FIELDS:
        value = keypoints.get(field, float("nan"))
        row[field] = None if value != value else value  # NaN (e.g. no large persons) -> null in JSON
    return row


def fullsize_timing(name: str, config: str, quick: bool) -> dict:
    """Keypoint-branch timing of a full-size COCO config, untrained, on a 480 x 640 image."""
    cfg = load_cfg(os.path.join(REPO, "configs", "coco", config), ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"])
    seed_all_rng(SEED)
    model = build_model(cfg)
    image = torch.rand(3, 480, 640) * 255
    timing = time_keypoint_branch(model, image, repeats=2 if quick else 5, trained=False)
    return {
        "name": name,
        "head": cfg.MODEL.ROI_KEYPOINT_HEAD.NAME,
        "config": f"configs/coco/{config}",
        "branch_ms_per_box": timing.branch_ms,
        "pool_ms_per_box": timing.pool_ms,
        "head_ms_per_box": timing.head_ms,
        "decode_ms_per_box": timing.decode_ms,
        "params": count_parameters(model.roi_heads.keypoint_head),
    }


def fmt(value, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}"


def accuracy_table(rows) -> str:
    stock = next((r for r in rows if r["name"] == "stock"), rows[0])
    lines = [
        "| head | registry name | kp AP | AP50 | AP75 | APm | APl | train s/iter | branch ms/box | decode ms/box | params | AP - stock | branch / stock | decode speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        delta = None if r["AP"] is None or stock["AP"] is None else r["AP"] - stock["AP"]
        lines.append(
            f"| {r['name']} | {r['head']} | {fmt(r['AP'])} | {fmt(r['AP50'])} | {fmt(r['AP75'])} | {fmt(r['APm'])} "
            f"| {fmt(r['APl'])} | {r['train_s_per_iter']:.2f} | {r['branch_ms_per_box']:.2f} | {r['decode_ms_per_box']:.3f} "
            f"| {r['params'] / 1e6:.2f}M | {fmt(delta)} | {r['branch_ms_per_box'] / stock['branch_ms_per_box']:.2f}x "
            f"| {stock['decode_ms_per_box'] / r['decode_ms_per_box']:.0f}x |"
        )
    return "\n".join(lines)


def timing_table(rows) -> str:
    stock = next((r for r in rows if r["name"] == "stock"), rows[0])
    lines = [
        "| head | pool ms/box | head ms/box | decode ms/box | branch ms/box | params | branch / stock | decode speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['pool_ms_per_box']:.2f} | {r['head_ms_per_box']:.2f} | {r['decode_ms_per_box']:.3f} "
            f"| {r['branch_ms_per_box']:.2f} | {r['params'] / 1e6:.2f}M | {r['branch_ms_per_box'] / stock['branch_ms_per_box']:.2f}x "
            f"| {stock['decode_ms_per_box'] / r['decode_ms_per_box']:.0f}x |"
        )
    return "\n".join(lines)


def main() -> int:
    quick = os.environ.get("BENCH_QUICK", "0") not in ("", "0")
    out_root = os.environ.get("BENCH_OUT", os.path.join("output", "bench"))
    wanted = [n for n in os.environ.get("BENCH_HEADS", "").split(",") if n]
    variants = [v for v in VARIANTS if not wanted or v[0] in wanted]
    setup_logger(name="fvcore")
    setup_logger()
    setup_logger(name="kpext")
    os.makedirs(out_root, exist_ok=True)
    ensure_synthetic_dataset(os.path.join(os.environ.get("KPEXT_DATASETS", "datasets"), "synthetic"), DEFAULT_SPLITS)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    fullsize_only = os.environ.get("BENCH_FULLSIZE_ONLY", "0") not in ("", "0")
    rows = []
    for name, synthetic_config, _ in variants if not fullsize_only else []:
        logger.info("=== bench: training %s (%s)", name, synthetic_config)
        rows.append(train_and_measure(name, synthetic_config, out_root, quick))
    fullsize = []
    for name, _, coco_config in variants:
        logger.info("=== bench: full-size timing %s (%s)", name, coco_config)
        fullsize.append(fullsize_timing(name, coco_config, quick))

    if fullsize_only:
        markdown = "## Keypoint branch at full size (R50-FPN COCO configs, 480 x 640, 20 boxes, untrained)\n\n" + timing_table(fullsize) + "\n"
        with open(os.path.join(out_root, "fullsize.json"), "w") as f:
            json.dump(fullsize, f, indent=2)
        with open(os.path.join(out_root, "fullsize.md"), "w") as f:
            f.write(markdown)
        print("\n" + markdown)
        return 0
    report = {
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, threads {torch.get_num_threads()}",
        "quick": quick,
        "heads": rows,
        "fullsize_timing": fullsize,
    }
    with open(os.path.join(out_root, "heads.json"), "w") as f:
        json.dump(rows, f, indent=2)
    with open(os.path.join(out_root, "heads_full.json"), "w") as f:
        json.dump(report, f, indent=2)
    markdown = (
        f"## Keypoint heads on kpext_synth_val ({rows[0]['iterations']} iterations, same seed and data)\n\n"
        f"Machine: {report['machine']}{' — QUICK smoke run, not a result' if quick else ''}\n\n"
        + accuracy_table(rows)
        + "\n\n## Keypoint branch at full size (R50-FPN COCO configs, 480 x 640, 20 boxes, untrained)\n\n"
        + timing_table(fullsize)
        + "\n"
    )
    with open(os.path.join(out_root, "heads.md"), "w") as f:
        f.write(markdown)
    print("\n" + markdown)
    print(f"Wrote {os.path.join(out_root, 'heads.json')} and {os.path.join(out_root, 'heads.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
