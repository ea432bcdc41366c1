"""Real training on a tiny synthetic set: the loss falls, train_net trains, evaluates and
reloads."""

import json
import os
import subprocess
import sys

import pytest
import torch
from engine_helpers import BASE_CONFIG, REPO, TINY_OVERRIDES, TRAIN_NET, train_on_one_batch

from kpext import add_kpext_config
from kpext.data import register_keypoint_coco
from kpext.evaluation.pose_errors import ERROR_CLASSES

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog


def tiny_cfg(root, head: str):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    cfg.merge_from_list(TINY_OVERRIDES)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NAME = head
    name = f"kpext_test_train_{head}"
    if name not in DatasetCatalog.list():
        register_keypoint_coco(
            name,
            str(root / "synthetic" / "annotations" / "person_keypoints_train.json"),
            str(root / "synthetic" / "train" / "images"),
        )
    cfg.DATASETS.TRAIN = (name,)
    return cfg


@pytest.mark.parametrize("head", ["KpextKRCNNHead", "KRCNNConvDeconvUpsampleHead"])
def test_training_steps_lower_the_loss(tiny_synthetic_root, head):
    cfg = tiny_cfg(tiny_synthetic_root, head)
    cfg.SOLVER.BASE_LR = 0.005
    history, _, _ = train_on_one_batch(cfg, 12)
    losses = [(step["total"], step["loss_keypoint"]) for step in history]
    assert all(torch.isfinite(torch.tensor(losses)).flatten())
    first, last = losses[0], losses[-1]
    assert last[0] < 0.8 * first[0], losses
    assert last[1] < first[1], losses


def run_train_net(args, root, timeout=600):
    env = dict(os.environ, KPEXT_DATASETS=str(root), PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, TRAIN_NET, "--config-file", BASE_CONFIG, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


def test_train_net_trains_evaluates_and_reloads(tiny_synthetic_root, tmp_path):
    out = tmp_path / "run"
    common = TINY_OVERRIDES + ["OUTPUT_DIR", str(out), "TEST.KPEXT.NUM_VIS", "2"]
    log = run_train_net(
        common + ["SOLVER.MAX_ITER", "4", "SOLVER.CHECKPOINT_PERIOD", "2"], tiny_synthetic_root
    )
    assert (out / "model_final.pth").is_file()
    assert "Evaluation results for keypoints" in log
    assert len(list((out / "predictions").glob("*.jpg"))) == 2

    # --eval-only on the saved checkpoint gives the same keypoint AP as the end of training.
    log_eval = run_train_net(
        ["--eval-only"] + common + ["MODEL.WEIGHTS", str(out / "model_final.pth")],
        tiny_synthetic_root,
    )
    assert "Evaluation results for keypoints" in log_eval
    trained_ap = _copypaste_keypoint_row(log)
    evaluated_ap = _copypaste_keypoint_row(log_eval)
    assert trained_ap == evaluated_ap
    predictions = out / "inference" / "kpext_synth_val" / "coco_instances_results.json"
    for pred in json.loads(predictions.read_text()):
        assert len(pred["keypoints"]) == 17 * 3


def _copypaste_keypoint_row(log: str) -> str:
    """The numbers Detectron2 prints after 'copypaste: AP,AP50,...' for the keypoints task."""
    lines = [line.split("copypaste: ")[1] for line in log.splitlines() if "copypaste: " in line]
    keypoint_header = lines.index("Task: keypoints")
    return lines[keypoint_header + 2]


def test_keypoint_count_mismatch_is_a_clear_error(tiny_synthetic_root):
    from kpext.engine import check_keypoint_count

    cfg = tiny_cfg(tiny_synthetic_root, "KpextKRCNNHead")
    check_keypoint_count(cfg)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = 15
    with pytest.raises(
        ValueError, match=r"has 17 keypoints but the config sets .*NUM_KEYPOINTS = 15"
    ):
        check_keypoint_count(cfg)


def test_train_net_summarises_every_test_set(tiny_synthetic_root, tmp_path):
    """The demo's evaluation: two test sets (training styles, held-out styles) each get an
    AP line, pictures, tall-people recall and the keypoint error breakdown in summary.json."""
    out = tmp_path / "two_sets"
    args = TINY_OVERRIDES + [
        "OUTPUT_DIR", str(out), "TEST.KPEXT.NUM_VIS", "1", "SOLVER.MAX_ITER", "2",
        "DATASETS.TEST", '("kpext_synth_val", "kpext_synth_val_heldout")',
    ]  # fmt: skip
    log = run_train_net(args, tiny_synthetic_root)
    with open(out / "summary.json") as f:
        rows = json.load(f)["datasets"]
    assert [r["name"] for r in rows] == ["kpext_synth_val", "kpext_synth_val_heldout"]
    for row in rows:
        assert 0 <= row["keypoint_ap"] <= 100 and 0 <= row["box_ap"] <= 100
        assert row["tall_people"] is not None
        errors = row["keypoint_errors"]
        assert errors["keypoints"] == sum(errors["counts"][c] for c in ERROR_CLASSES)
        assert set(errors["oracle_ap"]) == {"jitter", "inversion", "swap", "miss"}
    assert "kpext_synth_val_heldout: keypoint AP" in log
    assert "keypoint errors of" in log
    assert len(list((out / "predictions").glob("*.jpg"))) == 1
    assert len(list((out / "predictions" / "kpext_synth_val_heldout").glob("*.jpg"))) == 1
