"""projects/FaceLandmarks/train_net.py --num-gpus 2 without CUDA: two CPU processes over GLOO
(kpext.engine.launch) train, evaluate and draw."""

import json
import os
import subprocess
import sys

import pytest
from engine_helpers import FACE_TINY_OVERRIDES as TINY_OVERRIDES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJECT = os.path.join(REPO, "projects", "FaceLandmarks")


@pytest.fixture(scope="module")
def face_root(tmp_path_factory):
    """8 train and 8 val synthetic faces, made by the documented command."""
    root = tmp_path_factory.mktemp("faces")
    made = subprocess.run(
        [sys.executable, os.path.join(REPO, "datasets", "make_faces.py"), "--out", str(root),
         "--split", "train", "val", "--num-images", "8", "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-3000:]
    return root


def test_two_cpu_processes_train_evaluate_and_draw(face_root, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, os.path.join(PROJECT, "train_net.py"), "--num-gpus", "2",
         "--config-file", os.path.join(PROJECT, "configs", "faces15_hourglass.yaml"),
         "--faces-root", str(face_root), *TINY_OVERRIDES,
         "SOLVER.MAX_ITER", "2", "OUTPUT_DIR", str(out), "TEST.KPEXT.NUM_VIS", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "World size: 2" in log
    summary = json.loads((out / "face_metrics.json").read_text())
    assert summary["datasets"]["kpext_faces15_val"]["mean_px_error"] is not None
    assert len(list((out / "predictions").glob("*.jpg"))) == 1  # drawn once, by the main process
