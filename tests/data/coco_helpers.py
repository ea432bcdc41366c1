"""Tiny COCO keypoint files for the data tests: valid ones, written with their images, and
the helpers that read back what a load kept."""

import json
import logging

from PIL import Image

from kpext.data import coco_keypoints as ck
from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_SKELETON

from detectron2.data import DatasetCatalog, MetadataCatalog

JSON_NAME = "person_keypoints_val.json"
IMAGE_SIZES = {1: (64, 48), 2: (40, 30), 3: (32, 32)}  # image id -> (width, height)


def keypoints_for(num_keypoints, width, height, seed=0):
    """A valid flat keypoint list: pixel-index coordinates inside the image, with
    a few unlabeled (0, 0, 0) and occluded (v=1) points, as in COCO."""
    values = []
    for i in range(num_keypoints):
        if (i + seed) % 5 == 4:
            values += [0, 0, 0]
        else:
            values += [(7 * i + 3 * seed) % width, (5 * i + seed) % height, 1 + (i + seed) % 2]
    return values


def person_category(category_id=1, name="person", keypoints=COCO_PERSON_KEYPOINT_NAMES):
    return {
        "id": category_id,
        "name": name,
        "supercategory": "person",
        "keypoints": list(keypoints),
        "skeleton": [list(p) for p in COCO_PERSON_SKELETON] if len(keypoints) == 17 else [],
    }


def annotation(ann_id, image_id, num_keypoints=17, *, seed=0, category_id=1, iscrowd=0):
    width, height = IMAGE_SIZES.get(image_id, (64, 48))
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category_id,
        "iscrowd": iscrowd,
        "bbox": [1, 2, width / 2, height / 2],
        "area": width * height / 4,
        "num_keypoints": 3,  # deliberately inconsistent, as in COCO: must be ignored
        "keypoints": keypoints_for(num_keypoints, width, height, seed),
        "segmentation": [[1, 2, 20, 2, 20, 15, 1, 15]],
    }


def valid_coco(num_keypoints=17, keypoint_names=None):
    """Three images listed out of id order (image 3 has no annotations), three
    annotations including a crowd one."""
    names = keypoint_names or (
        list(COCO_PERSON_KEYPOINT_NAMES) if num_keypoints == 17 else
        [f"kp{i}" for i in range(num_keypoints)]
    )  # fmt: skip
    images = [
        {"id": image_id, "file_name": f"img{image_id}.jpg", "width": w, "height": h}
        for image_id, (w, h) in sorted(IMAGE_SIZES.items(), reverse=True)
    ]
    annotations = [
        annotation(10, 1, len(names), seed=0),
        annotation(11, 1, len(names), seed=1),
        annotation(12, 2, len(names), seed=2, iscrowd=1),
    ]
    return {
        "images": images,
        "annotations": annotations,
        "categories": [person_category(keypoints=names)],
    }


def write_coco(directory, coco, json_name=JSON_NAME, *, images=True):
    """Write ``coco`` as JSON (NaN/Infinity allowed) plus a tiny JPEG per image."""
    image_root = directory / "images"
    image_root.mkdir(parents=True, exist_ok=True)
    if images:
        for image in coco.get("images", []):
            size = (int(image.get("width", 8)), int(image.get("height", 8)))
            Image.new("RGB", size, (90, 120, 150)).save(image_root / image["file_name"])
    json_file = directory / json_name
    json_file.write_text(json.dumps(coco))
    return str(json_file), str(image_root)


def all_annotation_ids(records, coco):
    """Ids of the annotations kept in ``records``, recovered by their keypoints."""
    by_keypoints = {
        tuple(ck._to_pixel_centres(a["keypoints"])): a["id"]
        for a in coco["annotations"]
        if isinstance(a.get("keypoints"), list)
    }
    return sorted(by_keypoints[tuple(a["keypoints"])] for r in records for a in r["annotations"])


def forget_dataset(name):
    """Remove ``name`` from both catalogs (MetadataCatalog.remove raises if absent)."""
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    if name in MetadataCatalog.list():
        MetadataCatalog.remove(name)


def warnings_of(caplog):
    return [r for r in caplog.records if r.levelno == logging.WARNING]
