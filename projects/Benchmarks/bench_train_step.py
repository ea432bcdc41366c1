#!/usr/bin/env python
"""Speed of one CPU training step of the demo model: RoIAlign and bf16 AMP variants.

    .venv/bin/python projects/Benchmarks/bench_train_step.py --weights output/demo/model_final.pth
    .venv/bin/python projects/Benchmarks/bench_train_step.py --quick      # smoke run, not a result

The demo recipe (configs/synthetic/keypoint_rcnn_R18_FPN_demo.yaml) on its synthetic training
set (datasets/synthetic, generated as `make demo` does when missing). Trained weights make the
RoI counts realistic: an untrained RPN gives other positives. Variants:

- ``baseline``: float32, torchvision's RoIAlign (``MODEL.KPEXT.ROI_ALIGN torchvision``);
- ``fast_roi_align``: float32, ``MODEL.KPEXT.ROI_ALIGN auto`` (kpext's CPU RoIAlign);
- ``bf16``: torchvision's RoIAlign under bf16 autocast (:class:`kpext.engine.amp.CPUAMPTrainer`,
  what ``SOLVER.AMP.ENABLED`` trains with on a CPU with native bf16);
- ``fast_roi_align+bf16``: both.

A step is Detectron2's trainer step (forward, backward, optimizer step with the config's
gradient clipping) on batches loaded beforehand from the real train loader. Every timed block
starts from the same weights, a fresh optimizer and the same random seed, and runs the same
batches, so the variants do the same work and the optimizer's steps never drift them apart.
The variants alternate within each round (the first one rotating), with repeats; each variant's
round value is its mean s/iter over the block. Reported: the median over rounds, the speed-up
over the baseline (baseline / variant) with a paired bootstrap interval over rounds, and the
forward / backward / optimizer split. bf16 variants run even where the CPU has no native bf16
(measured, emulated); the report says what ``SOLVER.AMP.ENABLED`` would do there.

Writes docs/bench_train_step.json and .md (``--quick``: output/bench/bench_train_step_quick.*),
or under ``--out``. Trailing ``KEY VALUE`` pairs override the config.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from kpext_bench.machine import cpu_model_name
from kpext_bench.reports import git_commit, write_report

import kpext
from kpext.data import register_keypoint_coco
from kpext.data.builtin import SYNTHETIC_CATEGORY, default_datasets_root, synthetic_split_files
from kpext.engine import KpextTrainer, load_checked_weights
from kpext.engine.amp import CPUAMPTrainer, cpu_flags, native_bf16_flags
from kpext_synth.people import DEFAULT_SPLITS, ensure_synthetic_dataset

from detectron2.config import CfgNode, get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import SimpleTrainer
from detectron2.utils.events import EventStorage

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "synthetic", "keypoint_rcnn_R18_FPN_demo.yaml")
DATASET = "kpext_bench_train_step"
# The CPU features the table reports: what oneDNN's float32 and bf16 kernels can use.
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Variant:
    """One way to train: the RoIAlign setting (MODEL.KPEXT.ROI_ALIGN) and the precision."""

    name: str
    roi_align: str  # "torchvision" or "auto"
    bf16: bool


VARIANTS = (
    Variant("baseline", "torchvision", False),
    Variant("fast_roi_align", "auto", False),
    Variant("bf16", "torchvision", True),
    Variant("fast_roi_align+bf16", "auto", True),
)


@dataclass
class StepTimes:
    """Seconds of each step of one timed block, and its parts."""

    total: List[float] = field(default_factory=list)
    forward: List[float] = field(default_factory=list)
    optimizer: List[float] = field(default_factory=list)

    def means(self) -> Dict[str, float]:
        """Mean s/iter of the block: total, forward, optimizer and the rest (backward)."""
        total = statistics.fmean(self.total)
        forward = statistics.fmean(self.forward)
        optimizer = statistics.fmean(self.optimizer)
        return {
            "total": total,
            "forward": forward,
            # zero_grad, the loss sum and the metrics' .item() calls are in here too: tiny.
            "backward": total - forward - optimizer,
            "optimizer": optimizer,
        }


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", default=CONFIG)
    parser.add_argument(
        "--weights", default=None, help="trained weights (default: none, untrained weights)"
    )
    parser.add_argument(
        "--data-root",
        default=None,
        help="datasets root holding synthetic/ (default: $KPEXT_DATASETS, else datasets/)",
    )
    parser.add_argument("--batches", type=int, default=8, help="training batches preloaded")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of alternated variants")
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps per block (default: --batches)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="untimed steps per variant first (the baseline: one pass over the batches)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: its)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 2 steps")
    parser.add_argument("--out", default=None, help="report folder (default: docs/)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = parser.parse_args(argv)
    if args.quick:
        args.batches, args.rounds, args.steps, args.warmup = 2, 2, 2, 1
    args.steps = args.steps or args.batches
    if args.out is None:
        args.out = (
            os.path.join(REPO, "output", "bench") if args.quick else os.path.join(REPO, "docs")
        )
    return args


def training_set(data_root: Optional[str]) -> str:
    """Register the synthetic training split under ``data_root`` as :data:`DATASET`.

    Under the default root a missing split is generated as `make demo` does; a root given
    explicitly is used as it is.
    """
    explicit = data_root is not None
    root = data_root if explicit else default_datasets_root()
    root = root if os.path.isabs(root) else os.path.join(REPO, root)
    json_file, image_root = synthetic_split_files(root, "train")
    if not os.path.isfile(json_file):
        if explicit:
            raise SystemExit(f"No synthetic training set at {json_file} (--data-root {root}).")
        print(f"Generating the synthetic training set under {root}/synthetic (as make demo does)")
        ensure_synthetic_dataset(
            os.path.join(root, "synthetic"), {"train": DEFAULT_SPLITS["train"]}
        )
    if DATASET in DatasetCatalog.list():
        DatasetCatalog.remove(DATASET)  # a second run in one process (tests) may use other files
        MetadataCatalog.remove(DATASET)
    register_keypoint_coco(DATASET, json_file, image_root, categories=[SYNTHETIC_CATEGORY])
    return json_file


def bench_cfg(args: argparse.Namespace) -> CfgNode:
    """The config every variant shares (RoIAlign set per variant)."""
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.DATASETS.TRAIN = (DATASET,)
    cfg.DATALOADER.NUM_WORKERS = 0  # batches are loaded once, before any timing
    return cfg


def build_variant_model(cfg: CfgNode, roi_align: str) -> torch.nn.Module:
    """The model KpextTrainer trains with ``MODEL.KPEXT.ROI_ALIGN roi_align``."""
    cfg = cfg.clone()
    cfg.MODEL.KPEXT.ROI_ALIGN = roi_align
    torch.manual_seed(0)
    return KpextTrainer.build_model(cfg)


def changed_modules(a: torch.nn.Module, b: torch.nn.Module) -> int:
    """How many submodules (by name) have another class in ``b`` than in ``a``."""
    types_b = {name: type(m) for name, m in b.named_modules()}
    return sum(types_b.get(name) is not type(m) for name, m in a.named_modules())


def preload_batches(cfg: CfgNode, count: int) -> list:
    """The first ``count`` batches of the training loader (the data order of ``SEED``)."""
    loader = iter(KpextTrainer.build_train_loader(cfg))
    return [next(loader) for _ in range(count)]


class StepClock:
    """Times the forward (model hooks) and the optimizer step (a wrapper) inside each step."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        self.forward = 0.0
        self.optimizer = 0.0
        self._start = 0.0
        self._handles = [
            model.register_forward_pre_hook(self._forward_starts),
            model.register_forward_hook(self._forward_ends),
        ]
        step = optimizer.step

        def timed_step(*args, **kwargs):
            start = time.perf_counter()
            result = step(*args, **kwargs)
            self.optimizer += time.perf_counter() - start
            return result

        optimizer.step = timed_step

    def reset(self) -> None:
        self.forward = self.optimizer = 0.0

    def remove(self) -> None:
        """Take the hooks off the model (the next block puts its own)."""
        for handle in self._handles:
            handle.remove()

    def _forward_starts(self, module, inputs):
        self._start = time.perf_counter()

    def _forward_ends(self, module, inputs, output):
        self.forward += time.perf_counter() - self._start


def run_block(
    model: torch.nn.Module,
    cfg: CfgNode,
    state: Dict[str, torch.Tensor],
    batches: list,
    steps: int,
    bf16: bool,
) -> StepTimes:
    """``steps`` training steps from ``state`` with a fresh optimizer and seed 0, timed."""
    model.load_state_dict(state)
    optimizer = KpextTrainer.build_optimizer(cfg, model)
    clock = StepClock(model, optimizer)
    data = [batches[i % len(batches)] for i in range(steps)]
    trainer_cls = CPUAMPTrainer if bf16 else SimpleTrainer
    trainer = trainer_cls(model, data, optimizer)
    torch.manual_seed(0)  # the RPN's and RoI heads' sampling: the same for every variant
    gc.collect()
    times = StepTimes()
    try:
        with EventStorage(0) as storage:
            trainer.storage = storage
            for i in range(steps):
                trainer.iter = storage.iter = i
                clock.reset()
                start = time.perf_counter()
                trainer.run_step()
                times.total.append(time.perf_counter() - start)
                times.forward.append(clock.forward)
                times.optimizer.append(clock.optimizer)
    finally:
        clock.remove()
    return times


def keypoint_rois_per_step(model: torch.nn.Module, cfg, state, batches) -> float:
    """Mean RoIs the keypoint head trains on per step (they depend on the weights: an untrained
    RPN proposes other boxes), over one float32 block of every batch; it warms the baseline up."""
    counts = []
    head = getattr(getattr(model, "roi_heads", None), "keypoint_head", None)
    handle = head and head.register_forward_pre_hook(
        lambda m, inputs: counts.append(len(inputs[0]))
    )
    try:
        run_block(model, cfg, state, batches, len(batches), bf16=False)
    finally:
        if handle:
            handle.remove()
    return statistics.fmean(counts) if counts else float("nan")


def bootstrap_ratio(
    baseline: Sequence[float], variant: Sequence[float], seed: int = 0
) -> Dict[str, float]:
    """Speed-up median(baseline) / median(variant) with a 95% paired bootstrap interval over
    rounds (the same round indices drawn for both)."""
    base, var = np.asarray(baseline), np.asarray(variant)
    ratio = float(np.median(base) / np.median(var))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(base), size=(BOOTSTRAP_RESAMPLES, len(base)))
    resampled = np.median(base[picks], axis=1) / np.median(var[picks], axis=1)
    low, high = np.percentile(resampled, [2.5, 97.5])
    return {"ratio": ratio, "low": float(low), "high": float(high)}


def machine() -> Dict[str, object]:
    """The CPU, its flags, torch and the thread count: what the numbers depend on."""
    flags = cpu_flags()
    native = native_bf16_flags()
    return {
        "cpu": cpu_model_name(),
        "flags": {name: name in flags for name in REPORTED_FLAGS},
        "native_bf16": list(native),
        "amp_on_this_cpu": (
            f"bf16 autocast ({', '.join(native)})" if native else "float32 (no native bf16)"
        ),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def markdown(report: dict) -> str:
    """The report as a markdown table with its machine and settings."""
    m, s = report["machine"], report["settings"]
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m["flags"].items())
    lines = [
        f"Training step of the demo model, {report['date']}, commit {report['commit']}.",
        "",
        f"- CPU: {m['cpu']}; {flags}; SOLVER.AMP.ENABLED here: {m['amp_on_this_cpu']}",
        f"- torch {m['torch']}, threads {m['threads']}; weights: {s['weights'] or 'untrained'}; "
        f"{s['batches']} batches of {s['ims_per_batch']} images, {s['rounds']} rounds of "
        f"{s['steps']} steps per variant; keypoint-head RoIs per step: "
        f"{report['keypoint_rois_per_step']:.0f}; modules MODEL.KPEXT.ROI_ALIGN auto "
        f"replaced: {report['fast_roi_align_modules']}",
        f"- command: `{s['command']}`",
        "",
        "| variant | RoIAlign | precision | s/iter | speed-up [95% CI] | forward s | "
        "backward s | optimizer s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["variants"]:
        r = row["speed_up"]
        lines.append(
            f"| {row['name']} | {row['roi_align']} | {'bf16' if row['bf16'] else 'fp32'} "
            f"| {row['median_s']:.3f} | {r['ratio']:.2f} [{r['low']:.2f}, {r['high']:.2f}] "
            f"| {row['forward_s']:.3f} | {row['backward_s']:.3f} | {row['optimizer_s']:.3f} |"
        )
    if report["notes"]:
        lines += [""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def measure_rounds(
    models, cfg, state, batches, variants: Sequence[Variant], num_rounds: int, steps: int
) -> Dict[str, List[Dict[str, float]]]:
    """Each variant's mean step times per round (``steps`` steps from ``state``), the variants
    alternated with a rotating order."""
    rounds: Dict[str, List[Dict[str, float]]] = {v.name: [] for v in variants}
    for r in range(num_rounds):
        order = list(variants[r % len(variants) :]) + list(variants[: r % len(variants)])
        for v in order:
            times = run_block(models[v.roi_align], cfg, state, batches, steps, v.bf16)
            rounds[v.name].append(times.means())
        print(
            f"round {r + 1}/{num_rounds}: "
            + ", ".join(f"{v.name} {rounds[v.name][-1]['total']:.3f} s" for v in variants)
        )
    return rounds


def variant_rows(
    variants: Sequence[Variant], rounds: Dict[str, List[Dict[str, float]]]
) -> List[dict]:
    """One report row per variant: medians over rounds, the speed-up over the baseline."""
    base_totals = [x["total"] for x in rounds["baseline"]]
    rows = []
    for v in variants:
        per_round = rounds[v.name]
        rows.append(
            {
                "name": v.name,
                "roi_align": v.roi_align,
                "bf16": v.bf16,
                "median_s": statistics.median(x["total"] for x in per_round),
                "speed_up": bootstrap_ratio(base_totals, [x["total"] for x in per_round]),
                **{
                    f"{part}_s": statistics.median(x[part] for x in per_round)
                    for part in ("forward", "backward", "optimizer")
                },
                "rounds": per_round,
            }
        )
    return rows


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the benchmark; returns the report it wrote."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    training_set(args.data_root)
    cfg = bench_cfg(args)
    variants = list(VARIANTS)
    notes = []
    if not native_bf16_flags():
        notes.append("bf16 rows: emulated bf16 (no amx_bf16 or avx512_bf16 on this CPU)")

    models = {
        roi_align: build_variant_model(cfg, roi_align) for roi_align in ("torchvision", "auto")
    }
    baseline_model = models["torchvision"]
    if args.weights:  # refused unless they fit the model (one line naming what differs)
        load_checked_weights(baseline_model, args.weights, args.config_file)
    # One starting point for every variant and every block.
    state = {k: v.detach().clone() for k, v in baseline_model.state_dict().items()}
    # A check that the two RoIAlign settings differ: the modules "auto" replaced.
    fast_modules = changed_modules(baseline_model, models["auto"])
    batches = preload_batches(cfg, args.batches)

    print(f"{machine()}")
    # Warm-up (allocations, oneDNN's kernel choice, first calls), the baseline's counting RoIs.
    rois = keypoint_rois_per_step(baseline_model, cfg, state, batches)
    for v in variants[1:]:
        run_block(models[v.roi_align], cfg, state, batches, args.warmup, v.bf16)

    rounds = measure_rounds(models, cfg, state, batches, variants, args.rounds, args.steps)
    rows = variant_rows(variants, rounds)
    report = {
        "date": datetime.date.today().isoformat(),
        "commit": git_commit(),
        "machine": machine(),
        "settings": {
            "config": os.path.relpath(args.config_file, REPO),
            "opts": list(args.opts),
            "weights": args.weights or "",
            "batches": args.batches,
            "ims_per_batch": cfg.SOLVER.IMS_PER_BATCH,
            "rounds": args.rounds,
            "steps": args.steps,
            "warmup": args.warmup,
            "quick": args.quick,
            "command": " ".join(
                [
                    "projects/Benchmarks/bench_train_step.py",
                    *(sys.argv[1:] if argv is None else argv),
                ]
            ),
        },
        "keypoint_rois_per_step": rois,
        "fast_roi_align_modules": fast_modules,
        "variants": rows,
        "notes": notes,
    }
    stem = "bench_train_step_quick" if args.quick else "bench_train_step"
    os.makedirs(args.out, exist_ok=True)
    table = markdown(report)
    paths = write_report(args.out, stem, report, table)
    print(table)
    print("Wrote " + " and ".join(paths))
    return report


if __name__ == "__main__":
    main()
