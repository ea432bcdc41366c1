"""The facing target: classes from a yaw, the yaw read from COCO annotations, and the mapper's
gt_facing aligned with the instances Detectron2 keeps and mirrored with the image."""

import json

import numpy as np
import pytest
import torch

from kpext import add_kpext_config
from kpext.data import load_keypoint_coco_json
from kpext.data.facing import FACING_CLASSES, facing_class, mirrored_yaw, read_yaw
from kpext.engine.data import CheckedDatasetMapper

from detectron2.config import get_cfg
from detectron2.data import transforms as T
from detectron2.structures import BoxMode


@pytest.mark.parametrize(
    "yaw,name",
    [(0, "front"), (44, "front"), (-45, "front"), (46, "facing_right"), (90, "facing_right"),
     (-100, "facing_left"), (135, "back"), (180, "back"), (-170, "back"), (200, "back"),
     (300, "facing_left"), (None, None)],
)  # fmt: skip
def test_facing_class_of_a_yaw(yaw, name):
    expected = -1 if name is None else FACING_CLASSES.index(name)
    assert facing_class(yaw) == expected


def test_a_mirror_keeps_front_and_back_and_exchanges_profiles():
    for yaw in (0, 20, 170, -160):
        assert facing_class(mirrored_yaw(yaw)) == facing_class(yaw)
    assert facing_class(mirrored_yaw(80)) == FACING_CLASSES.index("facing_left")


def test_read_yaw_takes_finite_numbers_only():
    assert read_yaw({"yaw": 12}) == 12.0
    assert read_yaw({"yaw": -3.5}) == -3.5
    for bad in ({}, {"yaw": None}, {"yaw": "12"}, {"yaw": float("nan")}, {"yaw": True}):
        assert read_yaw(bad) is None


def test_coco_loader_keeps_a_numeric_yaw(tmp_path):
    points = [20, 20, 2, 30, 30, 2]
    anns = [
        {"id": i, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600,
         "iscrowd": 0, "keypoints": points, "num_keypoints": 2, **extra}
        for i, extra in enumerate([{"yaw": 170.0}, {"yaw": "left"}, {}], 1)
    ]  # fmt: skip
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "keypoints": ["a", "b"], "skeleton": []}],
    }
    path = tmp_path / "k.json"
    path.write_text(json.dumps(data))
    (record,) = load_keypoint_coco_json(
        str(path), str(tmp_path), "kpext_test_facing_yaw", check_images=False
    )
    assert [a.get("yaw") for a in record["annotations"]] == [170.0, None, None]


def mapper():
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.MODEL.KEYPOINT_ON = False
    return CheckedDatasetMapper(cfg, True)


def annotation(x, yaw):
    ann = {"bbox": [x, 10, 20, 30], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 0}
    if yaw is not None:
        ann["yaw"] = yaw
    return ann


@pytest.mark.parametrize("flip", [False, True])
def test_mapper_facing_follows_the_kept_instances_and_the_flip(flip):
    # The second person is entirely outside the image: Detectron2 drops it (empty box).
    record = {"annotations": [annotation(5, 10.0), annotation(500, 90.0), annotation(40, 100.0),
                              annotation(60, None)]}  # fmt: skip
    transforms = T.TransformList([T.HFlipTransform(100)] if flip else [])
    mapper()._transform_annotations(record, transforms, (64, 100))
    instances = record["instances"]
    assert len(instances) == 3
    right, left = FACING_CLASSES.index("facing_right"), FACING_CLASSES.index("facing_left")
    expected = [0, left if flip else right, -1]
    assert instances.gt_facing.tolist() == expected
    x0 = instances.gt_boxes.tensor[:, 0].numpy()
    assert np.allclose(x0, [75, 40, 20] if flip else [5, 40, 60])  # the boxes flipped with them


def test_mapper_without_any_yaw_adds_no_field():
    record = {"annotations": [annotation(5, None), annotation(40, None)]}
    mapper()._transform_annotations(record, T.TransformList([]), (64, 100))
    assert not record["instances"].has("gt_facing")
    assert isinstance(record["instances"].gt_boxes.tensor, torch.Tensor)
