#!/usr/bin/env python
"""The GPU check: kpext's heads trained and timed at full size on one CUDA GPU.

Run it through ``tools/gpu_check.sh`` (which picks the Python); see docs/gpu.md.

    bash tools/gpu_check.sh                 # on a GPU machine: R50-FPN, 800 px, fp32 and AMP
    bash tools/gpu_check.sh --cpu-smoke     # here: the same path at toy sizes on the CPU

Steps, each printed with its elapsed time:

1. install: the wheelhouse of ``make gpu-wheels`` (``.gpu-wheels/``) is installed offline
   with ``--no-deps`` into a temporary folder put on ``PYTHONPATH``, so the machine's own
   torch, torchvision and numpy are never touched. Wheels that do not fit the running
   Python (the cp312 ones on another Python) are left out and said so; without a
   wheelhouse the current environment is used. The working tree comes first on
   ``PYTHONPATH``: the kpext that runs is the tree's (fixes made after ``make gpu-wheels``
   count); the kpext wheel only proves that it installs.
2. data: the synthetic person set (``datasets/make_synthetic.py``), train and val at once.
3. train: ``projects/PoseEstimation/train_net.py`` (Detectron2's ``launch`` through
   ``kpext.engine.launch``) for the stock head and each kpext head, fp32 then AMP, a short
   fixed schedule from scratch (the machine has no network, so no ImageNet weights: BN
   backbone, low learning rate), each followed by its evaluation (box and keypoint AP,
   meaningless after so few iterations: the numbers show that evaluation ran). s/iter is
   Detectron2's "Overall training speed" (iterations after the third).
4. infer: one process loads every trained model and times inference, models alternated
   batch by batch, at batch 1 and batch 8 (images/s, AMP rows under fp16 autocast), with a
   score threshold of 0 so that every model decodes the same number of detections.
5. report: ``report.json`` and ``report.md`` under ``--out`` (``$OUT`` when set, else
   ``output/gpu/``; ``output/gpu-smoke/`` with ``--cpu-smoke``), with the per-run logs in
   ``runs/``. Checkpoints stay in a temporary folder.

A time budget (``--budget-s``, 450 s on a GPU: the check must finish within 8 minutes)
skips the training runs that would not fit; they are listed as skipped in the report.
The exit status is 0 only when every run that was not skipped by design (AMP needs CUDA)
trained, evaluated and was timed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

# The steps' modules lie beside this script (its folder is on sys.path when it runs).
from gpu_check_install import install_wheelhouse
from gpu_check_report import build_rows, fmt, markdown_report, write_report
from gpu_check_runs import (
    HEADS,
    REPO,
    Clock,
    Profile,
    Run,
    generate_data,
    gpu_profile,
    last_error_line,
    plan_runs,
    run_logged,
    smoke_profile,
    train,
)

INFER_SCRIPT = os.path.join("tools", "gpu_check_infer.py")


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
        "--heads",
        default=",".join(h[0] for h in HEADS),
        help="comma-separated: " + ", ".join(h[0] for h in HEADS),
    )
    p.add_argument("--iters", type=int, default=None, help="training iterations per run")
    p.add_argument(
        "--budget-s", type=float, default=None, help="skip training runs that would end past this"
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
    heads: List[str]
    out: str
    work: str
    clock: Clock = field(default_factory=Clock)
    env: Dict[str, str] = field(default_factory=dict)
    prefix: str = ""
    install: Dict[str, object] = field(default_factory=dict)
    runs: List[Run] = field(default_factory=list)
    environment: Dict[str, object] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)

    @property
    def log_dir(self) -> str:
        return os.path.join(self.out, "runs")


def setup(args: argparse.Namespace) -> Check:
    """The profile (with ``--iters`` and ``--budget-s``), the heads, a fresh ``runs/`` log
    folder under the report folder and a temporary work folder."""
    clock = Clock()
    profile = smoke_profile() if args.cpu_smoke else gpu_profile()
    if args.iters:
        profile.iters = args.iters
    if args.budget_s:
        profile.budget_s = args.budget_s
    heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    unknown = sorted(set(heads) - {h[0] for h in HEADS})
    if unknown:
        raise SystemExit(f"unknown head(s): {', '.join(unknown)}")
    out = os.path.abspath(args.out or default_out(args.cpu_smoke))
    check = Check(args, profile, heads, out, tempfile.mkdtemp(prefix="kpext-gpu-check-"), clock)
    shutil.rmtree(check.log_dir, ignore_errors=True)
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


def data_step(check: Check) -> None:
    """2. The synthetic train and val splits at the profile's size."""
    profile = check.profile
    began = time.perf_counter()
    generate_data(profile, check.env["KPEXT_DATASETS"], check.env, check.log_dir)
    check.clock.step(
        "data",
        began,
        f"({profile.train_images}+{profile.val_images} images, "
        f"{profile.width}x{profile.height})",
    )


def train_step(check: Check) -> None:
    """3. Every planned run trained and evaluated, within the time budget: a run whose
    estimate (the longest run so far) does not fit what is left is skipped."""
    profile, clock = check.profile, check.clock
    check.runs = runs = plan_runs(profile, check.work, check.heads)
    longest = 0.0
    for run in runs:
        if run.precision == "amp" and profile.device != "cuda":
            run.status, run.error = "skipped", "AMP needs CUDA"
            continue
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
            }  # fmt: skip
            for r in check.runs
            if r.status == "trained"
        ],
    }


def infer_step(check: Check) -> List[Dict[str, object]]:
    """4. Inference timing, every trained model in one process (``gpu_check_infer.py``);
    returns the report's rows."""
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
        timeout=max(check.profile.budget_s - check.clock.elapsed() + 60, 120),
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
    return build_rows(check.runs, result.get("timings", {}))


def gpu_notes(check: Check) -> List[str]:
    """What a GPU report says about how it was measured."""
    notes = []
    if all(r.processes == 1 for r in check.runs):
        notes.append("one process: Detectron2's launch runs training in-process at world "
                     "size 1, so DDP and NCCL are not exercised (two ranks on one GPU are "
                     "not possible with NCCL)")  # fmt: skip
    notes.append("AMP rows: trained with Detectron2's AMPTrainer, evaluated in fp32 (its "
                 "evaluation has no autocast), timed under fp16 autocast")  # fmt: skip
    notes.append(f"DATALOADER.NUM_WORKERS {check.profile.num_workers}; training batches in "
                 "pinned memory (KpextTrainer sets pin_memory on Detectron2's loader), copied "
                 "to the GPU by the model (a blocking copy)")  # fmt: skip
    return notes


def make_report(check: Check, rows: List[Dict[str, object]]) -> Dict[str, object]:
    profile = check.profile
    return {
        "profile": profile.name,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": "bash tools/gpu_check.sh" + (" --cpu-smoke" if check.args.cpu_smoke else ""),
        "environment": check.environment,
        "install": check.install,
        "settings": {k: v for k, v in asdict(profile).items() if k != "overrides"},
        "rows": rows,
        "steps": check.clock.steps,
        "total_s": round(check.clock.elapsed(), 1),
        "notes": check.notes,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    check = setup(parse_args(argv))
    print(
        f"[gpu_check] {check.profile.name}: out {check.out}, work {check.work}, "
        f"Python {sys.version.split()[0]} ({sys.executable})",
        flush=True,
    )
    try:
        install_step(check)
        data_step(check)
        train_step(check)
        rows = infer_step(check)
    except Exception as e:  # the report still says how far the check came
        print(f"[gpu_check] error: {e}", flush=True)
        check.notes.append(f"error: {e}")
        rows = build_rows(check.runs, {})
    finally:
        if not check.args.keep_work:
            shutil.rmtree(check.work, ignore_errors=True)
    if check.profile.device == "cuda":
        check.notes += gpu_notes(check)
    report = make_report(check, rows)
    write_report(check.out, report)
    print(markdown_report(report), flush=True)
    print(
        f"[gpu_check] total {check.clock.elapsed():.1f} s; report: {check.out}/report.md, "
        "report.json",
        flush=True,
    )
    expected = [
        r for r in rows if not (r["status"] == "skipped" and r["error"] == "AMP needs CUDA")
    ]
    return 0 if expected and all(r["status"] == "ok" for r in expected) else 1


if __name__ == "__main__":
    sys.exit(main())
