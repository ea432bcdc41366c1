"""The pose error breakdown on hand-made people whose errors are placed one by one: a jittered
point, a left hand on the right hand, a right hand on another person's, a whole person with
left and right exchanged, a point on the wrong part (not its counterpart), misses, an unlabelled
point, a person nobody detected and a detection of nobody.

Distances are chosen from the keypoint similarity worked out by hand: area 10000 px^2 and
sigma 0.05 give ks = exp(-d^2 / 200), so ks >= 0.85 within 5.7 px, >= 0.5 within 11.8 px."""

import math

import pytest

from kpext.evaluation.pose_errors import (
    classify_keypoint_errors,
    format_pose_errors,
    pose_error_breakdown,
)

NAMES = ["nose", "left_eye", "right_eye", "left_hand", "right_hand"]
COUNTERPART = [0, 2, 1, 4, 3]  # left_eye <-> right_eye, left_hand <-> right_hand
SIGMAS = [0.05] * 5


def person_points(x, y):
    """Keypoints of a person whose nose is at (x, y): eyes 15 px to each side, hands 40."""
    return [(x, y), (x + 15, y - 10), (x - 15, y - 10), (x + 40, y + 50), (x - 40, y + 50)]


def annotation(ann_id, image_id, points, unlabelled=()):
    flat = []
    for k, (px, py) in enumerate(points):
        flat += [px, py, 0 if k in unlabelled else 2]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "bbox": [points[0][0] - 50, points[0][1] - 30, 100, 100],
        "area": 10000.0,
        "iscrowd": 0,
        "num_keypoints": len(points) - len(unlabelled),
        "keypoints": flat,
    }


def detection(image_id, points, score):
    flat = []
    for px, py in points:
        flat += [px, py, 1.0]
    return {"image_id": image_id, "category_id": 1, "score": score, "keypoints": flat}


@pytest.fixture
def scene():
    """Image 1: people A and B far apart; image 2: C (left/right exchanged) and D (misses);
    image 3: E, whom no detection finds, and a detection of nobody."""
    a, b = person_points(100, 100), person_points(400, 100)
    c, d, e = person_points(100, 100), person_points(400, 300), person_points(100, 100)
    people = [
        annotation(1, 1, a),
        annotation(2, 1, b),
        annotation(3, 2, c),
        annotation(4, 2, d, unlabelled=(2,)),
        annotation(5, 3, e),
    ]
    pred_a = [
        (a[0][0] + 2, a[0][1]),  # good (2 px)
        (a[1][0] + 8, a[1][1]),  # jitter (8 px: ks 0.73)
        a[2],  # good
        a[4],  # left hand on the right hand: inversion, left/right
        b[4],  # right hand on B's right hand: swap
    ]
    pred_c = [c[0], c[2], c[1], c[4], c[3]]  # every side exchanged, nose right
    pred_d = [
        d[0],  # good
        (d[1][0] + 60, d[1][1] - 60),  # miss
        (d[0][0] + 3, d[0][1] + 3),  # unlabelled: not counted
        (d[0][0] - 3, d[0][1] + 2),  # left hand on the nose: inversion, not left/right
        (d[4][0] - 50, d[4][1] + 40),  # miss
    ]
    nobody = [(900, 900)] * 5
    predictions = [
        detection(1, pred_a, 0.9),
        detection(1, b, 0.8),  # B perfect: 5 good
        detection(2, pred_c, 0.7),
        detection(2, pred_d, 0.6),
        detection(3, nobody, 0.5),
    ]
    data = {
        "images": [
            {"id": i, "file_name": f"{i}.jpg", "width": 600, "height": 500} for i in (1, 2, 3)
        ],
        "annotations": people,
        "categories": [{"id": 1, "name": "person", "keypoints": NAMES, "skeleton": []}],
    }
    return data, predictions


def test_each_placed_error_lands_in_its_class(scene):
    data, predictions = scene
    result = pose_error_breakdown(data, predictions, SIGMAS, COUNTERPART)
    # A: good 2, jitter 1, inversion 1 (l/r), swap 1. B: good 5. C: good 1, inversion 4 (l/r).
    # D: good 1, inversion 1 (not l/r), miss 2, one unlabelled.
    assert result["counts"] == {
        "good": 9,
        "jitter": 1,
        "inversion": 6,
        "swap": 1,
        "miss": 2,
        "inversion_left_right": 5,
    }
    assert result["keypoints"] == 19
    assert result["shares"]["inversion"] == pytest.approx(6 / 19)
    assert (result["people"], result["people_matched"], result["people_unmatched"]) == (5, 4, 1)


def test_per_keypoint_classes_of_one_detection(scene):
    data, predictions = scene
    a, b = data["annotations"][:2]
    pred = [predictions[0]["keypoints"][i : i + 2] for i in range(0, 15, 3)]
    classes = classify_keypoint_errors(pred, a, [b], SIGMAS, COUNTERPART)
    assert classes == ["good", "jitter", "good", "inversion_left_right", "swap"]
    # Without B in the image the swapped hand is a plain miss.
    assert classify_keypoint_errors(pred, a, [], SIGMAS, COUNTERPART)[4] == "miss"


def test_set_without_left_right_pairs_has_no_left_right_inversions(scene):
    data, predictions = scene
    result = pose_error_breakdown(data, predictions, SIGMAS, list(range(5)), oracle_ap=False)
    assert result["counts"]["inversion"] == 6
    assert result["counts"]["inversion_left_right"] == 0
    assert "oracle_ap" not in result


def test_oracle_aps_rise_by_the_class_they_correct(scene):
    data, predictions = scene
    result = pose_error_breakdown(data, predictions, SIGMAS, COUNTERPART)
    oracle = result["oracle_ap"]
    assert set(oracle) == {"jitter", "inversion", "swap", "miss"}
    assert 0 < result["ap"] < 100
    # Inversions are the largest class here: correcting them gains the most.
    assert oracle["inversion"] > max(oracle["jitter"], oracle["swap"]) >= result["ap"]
    assert oracle["miss"] > result["ap"]
    assert all(0 <= v <= 100 for v in oracle.values())


def test_perfect_predictions_are_all_good_and_keep_ap_100():
    points = person_points(200, 200)
    data = {
        "images": [{"id": 1, "file_name": "1.jpg", "width": 500, "height": 500}],
        "annotations": [annotation(1, 1, points)],
        "categories": [{"id": 1, "name": "person", "keypoints": NAMES, "skeleton": []}],
    }
    result = pose_error_breakdown(data, [detection(1, points, 0.9)], SIGMAS, COUNTERPART)
    assert result["shares"]["good"] == 1.0
    assert result["ap"] == pytest.approx(100.0)
    assert all(v == pytest.approx(100.0) for v in result["oracle_ap"].values())
    text = format_pose_errors(result)
    assert "good 100.0%" in text and "inversion 0.0% (left/right 0.0%)" in text


def test_no_matched_person_gives_nan_shares():
    data = {
        "images": [{"id": 1, "file_name": "1.jpg", "width": 500, "height": 500}],
        "annotations": [annotation(1, 1, person_points(100, 100))],
        "categories": [{"id": 1, "name": "person", "keypoints": NAMES, "skeleton": []}],
    }
    far = detection(1, [(450, 450)] * 5, 0.9)
    result = pose_error_breakdown(data, [far], SIGMAS, COUNTERPART, oracle_ap=False)
    assert result["keypoints"] == 0 and result["people_unmatched"] == 1
    assert math.isnan(result["shares"]["good"])
    assert "no labelled keypoint" in format_pose_errors(result)


def test_classes_are_broken_down_by_view_style_size_and_keypoint(scene):
    """The placed errors counted again per group, by hand: A faces the camera (yaw 10) in the
    classic style, C is seen from behind (yaw -170, silhouette), B in profile, D obliquely (yaw
    135) and without a style; E (undetected) counts nowhere. All have area 10000 > 96^2: large."""
    data, predictions = scene
    for ann, yaw, style in zip(
        data["annotations"],
        (10.0, 95.0, -170.0, 135.0, 0.0),
        ("classic", "classic", "silhouette", None, "classic"),
    ):
        ann["yaw"] = yaw
        if style:
            ann["style"] = style
    result = pose_error_breakdown(data, predictions, SIGMAS, COUNTERPART, oracle_ap=False)
    views = result["by_view"]
    assert list(views) == ["front", "oblique", "profile", "back"]
    assert views["front"]["counts"] == {  # A
        "good": 2, "jitter": 1, "inversion": 1, "swap": 1, "miss": 0, "inversion_left_right": 1
    }  # fmt: skip
    assert views["profile"]["counts"]["good"] == 5  # B
    assert views["back"]["counts"]["inversion_left_right"] == 4  # C: every side exchanged
    assert views["back"]["shares"]["inversion_left_right"] == pytest.approx(4 / 5)
    assert views["oblique"]["keypoints"] == 4  # D: one of its five unlabelled
    assert views["back"]["share_of_keypoints"] == pytest.approx(5 / 19)
    styles = result["by_style"]
    assert {k: v["keypoints"] for k, v in styles.items()} == {"classic": 10, "silhouette": 5}
    assert list(result["by_size"]) == ["large"] and result["by_size"]["large"]["keypoints"] == 19
    per_keypoint = result["by_keypoint"]
    # right_hand (4): A's swap, B good, C's inversion onto left_hand, D miss
    assert per_keypoint[4]["counts"] == {
        "good": 1, "jitter": 0, "inversion": 1, "swap": 1, "miss": 1, "inversion_left_right": 1
    }  # fmt: skip
    assert per_keypoint[2]["keypoints"] == 3  # right_eye: unlabelled on D
    assert sum(row["keypoints"] for row in per_keypoint) == result["keypoints"]
    text = format_pose_errors(result, NAMES)
    assert "by view: front (26%) good 40.0% l/r 20.0%" in text
    assert "back (26%) good 20.0% l/r 80.0%" in text
    assert text.splitlines()[-1].startswith("most inverted: ")


def test_without_yaw_or_style_there_is_no_view_or_style_breakdown(scene):
    data, predictions = scene
    result = pose_error_breakdown(data, predictions, SIGMAS, COUNTERPART, oracle_ap=False)
    assert "by_view" not in result and "by_style" not in result
    assert "by view" not in format_pose_errors(result)
