"""The GPU check's part a (:mod:`gpu_check`): the heads at their plateau, measured by the head
benchmark itself (``projects/Benchmarks/bench_heads.py`` and ``kpext_bench``) on the check's
device (``BENCH_DEVICE``), sized to the part's time budget.

1. probe: every row of the bench (``BENCH_HEADS`` of the profile) for ``probe_iters`` head
   iterations and one seed. It generates the bench's classic-style splits, trains the shared
   detector and caches its features, proposals and detections, which the table's run reuses
   (same ``BENCH_OUT``), and it measures each row's s/iter and evaluation time on this
   machine;
2. plan: the first (head iterations, seeds) of the profile's ladder whose estimate fits what
   is left of the part's budget;
3. table: the bench at that length. Its regime rows (stock at 1/4, 1/2 and 2x the head
   iterations, the weakened stock head) say whether stock reached its plateau: the last
   doubling moves stock's AP on gt boxes by less than 1 (``kpext_bench.heads_report``'s
   ``REGIME_MAX_DOUBLING_GAIN``).

The table's ``heads.json``, ``heads.md`` and ``heads.png`` are copied to the report folder as
``plateau_heads.*``; the bench's logs (and the probe's table) go with the others. Nothing here
imports kpext: this process may run on a Python without Detectron2 (the wheelhouse is only on
the children's ``PYTHONPATH``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from gpu_check_runs import PlateauProfile, last_error_line, run_logged

BENCH_HEADS_SCRIPT = os.path.join("projects", "Benchmarks", "bench_heads.py")
# kpext_bench.heads_report.REGIME_MAX_DOUBLING_GAIN (this process does not import kpext_bench).
MAX_DOUBLING_GAIN = 1.0
# bench_heads.py's line after each row and seed: its AP, s/iter and seconds (training and
# evaluation).
ROW_LINE = re.compile(
    r"bench: (\S+) seed \d+: AP\(gt boxes\) \S+, AP\(detections\) \S+, (\S+) s/iter, (\d+) s"
)
COPIED = (".json", ".md", ".png")


@dataclass
class RowCost:
    """One bench row on this machine, from the probe."""

    factor: float  # its head iterations over the bench's (stock's curve: 0.25, 0.5, 2)
    trains: bool  # False: it evaluates another row's weights
    s_per_iter: float
    eval_s: float


@dataclass
class Plateau:
    """Part a as far as it came (the report's ``plateau``)."""

    status: str = "pending"  # ok, failed, skipped
    error: str = ""
    probe: Dict[str, object] = field(default_factory=dict)
    plan: Dict[str, object] = field(default_factory=dict)
    table_wall_s: Optional[float] = None
    verdict: Dict[str, object] = field(default_factory=dict)
    markdown: str = ""  # the bench's heads.md


def bench_env(
    env: Dict[str, str], profile: PlateauProfile, device: str, work: str, iters: int, seeds: int
) -> Dict[str, str]:
    """The bench's environment: its data and output under the work folder, no full-size
    timing (part b times full size), the profile's rows and sizes (any other BENCH_* of the
    caller's environment left out)."""
    bench = {k: v for k, v in env.items() if not k.startswith("BENCH_")}  # the profile's alone
    if profile.det_iters:
        bench["BENCH_DET_ITERS"] = str(profile.det_iters)
    bench.update(
        BENCH_DEVICE=device,
        BENCH_OUT=os.path.join(work, "bench"),
        KPEXT_DATASETS=os.path.join(work, "bench_data"),
        BENCH_QUICK="1" if profile.quick else "0",
        BENCH_HEADS=profile.heads,
        BENCH_ITERS=str(iters),
        BENCH_SEEDS=str(seeds),
        BENCH_SKIP_FULLSIZE="1",
    )
    return bench


def run_bench(
    env: Dict[str, str], log_path: str, timeout: float
) -> Tuple[int, str, float, Optional[dict]]:
    """bench_heads.py once: (exit code, log tail, wall seconds, its heads.json or None)."""
    report_path = os.path.join(env["BENCH_OUT"], "heads.json")
    if os.path.exists(report_path):
        os.remove(report_path)  # the probe's table is not the table's
    began = time.perf_counter()
    rc, tail = run_logged([sys.executable, BENCH_HEADS_SCRIPT], env, log_path, timeout)
    wall = time.perf_counter() - began
    report = None
    if rc == 0 and os.path.exists(report_path):
        with open(report_path) as f:
            report = json.load(f)
    return rc, tail, wall, report


def mark_failed(plateau: Plateau, step: str, rc: int, tail: str) -> None:
    """Part a failed at ``step`` ("probe" or "table"): the report's status and error (a
    timeout, exit 124, or the log's last error line), and the log's end printed."""
    plateau.status = "failed"
    plateau.error = f"{step} timed out" if rc == 124 else f"{step}: {last_error_line(tail)}"
    print(
        f"--- part a's {step} failed (exit {rc}); end of its output:\n{tail[-2500:]}\n---",
        flush=True,
    )


def row_costs(report: dict, log_text: str, probe_iters: int) -> Dict[str, RowCost]:
    """Each probed row's cost: s/iter from its heads.json row, evaluation seconds from its log
    line (the row's seconds less its training)."""
    seconds = {name: float(total) for name, _, total in ROW_LINE.findall(log_text)}
    costs = {}
    for row in report["rows"]:
        trains = row.get("weights_from") is None
        s_per_iter = float(row["train_s_per_iter"]) if trains else 0.0
        training = row["iterations"] * s_per_iter
        costs[row["name"]] = RowCost(
            factor=row["iterations"] / probe_iters,
            trains=trains,
            s_per_iter=s_per_iter,
            eval_s=max(seconds.get(row["name"], 0.0) - training, 0.0) + 0.5,  # "%.0f s"
        )
    return costs


def estimate_s(costs: Dict[str, RowCost], iters: int, seeds: int, profile: PlateauProfile) -> float:
    """Seconds of the table at ``iters`` head iterations and ``seeds`` seeds."""
    per_seed = sum(
        (max(1, round(iters * c.factor)) * c.s_per_iter if c.trains else 0.0) + c.eval_s
        for c in costs.values()
    )
    return profile.overhead_s + profile.margin * seeds * per_seed


def choose_plan(
    costs: Dict[str, RowCost], remaining_s: float, profile: PlateauProfile
) -> Optional[Dict[str, object]]:
    """The first (iterations, seeds) of the ladder that fits ``remaining_s``, with its
    estimate; None when none does."""
    for iters, seeds in profile.ladder:
        estimate = estimate_s(costs, iters, seeds, profile)
        if estimate <= remaining_s:
            return {"iterations": iters, "seeds": seeds, "estimate_s": round(estimate, 1)}
    return None


def verdict(report: dict) -> Dict[str, object]:
    """Stock's curve (head iterations -> AP on gt boxes), the last doubling's change with its
    interval and whether it is under 1 AP (the plateau), the weakened head's difference."""
    rows = {r["name"]: r for r in report["rows"]}
    stock = rows.get("stock")
    if stock is None:
        return {}
    curve = sorted(
        [r for r in rows.values() if r.get("regime") and not r.get("overrides")] + [stock],
        key=lambda r: r["iterations"],
    )
    found: Dict[str, object] = {
        "stock_curve": [[r["iterations"], round(r["ap_gt"], 2)] for r in curve],
        "head_iterations": stock["iterations"],
        "seeds": len(report.get("seeds", [])),
    }
    doubled = next((r for r in curve if r["iterations"] == 2 * stock["iterations"]), None)
    if doubled is not None:
        gain = doubled["diff_gt_vs_stock"]
        found.update(
            doubling_gain=round(gain, 2),
            doubling_ci95=[round(v, 2) for v in doubled["diff_gt_ci95"]],
            plateau_reached=abs(gain) < MAX_DOUBLING_GAIN,
        )
    weak = rows.get("stock_weak_28")
    if weak is not None:
        found.update(
            weak_diff=round(weak["diff_gt_vs_stock"], 2),
            weak_ci95=[round(v, 2) for v in weak["diff_gt_ci95"]],
        )
    return found


def copy_table(bench_out: str, out: str) -> None:
    """heads.json, .md and .png of the bench -> plateau_heads.* in the report folder."""
    for ext in COPIED:
        src = os.path.join(bench_out, f"heads{ext}")
        if os.path.exists(src):
            shutil.copy(src, os.path.join(out, f"plateau_heads{ext}"))


def probe_step(
    plateau: Plateau, profile: PlateauProfile, env: Dict[str, str], device: str, work: str,
    log_dir: str,
) -> Optional[Dict[str, RowCost]]:  # fmt: skip
    """1. Every row at the probe's length, one seed: the shared detector and caches, and each
    row's cost. None (and the part failed) when it did not finish within the part's budget."""
    probe_env = bench_env(env, profile, device, work, profile.probe_iters, 1)
    log_path = os.path.join(log_dir, "plateau_probe.log")
    rc, tail, wall, report = run_bench(probe_env, log_path, profile.budget_s)
    plateau.probe = {"iterations": profile.probe_iters, "seeds": 1, "wall_s": round(wall, 1)}
    if report is None:
        mark_failed(plateau, "probe", rc, tail)
        return None
    md = os.path.join(probe_env["BENCH_OUT"], "heads.md")
    if os.path.exists(md):
        shutil.copy(md, os.path.join(log_dir, "plateau_probe_heads.md"))
    with open(log_path, errors="replace") as f:
        costs = row_costs(report, f.read(), profile.probe_iters)
    plateau.probe["rows"] = {
        name: {"s_per_iter": round(c.s_per_iter, 4), "eval_s": round(c.eval_s, 1)}
        for name, c in costs.items()
    }
    return costs


def table_step(
    plateau: Plateau, profile: PlateauProfile, env: Dict[str, str], device: str, work: str,
    log_dir: str, out: str, remaining_s: float,
) -> None:  # fmt: skip
    """2 and 3. The planned table, its verdict and its files in the report folder."""
    iters, seeds = plateau.plan["iterations"], plateau.plan["seeds"]
    table_env = bench_env(env, profile, device, work, iters, seeds)
    log_path = os.path.join(log_dir, "plateau_table.log")
    rc, tail, wall, report = run_bench(table_env, log_path, remaining_s + profile.grace_s)
    plateau.table_wall_s = round(wall, 1)
    if report is None:
        mark_failed(plateau, "table", rc, tail)
        return
    copy_table(table_env["BENCH_OUT"], out)
    with open(os.path.join(table_env["BENCH_OUT"], "heads.md")) as f:
        plateau.markdown = f.read()
    plateau.verdict = verdict(report)
    plateau.status = "ok"


def run_plateau(
    profile: PlateauProfile, env: Dict[str, str], device: str, work: str, log_dir: str, out: str
) -> Plateau:
    """Part a: probe, plan, table (see the module's docstring)."""
    plateau = Plateau()
    began = time.perf_counter()
    costs = probe_step(plateau, profile, env, device, work, log_dir)
    if costs is None:
        return plateau
    remaining = profile.budget_s - (time.perf_counter() - began)
    plan = choose_plan(costs, remaining, profile)
    if plan is None:
        plateau.status = "failed"
        shortest = estimate_s(costs, *profile.ladder[-1], profile)
        plateau.error = (f"no table fits: {remaining:.0f} s left of {profile.budget_s:.0f} s, "
                         f"the shortest needs about {shortest:.0f} s")  # fmt: skip
        return plateau
    plateau.plan = {**plan, "remaining_s": round(remaining, 1)}
    print(
        f"[gpu_check] part a: {plan['iterations']} head iterations x {plan['seeds']} seed(s), "
        f"about {plan['estimate_s']:.0f} s of {remaining:.0f} s left",
        flush=True,
    )
    table_step(plateau, profile, env, device, work, log_dir, out, remaining)
    return plateau


def plateau_markdown(plateau: Optional[Dict[str, object]]) -> List[str]:
    """Part a's section of report.md, from the report's ``plateau`` (a :class:`Plateau`)."""
    if not plateau:
        return []
    lines = ["## a) The heads at their plateau (projects/Benchmarks/bench_heads.py)", ""]
    if plateau["status"] != "ok":
        error = f": {plateau['error']}" if plateau["error"] else ""
        lines.append(f"- status: {plateau['status']}{error}")
    probe, plan, v = plateau["probe"], plateau["plan"], plateau["verdict"]
    if probe:
        lines.append(
            f"- probe: every row at {probe['iterations']} head iterations, one seed, "
            f"{probe['wall_s']:.0f} s (data, shared detector and caches included)"
        )
    if plan:
        lines.append(
            f"- table: {plan['iterations']} head iterations x {plan['seeds']} seed(s), "
            f"estimated {plan['estimate_s']:.0f} s, took "
            f"{plateau['table_wall_s'] or 0:.0f} s"
        )
    if "plateau_reached" in v:
        low, high = v["doubling_ci95"]
        reached = "reached" if v["plateau_reached"] else "**not reached**"
        lines.append(
            f"- stock's plateau {reached}: doubling {v['head_iterations']} head "
            f"iterations changes its AP on gt boxes by {v['doubling_gain']:+.1f} "
            f"[{low:+.1f}, {high:+.1f}] (plateau: under {MAX_DOUBLING_GAIN:g})"
        )
    if plateau["markdown"]:
        lines += ["", plateau["markdown"].rstrip()]
    return lines + [""]
