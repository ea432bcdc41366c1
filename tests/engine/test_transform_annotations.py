"""CheckedDatasetMapper._transform_annotations is a copy of Detectron2's DatasetMapper's with
one line added (the facing target, set before empty instances are dropped so it stays aligned
with them; Detectron2 offers no hook between its annotations_to_instances and
filter_empty_instances). Pinned here to the Detectron2 it runs on: on annotations without a
yaw the copy's instances equal Detectron2's own, field for field, for every option the method
reads and transforms that flip, resize and crop people out; with a yaw they gain gt_facing and
nothing else. ``make test`` runs it on Detectron2 v0.6, ``make test-upstream`` on upstream."""

import copy

import numpy as np
import pytest
import torch

from kpext.engine.data import CheckedDatasetMapper

from detectron2.data import DatasetMapper
from detectron2.data import transforms as T
from detectron2.structures import BitMasks, Boxes, BoxMode, Keypoints, PolygonMasks

IMAGE_SHAPE = (80, 120)  # H, W
FLIP_INDICES = [0, 2, 1]  # nose, left eye, right eye


def person(x, y, w, h, *, crowd=0, yaw=None, category=0):
    """One annotation: an XYWH box, three keypoints inside it, a polygon (its box)."""
    keypoints = [x + w / 2, y + 2, 2, x + w / 4, y + 4, 2, x + 3 * w / 4, y + 4, 1]
    ann = {
        "bbox": [x, y, w, h],
        "bbox_mode": BoxMode.XYWH_ABS,
        "category_id": category,
        "iscrowd": crowd,
        "keypoints": keypoints,
        "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
    }
    if yaw is not None:
        ann["yaw"] = yaw
    return ann


def record(yaws=(None,) * 5):
    """Five people: two ordinary, a crowd, one outside the image, one across its right edge."""
    boxes = [
        (5, 5, 30, 60),
        (50, 10, 25, 50),
        (20, 20, 40, 40),
        (300, 10, 20, 20),
        (100, 5, 40, 70),
    ]
    return {
        "height": IMAGE_SHAPE[0],
        "width": IMAGE_SHAPE[1],
        "annotations": [
            person(*box, crowd=int(i == 2), yaw=yaw, category=i % 2)
            for i, (box, yaw) in enumerate(zip(boxes, yaws))
        ],
    }


TRANSFORMS = {
    "none": [],
    "flip": [T.HFlipTransform(IMAGE_SHAPE[1])],
    "resize_flip": [T.ResizeTransform(80, 120, 100, 150), T.HFlipTransform(150)],
    # Cropping x 50-150 of the resized image drops the first person (x 6-44) and cuts others.
    "resize_crop": [T.ResizeTransform(80, 120, 100, 150), T.CropTransform(50, 0, 100, 100)],
    "crop_flip": [T.CropTransform(40, 0, 80, 80), T.HFlipTransform(80)],
}
OPTIONS = {  # what _transform_annotations reads of the mapper
    "keypoints": dict(use_instance_mask=False, use_keypoint=True, recompute_boxes=False),
    "masks_recompute": dict(use_instance_mask=True, use_keypoint=True, recompute_boxes=True),
    "bitmasks": dict(use_instance_mask=True, use_keypoint=False, instance_mask_format="bitmask"),
    "boxes_only": dict(use_instance_mask=False, use_keypoint=False),
}
# Detectron2 crops polygons with shapely, which kpext does not install: crops without masks.
CASES = [
    (options, transforms)
    for options in OPTIONS
    for transforms in TRANSFORMS
    if not (OPTIONS[options]["use_instance_mask"] and "crop" in transforms)
]


def mappers(options):
    """Detectron2's DatasetMapper with ``options``, and a CheckedDatasetMapper in its state."""
    keypoint_on = options.get("use_keypoint", False)
    theirs = DatasetMapper(
        is_train=True,
        augmentations=[],
        image_format="BGR",
        keypoint_hflip_indices=np.array(FLIP_INDICES) if keypoint_on else None,
        **options,
    )
    ours = CheckedDatasetMapper.__new__(CheckedDatasetMapper)
    ours.__dict__.update(theirs.__dict__)
    return ours, theirs


def transformed(mapper, source, shape, transforms):
    dataset_dict = copy.deepcopy(source)
    mapper._transform_annotations(dataset_dict, T.TransformList(transforms), shape)
    return dataset_dict


def comparable(value):
    """A field of Instances as something ``==`` compares exactly."""
    if isinstance(value, (Boxes, Keypoints, BitMasks)):
        value = value.tensor
    if isinstance(value, PolygonMasks):
        return [[p.tolist() for p in polygons] for polygons in value.polygons]
    if isinstance(value, torch.Tensor):
        return (str(value.dtype), value.tolist())
    raise TypeError(f"no comparison for {type(value).__name__}")


def fields(dataset_dict):
    instances = dataset_dict["instances"]
    return {name: comparable(v) for name, v in instances.get_fields().items()}


def output_shape(transforms):
    shape = IMAGE_SHAPE
    for t in transforms:
        if isinstance(t, T.ResizeTransform):
            shape = (t.new_h, t.new_w)
        if isinstance(t, T.CropTransform):
            shape = (t.h, t.w)
    return shape


@pytest.mark.parametrize("options, transforms", CASES)
def test_without_a_yaw_the_copy_is_detectron2s(options, transforms):
    ours, theirs = mappers(OPTIONS[options])
    steps = TRANSFORMS[transforms]
    shape = output_shape(steps)
    mine, expected = (transformed(m, record(), shape, steps) for m in (ours, theirs))
    assert mine.keys() == expected.keys()
    assert fields(mine) == fields(expected)
    assert len(expected["instances"]) >= 1  # the case keeps someone


@pytest.mark.parametrize("options, transforms", [c for c in CASES if c[0] != "boxes_only"])
def test_with_a_yaw_the_copy_adds_gt_facing_and_nothing_else(options, transforms):
    ours, theirs = mappers(OPTIONS[options])
    steps = TRANSFORMS[transforms]
    shape = output_shape(steps)
    source = record(yaws=(10.0, 90.0, 180.0, None, -100.0))
    mine, expected = (
        transformed(ours, source, shape, steps),
        transformed(theirs, source, shape, steps),
    )
    facing = mine["instances"].gt_facing
    assert len(facing) == len(expected["instances"])
    mine["instances"].remove("gt_facing")
    assert fields(mine) == fields(expected)
