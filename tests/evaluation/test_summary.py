"""The summary train_net prints after evaluation: APs per test set, the held-out fraction,
tall people found."""

import json
import os

import pytest

import kpext
from kpext.data import register_keypoint_coco
from kpext.evaluation.summary import format_summary, summarize_test_results, write_summary

from detectron2.config import get_cfg

KEYPOINTS = ["nose", "left_eye", "right_eye"]


def _coco(tmp_path, name, people):
    """A COCO file of one 100 x 100 image whose people are (x, y, w, h) boxes."""
    image_root = tmp_path / "images"
    image_root.mkdir(exist_ok=True)
    annotations = []
    for i, (x, y, w, h) in enumerate(people, 1):
        points = [x + w / 2, y + 5, 2, x + w / 2 - 3, y + 4, 2, x + w / 2 + 3, y + 4, 2]
        annotations.append(
            {
                "id": i,
                "image_id": 1,
                "category_id": 1,
                "bbox": [x, y, w, h],
                "area": w * h,
                "iscrowd": 0,
                "keypoints": points,
                "num_keypoints": 3,
            }
        )
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
        "annotations": annotations,
        "categories": [
            {"id": 1, "name": "person", "keypoints": KEYPOINTS, "skeleton": [[1, 2], [1, 3]]}
        ],
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(data))
    register_keypoint_coco(
        name, str(path), str(image_root), check_images=False, oks_sigmas=[0.05] * 3
    )
    return data


def _write_predictions(out_dir, name, detections):
    folder = os.path.join(out_dir, "inference", name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "coco_instances_results.json"), "w") as f:
        json.dump(detections, f)


def _detection(annotation, score):
    return {
        "image_id": 1,
        "category_id": 1,
        "bbox": annotation["bbox"],
        "score": score,
        "keypoints": annotation["keypoints"],
    }


@pytest.fixture
def two_sets(tmp_path):
    suffix = os.path.basename(str(tmp_path))
    names = [f"summary_val_{suffix}", f"summary_heldout_{suffix}"]
    # val: one tall person (80 of 100 px), found; one small one.
    val = _coco(tmp_path, names[0], [(10, 10, 30, 80), (60, 60, 10, 20)])
    # held out: two tall people, only one detected above the score threshold.
    heldout = _coco(tmp_path, names[1], [(5, 5, 30, 90), (50, 10, 30, 70)])
    out = tmp_path / "out"
    _write_predictions(str(out), names[0], [_detection(a, 0.9) for a in val["annotations"]])
    _write_predictions(
        str(out),
        names[1],
        [_detection(heldout["annotations"][0], 0.9), _detection(heldout["annotations"][1], 0.2)],
    )
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.DATASETS.TEST = tuple(names)
    cfg.OUTPUT_DIR = str(out)
    results = {
        names[0]: {"bbox": {"AP": 50.0}, "keypoints": {"AP": 40.0}},
        names[1]: {"bbox": {"AP": 30.0}, "keypoints": {"AP": 10.0}},
    }
    return cfg, results, names


def test_summary_gives_each_set_and_the_heldout_fraction(two_sets):
    cfg, results, names = two_sets
    summary = summarize_test_results(cfg, results)
    val, heldout = summary["datasets"]
    assert [val["name"], heldout["name"]] == names
    assert (val["keypoint_ap"], val["box_ap"]) == (40.0, 50.0)
    assert heldout["kp_ap_vs_first"] == pytest.approx(10.0 / 40.0)
    assert (val["tall_people"]["num_people"], val["tall_people"]["num_found"]) == (1, 1)
    assert (heldout["tall_people"]["num_people"], heldout["tall_people"]["num_found"]) == (2, 1)
    # Predictions equal to the labels: every keypoint of a matched person is good; the held-out
    # set's second person is detected at score 0.2 (a match, whatever its score).
    assert val["keypoint_errors"]["shares"]["good"] == 1.0
    assert val["keypoint_errors"]["keypoints"] == 6
    assert heldout["keypoint_errors"]["people_matched"] == 2
    text = format_summary(summary)
    assert "keypoint AP 10.0" in text and "0.25 of" in text and "1/2 found" in text
    assert "keypoint errors of 6 labelled keypoints (2/2 people matched): good 100.0%" in text


def test_single_test_set_results_are_unwrapped(two_sets):
    cfg, results, names = two_sets
    cfg.DATASETS.TEST = (names[0],)
    summary = write_summary(cfg, results[names[0]])
    assert summary["datasets"][0]["keypoint_ap"] == 40.0
    with open(os.path.join(cfg.OUTPUT_DIR, "summary.json")) as f:
        assert json.load(f)["datasets"][0]["tall_people"]["recall"] == 1.0


def test_missing_predictions_leave_tall_people_unknown(two_sets, tmp_path):
    cfg, results, names = two_sets
    cfg.OUTPUT_DIR = str(tmp_path / "elsewhere")
    summary = summarize_test_results(cfg, results)
    assert summary["datasets"][0]["tall_people"] is None
    assert summary["datasets"][0]["keypoint_errors"] is None
