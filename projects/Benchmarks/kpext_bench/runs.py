"""Runs of ``train_net.py`` that a benchmark starts, reuses and reads back.

A run lives in its own folder: ``bench_command.json`` records the command that wrote it and
``bench_train_net.log`` its output; a run whose folder holds a ``summary.json`` written by the
same command is reused instead of trained again.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from typing import List, Optional, Sequence

from kpext import add_kpext_config

from detectron2.config import CfgNode, get_cfg

from .reports import REPO

TRAIN_NET = os.path.join(REPO, "projects", "PoseEstimation", "train_net.py")
STAMP = "bench_command.json"


def train_net_command(config: str, folder: str, *opts: str, flags: Sequence[str] = ()) -> List[str]:
    """``python train_net.py [flags] --config-file config OUTPUT_DIR folder opts...``."""
    return [sys.executable, TRAIN_NET, *flags, "--config-file", config, "OUTPUT_DIR", folder, *opts]


def recorded_command(folder: str) -> Optional[List[str]]:
    """The command that last completed in ``folder`` (None: none did)."""
    path = os.path.join(folder, STAMP)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["command"]


def same_command(a: Optional[Sequence[str]], b: Sequence[str]) -> bool:
    """Equal commands up to the Python interpreter that ran them."""
    return a is not None and list(a[1:]) == list(b[1:])


def is_done(folder: str, command: Sequence[str], done_file: str = "summary.json") -> bool:
    """``folder`` holds ``done_file`` written by ``command``."""
    return os.path.exists(os.path.join(folder, done_file)) and same_command(
        recorded_command(folder), command
    )


def run_train_net(folder: str, command: List[str], label: str, done_file: str = "summary.json"):
    """Run ``command`` (whose OUTPUT_DIR is ``folder``) unless ``folder`` already holds
    ``done_file`` written by the same command; the run's output goes to its log. Raises
    SystemExit with the log's tail when it fails. Returns True when it ran, False when reused."""
    if is_done(folder, command, done_file):
        print(f"  {label}: reusing {folder}", flush=True)
        return False
    os.makedirs(folder, exist_ok=True)
    start = time.perf_counter()
    print(f"  {label}: {shlex.join(command[1:])}", flush=True)
    log_path = os.path.join(folder, "bench_train_net.log")
    with open(log_path, "w") as log:
        rc = subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        with open(log_path) as log:
            tail = log.read()[-3000:]
        raise SystemExit(f"{label}: train_net.py failed (rc {rc}), {log_path}:\n{tail}")
    print(f"  {label}: {time.perf_counter() - start:.0f} s", flush=True)
    with open(os.path.join(folder, STAMP), "w") as f:
        json.dump({"command": command}, f)
    return True


def read_summary(folder: str) -> dict:
    """A run's ``summary.json`` (kpext.evaluation.summary)."""
    with open(os.path.join(folder, "summary.json")) as f:
        return json.load(f)


def run_results(folder: str, dataset: str) -> List[dict]:
    """The COCO keypoint results the run's evaluator wrote for ``dataset``."""
    path = os.path.join(folder, "inference", dataset, "coco_instances_results.json")
    with open(path) as f:
        return json.load(f)


def saved_cfg(folder: str) -> CfgNode:
    """The config a run trained with (``config.yaml``, written by Detectron2's setup)."""
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(os.path.join(folder, "config.yaml"))
    return cfg


def seconds_per_iteration(folder: str) -> float:
    """Median training seconds per iteration of a run (Detectron2's metrics.json ``time``);
    NaN for an evaluation-only run."""
    path = os.path.join(folder, "metrics.json")
    if not os.path.exists(path):
        return float("nan")
    with open(path) as f:
        times = sorted(json.loads(line)["time"] for line in f if '"time"' in line)
    return times[len(times) // 2] if times else float("nan")


def make_synthetic_data() -> None:
    """Generate the synthetic set if it is missing (every run would otherwise race to)."""
    subprocess.run(
        [sys.executable, os.path.join(REPO, "datasets", "make_synthetic.py"), "--out",
         os.path.join("datasets", "synthetic")],
        cwd=REPO,
        check=True,
    )  # fmt: skip
