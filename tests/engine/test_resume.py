"""A real training killed with SIGKILL resumes from its last complete checkpoint."""

import os
import re
import signal
import subprocess
import sys
import time

import torch
from engine_helpers import BASE_CONFIG, REPO, TINY_OVERRIDES, TRAIN_NET

MAX_ITER = 30


def train_command(out, *extra):
    return [
        sys.executable, TRAIN_NET, "--config-file", BASE_CONFIG, *extra, *TINY_OVERRIDES,
        "OUTPUT_DIR", str(out), "SOLVER.MAX_ITER", str(MAX_ITER), "SOLVER.CHECKPOINT_PERIOD", "3",
        "SOLVER.STEPS", "(25,)", "DATASETS.TEST", "()",
    ]  # fmt: skip


def wait_for_checkpoint(out, proc, min_iteration: int, timeout: float = 240.0) -> None:
    tag = out / "last_checkpoint"
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "training ended before it could be killed"
        if tag.exists():
            match = re.match(r"model_(\d+)\.pth", tag.read_text())
            if match and int(match.group(1)) >= min_iteration:
                return
        time.sleep(0.05)
    raise TimeoutError("no checkpoint appeared")


def test_sigkill_then_resume_reaches_the_final_iteration(tiny_synthetic_root, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, KPEXT_DATASETS=str(tiny_synthetic_root))
    proc = subprocess.Popen(
        train_command(out), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_checkpoint(out, proc, min_iteration=5)
        time.sleep(0.3)  # land somewhere inside the next iterations, possibly mid-save
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    # Whatever moment the kill hit, every checkpoint present is complete.
    tagged = (out / "last_checkpoint").read_text()
    checkpoints = sorted(out.glob("model_*.pth"))
    assert checkpoints and (out / tagged).exists()
    killed_at = None
    for path in checkpoints:
        iteration = torch.load(path, map_location="cpu", weights_only=False)["iteration"]
        if path.name == tagged:
            killed_at = iteration
    assert not (out / "model_final.pth").exists()

    resumed = subprocess.run(
        train_command(out, "--resume"),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    start = re.search(r"Starting training from iteration (\d+)", resumed.stderr + resumed.stdout)
    assert start and int(start.group(1)) == killed_at + 1
    final = torch.load(out / "model_final.pth", map_location="cpu", weights_only=False)
    assert final["iteration"] == MAX_ITER - 1
