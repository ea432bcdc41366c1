"""Checking and normalising the records of a COCO keypoint file, one at a time: an image
entry, an annotation's keypoints, box and id, and the fields training and evaluation read
(:func:`normalize_annotation`, :func:`evaluation_annotation`).

Each check returns the record's :data:`~kpext.data.invalid_records.Problem` (or None),
which the loader hands to the ``on_invalid`` policy; the checks are listed in
:mod:`kpext.data.coco_keypoints`, the normalisation rules in :mod:`kpext.data.normalization`.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple

from .invalid_records import Problem, record_problem
from .keypoint_metadata import KeypointDataError, is_number
from .normalization import (
    Normalizations,
    bbox_from_center_scale,
    bbox_from_keypoints,
    count_labelled,
    flatten_keypoints,
    sibling_keypoints_field,
)

__all__ = [
    "OUTSIDE_IMAGE_MARGIN",
    "image_problem",
    "keypoints_problem",
    "bbox_problem",
    "duplicate_id_problem",
    "normalize_annotation",
    "evaluation_annotation",
]

# Fraction of the image width (height) a visible keypoint may lie left/right of
# (above/below) the image before it is considered invalid; see the module docstring.
OUTSIDE_IMAGE_MARGIN: float = 0.10

_VALID_VISIBILITIES = (0, 1, 2)


def image_problem(image: Any) -> Optional[Problem]:
    if not isinstance(image, dict) or "id" not in image:
        return record_problem("invalid image entry", f"image entry {image!r} has no 'id'")
    if not isinstance(image.get("file_name"), str) or not image["file_name"]:
        return record_problem("invalid image entry", "has no 'file_name'")
    width, height = image.get("width"), image.get("height")
    if not (is_number(width) and is_number(height) and width > 0 and height > 0):
        return record_problem(
            "invalid image entry", f"width/height must be positive numbers, got {width}/{height}"
        )
    return None


def keypoints_problem(
    keypoints: Any, names: Sequence[str], width: float, height: float
) -> Optional[Problem]:
    num_keypoints = len(names)
    expected = f"expected {3 * num_keypoints} ({num_keypoints} keypoints x 3)"
    if not isinstance(keypoints, list):
        return record_problem(
            "keypoints not a list", f"keypoints is {type(keypoints).__name__}, {expected}"
        )
    if len(keypoints) != 3 * num_keypoints:
        return record_problem(
            "wrong keypoints length", f"keypoints has {len(keypoints)} values, {expected}"
        )
    for index, value in enumerate(keypoints):
        if not is_number(value):
            return record_problem(
                "non-numeric keypoint value",
                f"keypoints[{index}] ({names[index // 3]}) is {value!r}, not a number",
            )

    x_min, x_max = -OUTSIDE_IMAGE_MARGIN * width, (1 + OUTSIDE_IMAGE_MARGIN) * width
    y_min, y_max = -OUTSIDE_IMAGE_MARGIN * height, (1 + OUTSIDE_IMAGE_MARGIN) * height
    for i, name in enumerate(names):
        x, y, v = keypoints[3 * i : 3 * i + 3]
        if not (math.isfinite(x) and math.isfinite(y)):
            return record_problem(
                "non-finite keypoint", f"keypoint {i} ({name}) has coordinates ({x}, {y})"
            )
        if v not in _VALID_VISIBILITIES:
            return record_problem(
                "invalid visibility",
                f"keypoint {i} ({name}) has visibility {v}, expected 0, 1 or 2",
            )
        if v > 0 and not (x_min <= x <= x_max and y_min <= y <= y_max):
            return record_problem(
                "keypoint outside image",
                f"keypoint {i} ({name}) at ({x}, {y}) is more than "
                f"{OUTSIDE_IMAGE_MARGIN:.0%} outside the {width}x{height} image",
            )
    return None


def bbox_problem(bbox: Any, iscrowd: bool) -> Optional[Problem]:
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(is_number(v) for v in bbox):
        return record_problem("invalid bbox", f"bbox {bbox!r} is not [x, y, width, height]")
    if not all(math.isfinite(v) for v in bbox):
        return record_problem("invalid bbox", f"bbox {bbox} has non-finite values")
    # Crowd regions are ignored by training and evaluation; do not reject them on size.
    if not iscrowd and (bbox[2] <= 0 or bbox[3] <= 0):
        return record_problem("invalid bbox", f"bbox {bbox} has a non-positive width or height")
    return None


def normalize_annotation(
    annotation: Dict[str, Any],
    image: Dict[str, Any],
    names: Sequence[str],
    keypoints_field: str,
    notes: Normalizations,
    where: str,
    json_file: str,
) -> Tuple[Optional[Dict[str, Any]], Optional[Problem]]:
    """A checked copy of ``annotation`` with flat ``keypoints`` (read from ``keypoints_field``),
    a ``bbox`` and ``iscrowd`` (:data:`~kpext.data.normalization.TRAINING_RULES`), or the
    annotation's problem. The parsed file is shared: ``annotation`` is not modified."""
    if keypoints_field not in annotation:
        return None, record_problem("missing keypoints", f"has no '{keypoints_field}'")
    keypoints, nested = flatten_keypoints(annotation[keypoints_field])
    if isinstance(keypoints, list) and len(keypoints) != 3 * len(names):
        sibling = sibling_keypoints_field(annotation, keypoints_field, len(names))
        if sibling is not None:
            # Not a bad record but the wrong field for the whole file: skipping would drop
            # every annotation, so this is an error under either policy.
            raise KeypointDataError(
                f"{json_file}: {where}: '{keypoints_field}' has {len(keypoints)} values but "
                f"the category has {len(names)} keypoints ({3 * len(names)} values), which "
                f"the annotation's field '{sibling}' holds. Register the file with "
                f"register_keypoint_coco(..., keypoints_field='{sibling}') to read it.",
                reason="keypoints in another field",
            )
    problem = keypoints_problem(keypoints, names, image["width"], image["height"])
    if problem is not None:
        return None, problem
    if nested:
        notes.note("nested keypoints", where)

    iscrowd = annotation.get("iscrowd")
    if iscrowd is None:
        notes.note("iscrowd", where)
        iscrowd = 0

    bbox = annotation.get("bbox")
    if bbox is None:
        bbox = bbox_from_center_scale(annotation, image["width"], image["height"])
        rule = "bbox from center/scale"
        if bbox is None:
            bbox = bbox_from_keypoints(keypoints, image["width"], image["height"])
            rule = "bbox from keypoints"
        if bbox is None:
            return None, record_problem(
                "missing bbox",
                "has no 'bbox', no 'center'/'scale' and no labelled keypoint inside the image "
                "to take a box from; add a 'bbox' [x, y, width, height]",
            )
        notes.note(rule, where)
    problem = bbox_problem(bbox, bool(iscrowd))
    if problem is not None:
        return None, problem
    return {**annotation, "keypoints": keypoints, "bbox": bbox, "iscrowd": iscrowd}, None


def evaluation_annotation(
    annotation: Dict[str, Any], notes: Normalizations, where: str
) -> Dict[str, Any]:
    """``annotation`` (normalised) with the fields pycocotools reads: ``area`` (the box area
    when missing) and ``num_keypoints`` (the count of v > 0, which training uses)."""
    result = dict(annotation)
    if not is_number(annotation.get("area")):
        notes.note("area", where)
        result["area"] = float(annotation["bbox"][2] * annotation["bbox"][3])
    labelled = count_labelled(annotation["keypoints"])
    given = annotation.get("num_keypoints")
    if given is None:
        notes.note("num_keypoints missing", where)
    elif given != labelled:
        notes.note("num_keypoints disagrees", f"{where}: {given} given, {labelled} labelled")
    result["num_keypoints"] = labelled
    return result


def duplicate_id_problem(
    annotation: Dict[str, Any], where: str, seen: Dict[Any, str]
) -> Optional[Problem]:
    ann_id = annotation.get("id")
    if ann_id is None or not isinstance(ann_id, (int, str)):
        return None
    if ann_id in seen:
        return record_problem(
            "duplicate annotation id",
            f"annotation id {ann_id!r} is also used by {seen[ann_id]} (pycocotools keeps only "
            "one annotation per id). Give each annotation its own id, or drop the later "
            "duplicates with on_invalid='skip' (DATASETS.KPEXT.ON_INVALID skip).",
        )
    seen[ann_id] = where
    return None
