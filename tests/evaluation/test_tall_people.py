"""Tests of the tall-person recall check, on small hand-computed examples."""

import math

import pytest

from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES
from kpext.evaluation.tall_people import format_tall_person_recall, tall_person_recall

KP = {name: i for i, name in enumerate(COCO_PERSON_KEYPOINT_NAMES)}


def _keypoints(points, v=2):
    """Flat 17 x 3 list with the given {name: (x, y)} labelled, the rest 0, 0, 0."""
    flat = [0.0] * 51
    for name, (x, y) in points.items():
        flat[3 * KP[name] : 3 * KP[name] + 3] = [x, y, v]
    return flat


def _person(ann_id, image_id, bbox, area, points=None, iscrowd=0):
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "bbox": bbox, "area": area,
            "iscrowd": iscrowd, "keypoints": _keypoints(points or {})}  # fmt: skip


A_POINTS = {"nose": (20, 15), "left_shoulder": (30, 30), "right_hip": (20, 60),
            "left_ankle": (30, 85)}  # fmt: skip
ALL_POINTS = {name: (110 + i, 30 + 7 * i) for i, name in enumerate(COCO_PERSON_KEYPOINT_NAMES)}


def _ground_truth():
    images = [{"id": 1, "width": 100, "height": 100, "file_name": "1.jpg"},
              {"id": 2, "width": 200, "height": 200, "file_name": "2.jpg"},
              {"id": 3, "width": 50, "height": 50, "file_name": "3.jpg"}]  # fmt: skip
    annotations = [
        _person(1, 1, [10, 10, 30, 80], 2000.0, A_POINTS),  # A: 80 > 60, tall
        _person(2, 1, [50, 20, 40, 70], 2400.0, {"nose": (70, 25), "left_hip": (75, 60)}),  # B
        _person(3, 1, [60, 80, 10, 15], 100.0),  # C: small
        _person(4, 1, [0, 0, 100, 100], 10000.0, iscrowd=1),  # a crowd region: never counted
        _person(5, 2, [0, 0, 50, 100], 3000.0),  # D: 100 of 200, not tall
        _person(6, 2, [100, 20, 60, 150], 6000.0, ALL_POINTS),  # E: 150 > 120, tall
        _person(7, 3, [0, 0, 20, 40], 500.0),  # F: 40 > 30, tall, never detected
    ]
    return {"images": images, "annotations": annotations, "categories": [{"id": 1}]}


def _detection(image_id, bbox, score, points=None):
    det = {"image_id": image_id, "category_id": 1, "bbox": bbox, "score": score}
    if points is not None:
        det["keypoints"] = _keypoints(points, v=1)
    return det


def test_hand_computed_example():
    # A (area 2000): keypoint similarity >= 0.5 within d = sqrt(2 * 2000 * (2 sigma)^2 * ln 2):
    # nose 2.74 px, shoulder 8.32, hip 11.27, ankle 9.37. Off by 3, 3, 10, 10 px: the
    # shoulder and the hip are placed, the nose and the ankle not: 2 of 4 -> a skeleton.
    a_pred = {"nose": (23, 15), "left_shoulder": (30, 33), "right_hip": (30, 60),
              "left_ankle": (30, 95)}  # fmt: skip
    predictions = [
        _detection(1, [10, 10, 30, 35], 0.95),  # half of A: IoU 1050 / 2400 = 0.44, no match
        _detection(1, [10, 10, 30, 80], 0.9, a_pred),  # A
        # B: IoU 38 * 68 / (2800 + 2800 - 2584) = 0.857; keypoints 30 px off: no skeleton
        _detection(1, [52, 22, 40, 70], 0.8, {"nose": (70, 55), "left_hip": (75, 90)}),
        _detection(1, [60, 80, 10, 15], 0.4),  # below the score threshold
        _detection(2, [100, 20, 60, 150], 0.6, ALL_POINTS),  # E, exact
    ]
    result = tall_person_recall(_ground_truth(), predictions)
    assert result["num_people"] == 4  # A, B, E, F
    assert result["num_found"] == 3 and result["recall"] == pytest.approx(0.75)
    assert result["with_skeleton"] == 2 and result["skeleton_recall"] == pytest.approx(0.5)
    line = format_tall_person_recall(result, "val")
    assert line == (
        "people taller than 60% of the image (val): 3/4 found (75%), 2 with a skeleton (50%)"
    )


def test_thresholds():
    gt = _ground_truth()
    exact_a = _detection(1, [10, 10, 30, 80], 0.55, A_POINTS)
    assert tall_person_recall(gt, [exact_a])["with_skeleton"] == 1
    assert tall_person_recall(gt, [exact_a], score_threshold=0.6)["num_found"] == 0
    # at 0.7 of the height B (70 of 100) no longer counts: 70 is not > 70; A, E and F still do
    assert tall_person_recall(gt, [exact_a], min_height_fraction=0.7)["num_people"] == 3
    # at 0.8 none does (A 80 of 100, E 150 of 200, F 40 of 50)
    assert tall_person_recall(gt, [exact_a], min_height_fraction=0.8)["num_people"] == 0
    # B's box 0.857: found at IoU 0.85, missed at 0.9
    b = [_detection(1, [52, 22, 40, 70], 0.9)]
    assert tall_person_recall(gt, b, iou_threshold=0.85)["num_found"] == 1
    assert tall_person_recall(gt, b, iou_threshold=0.9)["num_found"] == 0


def test_a_detection_counts_for_one_person_only():
    tall, in_front_of_its_legs = [0, 0, 40, 100], [0, 40, 40, 60]
    people = [_person(1, 1, tall, 2000.0), _person(2, 1, in_front_of_its_legs, 1500.0)]
    gt = {"images": [{"id": 1, "width": 100, "height": 100}], "annotations": people}
    # IoU 1.0 with the small person, 2400 / 4000 = 0.6 with the tall one: it is the small one's
    legs = _detection(1, [0, 40, 40, 60], 0.9)
    assert tall_person_recall(gt, [legs])["num_found"] == 0
    assert tall_person_recall(gt, [legs, _detection(1, [0, 0, 40, 100], 0.7)])["num_found"] == 1


def test_no_tall_people():
    gt = {
        "images": [{"id": 1, "height": 100}],
        "annotations": [_person(1, 1, [0, 0, 10, 10], 50.0)],
    }
    result = tall_person_recall(gt, [])
    assert result["num_people"] == 0 and math.isnan(result["recall"])
    assert "none in the ground truth" in format_tall_person_recall(result)
