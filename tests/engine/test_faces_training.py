"""Face keypoints end to end: the single-hourglass head learns on a tiny synthetic face set
(15 and 68 points), the pixel-error evaluator measures what it should, and the
FaceLandmarks train_net trains, evaluates and writes its metrics and pictures."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from engine_helpers import FACE_TINY_OVERRIDES as TINY_OVERRIDES
from engine_helpers import train_on_one_batch
from script_loading import load_script

from kpext import add_kpext_config
from kpext.data.faces import register_face_datasets
from kpext_synth.faces import FaceSynthConfig, generate_face_split

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_train_loader
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJECT = os.path.join(REPO, "projects", "FaceLandmarks")
CONFIGS = os.path.join(PROJECT, "configs")
PREFIX = "kpext_test_faces"


def _load_evaluate_faces():
    return load_script("kpext_evaluate_faces", "projects", "FaceLandmarks", "evaluate_faces.py")


@pytest.fixture(scope="module")
def face_root(tmp_path_factory):
    """8 train and 4 val synthetic faces, registered as kpext_test_faces{15,68}_{train,val}."""
    root = tmp_path_factory.mktemp("faces")
    for split, n, seed in (("train", 8, 0), ("val", 4, 1)):
        generate_face_split(
            str(root), split, FaceSynthConfig(num_images=n, seed=seed), show_progress=False
        )
    names = register_face_datasets(str(root), prefix=PREFIX)
    yield root
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def face_cfg(config_name: str, num_points: int):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(os.path.join(CONFIGS, config_name))
    cfg.merge_from_list(TINY_OVERRIDES)
    cfg.DATASETS.TRAIN = (f"{PREFIX}{num_points}_train",)
    cfg.DATASETS.TEST = (f"{PREFIX}{num_points}_val",)
    return cfg


def keypoint_head_steps(cfg, steps: int):
    """Train backbone + keypoint head on the ground-truth face boxes of one fixed batch.

    With the boxes fixed (instead of sampled proposals that change every step) the
    keypoint loss is a clean signal; Adam, as in tests/modeling/test_heads.py,
    because heatmap-MSE heads move slowly in a handful of SGD steps from scratch.
    Returns the loss dict of each step.
    """
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = next(iter(build_detection_train_loader(cfg)))
    images = model.preprocess_image(batch)
    instances = [b["instances"].to(model.device) for b in batch]
    for inst in instances:
        inst.proposal_boxes = inst.gt_boxes
    history = []
    with EventStorage():
        for _ in range(steps):
            features = model.backbone(images.tensor)
            loss_dict = model.roi_heads._forward_keypoint(features, instances)
            optimizer.zero_grad()
            sum(loss_dict.values()).backward()
            optimizer.step()
            history.append({k: v.item() for k, v in loss_dict.items()})
    return history


def test_single_hourglass_learns_15_face_keypoints(face_root):
    cfg = face_cfg("faces15_hourglass.yaml", 15)
    assert (
        cfg.MODEL.KPEXT.HOURGLASS.NUM_STACKS == 1
        and cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS == 15
    )
    history = keypoint_head_steps(cfg, 10)
    assert all(set(step) == {"loss_keypoint"} for step in history)  # one stack, one loss
    losses = [step["loss_keypoint"] for step in history]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.85 * losses[0], losses
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses


def test_68_point_hourglass_trains_and_predicts_68_points(face_root):
    cfg = face_cfg("faces68_hourglass.yaml", 68)
    history = keypoint_head_steps(cfg, 4)
    assert np.isfinite([step["loss_keypoint"] for step in history]).all()
    history, model, batch = train_on_one_batch(cfg, 2)
    losses = [step["total"] for step in history]
    assert np.isfinite(losses).all()
    model.eval()
    with torch.no_grad():
        instances = model([{"image": b["image"], "height": 96, "width": 96} for b in batch[:2]])[0][
            "instances"
        ]
    assert instances.pred_keypoints.shape[1:] == (68, 3)


def test_face_keypoint_errors_are_measured_on_labelled_points_of_the_matched_face():
    ev = _load_evaluate_faces()
    names = ["left_eye_center", "right_eye_center", "nose_tip"]
    gt_kps = np.array([[60.0, 40.0, 2], [30.0, 40.0, 2], [45.0, 60.0, 0]])  # nose tip missing
    ground_truth = [
        {
            "image_id": 1,
            "box": np.array([10.0, 10.0, 80.0, 90.0]),
            "keypoints": gt_kps,
            "width": 96,
        },
        {
            "image_id": 2,
            "box": np.array([10.0, 10.0, 80.0, 90.0]),
            "keypoints": gt_kps,
            "width": 192,
        },
        {
            "image_id": 3,
            "box": np.array([10.0, 10.0, 80.0, 90.0]),
            "keypoints": gt_kps,
            "width": 96,
        },
    ]
    off_by = lambda dx: gt_kps + np.array([dx, 0.0, 0.0])  # noqa: E731
    predictions = {
        # the overlapping detection (score 0.6) wins over a higher-scoring one elsewhere
        1: {"boxes": np.array([[0.0, 0.0, 5.0, 5.0], [12.0, 10.0, 80.0, 88.0]]),
            "scores": np.array([0.9, 0.6]), "keypoints": np.stack([off_by(30.0), off_by(3.0)])},
        # no overlap: the top detection is used; errors scale to a 96 px image (4 px at 192 -> 2 px)
        2: {"boxes": np.array([[150.0, 150.0, 190.0, 190.0]]), "scores": np.array([0.8]),
            "keypoints": off_by(4.0)[None]},
        # image 3: no detection at all -> missed
    }  # fmt: skip
    results = ev.face_keypoint_errors(ground_truth, predictions, names)
    assert results["points"] == 4  # 2 labelled points x 2 matched faces
    assert results["mean_px_error"] == pytest.approx((3 + 3 + 2 + 2) / 4)
    assert results["rmse_px"] == pytest.approx(np.sqrt((9 + 9 + 4 + 4) / 4 / 2))
    assert results["faces_missed"] == 1 and results["faces_matched_iou50"] == 1
    assert results["err-left_eye_center"] == pytest.approx(2.5) and np.isnan(
        results["err-nose_tip"]
    )
    # inter-ocular distance 30 px in both images: 3/30 and 4/30 (NME does not depend on the scale)
    assert results["nme_iod_percent"] == pytest.approx(100 * (3 / 30 + 4 / 30) / 2)


def test_face_train_net_trains_evaluates_and_draws(face_root, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, os.path.join(PROJECT, "train_net.py"),
         "--config-file", os.path.join(CONFIGS, "faces15_hourglass.yaml"),
         "--faces-root", str(face_root), *TINY_OVERRIDES,
         "SOLVER.MAX_ITER", "2", "OUTPUT_DIR", str(out), "TEST.KPEXT.NUM_VIS", "2"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    log = proc.stdout + proc.stderr
    assert (
        "Evaluation results for keypoints" in log and "Face keypoints on kpext_faces15_val" in log
    )
    summary = json.loads((out / "face_metrics.json").read_text())
    row = summary["datasets"]["kpext_faces15_val"]
    assert set(row) >= {"mean_px_error", "keypoint_AP", "rmse_px"} and summary["train_seconds"] > 0
    assert (out / "inference" / "kpext_faces15_val" / "face_metrics.json").is_file()
    assert len(list((out / "predictions").glob("*.jpg"))) == 2


def test_missing_face_files_name_the_command(tmp_path):
    proc = subprocess.run(
        [sys.executable, os.path.join(PROJECT, "train_net.py"),
         "--config-file", os.path.join(CONFIGS, "faces15_hourglass.yaml"),
         "--faces-root", str(tmp_path / "nowhere"),
         "OUTPUT_DIR", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert (
        "faces15_train.json does not exist" in proc.stderr
        and "datasets/make_faces.py" in proc.stderr
    )
