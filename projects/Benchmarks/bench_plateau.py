#!/usr/bin/env python
"""The demo recipe's plateau: keypoint AP against training length (``make bench-plateau``).

    make bench-plateau                     # 1x, 2x, 4x, 8x (and 16x if 8x still gains) the
                                           # base length, one seed (see docs/benchmarks.md)
    BENCH_SEEDS=2 make bench-plateau       # two seeds
    BENCH_QUICK=1 make bench-plateau       # smoke run: 1x and 2x of 10 iterations

Training lengths are multiples of a base length (``BENCH_PLATEAU_BASE``, default 700: the
``make demo`` recipe's length before the CPU speed-up of issue 31). Each length keeps the
recipe's schedule shape: warm-up, the base rate until the first of ``SOLVER.STEPS`` (as a
fraction of ``SOLVER.MAX_ITER``: 0.8 for the demo), then its decays. All lengths share one
run, a warmup-stable-decay schedule:

* the **stable** run trains at the constant base rate up to the longest length's first
  decay, keeping a checkpoint at every length's first decay (``stable/``);
* each length's **decay branch** resumes from its checkpoint (weights, optimizer, iteration)
  and trains the decays to its end (``len<N>/``), then evaluates every test set of the config.

So every length costs its decay alone: 1x..8x for about 1.3 times the price of 8x. The
branch resumes with a fresh data order, where an ordinary run would go on with its own: the
**check** trains the base length once with the ordinary schedule (``ordinary_len<N>/``) and
compares the two, with an interval. More variants evaluate each branch's model again with one
decoding option changed (``len<N>_<variant>/``): keypoint-wise left/right decoding, and the
person decoder without the facing branch's prior when the recipe trains one.

The report: per length and test set, keypoint and box AP, the gain of each doubling with a
paired bootstrap interval over images (and seeds), where a doubling first gains less than 1 AP
(the plateau), the error classes by view (front / oblique / profile / back, from the
annotations' yaw), by drawing style and per keypoint; a figure of AP against length.

Environment: BENCH_QUICK=1; BENCH_SEEDS (default 1; seeds 1, 2, ...); BENCH_OUT (default
output/bench); BENCH_PLATEAU_CONFIG (default the demo config); BENCH_PLATEAU_OPTS (extra
options for every run); BENCH_PLATEAU_BASE (the 1x length); BENCH_PLATEAU_MAX (the largest
multiple tried, default 16: 16x only runs when 8x gains at least 1 AP over 4x on the first
test set).

Writes ``$BENCH_OUT/plateau.json``, ``plateau.md`` and ``plateau.png``.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from kpext_bench import runs
from kpext_bench.keypoint_ap import keypoint_ap, paired_bootstrap, per_image_matches
from kpext_bench.machine import cpu_model
from kpext_bench.reports import git_commit, write_report
from pycocotools.coco import COCO

from kpext import add_kpext_config
from kpext.data import dataset_oks_sigmas
from kpext.data.builtin import register_all_synthetic
from kpext.data.facing import FACING_VIEWS

from detectron2.config import CfgNode, get_cfg
from detectron2.data import MetadataCatalog

DEMO_CONFIG = os.path.join("configs", "synthetic", "keypoint_rcnn_R18_FPN_demo.yaml")
# A doubling of the training length that gains less than this (keypoint AP on the first test
# set) marks the plateau.
PLATEAU_GAIN = 1.0
MULTIPLES = (1, 2, 4, 8, 16)
QUICK_BASE = 10
# The smoke run's warm-up: shorter than its base length's first decay.
QUICK_OPTS = ("SOLVER.WARMUP_ITERS", "2")


@dataclass(frozen=True)
class Variant:
    """A branch's model evaluated again (``train_net.py --eval-only``) with ``overrides``."""

    name: str
    overrides: Tuple[str, ...]
    needs_facing_branch: bool = False


VARIANTS = (
    Variant("keypointwise", ("TEST.KPEXT.LEFT_RIGHT", "keypoint")),
    Variant("no_facing_prior", ("MODEL.KPEXT.FACING.DECODE_WEIGHT", "0.0"), True),
)


class Settings:
    """The run's sizes, from the environment."""

    def __init__(self, env=os.environ):
        self.quick = env.get("BENCH_QUICK", "0") not in ("", "0")
        self.report_dir = env.get("BENCH_OUT", os.path.join("output", "bench"))
        if self.quick:
            self.report_dir = os.path.join(self.report_dir, "quick")
        self.out = os.path.join(self.report_dir, "plateau")
        self.seeds = list(range(1, int(env.get("BENCH_SEEDS", "1")) + 1))
        self.config = env.get("BENCH_PLATEAU_CONFIG", DEMO_CONFIG)
        self.opts = (QUICK_OPTS if self.quick else ()) + tuple(
            shlex.split(env.get("BENCH_PLATEAU_OPTS", ""))
        )
        self.base = int(env.get("BENCH_PLATEAU_BASE", str(QUICK_BASE if self.quick else 700)))
        largest = int(env.get("BENCH_PLATEAU_MAX", "2" if self.quick else "16"))
        self.multiples = [m for m in MULTIPLES if m <= largest]
        self.cfg = self._recipe_cfg()
        self.schedule = Schedule.of(self.cfg, self.base)

    def _recipe_cfg(self) -> CfgNode:
        cfg = get_cfg()
        add_kpext_config(cfg)
        cfg.merge_from_file(os.path.join(runs.REPO, self.config))
        cfg.merge_from_list(list(self.opts))
        return cfg


@dataclass(frozen=True)
class Schedule:
    """The recipe's schedule shape: ``decays``, its ``SOLVER.STEPS`` as fractions of
    ``SOLVER.MAX_ITER``; ``base`` the 1x length."""

    base: int
    decays: Tuple[float, ...]

    @classmethod
    def of(cls, cfg: CfgNode, base: int) -> "Schedule":
        if not cfg.SOLVER.STEPS:
            raise ValueError("the recipe has no SOLVER.STEPS: nothing to branch a decay from")
        decays = tuple(step / cfg.SOLVER.MAX_ITER for step in cfg.SOLVER.STEPS)
        schedule = cls(base, decays)
        if schedule.decay_start(1) <= cfg.SOLVER.WARMUP_ITERS:
            raise ValueError(f"base length {base}: its first decay falls inside the warm-up")
        return schedule

    def length(self, multiple: int) -> int:
        return self.base * multiple

    def decay_start(self, multiple: int) -> int:
        """The iteration where length ``multiple``'s first decay starts: its branch point."""
        return multiple * round(self.decays[0] * self.base)

    def steps(self, multiple: int) -> Tuple[int, ...]:
        """``SOLVER.STEPS`` of length ``multiple``: the first the branch point, every later one
        at its fraction of the length."""
        later = tuple(round(d * self.length(multiple)) for d in self.decays[1:])
        return (self.decay_start(multiple),) + later


def seed_dir(settings: Settings, seed: int) -> str:
    return os.path.join(settings.out, f"seed{seed}")


def checkpoint_name(iterations: int) -> str:
    """Detectron2's periodic checkpoint after ``iterations`` iterations."""
    return f"model_{iterations - 1:07d}.pth"


def stable_command(settings: Settings, seed: int, multiples: Sequence[int]) -> List[str]:
    """The stable run up to the largest of ``multiples``' branch points. ``--resume``: a longer
    stable run continues a shorter one (same seed and options) from its last checkpoint."""
    schedule = settings.schedule
    return runs.train_net_command(
        settings.config,
        os.path.join(seed_dir(settings, seed), "stable"),
        "SEED", str(seed),
        *settings.opts,
        "SOLVER.MAX_ITER", str(schedule.decay_start(max(multiples))),
        "SOLVER.STEPS", "()",
        "SOLVER.CHECKPOINT_PERIOD", str(schedule.decay_start(1)),
        "DATASETS.TEST", "()",
        "TEST.KPEXT.NUM_VIS", "0",
        flags=("--resume",),
    )  # fmt: skip


def branch_command(settings: Settings, seed: int, multiple: int) -> List[str]:
    """Length ``multiple``'s decay branch: resumes from the checkpoint copied into its folder."""
    schedule = settings.schedule
    return runs.train_net_command(
        settings.config,
        branch_dir(settings, seed, multiple),
        "SEED", str(seed),
        *settings.opts,
        "SOLVER.MAX_ITER", str(schedule.length(multiple)),
        "SOLVER.STEPS", str(schedule.steps(multiple)),
        "SOLVER.CHECKPOINT_PERIOD", str(schedule.length(multiple)),
        "TEST.KPEXT.NUM_VIS", "0",
        flags=("--resume",),
    )  # fmt: skip


def ordinary_command(settings: Settings, seed: int) -> List[str]:
    """The base length trained with the recipe's ordinary schedule (the check)."""
    schedule = settings.schedule
    return runs.train_net_command(
        settings.config,
        ordinary_dir(settings, seed),
        "SEED", str(seed),
        *settings.opts,
        "SOLVER.MAX_ITER", str(schedule.length(1)),
        "SOLVER.STEPS", str(schedule.steps(1)),
        "SOLVER.CHECKPOINT_PERIOD", str(schedule.length(1)),
        "TEST.KPEXT.NUM_VIS", "0",
    )  # fmt: skip


def variant_command(settings: Settings, seed: int, multiple: int, variant: Variant) -> List[str]:
    weights = os.path.join(branch_dir(settings, seed, multiple), "model_final.pth")
    return runs.train_net_command(
        settings.config,
        variant_dir(settings, seed, multiple, variant),
        "SEED", str(seed),
        *settings.opts,
        "MODEL.WEIGHTS", weights,
        "TEST.KPEXT.NUM_VIS", "0",
        *variant.overrides,
        flags=("--eval-only",),
    )  # fmt: skip


def ordinary_dir(settings: Settings, seed: int) -> str:
    return os.path.join(seed_dir(settings, seed), f"ordinary_len{settings.schedule.base}")


def variant_dir(settings: Settings, seed: int, multiple: int, variant: Variant) -> str:
    return branch_dir(settings, seed, multiple) + "_" + variant.name


def branch_dir(settings: Settings, seed: int, multiple: int) -> str:
    return os.path.join(seed_dir(settings, seed), f"len{settings.schedule.length(multiple)}")


def _without_length(command: Sequence[str]) -> List[str]:
    i = command.index("SOLVER.MAX_ITER")
    return list(command[:i]) + list(command[i + 2 :])


def run_stable(settings: Settings, seed: int, multiples: Sequence[int]) -> str:
    """Train (or extend, or reuse) the stable run until every branch point of ``multiples``
    has its checkpoint; returns its folder."""
    command = stable_command(settings, seed, multiples)
    folder = command[command.index("OUTPUT_DIR") + 1]
    needed = checkpoint_name(settings.schedule.decay_start(max(multiples)))
    recorded = runs.recorded_command(folder)
    if recorded is not None and not runs.same_command(
        _without_length(recorded), _without_length(command)
    ):
        raise SystemExit(
            f"{folder} holds a stable run of other options ({shlex.join(recorded[1:])}): "
            "remove it or set BENCH_OUT to another folder"
        )
    if os.path.exists(os.path.join(folder, needed)):
        print(f"  seed {seed} stable: reusing {folder}", flush=True)
        return folder
    runs.run_train_net(folder, command, f"seed {seed} stable", done_file=needed)
    return folder


def run_branch(settings: Settings, seed: int, multiple: int, stable: str) -> dict:
    """Length ``multiple``'s decay branch (or the reused one); returns its summary."""
    command = branch_command(settings, seed, multiple)
    folder = branch_dir(settings, seed, multiple)
    if not runs.is_done(folder, command):
        name = checkpoint_name(settings.schedule.decay_start(multiple))
        os.makedirs(folder, exist_ok=True)
        shutil.copyfile(os.path.join(stable, name), os.path.join(folder, name))
        with open(os.path.join(folder, "last_checkpoint"), "w") as f:
            f.write(name)  # what Detectron2's --resume loads
    runs.run_train_net(folder, command, f"seed {seed} {settings.schedule.length(multiple)} it")
    return runs.read_summary(folder)


def gains_more(settings: Settings, seed_summaries: Dict[int, List[dict]], a: int, b: int) -> bool:
    """Length ``b`` (a multiple) gains at least PLATEAU_GAIN AP over ``a`` on the first test
    set, averaged over seeds."""
    ap = {m: _mean([s[m]["datasets"][0]["keypoint_ap"] for s in seed_summaries.values()])
          for m in (a, b)}  # fmt: skip
    return ap[b] - ap[a] >= PLATEAU_GAIN


def train_all(settings: Settings) -> Tuple[List[int], List[Variant]]:
    """Every run of every seed; returns the multiples trained and the variants evaluated."""
    runs.make_synthetic_data()
    multiples = [m for m in settings.multiples if m <= 8]
    extra = [m for m in settings.multiples if m > 8]
    facing = settings.cfg.MODEL.KPEXT.FACING.LOSS_WEIGHT > 0
    variants = [v for v in VARIANTS if facing or not v.needs_facing_branch]
    summaries: Dict[int, Dict[int, dict]] = {}
    for seed in settings.seeds:
        stable = run_stable(settings, seed, multiples)
        summaries[seed] = {m: run_branch(settings, seed, m, stable) for m in multiples}
        runs.run_train_net(
            ordinary_dir(settings, seed),
            ordinary_command(settings, seed),
            f"seed {seed} ordinary {settings.schedule.base} it",
        )
    while extra and gains_more(settings, summaries, multiples[-2], multiples[-1]):
        multiples.append(extra.pop(0))
        for seed in settings.seeds:
            stable = run_stable(settings, seed, multiples)
            summaries[seed][multiples[-1]] = run_branch(settings, seed, multiples[-1], stable)
    for seed in settings.seeds:
        for m in multiples:
            for variant in variants:
                runs.run_train_net(
                    variant_dir(settings, seed, m, variant),
                    variant_command(settings, seed, m, variant),
                    f"seed {seed} {m}x {variant.name}",
                )
    return multiples, variants


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if v is not None and v == v]
    return sum(values) / len(values) if values else float("nan")


# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------


def length_rows(
    settings: Settings, multiples: Sequence[int], dataset: str, index: int, coco_gt, sigmas
) -> Tuple[List[dict], dict]:
    """Per length, on one test set: AP per seed, box AP, the error shares (overall, by view,
    by style, per keypoint) averaged over seeds, and the gain over the previous length with a
    paired bootstrap interval. Also the check: the base length's branch against the ordinary
    schedule."""
    matches = {}
    rows = []
    for m in multiples:
        folders = [branch_dir(settings, seed, m) for seed in settings.seeds]
        matches[m] = [
            per_image_matches(coco_gt, runs.run_results(f, dataset), sigmas) for f in folders
        ]
        summaries = [runs.read_summary(f)["datasets"][index] for f in folders]
        rows.append(
            {
                "multiple": m,
                "iterations": settings.schedule.length(m),
                "ap_runs": [100 * keypoint_ap(x) for x in matches[m]],
                "box_ap_runs": [s.get("box_ap") for s in summaries],
                **error_shares([s.get("keypoint_errors") or {} for s in summaries]),
            }
        )
    for previous, row in zip(rows, rows[1:]):
        pair = {"a": matches[previous["multiple"]], "b": matches[row["multiple"]]}
        diff = paired_bootstrap(pair, "a")["b"]
        row["gain"], row["gain_ci95"] = diff.mean, [diff.low, diff.high]
    ordinary = [
        per_image_matches(coco_gt, runs.run_results(ordinary_dir(settings, s), dataset), sigmas)
        for s in settings.seeds
    ]
    diff = paired_bootstrap({"ordinary": ordinary, "branch": matches[multiples[0]]}, "ordinary")
    check = {
        "iterations": settings.schedule.length(1),
        "ordinary_ap_runs": [100 * keypoint_ap(x) for x in ordinary],
        "branch_minus_ordinary": diff["branch"].mean,
        "ci95": [diff["branch"].low, diff["branch"].high],
    }
    return rows, check


def error_shares(breakdowns: Sequence[dict]) -> dict:
    """The seeds' mean shares: ``errors`` (each class), ``by_view`` / ``by_style`` (group ->
    good and left/right inversion shares, share of keypoints), ``by_keypoint`` (K x good,
    inversion, left/right)."""
    breakdowns = [b for b in breakdowns if b.get("keypoints")]
    if not breakdowns:
        return {"errors": {}, "by_view": {}, "by_style": {}, "by_keypoint": []}

    def mean_of(get):
        return _mean([get(b) for b in breakdowns])

    out = {"errors": {k: mean_of(lambda b, k=k: b["shares"][k]) for k in breakdowns[0]["shares"]}}
    for grouping in ("view", "style"):
        groups = breakdowns[0].get(f"by_{grouping}", {})
        out[f"by_{grouping}"] = {
            g: {
                key: mean_of(lambda b, g=g, key=key: _group_value(b, grouping, g, key))
                for key in ("share_of_keypoints", "good", "inversion_left_right", "inversion")
            }
            for g in groups
        }
    out["by_keypoint"] = [
        {
            key: mean_of(lambda b, k=k, key=key: b["by_keypoint"][k]["shares"][key])
            for key in ("good", "inversion", "inversion_left_right")
        }
        for k in range(len(breakdowns[0].get("by_keypoint", [])))
    ]
    return out


def _group_value(breakdown: dict, grouping: str, group: str, key: str) -> Optional[float]:
    row = breakdown.get(f"by_{grouping}", {}).get(group)
    if row is None:
        return None
    return row["share_of_keypoints"] if key == "share_of_keypoints" else row["shares"][key]


def plateau_length(rows: Sequence[dict]) -> Optional[int]:
    """The first length whose doubling gains less than PLATEAU_GAIN (None: none did)."""
    for previous, row in zip(rows, rows[1:]):
        if row["gain"] < PLATEAU_GAIN:
            return previous["iterations"]
    return None


def variant_rows(settings: Settings, multiples, variants, dataset: str, index: int) -> dict:
    """variant -> per length the seeds' mean AP and left/right inversion share."""
    out = {}
    for variant in variants:
        rows = []
        for m in multiples:
            summaries = [
                runs.read_summary(variant_dir(settings, s, m, variant))["datasets"][index]
                for s in settings.seeds
            ]
            shares = error_shares([s.get("keypoint_errors") or {} for s in summaries])["errors"]
            rows.append(
                {
                    "iterations": settings.schedule.length(m),
                    "ap": _mean([s["keypoint_ap"] for s in summaries]),
                    "inversion_left_right": shares.get("inversion_left_right", float("nan")),
                }
            )
        out[variant.name] = rows
    return out


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None or value != value else f"{value:.1%}"


def length_table(rows: Sequence[dict], report: dict) -> List[str]:
    """Per length: AP, the doubling's gain with its interval, box AP, the error classes."""
    lines = [
        "| iterations | passes | keypoint AP (runs) | doubling gain [95%] | box AP | good "
        "| left/right inv. | all inv. | miss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        gain = ""
        if "gain" in row:
            low, high = row["gain_ci95"]
            gain = f"{row['gain']:+.1f} [{low:+.1f}, {high:+.1f}]"
        passes = row["iterations"] * report["images_per_batch"] / report["train_images"]
        runs_text = ", ".join(f"{a:.1f}" for a in row["ap_runs"])
        errors = row["errors"]
        lines.append(
            f"| {row['iterations']} | {passes:.1f} | {_mean(row['ap_runs']):.1f} ({runs_text}) "
            f"| {gain} | {_mean(row['box_ap_runs']):.1f} | {_pct(errors.get('good'))} "
            f"| {_pct(errors.get('inversion_left_right'))} | {_pct(errors.get('inversion'))} "
            f"| {_pct(errors.get('miss'))} |"
        )
    return lines + [""]


def group_table(rows: Sequence[dict], grouping: str, order: Sequence[str]) -> List[str]:
    """Good / left-right inversion shares per length for each group of ``grouping`` (view or
    style), with each group's share of the labelled keypoints."""
    groups = rows[0][f"by_{grouping}"]
    names = [g for g in order if g in groups] + [g for g in groups if g not in order]
    if not names:
        return []
    header = [f"{g} ({groups[g]['share_of_keypoints']:.0%})" for g in names]
    lines = [
        f"Good / left-right inversions by {grouping} (share of keypoints in brackets):",
        "",
        "| iterations | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(names),
    ]
    for row in rows:
        cells = [
            f"{_pct(row[f'by_{grouping}'][g]['good'])} / "
            f"{_pct(row[f'by_{grouping}'][g]['inversion_left_right'])}"
            for g in names
        ]
        lines.append(f"| {row['iterations']} | " + " | ".join(cells) + " |")
    return lines + [""]


def keypoint_table(rows: Sequence[dict], names: Sequence[str]) -> List[str]:
    """Good / all inversions per keypoint at the first and the last length."""
    first, last = rows[0], rows[-1]
    if not first["by_keypoint"]:
        return []
    lines = [
        f"Per keypoint, good / all inversions at {first['iterations']} and "
        f"{last['iterations']} iterations:",
        "",
        f"| keypoint | {first['iterations']} | {last['iterations']} |",
        "|---|---|---|",
    ]
    for k, name in enumerate(names):
        a, b = first["by_keypoint"][k], last["by_keypoint"][k]
        lines.append(
            f"| {name} | {_pct(a['good'])} / {_pct(a['inversion'])} "
            f"| {_pct(b['good'])} / {_pct(b['inversion'])} |"
        )
    return lines + [""]


def check_and_variant_lines(entry: dict) -> List[str]:
    check = entry["check"]
    low, high = check["ci95"]
    lines = [
        f"Check, {check['iterations']} iterations: ordinary schedule "
        f"{_mean(check['ordinary_ap_runs']):.1f} AP, decay branch minus ordinary "
        f"{check['branch_minus_ordinary']:+.1f} [{low:+.1f}, {high:+.1f}]",
        "",
    ]
    for name, rows in entry["variants"].items():
        cells = ", ".join(
            f"{r['iterations']}: {r['ap']:.1f} AP (l/r {_pct(r['inversion_left_right'])})"
            for r in rows
        )
        lines.append(f"Same models, {name}: {cells}")
    return lines + [""]


def markdown(report: dict) -> str:
    """The report's tables: per test set, lengths, views, styles, keypoints, the check."""
    opts = f" + {' '.join(report['opts'])}" if report["opts"] else ""
    lines = [
        f"Plateau of {report['config']}{opts}, seeds {report['seeds']}; commit "
        f"{report['commit']}; {report['machine']}; {report['wall_s'] / 60:.0f} min",
        "",
    ]
    for dataset, entry in report["datasets"].items():
        rows = entry["lengths"]
        plateau = entry["plateau_iterations"]
        lines += [f"### {dataset}", ""] + length_table(rows, report)
        lines += [
            f"Plateau (first doubling under +{PLATEAU_GAIN:.0f} AP): "
            + (f"from {plateau} iterations" if plateau else "not reached"),
            "",
        ]
        lines += group_table(rows, "view", FACING_VIEWS) + group_table(rows, "style", ())
        lines += keypoint_table(rows, report["keypoint_names"])
        lines += check_and_variant_lines(entry)
    return "\n".join(lines)


def draw(report: dict, path: str) -> None:
    """Keypoint AP against iterations (log scale) per test set, and the share of good
    keypoints by view on the first test set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for dataset, entry in report["datasets"].items():
        rows = entry["lengths"]
        left.plot([r["iterations"] for r in rows], [_mean(r["ap_runs"]) for r in rows], "o-",
                  label=dataset)  # fmt: skip
    left.set_xscale("log", base=2)
    left.set_xlabel("training iterations")
    left.set_ylabel("keypoint AP")
    left.legend()
    left.grid(alpha=0.3)
    first = next(iter(report["datasets"].values()))["lengths"]
    for view in FACING_VIEWS:
        if view in first[0]["by_view"]:
            good = [100 * r["by_view"][view]["good"] for r in first]
            right.plot([r["iterations"] for r in first], good, "o-", label=view)
    right.set_xscale("log", base=2)
    right.set_xlabel("training iterations")
    right.set_ylabel("good keypoints (%)")
    right.set_title("by view, " + next(iter(report["datasets"])))
    right.legend()
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def build_report(settings: Settings, multiples: Sequence[int], variants, wall_s: float) -> dict:
    register_all_synthetic()
    run_cfg = runs.saved_cfg(branch_dir(settings, settings.seeds[0], multiples[0]))
    datasets = list(run_cfg.DATASETS.TEST)
    train = MetadataCatalog.get(run_cfg.DATASETS.TRAIN[0])
    with contextlib.redirect_stdout(io.StringIO()):
        train_images = len(COCO(train.json_file).getImgIds())
    report = {
        "commit": git_commit(),
        "machine": cpu_model(),
        "config": settings.config,
        "opts": list(settings.opts),
        "seeds": settings.seeds,
        "base": settings.schedule.base,
        "decays": list(settings.schedule.decays),
        "images_per_batch": run_cfg.SOLVER.IMS_PER_BATCH,
        "train_images": train_images,
        "keypoint_names": list(MetadataCatalog.get(datasets[0]).keypoint_names),
        "seconds_per_iteration": runs.seconds_per_iteration(
            os.path.join(seed_dir(settings, settings.seeds[0]), "stable")
        ),
        "wall_s": wall_s,
        "datasets": {},
    }
    for index, dataset in enumerate(datasets):
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            coco_gt = COCO(MetadataCatalog.get(dataset).json_file)
        sigmas = dataset_oks_sigmas(dataset, run_cfg.TEST.KEYPOINT_OKS_SIGMAS)
        rows, check = length_rows(settings, multiples, dataset, index, coco_gt, sigmas)
        report["datasets"][dataset] = {
            "lengths": rows,
            "plateau_iterations": plateau_length(rows),
            "check": check,
            "variants": variant_rows(settings, multiples, variants, dataset, index),
        }
    return report


def main() -> int:
    settings = Settings()
    os.makedirs(settings.out, exist_ok=True)
    start = time.perf_counter()
    multiples, variants = train_all(settings)
    report = build_report(settings, multiples, variants, time.perf_counter() - start)
    table = markdown(report)
    write_report(settings.report_dir, "plateau", report, table)
    draw(report, os.path.join(settings.report_dir, "plateau.png"))
    print("\n" + table)
    print(f"Wrote {settings.report_dir}/plateau.json, plateau.md and plateau.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
