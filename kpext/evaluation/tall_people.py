"""Recall of tall people: are the people who fill most of the picture found, with a
skeleton?

COCO AP averages over all people, and a few large people missed (or split into
partial boxes) barely move it, yet they are what a user looks at first. This
check counts them on their own:

* a **tall person** is a ground-truth person (``iscrowd`` 0) whose box is taller
  than ``min_height_fraction`` of its image's height;
* it is **found** when a detection with ``score >= score_threshold`` is matched to
  it with box IoU ``>= iou_threshold``. Detections are matched one-to-one to
  *all* people of the image (not only the tall ones), greedily: by decreasing
  score, each detection takes the unmatched person it overlaps most, so a
  detection of a small person in front of a tall one does not count for both;
* a found person **has its skeleton** when at least half of its labelled
  keypoints (``v > 0``) are predicted close to their label: COCO's per-keypoint
  similarity ``exp(-d^2 / (2 s^2 k^2))`` is at least ``keypoint_similarity``
  (0.5 by default), with ``d`` the distance in pixels, ``s^2`` the person's
  ``area`` and ``k = 2 sigma`` (the keypoint's OKS sigma, COCO's person sigmas by
  default). For the nose (``sigma`` 0.026) of a person of area 10000 px^2 this
  allows about 6 pixels; for a hip (0.107), about 25.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from ..data.keypoint_metadata import oks_sigmas_for_count
from ..data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES
from ..modeling import oks

__all__ = ["tall_person_recall", "format_tall_person_recall", "print_tall_person_recall"]


def _load(source: Any) -> Any:
    if isinstance(source, str):
        with open(source, encoding="utf-8") as f:
            return json.load(f)
    return source


def _coco_dataset(coco_gt: Any) -> Mapping[str, Any]:
    """A COCO dict from a dict, a JSON path or a pycocotools ``COCO`` (its ``dataset``)."""
    coco_gt = _load(coco_gt)
    return coco_gt.dataset if hasattr(coco_gt, "dataset") else coco_gt


def _iou_xywh(a: Sequence[float], b: Sequence[float]) -> float:
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _has_skeleton(
    person: Mapping[str, Any],
    detection: Mapping[str, Any],
    sigmas: Sequence[float],
    keypoint_similarity: float,
) -> bool:
    """At least half of the person's labelled keypoints predicted within the distance
    at which COCO's keypoint similarity falls to ``keypoint_similarity``."""
    gt = np.asarray(person["keypoints"], dtype=np.float64).reshape(-1, 3)
    labelled = gt[:, 2] > 0
    if not labelled.any() or "keypoints" not in detection:
        return False
    pred = np.asarray(detection["keypoints"], dtype=np.float64).reshape(-1, 3)[:, :2]
    squared = np.sum((pred - gt[:, :2]) ** 2, axis=1)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    similarity = oks.keypoint_similarity(squared, float(person["area"]), sigmas)
    close = (similarity >= keypoint_similarity) & labelled
    return 2 * int(close.sum()) >= int(labelled.sum())


def tall_person_recall(
    coco_gt: Union[str, Mapping[str, Any], Any],
    predictions: Union[str, Sequence[Mapping[str, Any]]],
    min_height_fraction: float = 0.6,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
    keypoint_similarity: float = 0.5,
    sigmas: Optional[Sequence[float]] = None,
) -> Dict[str, Any]:
    """How many tall people the detections find, and find with a skeleton (see the
    module docstring for the rules).

    Args:
        coco_gt: the ground truth: a COCO dict, its JSON path or a pycocotools ``COCO``.
        predictions: COCO results (``coco_instances_results.json`` or its list): dicts
            with ``image_id``, ``bbox`` (x, y, w, h), ``score`` and ``keypoints``
            (flat x, y, score triples, COCO pixel indices like the labels).
        min_height_fraction: a person counts when its box height is above this share
            of the image height.
        iou_threshold, score_threshold: a detection must score this much and overlap
            its person this much.
        keypoint_similarity: a keypoint is placed when COCO's similarity reaches it.
        sigmas: per-keypoint OKS sigmas; COCO's person sigmas by default.

    Returns:
        ``num_people`` (tall people), ``num_found``, ``recall`` (found / people, NaN
        without tall people), ``with_skeleton`` (found people with their skeleton)
        and ``skeleton_recall`` (with_skeleton / people, NaN without tall people).
    """
    dataset = _coco_dataset(coco_gt)
    if sigmas is None:
        sigmas = oks_sigmas_for_count(len(COCO_PERSON_KEYPOINT_NAMES))
    sigmas = list(sigmas)
    heights = {image["id"]: float(image["height"]) for image in dataset["images"]}
    people: Dict[Any, List[Mapping[str, Any]]] = defaultdict(list)
    for ann in dataset["annotations"]:
        if not ann.get("iscrowd", 0):
            people[ann["image_id"]].append(ann)
    detections: Dict[Any, List[Mapping[str, Any]]] = defaultdict(list)
    for det in _load(predictions):
        if det["score"] >= score_threshold:
            detections[det["image_id"]].append(det)

    num_people = num_found = with_skeleton = 0
    for image_id, anns in people.items():
        tall = [a["bbox"][3] > min_height_fraction * heights[image_id] for a in anns]
        num_people += sum(tall)
        if not any(tall):
            continue
        matched: Dict[int, Mapping[str, Any]] = {}
        for det in sorted(detections[image_id], key=lambda d: -d["score"]):
            best, best_iou = None, iou_threshold
            for i, ann in enumerate(anns):
                iou = _iou_xywh(det["bbox"], ann["bbox"])
                if i not in matched and iou >= best_iou:
                    best, best_iou = i, iou
            if best is not None:
                matched[best] = det
        for i, det in matched.items():
            if tall[i]:
                num_found += 1
                with_skeleton += _has_skeleton(anns[i], det, sigmas, keypoint_similarity)
    return {
        "num_people": num_people,
        "num_found": num_found,
        "recall": num_found / num_people if num_people else math.nan,
        "with_skeleton": with_skeleton,
        "skeleton_recall": with_skeleton / num_people if num_people else math.nan,
    }


def format_tall_person_recall(
    result: Mapping[str, Any], name: str = "", fraction: float = 0.6
) -> str:
    """One line, e.g. ``people taller than 60% of the image (val): 9/12 found (75%),
    7 with a skeleton (58%)``."""
    where = f" ({name})" if name else ""
    if not result["num_people"]:
        return f"people taller than {fraction:.0%} of the image{where}: none in the ground truth"
    return (
        f"people taller than {fraction:.0%} of the image{where}: {result['num_found']}/"
        f"{result['num_people']} found ({result['recall']:.0%}), "
        f"{result['with_skeleton']} with a skeleton ({result['skeleton_recall']:.0%})"
    )


def print_tall_person_recall(
    coco_gt: Union[str, Mapping[str, Any], Any],
    predictions: Union[str, Sequence[Mapping[str, Any]]],
    name: str = "",
    min_height_fraction: float = 0.6,
    **kwargs: Any,
) -> Dict[str, Any]:
    """:func:`tall_person_recall`, printed as one line; returns the result."""
    result = tall_person_recall(coco_gt, predictions, min_height_fraction, **kwargs)
    print(format_tall_person_recall(result, name, min_height_fraction))
    return result
