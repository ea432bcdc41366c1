#!/usr/bin/env python
"""Load test of the data path: does the training data loader keep up with training?

    .venv/bin/python projects/Benchmarks/bench_data.py          # part of `make bench`

Measures, on the `make demo` config (configs/synthetic/keypoint_rcnn_R18_FPN_kpext.yaml):
- the train loader's images/s (JSON -> records -> decode, augment, batch), for
  DATALOADER.NUM_WORKERS 0, 1 (the config's) and 2, without training;
- the images/s that training consumes (forward, backward and SGD step on batches
  loaded beforehand), with the same number of threads.
Writes output/bench/data.json and data.md.
"""

import os
import statistics
import sys
import time

import torch
from kpext_bench.reports import write_report

import kpext  # noqa: F401
from kpext.engine import KpextTrainer
from kpext_synth.people import DEFAULT_SPLITS, ensure_synthetic_dataset

from detectron2.config import get_cfg
from detectron2.data.detection_utils import read_image  # noqa: F401  (warms the import)
from detectron2.utils.env import seed_all_rng
from detectron2.utils.events import EventStorage
from detectron2.utils.logger import setup_logger

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "synthetic", "keypoint_rcnn_R18_FPN_kpext.yaml")


def demo_cfg(num_workers=None):
    """The demo config; ``num_workers`` overrides DATALOADER.NUM_WORKERS when given."""
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(CONFIG)
    if num_workers is not None:
        cfg.DATALOADER.NUM_WORKERS = num_workers
    return cfg


def loader_images_per_second(cfg, batches: int, warmup: int = 3) -> float:
    loader = iter(KpextTrainer.build_train_loader(cfg))
    for _ in range(warmup):  # worker start-up and first reads stay out of the number
        next(loader)
    start = time.perf_counter()
    images = sum(len(next(loader)) for _ in range(batches))
    return images / (time.perf_counter() - start)


def training_images_per_second(cfg, iterations: int) -> float:
    seed_all_rng(0)
    model = KpextTrainer.build_model(cfg)
    optimizer = KpextTrainer.build_optimizer(cfg, model)
    loader = iter(KpextTrainer.build_train_loader(cfg))
    batches = [next(loader) for _ in range(iterations + 2)]
    times = []
    model.train()
    with EventStorage():
        for batch in batches:
            start = time.perf_counter()
            losses = sum(model(batch).values())
            optimizer.zero_grad()
            losses.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
    return cfg.SOLVER.IMS_PER_BATCH / statistics.median(times[2:])


def main() -> int:
    quick = os.environ.get("BENCH_QUICK", "0") not in ("", "0")
    out_root = os.environ.get("BENCH_OUT", os.path.join("output", "bench"))
    os.makedirs(out_root, exist_ok=True)
    setup_logger(name="kpext")
    ensure_synthetic_dataset(
        os.path.join(os.environ.get("KPEXT_DATASETS", "datasets"), "synthetic"), DEFAULT_SPLITS
    )
    batches = 10 if quick else 60
    configured = demo_cfg().DATALOADER.NUM_WORKERS
    loader_rows = []
    for workers in sorted({0, configured, 2}):
        rate = loader_images_per_second(demo_cfg(workers), batches)
        loader_rows.append({"num_workers": workers, "images_per_s": rate})
        print(f"loader, {workers} worker(s): {rate:.1f} images/s")
    train_rate = training_images_per_second(demo_cfg(0), 5 if quick else 20)
    print(f"training consumes: {train_rate:.2f} images/s")
    configured_rate = next(r["images_per_s"] for r in loader_rows if r["num_workers"] == configured)
    report = {
        "config": os.path.relpath(CONFIG, REPO),
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}",
        "quick": quick,
        "loader": loader_rows,
        "training_images_per_s": train_rate,
        "configured_workers": configured,
        "loader_over_training": configured_rate / train_rate,
    }
    lines = [
        f"## Data path load test ({report['config']}, {report['machine']})",
        "",
        "| what | images/s | vs training |",
        "|---|---|---|",
    ]
    for row in loader_rows:
        mark = " (config)" if row["num_workers"] == configured else ""
        lines.append(
            f"| loader, {row['num_workers']} worker(s){mark} | {row['images_per_s']:.1f} "
            f"| {row['images_per_s'] / train_rate:.1f}x |"
        )
    lines.append(f"| training consumes | {train_rate:.2f} | 1.0x |")
    markdown = "\n".join(lines) + "\n"
    write_report(out_root, "data", report, markdown)
    print("\n" + markdown)
    return 0 if configured_rate >= train_rate else 1


if __name__ == "__main__":
    sys.exit(main())
