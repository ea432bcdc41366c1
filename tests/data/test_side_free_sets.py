"""Keypoint sets whose names carry no side (a hand's wrist, thumb1..4, ...) train with
horizontal flips and the identity flip map after one warning; sets whose names may be sided
but cannot be paired (a horse's near/off side, numbered points) are still refused."""

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from engine_helpers import BASE_CONFIG, TINY_OVERRIDES, train_on_one_batch

from kpext import add_kpext_config
from kpext.data import register_keypoint_coco
from kpext.data.keypoint_names import is_side_free
from kpext.engine import check_horizontal_flip

from detectron2.config import get_cfg
from detectron2.data.detection_utils import create_keypoint_hflip_indices
from detectron2.modeling import build_model

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
HAND_NAMES = ["wrist"] + [f"{finger}{joint}" for finger in FINGERS for joint in range(1, 5)]
SIZE = 128


def hand_keypoints(rng: np.random.Generator) -> np.ndarray:
    """21 x 2 points of a hand: the wrist, then four joints along each of five fingers fanned
    out above it, at a random place, size and tilt."""
    scale = rng.uniform(30, 45)
    wrist = np.array([rng.uniform(scale, SIZE - scale), rng.uniform(0.9 * scale, SIZE - 8)])
    tilt = rng.uniform(-0.4, 0.4)
    points = [wrist]
    for f, angle in enumerate(np.linspace(-1.0, 0.6, 5) + tilt):
        direction = np.array([np.sin(angle), -np.cos(angle)])
        length = scale * (0.55 if f == 0 else 0.8)
        base = wrist + direction * scale * 0.25
        for joint in range(4):
            points.append(base + direction * length * joint / 3)
    return np.clip(np.array(points), 1, SIZE - 2)


def write_hand_set(root: Path, num_images: int = 6) -> Path:
    """A COCO-format 21-point hand set: one drawn hand per image (palm and finger strokes)."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    images, annotations = [], []
    for i in range(num_images):
        image = np.full((SIZE, SIZE, 3), int(rng.integers(40, 90)), np.uint8)
        points = hand_keypoints(rng)
        cv2.circle(image, tuple(int(v) for v in points[0]), 9, (190, 160, 140), -1)
        for f in range(5):
            chain = [points[0]] + list(points[1 + 4 * f : 5 + 4 * f])
            for a, b in zip(chain, chain[1:]):
                cv2.line(
                    image, tuple(int(v) for v in a), tuple(int(v) for v in b), (200, 170, 150), 4
                )
        cv2.imwrite(str(root / "images" / f"{i}.png"), image)
        x0, y0 = points.min(0) - 4
        x1, y1 = points.max(0) + 4
        keypoints = np.concatenate([points + 0.5, np.full((21, 1), 2.0)], axis=1)
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": SIZE, "height": SIZE})
        annotations.append(
            {
                "id": 100 + i,
                "image_id": i + 1,
                "category_id": 1,
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "area": float((x1 - x0) * (y1 - y0)),
                "iscrowd": 0,
                "num_keypoints": 21,
                "keypoints": keypoints.ravel().round(2).tolist(),
            }
        )
    skeleton = [[1, 2 + 4 * f] for f in range(5)]
    skeleton += [[2 + 4 * f + j, 3 + 4 * f + j] for f in range(5) for j in range(3)]
    categories = [{"id": 1, "name": "hand", "keypoints": HAND_NAMES, "skeleton": skeleton}]
    json_file = root / "hands.json"
    coco = {"images": images, "annotations": annotations, "categories": categories}
    json_file.write_text(json.dumps(coco))
    return json_file


def side_warnings(caplog):
    """The WARNING that a set's names carry no side (the identity flip map)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "carries a side" in r.getMessage()
    ]


def hand_cfg(dataset_name: str):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    cfg.merge_from_list(TINY_OVERRIDES)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = 21
    cfg.DATASETS.TRAIN = (dataset_name,)
    cfg.DATASETS.TEST = ()
    cfg.INPUT.RANDOM_FLIP = "horizontal"
    cfg.SOLVER.BASE_LR = 0.01
    cfg.SEED = 0
    return cfg


def test_hand_names_are_side_free_and_sided_or_numbered_names_are_not():
    assert is_side_free(HAND_NAMES)
    assert is_side_free(["Wrist", "Thumb_MCP", "IndexTip", "head", "tail"])
    assert not is_side_free(["nose", "near_ear", "off_ear"])  # sided, unpairable
    assert not is_side_free(["wrist", "l_thumb"])  # a side word
    assert not is_side_free(["p1", "p2", "p3"])  # numbers: nothing says what they are
    assert not is_side_free(["kp_0", "landmark_1"])


def test_a_21_point_hand_set_trains_with_flips_and_the_identity_map(
    tmp_path, dataset_name, kpext_log
):
    json_file = write_hand_set(tmp_path)
    register_keypoint_coco(dataset_name, str(json_file), str(tmp_path / "images"))
    warnings = side_warnings(kpext_log)
    assert len(warnings) == 1 and "flip_map=" in warnings[0], kpext_log.text
    cfg = hand_cfg(dataset_name)
    check_horizontal_flip(cfg)  # no error
    assert list(create_keypoint_hflip_indices(cfg.DATASETS.TRAIN)) == list(range(21))

    history, model, batch = train_on_one_batch(cfg, 12)
    assert batch[0]["instances"].gt_keypoints.tensor.shape[1:] == (21, 3)
    losses = [step["loss_keypoint"] for step in history]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
    assert side_warnings(kpext_log) == warnings  # said once: not again in training


def test_a_near_off_set_is_still_refused(tmp_path, dataset_name):
    json_file = write_hand_set(tmp_path)
    coco = json.loads(json_file.read_text())
    names = ["near_ear" if n == "thumb1" else "off_ear" if n == "pinky1" else n for n in HAND_NAMES]
    coco["categories"][0]["keypoints"] = names
    json_file.write_text(json.dumps(coco))
    register_keypoint_coco(dataset_name, str(json_file), str(tmp_path / "images"))
    with pytest.raises(ValueError, match="no left/right pairs, but INPUT.RANDOM_FLIP"):
        check_horizontal_flip(hand_cfg(dataset_name))


def test_flip_test_and_person_level_decoding_take_the_identity_map(tmp_path, dataset_name):
    """TEST.KPEXT.FLIP averages with the mirrored pass without permuting any channel, and
    TEST.KPEXT.LEFT_RIGHT person has no pair to swap: both build and predict 21 points."""
    json_file = write_hand_set(tmp_path, num_images=2)
    register_keypoint_coco(dataset_name, str(json_file), str(tmp_path / "images"))
    cfg = hand_cfg(dataset_name)
    cfg.TEST.KPEXT.FLIP = True
    cfg.TEST.KPEXT.LEFT_RIGHT = "person"
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0  # an untrained model must still detect
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg).eval()
    head = model.roi_heads.keypoint_head
    assert head.decoder.flip_indices == list(range(21))
    assert head.decoder.left_right_pairs.numel() == 0
    image = cv2.imread(str(tmp_path / "images" / "0.png"))
    tensor = torch.as_tensor(image.transpose(2, 0, 1).astype("float32"))
    with torch.no_grad():
        [output] = model([{"image": tensor, "height": SIZE, "width": SIZE}])
    keypoints = output["instances"].pred_keypoints
    assert len(keypoints) > 0 and keypoints.shape[1:] == (21, 3)
    assert torch.isfinite(keypoints).all()
