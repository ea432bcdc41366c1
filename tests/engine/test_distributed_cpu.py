"""Two CPU processes train together over GLOO through kpext's launch."""

import json
import os
import subprocess
import sys
import time

import torch
from engine_helpers import BASE_CONFIG, REPO, TINY_OVERRIDES

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dist_train_script.py")


def test_two_processes_stay_in_sync_and_evaluate_each_image_once(tiny_synthetic_root, tmp_path):
    out = tmp_path / "dist"
    env = dict(os.environ, KPEXT_DATASETS=str(tiny_synthetic_root), OMP_NUM_THREADS="1")
    start = time.time()
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--num-gpus", "2", "--config-file", BASE_CONFIG, *TINY_OVERRIDES,
         "OUTPUT_DIR", str(out), "SOLVER.MAX_ITER", "4", "SOLVER.IMS_PER_BATCH", "4"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    print(f"2-process CPU run: {time.time() - start:.1f} s")

    rank0 = torch.load(out / "params_rank0.pth")
    rank1 = torch.load(out / "params_rank1.pth")
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name

    # The evaluator gathered the predictions of every val image exactly once.
    gathered = torch.load(
        out / "inference" / "kpext_synth_val" / "instances_predictions.pth", weights_only=False
    )
    image_ids = sorted(p["image_id"] for p in gathered)
    val = json.loads(
        (
            tiny_synthetic_root / "synthetic" / "annotations" / "person_keypoints_val.json"
        ).read_text()
    )
    assert image_ids == sorted(image["id"] for image in val["images"])
