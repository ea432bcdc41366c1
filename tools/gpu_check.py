#!/usr/bin/env python
"""The GPU check: the heads at their plateau, then kpext's heads trained and timed at full size,
on one CUDA GPU (issue 35's parts a and b, in that order).

Run it through ``tools/gpu_check.sh`` (which picks the Python); see docs/gpu.md.

    bash tools/gpu_check.sh                 # on a GPU machine: within 9 minutes
    bash tools/gpu_check.sh --cpu-smoke     # here: the same path at toy sizes on the CPU

Steps, each printed with its elapsed time, the report rewritten after each:

1. install: the wheelhouse of ``make gpu-wheels`` (``.gpu-wheels/``) is installed offline
   with ``--no-deps`` into a temporary folder put on ``PYTHONPATH``, so the machine's own
   torch, torchvision and numpy are never touched. Wheels that do not fit the running
   Python (the cp312 ones on another Python) are left out and said so; without a
   wheelhouse the current environment is used. The working tree comes first on
   ``PYTHONPATH``: the kpext that runs is the tree's (fixes made after ``make gpu-wheels``
   count); the kpext wheel only proves that it installs. Part b's synthetic set then starts
   generating in the background (``datasets/make_synthetic.py``).
2. plateau (part a, :mod:`gpu_check_plateau`): the head benchmark
   (``projects/Benchmarks/bench_heads.py``, its shared detector, stock's curve, the weakened
   head, every head and decoding row, paired bootstrap intervals, error classes) on the
   device, as long as its budget allows: a probe of every row sizes the table.
3. data: waits for part b's synthetic train and val splits.
4. train (part b): ``projects/PoseEstimation/train_net.py`` (Detectron2's ``launch`` through
   ``kpext.engine.launch``) for the stock head and each kpext head (the demo recipe's
   facing branch among them), fp32 then AMP, a short fixed schedule from scratch (the
   machine has no network, so no ImageNet weights: BN backbone, low learning rate), each
   followed by its evaluation (box and keypoint AP, meaningless after so few iterations:
   the numbers show that evaluation ran). s/iter is Detectron2's "Overall training speed"
   (iterations after the third). Each run's log says which training step ran (AMP: CUDA
   float16 AMPTrainer; on the CPU, bf16 CPUAMPTrainer where the CPU has native bf16) and
   how many level poolers use kpext's CPU RoIAlign (none on CUDA); a run that differs fails.
5. infer: one process loads every trained model, and the facing head's with every other
   combination of the graph's test-time options (``kpext.config.GRAPH_TEST_OPTIONS``), and
   times inference, models alternated batch by batch, at batch 1 and batch 8 (images/s, AMP
   rows under the autocast they trained with), with a score threshold of 0 so that every
   model decodes the same number of detections.
6. report: ``report.json``, ``report.md``, ``logs.tar.gz`` and part a's ``plateau_heads.json``,
   ``.md``, ``.png`` under ``--out`` (``$OUT`` when set, else ``output/gpu/``;
   ``output/gpu-smoke/`` with ``--cpu-smoke``): six files, within what a device command
   brings back. Checkpoints and data stay in a temporary folder.

A time budget (``--budget-s``, 540 s on a GPU, part a's own within it) skips the training runs
that would not fit; they are listed as skipped in the report. The exit status is 0 when part
a wrote its table and every part b run that was not skipped for time trained, evaluated and
was timed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

# The steps' modules lie beside this script (its folder is on sys.path when it runs).
from gpu_check_install import install_wheelhouse
from gpu_check_plateau import Plateau, run_plateau
from gpu_check_report import build_rows, fmt, markdown_report, write_report
from gpu_check_runs import (
    HEADS,
    REPO,
    Clock,
    DataJobs,
    Profile,
    Run,
    gpu_profile,
    last_error_line,
    plan_runs,
    run_logged,
    smoke_profile,
    start_data,
    stop_data,
    train,
    wait_data,
)

INFER_SCRIPT = os.path.join("tools", "gpu_check_infer.py")
PARTS = ("plateau", "runs")
# What a check writes into its report folder (removed first, so nothing stale stays).
OUTPUTS = ("report.json", "report.md", "logs.tar.gz", "plateau_heads.json", "plateau_heads.md",
           "plateau_heads.png")  # fmt: skip


def default_out(cpu_smoke: bool) -> str:
    if os.environ.get("OUT"):
        return os.environ["OUT"]
    return os.path.join(REPO, "output", "gpu-smoke" if cpu_smoke else "gpu")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="toy sizes on the CPU (tests the path, not the speed)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="report folder (default: $OUT, else output/gpu or output/gpu-smoke)",
    )
    p.add_argument(
        "--wheelhouse", default=os.environ.get("GPU_WHEELHOUSE", os.path.join(REPO, ".gpu-wheels"))
    )
    p.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="comma-separated: plateau (part a, the head benchmark), runs (part b)",
    )
    p.add_argument(
        "--heads",
        default=",".join(h.name for h in HEADS),
        help="part b's rows, comma-separated: " + ", ".join(h.name for h in HEADS),
    )
    p.add_argument("--iters", type=int, default=None, help="training iterations per run")
    p.add_argument(
        "--budget-s", type=float, default=None, help="skip training runs that would end past this"
    )
    p.add_argument(
        "--plateau-budget-s", type=float, default=None, help="part a's seconds (probe and table)"
    )
    p.add_argument(
        "--keep-work", action="store_true", help="keep the temporary folder (checkpoints, data)"
    )
    return p.parse_args(argv)


@dataclass
class Check:
    """One check: what it runs, where, and what happened so far (what the report says)."""

    args: argparse.Namespace
    profile: Profile
    parts: List[str]
    heads: List[str]
    out: str
    work: str
    clock: Clock = field(default_factory=Clock)
    env: Dict[str, str] = field(default_factory=dict)
    prefix: str = ""
    install: Dict[str, object] = field(default_factory=dict)
    data: Optional[DataJobs] = None
    plateau: Optional[Plateau] = None
    runs: List[Run] = field(default_factory=list)
    timings: Dict[str, Dict[str, object]] = field(default_factory=dict)
    environment: Dict[str, object] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    argv: List[str] = field(default_factory=list)
    commit: str = ""

    @property
    def log_dir(self) -> str:
        """Every process's log; packed into logs.tar.gz with each report."""
        return os.path.join(self.work, "logs")

    def save(self) -> List[Dict[str, object]]:
        """The report as far as the check came, written whole; returns part b's rows."""
        rows = build_rows(self.runs, self.timings)
        write_report(self.out, make_report(self, rows), self.log_dir)
        return rows


def names(value: str, known: Sequence[str], what: str) -> List[str]:
    """A comma-separated list of names, each one of ``known``."""
    chosen = [n.strip() for n in value.split(",") if n.strip()]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return chosen


def setup(args: argparse.Namespace) -> Check:
    """The profile (with ``--iters``, ``--budget-s`` and ``--plateau-budget-s``), the parts
    and heads, the report folder without a previous check's files, a temporary work folder
    with its log folder."""
    clock = Clock()
    profile = smoke_profile() if args.cpu_smoke else gpu_profile()
    if args.iters:
        profile.iters = args.iters
    if args.budget_s:
        profile.budget_s = args.budget_s
    if args.plateau_budget_s and profile.plateau:
        profile.plateau.budget_s = args.plateau_budget_s
    parts = names(args.parts, PARTS, "part(s)")
    heads = names(args.heads, [h.name for h in HEADS], "head(s)")
    out = os.path.abspath(args.out or default_out(args.cpu_smoke))
    work = tempfile.mkdtemp(prefix="kpext-gpu-check-")
    check = Check(args, profile, parts, heads, out, work, clock)
    os.makedirs(out, exist_ok=True)
    for name in OUTPUTS:
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
    shutil.rmtree(os.path.join(out, "runs"), ignore_errors=True)  # logs before logs.tar.gz
    os.makedirs(check.log_dir, exist_ok=True)
    return check


def install_step(check: Check) -> None:
    """1. The wheelhouse into a temporary prefix; the environment of every later process:
    the working tree first on PYTHONPATH, then the prefix, the data under the work folder."""
    began = time.perf_counter()
    check.prefix = os.path.join(check.work, "prefix")
    install = check.install = install_wheelhouse(check.args.wheelhouse, check.prefix)
    env = dict(os.environ)
    env.pop("OUT", None)  # the runs' outputs go to their own folders
    path = (
        [REPO]
        + ([check.prefix] if install["used"] else [])
        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env["PYTHONPATH"] = os.pathsep.join(path)
    env["KPEXT_DATASETS"] = os.path.join(check.work, "data")
    env.setdefault("PYTHONUNBUFFERED", "1")
    check.env = env
    if not install["used"]:
        print(f"[gpu_check] {install['reason']}", flush=True)
        check.notes.append(install["reason"])
    elif install["left_out"]:
        note = (f"wheels for another Python left out (the current environment's are used): "
                f"{', '.join(install['left_out'])}")  # fmt: skip
        print(f"[gpu_check] {note}", flush=True)
        check.notes.append(note)
    wheels = f"({len(install.get('installed', []))} wheels)"
    check.clock.step("install", began, wheels if install["used"] else "(current environment)")
    if "runs" in check.parts:  # generated while part a runs
        check.data = start_data(check.profile, env["KPEXT_DATASETS"], env, check.log_dir)


def plateau_step(check: Check) -> None:
    """2. Part a: the head benchmark on the device, sized to its budget."""
    began = time.perf_counter()
    check.plateau = plateau = run_plateau(
        check.profile.plateau, check.env, check.profile.device, check.work, check.log_dir,
        check.out,
    )  # fmt: skip
    if plateau.status != "ok":
        check.notes.append(f"part a {plateau.status}: {plateau.error}")
    plan = plateau.plan
    size = f"{plan['iterations']} head iterations x {plan['seeds']} seed(s)" if plan else ""
    check.clock.step("plateau", began, f"{plateau.status} {size} {plateau.error}".strip())


def data_step(check: Check) -> None:
    """3. Part b's synthetic train and val splits at the profile's size."""
    profile = check.profile
    began = time.perf_counter()
    wait_data(check.data)
    check.clock.step(
        "data",
        began,
        f"({profile.train_images}+{profile.val_images} images, {profile.width}x{profile.height})",
    )


def train_step(check: Check) -> None:
    """4. Every planned run trained and evaluated, within the time budget: a run whose
    estimate (the longest run so far) does not fit what is left is skipped."""
    profile, clock = check.profile, check.clock
    check.runs = runs = plan_runs(profile, check.work, check.heads)
    longest = 0.0
    for run in runs:
        # inference timing after the runs
        reserve = 20.0 + 8.0 * sum(r.status == "trained" for r in runs)
        estimate = longest or 60.0
        remaining = profile.budget_s - clock.elapsed() - reserve
        if estimate > remaining:
            run.status, run.error = "skipped", f"time budget ({profile.budget_s:.0f} s)"
            print(
                f"[gpu_check] {run.name}: skipped, {remaining:.0f} s left of the budget",
                flush=True,
            )
            continue
        began = time.perf_counter()
        train(run, profile, check.env, check.log_dir, timeout=max(remaining, 60.0))
        longest = max(longest, run.train_wall_s or 0.0)
        clock.step(
            f"train {run.name}",
            began,
            f"{run.status} {fmt(run.train_s_per_iter, 4)} s/iter {run.error}",
        )
        check.save()


def infer_spec(check: Check) -> Dict[str, object]:
    """What the inference process times: every trained run's model."""
    profile = check.profile
    return {
        "device": profile.device,
        "infer_images": profile.infer_images,
        "rounds": profile.infer_rounds,
        "batch_sizes": [1, 8],
        "runs": [
            {
                "name": r.name,
                "config_file": r.config_file,
                "overrides": r.overrides,
                "precision": r.precision,
                "weights": os.path.join(r.output_dir, "model_final.pth"),
                "graph_variants": r.graph_variants,
            }  # fmt: skip
            for r in check.runs
            if r.status == "trained"
        ],
    }


def infer_step(check: Check) -> None:
    """5. Inference timing, every trained model (and graph variant) in one process
    (``gpu_check_infer.py``)."""
    began = time.perf_counter()
    spec_path = os.path.join(check.work, "infer_spec.json")
    result_path = os.path.join(check.work, "infer_result.json")
    spec = infer_spec(check)
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    rc, tail = run_logged(
        [sys.executable, INFER_SCRIPT, spec_path, result_path],
        check.env,
        os.path.join(check.log_dir, "infer.log"),
        # Up to 45 s past the budget: on the GPU the check still ends inside its device
        # command's 10 minutes (540 s + 45 s), its report written after.
        timeout=max(check.profile.budget_s - check.clock.elapsed() + 45, 30),
    )
    result = json.load(open(result_path)) if os.path.exists(result_path) else {}
    if rc != 0:
        print(
            f"--- inference timing failed (exit {rc}); end of its output:\n{tail[-2500:]}\n---",
            flush=True,
        )
        check.notes.append(f"inference timing process failed (exit {rc}): {last_error_line(tail)}")
    check.clock.step("infer", began, f"({len(spec['runs'])} models)")
    check.environment = result.get("environment", {})
    torch_path = str(check.environment.get("torch_path", ""))
    if check.install.get("used") and torch_path.startswith(check.prefix):
        raise RuntimeError(
            f"torch was imported from the wheelhouse folder ({torch_path}): "
            "it must be the machine's"
        )
    check.notes += result.get("notes", [])
    check.timings = result.get("timings", {})
    for run in check.runs:
        if run.status == "trained" and run.name not in check.timings:
            run.status, run.error = "failed", "inference timing did not run"


def gpu_notes(check: Check) -> List[str]:
    """What a GPU report says about how it was measured."""
    notes = []
    if all(r.processes == 1 for r in check.runs):
        notes.append("one process: Detectron2's launch runs training in-process at world "
                     "size 1, so DDP and NCCL are not exercised (two ranks on one GPU are "
                     "not possible with NCCL)")  # fmt: skip
    notes.append("AMP rows: trained with Detectron2's AMPTrainer (float16 autocast, GradScaler), "
                 "evaluated in fp32 (its evaluation has no autocast), timed under fp16 "
                 "autocast")  # fmt: skip
    notes.append("RoIAlign: torchvision's CUDA kernel (MODEL.KPEXT.ROI_ALIGN auto keeps kpext's "
                 "sparse-matrix kernel to the CPU; each run's log says how many level poolers "
                 "use it: none)")  # fmt: skip
    notes.append(f"DATALOADER.NUM_WORKERS {check.profile.num_workers}; training batches in "
                 "pinned memory (KpextTrainer sets pin_memory on Detectron2's loader), copied "
                 "to the GPU by the model (a blocking copy)")  # fmt: skip
    return notes


def commit() -> str:
    """$GPU_CHECK_COMMIT (a device machine gets the working tree without .git), else the
    checkout's short commit with +dirty when tracked files differ, else "unknown"."""
    if os.environ.get("GPU_CHECK_COMMIT"):
        return os.environ["GPU_CHECK_COMMIT"]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")  # fmt: skip


def make_report(check: Check, rows: List[Dict[str, object]]) -> Dict[str, object]:
    profile = check.profile
    return {
        "profile": profile.name,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": check.commit,
        "command": " ".join(["bash tools/gpu_check.sh", *check.argv]),
        "parts": check.parts,
        "environment": check.environment,
        "install": check.install,
        "settings": {k: v for k, v in asdict(profile).items() if k != "overrides"},
        "plateau": asdict(check.plateau) if check.plateau else None,
        "rows": rows,
        "steps": check.clock.steps,
        "total_s": round(check.clock.elapsed(), 1),
        "notes": check.notes,
    }


def exit_status(check: Check, rows: List[Dict[str, object]]) -> int:
    """0 when part a (if asked) wrote its table and every part b row (if asked) is ok or was
    skipped for time, with at least one ok; else 1."""
    failed = [n for n in check.notes if n.startswith("error:")]
    if "plateau" in check.parts and check.profile.plateau:
        if check.plateau is None or check.plateau.status != "ok":
            failed.append("part a")
    if "runs" in check.parts:
        ok = [r for r in rows if r["status"] == "ok"]
        for_time = [r for r in rows if r["status"] == "skipped" and "time budget" in r["error"]]
        if not ok or len(ok) + len(for_time) < len(rows):
            failed.append("part b")
    return 1 if failed else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    check = setup(parse_args(argv))
    check.argv, check.commit = argv, commit()
    print(
        f"[gpu_check] {check.profile.name}: parts {', '.join(check.parts)}, out {check.out}, "
        f"work {check.work}, Python {sys.version.split()[0]} ({sys.executable})",
        flush=True,
    )
    try:
        install_step(check)
        check.save()
        if "plateau" in check.parts and check.profile.plateau:
            plateau_step(check)
            check.save()
        if "runs" in check.parts:
            data_step(check)
            train_step(check)
            infer_step(check)
    except Exception as e:  # the report still says how far the check came
        print(f"[gpu_check] error: {e}", flush=True)
        check.notes.append(f"error: {e}")
    finally:
        stop_data(check.data)
        if check.profile.device == "cuda" and "runs" in check.parts:
            check.notes += gpu_notes(check)
        rows = check.save()
        if not check.args.keep_work:
            shutil.rmtree(check.work, ignore_errors=True)
    print(markdown_report(make_report(check, rows)), flush=True)
    print(
        f"[gpu_check] total {check.clock.elapsed():.1f} s; report: {check.out}/report.md, "
        "report.json, logs.tar.gz" + (", plateau_heads.*" if check.plateau else ""),
        flush=True,
    )
    return exit_status(check, rows)


if __name__ == "__main__":
    sys.exit(main())
