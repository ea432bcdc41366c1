"""Normalisation of COCO keypoint annotations as real datasets publish them.

Public keypoint datasets in COCO format deviate from COCO's own files in ways that are
unambiguous but break Detectron2 or pycocotools: fields left out (``iscrowd``, ``area``,
``num_keypoints``, ``bbox``, ``id``), keypoints written as nested ``[[x, y, v], ...]``
lists, boxes given as a centre and a scale. :func:`kpext.data.register_keypoint_coco`
turns each into what COCO would have written, one rule per deviation (:data:`RULES`),
and logs one WARNING per rule and dataset that counts the annotations it changed and
quotes the first. ``datasets/README.md`` lists the rules with the warnings they print.

The rules in :data:`TRAINING_RULES` change what training reads and are logged when the
records are loaded; those in :data:`EVALUATION_RULES` fill the fields only pycocotools
reads and are logged when the evaluation ground truth is written
(:mod:`kpext.evaluation.ground_truth`).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any, Dict, Hashable, List, Optional, Sequence, Set, Tuple

from .keypoint_metadata import is_number

__all__ = [
    "RULES",
    "TRAINING_RULES",
    "EVALUATION_RULES",
    "BBOX_FROM_KEYPOINTS_MARGIN",
    "BBOX_FROM_KEYPOINTS_MIN_PAD",
    "CENTER_SCALE_PIXEL_STD",
    "Normalizations",
    "flatten_keypoints",
    "count_labelled",
    "bbox_from_keypoints",
    "bbox_from_center_scale",
    "sibling_keypoints_field",
    "first_time",
]

logger = logging.getLogger(__name__)

# A box taken from the labelled keypoints is widened on every side by this fraction of its
# larger side, and by at least BBOX_FROM_KEYPOINTS_MIN_PAD pixels: keypoints are joints
# inside the object, its outline lies beyond them (COCO's person boxes are ~10% larger
# than their keypoints' box on each side), and a single labelled point still gets a box.
BBOX_FROM_KEYPOINTS_MARGIN: float = 0.10
BBOX_FROM_KEYPOINTS_MIN_PAD: float = 2.0

# Top-down sets (MPII and its descendants) give a box as a centre and a scale, where
# scale x 200 is the box side in pixels ("pixel std" 200).
CENTER_SCALE_PIXEL_STD: float = 200.0

# rule -> what follows "<file>: <count> annotation(s) " in the rule's warning.
RULES: Dict[str, str] = {
    "iscrowd": "have no 'iscrowd' (first: {first}); taken as 0 (not a crowd region)",
    "nested keypoints": (
        "have nested [[x, y, v], ...] keypoints (first: {first}); flattened to [x, y, v, ...]"
    ),
    "bbox from keypoints": (
        "have no 'bbox' (first: {first}); using the box of their labelled keypoints, widened "
        "on every side by 10% of its larger side (at least 2 px), clipped to the image"
    ),
    "bbox from center/scale": (
        "have no 'bbox' (first: {first}); using their 'center' and 'scale' (box side = "
        "scale x 200 px, the MPII convention), clipped to the image"
    ),
    "area": "have no 'area' (first: {first}); evaluation uses the box area (width x height)",
    "num_keypoints missing": (
        "have no 'num_keypoints' (first: {first}); evaluation uses their count of keypoints "
        "with v > 0"
    ),
    "num_keypoints disagrees": (
        "have a 'num_keypoints' that differs from their count of keypoints with v > 0 "
        "(first: {first}); evaluation uses the count (pycocotools ignores ground truth "
        "with num_keypoints 0)"
    ),
    "id missing": "have no 'id' (first: {first}); numbered after the largest id for evaluation",
}
TRAINING_RULES: Tuple[str, ...] = (
    "iscrowd",
    "nested keypoints",
    "bbox from keypoints",
    "bbox from center/scale",
)
EVALUATION_RULES: Tuple[str, ...] = (
    "area",
    "num_keypoints missing",
    "num_keypoints disagrees",
    "id missing",
)

# (dataset key, rule) pairs already logged: a dataset is loaded several times (training,
# testing, evaluation ground truth), its warnings are printed once.
_LOGGED: Set[Tuple[Hashable, str]] = set()


def first_time(dataset_key: Hashable, topic: str) -> bool:
    """True the first time it is asked for this dataset and topic: what logs once per dataset."""
    if (dataset_key, topic) in _LOGGED:
        return False
    _LOGGED.add((dataset_key, topic))
    return True


class Normalizations:
    """The rules applied while loading one file: a count and the first record per rule."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.first: Dict[str, str] = {}

    def note(self, rule: str, where: str) -> None:
        assert rule in RULES, rule
        self.counts[rule] += 1
        self.first.setdefault(rule, where)

    def log(self, json_file: str, rules: Sequence[str], dataset_key: Hashable) -> None:
        """One WARNING per rule of ``rules`` that was applied, once per ``dataset_key``."""
        for rule in rules:
            if not self.counts[rule] or not first_time(dataset_key, rule):
                continue
            logger.warning(
                "%s: %d annotation(s) %s",
                json_file,
                self.counts[rule],
                RULES[rule].format(first=self.first[rule]),
            )


def flatten_keypoints(keypoints: Any) -> Tuple[Any, bool]:
    """``[[x, y, v], ...]`` -> ``[x, y, v, ...]`` and True; anything else unchanged and False."""
    nested = (
        isinstance(keypoints, list)
        and bool(keypoints)
        and all(isinstance(p, (list, tuple)) and len(p) == 3 for p in keypoints)
    )
    if not nested:
        return keypoints, False
    return [value for point in keypoints for value in point], True


def count_labelled(keypoints: Sequence[float]) -> int:
    """Keypoints with v > 0 (what COCO's ``num_keypoints`` counts) of a flat, checked list."""
    return sum(1 for v in keypoints[2::3] if v > 0)


def _clipped_box(
    x0: float, y0: float, x1: float, y1: float, width: float, height: float
) -> Optional[List[float]]:
    x0, y0 = max(0.0, x0), max(0.0, y0)
    x1, y1 = min(float(width), x1), min(float(height), y1)
    if x1 <= x0 or y1 <= y0:
        return None
    return [x0, y0, x1 - x0, y1 - y0]


def bbox_from_keypoints(
    keypoints: Sequence[float], width: float, height: float
) -> Optional[List[float]]:
    """[x, y, w, h] around the labelled (v > 0) points of a flat, checked keypoint list,
    widened by :data:`BBOX_FROM_KEYPOINTS_MARGIN` (see there) and clipped to the image;
    None without a labelled point."""
    points = [
        (keypoints[i], keypoints[i + 1]) for i in range(0, len(keypoints), 3) if keypoints[i + 2]
    ]
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    pad = max(
        BBOX_FROM_KEYPOINTS_MARGIN * max(max(xs) - min(xs), max(ys) - min(ys)),
        BBOX_FROM_KEYPOINTS_MIN_PAD,
    )
    return _clipped_box(min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad, width, height)


def _pair_of_numbers(value: Any) -> Optional[Tuple[float, float]]:
    if is_number(value) and math.isfinite(value) and value > 0:
        return float(value), float(value)
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(is_number(v) and math.isfinite(v) for v in value)
    ):
        return float(value[0]), float(value[1])
    return None


def bbox_from_center_scale(
    annotation: Dict[str, Any], width: float, height: float
) -> Optional[List[float]]:
    """[x, y, w, h] from ``center`` (or ``centre``) [cx, cy] and ``scale`` (s, or [sx, sy]):
    a box of side scale x :data:`CENTER_SCALE_PIXEL_STD` around the centre, clipped to the
    image; None when the annotation has no usable centre and scale."""
    center = _pair_of_numbers(annotation.get("center", annotation.get("centre")))
    scale = _pair_of_numbers(annotation.get("scale"))
    if center is None or scale is None or min(scale) <= 0:
        return None
    half_w = scale[0] * CENTER_SCALE_PIXEL_STD / 2
    half_h = scale[1] * CENTER_SCALE_PIXEL_STD / 2
    cx, cy = center
    return _clipped_box(cx - half_w, cy - half_h, cx + half_w, cy + half_h, width, height)


def sibling_keypoints_field(
    annotation: Dict[str, Any], field: str, num_keypoints: int
) -> Optional[str]:
    """Another field of the annotation whose name contains "keypoints" and that holds
    exactly ``num_keypoints`` (x, y, v) triples, flat or nested (e.g. ``keypoints_21`` next
    to a 17-point ``keypoints``); None if there is none."""
    for key, value in annotation.items():
        if key == field or "keypoints" not in str(key).lower() or not isinstance(value, list):
            continue
        flat, _ = flatten_keypoints(value)
        if len(flat) == 3 * num_keypoints and all(is_number(v) for v in flat):
            return key
    return None
