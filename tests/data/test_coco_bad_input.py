"""kpext.data's bad-input policy for COCO keypoint files: whole-file problems stop with the
file, line and column; record problems stop naming the file and the ids, or with
on_invalid="skip" are left out and counted in one warning.

Every test writes its own tiny COCO JSON and images under tmp_path (coco_helpers).
"""

import os

import pytest
from coco_helpers import (
    JSON_NAME,
    all_annotation_ids,
    annotation,
    valid_coco,
    warnings_of,
    write_coco,
)

from kpext.data import KeypointDataError, load_keypoint_coco_json, register_keypoint_coco

from detectron2.data import DatasetCatalog

# --------------------------------------------------------------------------- #
# Bad input: whole-file problems
# --------------------------------------------------------------------------- #


def test_malformed_json_names_file_line_and_column(tmp_path, dataset_name):
    json_file = tmp_path / JSON_NAME
    json_file.write_text('{"images": [],\n "annotations": [,]}')
    for call in (
        lambda: load_keypoint_coco_json(str(json_file), str(tmp_path)),
        lambda: register_keypoint_coco(dataset_name, str(json_file), str(tmp_path)),
    ):
        expected = rf"{JSON_NAME}: malformed JSON at line 2, column \d+"
        with pytest.raises(KeypointDataError, match=expected):
            call()
    assert dataset_name not in DatasetCatalog.list()


def test_missing_top_level_key_names_file(tmp_path):
    coco = valid_coco()
    del coco["categories"]
    json_file, image_root = write_coco(tmp_path, coco)
    expected = rf"{JSON_NAME}: missing required key\(s\) 'categories'"
    with pytest.raises(KeypointDataError, match=expected):
        load_keypoint_coco_json(json_file, image_root)


def test_missing_json_file_is_reported(tmp_path, dataset_name):
    with pytest.raises(KeypointDataError, match="nope.json: cannot read annotation file"):
        register_keypoint_coco(dataset_name, str(tmp_path / "nope.json"), str(tmp_path))


def test_categories_without_keypoints_are_rejected(tmp_path, dataset_name):
    coco = valid_coco()
    coco["categories"] = [{"id": 1, "name": "person", "supercategory": "person"}]
    json_file, image_root = write_coco(tmp_path, coco)
    expected = rf"{JSON_NAME}: no category has a 'keypoints' list"
    with pytest.raises(KeypointDataError, match=expected):
        register_keypoint_coco(dataset_name, json_file, image_root)
    with pytest.raises(KeypointDataError, match=JSON_NAME):
        load_keypoint_coco_json(json_file, image_root, category_name="person")
    with pytest.raises(KeypointDataError, match="no category named 'cat'"):
        load_keypoint_coco_json(json_file, image_root, category_name="cat")


def test_on_invalid_value_is_checked(tmp_path, dataset_name):
    json_file, image_root = write_coco(tmp_path, valid_coco())
    expected = r"on_invalid must be one of \('error', 'skip'\), got 'ignore'"
    with pytest.raises(ValueError, match=expected):
        load_keypoint_coco_json(json_file, image_root, on_invalid="ignore")
    with pytest.raises(ValueError, match="on_invalid"):
        register_keypoint_coco(dataset_name, json_file, image_root, on_invalid="warn")
    assert dataset_name not in DatasetCatalog.list()


# --------------------------------------------------------------------------- #
# Bad input: record problems, with on_invalid="error" and "skip"
# --------------------------------------------------------------------------- #


def _set_keypoint(ann, index, x=None, y=None, v=None):
    for offset, value in enumerate((x, y, v)):
        if value is not None:
            ann["keypoints"][3 * index + offset] = value


# name -> (mutation of annotation 11 on image 1, reason, text expected in the message)
ANNOTATION_CASES = {
    "short keypoints": (
        lambda a: a["keypoints"].pop(),
        "wrong keypoints length",
        "keypoints has 50 values, expected 51 (17 keypoints x 3)",
    ),
    "keypoints not a list": (
        lambda a: a.update(keypoints={"x": 1}),
        "keypoints not a list",
        "keypoints is dict",
    ),
    "missing keypoints": (lambda a: a.pop("keypoints"), "missing keypoints", "no 'keypoints'"),
    "string keypoint": (
        lambda a: _set_keypoint(a, 1, x="3"),
        "non-numeric keypoint value",
        "(left_eye)",
    ),
    "nan keypoint": (
        lambda a: _set_keypoint(a, 2, y=float("nan")),
        "non-finite keypoint",
        "(right_eye)",
    ),
    "infinite keypoint": (
        lambda a: _set_keypoint(a, 0, x=float("inf")),
        "non-finite keypoint",
        "(nose)",
    ),
    "bad visibility": (lambda a: _set_keypoint(a, 3, v=3), "invalid visibility", "visibility 3"),
    "keypoint far right of image": (
        lambda a: _set_keypoint(a, 5, x=64 * 1.2, v=2),
        "keypoint outside image",
        "64x48 image",
    ),
    "keypoint far above image": (
        lambda a: _set_keypoint(a, 5, y=-10, v=1),
        "keypoint outside image",
        "(left_shoulder)",
    ),
    "non-finite bbox": (
        lambda a: a["bbox"].__setitem__(0, float("nan")),
        "invalid bbox",
        "non-finite",
    ),
    "empty bbox": (lambda a: a["bbox"].__setitem__(2, 0), "invalid bbox", "non-positive"),
    "short bbox": (lambda a: a["bbox"].pop(), "invalid bbox", "[x, y, width, height]"),
    "unknown image": (lambda a: a.update(image_id=99), "unknown image id", "image_id 99"),
    "unknown category": (
        lambda a: a.update(category_id=42),
        "unknown category id",
        "category_id 42",
    ),
}


@pytest.mark.parametrize("case", list(ANNOTATION_CASES))
def test_bad_annotation_raises_naming_file_and_ids(tmp_path, case):
    mutate, reason, detail = ANNOTATION_CASES[case]
    coco = valid_coco()
    mutate(coco["annotations"][1])
    image_id = coco["annotations"][1]["image_id"]
    json_file, image_root = write_coco(tmp_path, coco)
    with pytest.raises(KeypointDataError) as error:
        load_keypoint_coco_json(json_file, image_root)
    message = str(error.value)
    assert message.startswith(f"{json_file}: annotation id 11 (image id {image_id}): ")
    assert detail in message
    assert error.value.reason == reason


@pytest.mark.parametrize("case", list(ANNOTATION_CASES))
def test_bad_annotation_is_skipped_with_one_counted_warning(tmp_path, case, kpext_log):
    mutate, reason, _ = ANNOTATION_CASES[case]
    coco = valid_coco()
    mutate(coco["annotations"][1])
    json_file, image_root = write_coco(tmp_path, coco)
    records = load_keypoint_coco_json(json_file, image_root, on_invalid="skip")
    assert all_annotation_ids(records, coco) == [10, 12]
    assert [r["image_id"] for r in records] == [1, 2, 3]
    [warning] = warnings_of(kpext_log)
    message = warning.getMessage()
    assert "skipped 1 invalid record(s)" in message and f"1 x {reason}" in message
    assert "annotation id 11" in message and JSON_NAME in message


def test_slightly_outside_or_unlabeled_points_are_accepted(tmp_path):
    coco = valid_coco()
    ann = coco["annotations"][0]  # image 1 is 64 x 48; the margin is 10%: 6.4 x 4.8 pixels
    _set_keypoint(ann, 1, x=-6, y=50, v=2)
    _set_keypoint(ann, 2, x=70, y=-4, v=1)
    _set_keypoint(ann, 3, x=1000, y=-1000, v=0)  # unlabeled points may hold anything finite
    json_file, image_root = write_coco(tmp_path, coco)
    assert all_annotation_ids(load_keypoint_coco_json(json_file, image_root), coco) == [10, 11, 12]


def test_crowd_box_may_be_empty(tmp_path):
    coco = valid_coco()
    coco["annotations"][2]["bbox"] = [0, 0, 0, 0]  # annotation 12 is the crowd one
    json_file, image_root = write_coco(tmp_path, coco)
    assert len(load_keypoint_coco_json(json_file, image_root)[1]["annotations"]) == 1


def test_missing_image_file_raises_with_path_and_image_id(tmp_path):
    json_file, image_root = write_coco(tmp_path, valid_coco())
    os.remove(os.path.join(image_root, "img2.jpg"))
    with pytest.raises(KeypointDataError) as error:
        load_keypoint_coco_json(json_file, image_root)
    message = str(error.value)
    assert message.startswith(f"{json_file}: image id 2: ")
    assert os.path.join(image_root, "img2.jpg") in message
    assert error.value.reason == "missing image file"
    # Not checking images is the caller's explicit choice.
    assert len(load_keypoint_coco_json(json_file, image_root, check_images=False)) == 3


def test_missing_image_is_skipped_with_its_annotations(tmp_path, kpext_log):
    coco = valid_coco()
    json_file, image_root = write_coco(tmp_path, coco)
    os.remove(os.path.join(image_root, "img2.jpg"))
    records = load_keypoint_coco_json(json_file, image_root, on_invalid="skip")
    assert [r["image_id"] for r in records] == [1, 3]
    assert all_annotation_ids(records, coco) == [10, 11]  # annotation 12 was on image 2
    [warning] = warnings_of(kpext_log)
    assert "1 x missing image file" in warning.getMessage()
    assert "image id 2" in warning.getMessage()


@pytest.mark.parametrize(
    "change, detail",
    [
        ({"width": 0}, "width/height must be positive"),
        ({"height": None}, "width/height must be positive"),
        ({"file_name": ""}, "has no 'file_name'"),
    ],
)
def test_invalid_image_entry(tmp_path, change, detail):
    coco = valid_coco()
    json_file, image_root = write_coco(tmp_path, coco)
    coco["images"][0].update(change)  # images[0] is image 3 (listed in reverse order)
    write_coco(tmp_path, coco, images=False)
    with pytest.raises(KeypointDataError, match=rf"image id 3: {detail}"):
        load_keypoint_coco_json(json_file, image_root)
    records = load_keypoint_coco_json(json_file, image_root, on_invalid="skip")
    assert [r["image_id"] for r in records] == [1, 2]


def test_skip_warning_counts_problems_per_reason(tmp_path, kpext_log, dataset_name):
    coco = valid_coco()
    coco["annotations"][0]["keypoints"].pop()
    coco["annotations"][1]["keypoints"].append(0)
    coco["annotations"].append({**annotation(13, 1), "image_id": 99})
    json_file, image_root = write_coco(tmp_path, coco)
    os.remove(os.path.join(image_root, "img3.jpg"))
    register_keypoint_coco(dataset_name, json_file, image_root, on_invalid="skip")
    records = DatasetCatalog.get(dataset_name)

    assert [r["image_id"] for r in records] == [1, 2]
    assert all_annotation_ids(records, coco) == [12]
    [warning] = warnings_of(kpext_log)
    message = warning.getMessage()
    assert "skipped 4 invalid record(s)" in message
    assert "2 x wrong keypoints length" in message
    assert "1 x missing image file" in message and "1 x unknown image id" in message
    assert "annotation id 10 (image id 1)" in message and "image id 3" in message


def test_valid_file_logs_no_warning(tmp_path, kpext_log):
    json_file, image_root = write_coco(tmp_path, valid_coco())
    load_keypoint_coco_json(json_file, image_root, on_invalid="skip")
    assert warnings_of(kpext_log) == []
