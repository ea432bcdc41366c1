#!/usr/bin/env python
"""End to end: the demo recipe against the same recipe with Detectron2's stock head.

    make bench-end-to-end                  # 3 seeds x 2 trainings of the demo config (53 min
                                           # on the 2-core CPU, see docs/benchmarks.md)
    BENCH_QUICK=1 make bench-end-to-end    # smoke run: 2 seeds, 20 iterations

The head benchmark (``bench_heads.py``) trains heads on one frozen detector. Here the
detector and the head train together, as a user trains them: ``train_net.py`` on
``configs/synthetic/keypoint_rcnn_R18_FPN_demo.yaml`` (what ``make demo`` trains) for each
seed, once as it is (``demo``: KpextKRCNNHead, person-level left/right decoding) and once
with Detectron2's stock head (``stock``: ``KRCNNConvDeconvUpsampleHead``). The recipes
differ only in the head's name: the stock head ignores ``TEST.KPEXT``. A third row,
``demo_keypointwise``, evaluates each trained ``demo`` model again with keypoint-wise
decoding (``TEST.KPEXT.LEFT_RIGHT keypoint``): the same weights, so the decoding alone.

A fourth row, ``demo_fp32``, trains the demo recipe in float32 (``SOLVER.AMP.ENABLED False``:
no bf16 autocast on the CPU); ``BENCH_E2E_ROWS=demo_fp32,demo`` compares the two alone.
``hourglass`` trains the demo recipe with the head benchmark's best network at the plateau
regime (``HourglassKeypointHead``, 64 channels; the facing branch and person-level decoding
kept) and ``hourglass_keypointwise`` evaluates it keypoint-wise:
``BENCH_E2E_ROWS=demo,hourglass,hourglass_keypointwise`` asks whether it should be the demo's
head. ``simcc`` does the same for ``SimCCKeypointHead`` (4 x 64 convs, the demo head's width;
Gaussian 1-D labels), the best network within stock's branch time at that plateau:
``BENCH_E2E_ROWS=demo,simcc``.

Each test set of the config is scored with OKS keypoint AP from the runs' own COCO results,
and each row's AP minus the reference row's (the first of ``BENCH_E2E_ROWS``; stock by
default) gets a paired bootstrap interval over images and seeds
(``kpext_bench.keypoint_ap.paired_bootstrap``; every row shares a seed's data order). Runs
are kept under ``$BENCH_OUT/end_to_end/<row>_seed<seed>`` and reused when their options match.

Environment: BENCH_QUICK=1; BENCH_SEEDS (number of seeds, default 3; seeds 1, 2, ...);
BENCH_OUT (default output/bench); BENCH_E2E_CONFIG (default the demo config);
BENCH_E2E_OPTS (extra config options for every run, e.g. "SOLVER.MAX_ITER 1400");
BENCH_E2E_ROWS (the rows, comma-separated, the reference first; default
"stock,demo,demo_keypointwise").

Writes ``$BENCH_OUT/end_to_end.json`` and ``end_to_end.md``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from kpext_bench import runs
from kpext_bench.keypoint_ap import ImageMatches, keypoint_ap, paired_bootstrap, per_image_matches
from kpext_bench.reports import git_commit, write_report
from pycocotools.coco import COCO

from kpext.data import dataset_oks_sigmas
from kpext.data.builtin import register_all_synthetic

from detectron2.data import MetadataCatalog

DEMO_CONFIG = os.path.join("configs", "synthetic", "keypoint_rcnn_R18_FPN_demo.yaml")


@dataclass(frozen=True)
class Recipe:
    """One row: ``overrides`` on the config; ``weights_from``: the row whose trained model
    this row evaluates (``train_net.py --eval-only``) instead of training its own."""

    name: str
    overrides: Tuple[str, ...] = ()
    weights_from: str = ""


_HOURGLASS = (
    "MODEL.ROI_KEYPOINT_HEAD.NAME",
    "HourglassKeypointHead",
    "MODEL.KPEXT.HOURGLASS.CHANNELS",
    "64",
)
# SimCC's 1-D classification head at the demo head's width (4 x 64 convs), its Gaussian-label
# loss (the softmax_gaussian codec): the network that wins within stock's branch time at the
# head benchmark's plateau (issue 32).
_SIMCC = (
    "MODEL.ROI_KEYPOINT_HEAD.NAME",
    "SimCCKeypointHead",
    "MODEL.KPEXT.SIMCC.CONV_DIMS",
    "(64, 64, 64, 64)",
    "MODEL.KPEXT.TARGET.CODEC",
    "softmax_gaussian",
)
RECIPES = (
    Recipe("stock", ("MODEL.ROI_KEYPOINT_HEAD.NAME", "KRCNNConvDeconvUpsampleHead")),
    Recipe("demo"),
    Recipe("demo_keypointwise", ("TEST.KPEXT.LEFT_RIGHT", "keypoint"), weights_from="demo"),
    Recipe("demo_fp32", ("SOLVER.AMP.ENABLED", "False")),
    # The head benchmark's winner at 1600 head iterations (issue 32) in the demo recipe: the
    # hourglass at 64 channels (configs/synthetic/keypoint_rcnn_R18_FPN_hourglass.yaml), the
    # demo's facing branch and person-level decoding kept; and its keypoint-wise decoding.
    Recipe("hourglass", _HOURGLASS),
    Recipe(
        "hourglass_keypointwise",
        _HOURGLASS + ("TEST.KPEXT.LEFT_RIGHT", "keypoint"),
        weights_from="hourglass",
    ),
    Recipe("simcc", _SIMCC),
)
DEFAULT_ROWS = "stock,demo,demo_keypointwise"
# The smoke run's schedule: enough to pass through training, checkpointing and evaluation.
QUICK_OPTS = ("SOLVER.MAX_ITER", "20", "SOLVER.STEPS", "(15,)", "SOLVER.WARMUP_ITERS", "5")


class Settings:
    """The run's sizes, from the environment."""

    def __init__(self, env=os.environ):
        self.quick = env.get("BENCH_QUICK", "0") not in ("", "0")
        self.report_dir = env.get("BENCH_OUT", os.path.join("output", "bench"))
        if self.quick:
            self.report_dir = os.path.join(self.report_dir, "quick")
        self.out = os.path.join(self.report_dir, "end_to_end")
        num_seeds = int(env.get("BENCH_SEEDS", "2" if self.quick else "3"))
        self.seeds = list(range(1, num_seeds + 1))
        self.config = env.get("BENCH_E2E_CONFIG", DEMO_CONFIG)
        self.opts = (QUICK_OPTS if self.quick else ()) + tuple(
            shlex.split(env.get("BENCH_E2E_OPTS", ""))
        )
        self.recipes = rows_of(env.get("BENCH_E2E_ROWS", DEFAULT_ROWS))
        self.reference = self.recipes[0].name


def rows_of(names: str) -> Tuple[Recipe, ...]:
    """The recipes named (comma-separated), in that order; an unknown name, or a row that
    evaluates another row's model without that row, is an error."""
    known = {r.name: r for r in RECIPES}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown or not wanted:
        raise ValueError(f"BENCH_E2E_ROWS={names!r}: rows are some of {', '.join(known)}")
    for name in wanted:
        source = known[name].weights_from
        if source and source not in wanted:
            raise ValueError(f"BENCH_E2E_ROWS: {name} evaluates {source}'s models; add {source}")
    return tuple(known[n] for n in wanted)


def run_dir(settings: Settings, recipe: Recipe, seed: int) -> str:
    return os.path.join(settings.out, f"{recipe.name}_seed{seed}")


def train_net_command(settings: Settings, recipe: Recipe, seed: int) -> List[str]:
    """The ``train_net.py`` command line of one run (training, or evaluation of the
    ``weights_from`` row's final model)."""
    flags, weights = (), ()
    if recipe.weights_from:
        source = Recipe(recipe.weights_from)
        flags = ("--eval-only",)
        weights = (
            "MODEL.WEIGHTS",
            os.path.join(run_dir(settings, source, seed), "model_final.pth"),
        )
    return runs.train_net_command(
        settings.config,
        run_dir(settings, recipe, seed),
        *weights,
        "SEED",
        str(seed),
        "TEST.KPEXT.NUM_VIS",
        "0",
        *settings.opts,
        *recipe.overrides,
        flags=flags,
    )


def run_once(settings: Settings, recipe: Recipe, seed: int) -> dict:
    """Run (or reuse) one row's run; returns its ``summary.json``."""
    folder = run_dir(settings, recipe, seed)
    runs.run_train_net(
        folder, train_net_command(settings, recipe, seed), f"{recipe.name} seed {seed}"
    )
    return runs.read_summary(folder)


def dataset_rows(
    names: Sequence[str],
    matches: Dict[str, List[List[ImageMatches]]],
    summaries: Dict[str, List[dict]],
    dataset_index: int,
    reference: str = "stock",
) -> Dict[str, dict]:
    """Per row of one test set: AP per seed, the paired difference to the ``reference`` row
    with its 95% interval, and the seeds' mean error shares and box AP (from the runs'
    summaries)."""
    diffs = paired_bootstrap(matches, reference)
    rows = {}
    for name in names:
        per_seed = [summary["datasets"][dataset_index] for summary in summaries[name]]
        shares = [s["keypoint_errors"]["shares"] for s in per_seed if s.get("keypoint_errors")]
        rows[name] = {
            "ap_runs": [100 * keypoint_ap(m) for m in matches[name]],
            "diff_vs_reference": diffs[name].mean,
            "diff_ci95": [diffs[name].low, diffs[name].high],
            "box_ap_runs": [s.get("box_ap") for s in per_seed],
            "errors": {k: sum(s[k] for s in shares) / len(shares) for k in shares[0]}
            if shares
            else {},
        }
    return rows


def markdown(report: dict) -> str:
    seeds = len(report["seeds"])
    lines = [
        f"End to end, {seeds} seed{'' if seeds == 1 else 's'} ({report['config']}"
        + (f", {' '.join(report['opts'])}" if report["opts"] else "")
        + f"); commit {report['commit']}, {report['machine']}",
        "",
        f"| row | test set | keypoint AP (runs) | vs {report['reference']} [95%] "
        "| left/right inv. | all inv. "
        "| good | box AP | train s/iter |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for dataset, rows in report["datasets"].items():
        for name, row in rows.items():
            runs = row["ap_runs"]
            mean = sum(runs) / len(runs)
            errors = row["errors"]
            boxes = [b for b in row["box_ap_runs"] if b is not None]
            lines.append(
                f"| {name} | {dataset} | {mean:.1f} ({', '.join(f'{r:.1f}' for r in runs)}) "
                f"| {row['diff_vs_reference']:+.1f} [{row['diff_ci95'][0]:+.1f}, "
                f"{row['diff_ci95'][1]:+.1f}] "
                f"| {errors.get('inversion_left_right', float('nan')):.1%} "
                f"| {errors.get('inversion', float('nan')):.1%} "
                f"| {errors.get('good', float('nan')):.1%} "
                f"| {sum(boxes) / len(boxes) if boxes else float('nan'):.1f} "
                f"| {report['seconds_per_iteration'].get(name, float('nan')):.2f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    settings = Settings()
    os.makedirs(settings.out, exist_ok=True)
    runs.make_synthetic_data()
    start = time.perf_counter()
    summaries: Dict[str, List[dict]] = {r.name: [] for r in settings.recipes}
    for seed in settings.seeds:  # seeds outermost: an interrupted run still pairs its rows
        for recipe in settings.recipes:
            summaries[recipe.name].append(run_once(settings, recipe, seed))

    register_all_synthetic()
    datasets = [d["name"] for d in summaries[settings.reference][0]["datasets"]]
    # The sigmas the runs' evaluator scored with (TEST.KEYPOINT_OKS_SIGMAS may be set).
    run_cfg = runs.saved_cfg(run_dir(settings, settings.recipes[0], settings.seeds[0]))
    report = {
        "commit": git_commit(),
        "machine": f"{os.cpu_count()} CPU cores",
        "config": settings.config,
        "opts": list(settings.opts),
        "seeds": settings.seeds,
        "reference": settings.reference,
        "seconds_per_iteration": {
            r.name: _median(
                [runs.seconds_per_iteration(run_dir(settings, r, s)) for s in settings.seeds]
            )
            for r in settings.recipes
        },
        "datasets": {},
    }
    for index, dataset in enumerate(datasets):
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            coco_gt = COCO(MetadataCatalog.get(dataset).json_file)
        sigmas = dataset_oks_sigmas(dataset, run_cfg.TEST.KEYPOINT_OKS_SIGMAS)
        matches = {
            r.name: [
                per_image_matches(
                    coco_gt, runs.run_results(run_dir(settings, r, s), dataset), sigmas
                )
                for s in settings.seeds
            ]
            for r in settings.recipes
        }
        report["datasets"][dataset] = dataset_rows(
            [r.name for r in settings.recipes], matches, summaries, index, settings.reference
        )
    report["wall_s"] = time.perf_counter() - start
    table = markdown(report)
    write_report(settings.report_dir, "end_to_end", report, table)
    print("\n" + table)
    print(f"Wrote {settings.report_dir}/end_to_end.json and end_to_end.md")
    return 0


def _median(values: List[float]) -> float:
    values = sorted(v for v in values if v == v)
    return values[len(values) // 2] if values else float("nan")


if __name__ == "__main__":
    sys.exit(main())
