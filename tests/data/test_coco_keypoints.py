"""Tests of kpext.data's COCO keypoint registration, loading and bad-input policy.

Every test writes its own tiny COCO JSON and images under tmp_path.
"""

import json
import logging
import os

import pytest
from PIL import Image

import kpext.data
from kpext.data import (
    KeypointDataError,
    builtin,
    coco_json,
    keypoint_metadata_from_category,
    load_keypoint_coco_json,
    register_all_synthetic,
    register_keypoint_coco,
)
from kpext.data import coco_keypoints as ck
from kpext.data import keypoint_metadata as km
from kpext.data.keypoint_sets import (
    COCO_PERSON_KEYPOINT_NAMES,
    COCO_PERSON_OKS_SIGMAS,
    COCO_PERSON_SKELETON,
    DEFAULT_OKS_SIGMA,
)

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json
from detectron2.data.datasets.builtin_meta import COCO_PERSON_KEYPOINT_FLIP_MAP
from detectron2.structures import BoxMode

JSON_NAME = "person_keypoints_val.json"
IMAGE_SIZES = {1: (64, 48), 2: (40, 30), 3: (32, 32)}  # image id -> (width, height)

FACE_5 = ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]
# Mixed naming conventions on purpose: prefixes, suffixes, single letters, camelCase, caps.
BODY_15 = [
    "head_top", "neck", "r_shoulder", "l_shoulder", "RElbow", "LElbow", "wrist_right",
    "wrist_left", "pelvis", "rightHip", "leftHip", "Right_Knee", "LEFT_KNEE",
    "right_eye_inner_corner", "left_eye_inner_corner",
]  # fmt: skip


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


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


# --------------------------------------------------------------------------- #
# Metadata
# --------------------------------------------------------------------------- #


def test_coco_person_metadata_matches_detectron2_flip_map_and_sigmas():
    meta = keypoint_metadata_from_category(person_category())
    assert meta["keypoint_names"] == list(COCO_PERSON_KEYPOINT_NAMES)
    assert sorted(meta["keypoint_flip_map"]) == sorted(COCO_PERSON_KEYPOINT_FLIP_MAP)
    expected_sigmas = [COCO_PERSON_OKS_SIGMAS[n] for n in COCO_PERSON_KEYPOINT_NAMES]
    assert meta["keypoint_oks_sigmas"] == expected_sigmas
    assert meta["skeleton"] == COCO_PERSON_SKELETON
    assert len(meta["keypoint_connection_rules"]) == len(COCO_PERSON_SKELETON)


def test_connection_rules_follow_skeleton_and_are_coloured_by_side():
    rules = keypoint_metadata_from_category(person_category())["keypoint_connection_rules"]
    names = COCO_PERSON_KEYPOINT_NAMES
    skeleton_names = [(names[i - 1], names[j - 1]) for i, j in COCO_PERSON_SKELETON]
    assert [(a, b) for a, b, _ in rules] == skeleton_names
    colours = {(a, b): colour for a, b, colour in rules}
    assert colours[("left_ankle", "left_knee")] == km.LEFT_LIMB_COLOR
    assert colours[("right_ankle", "right_knee")] == km.RIGHT_LIMB_COLOR
    assert colours[("left_hip", "right_hip")] == km.CENTER_LIMB_COLOR
    assert colours[("nose", "left_eye")] == km.CENTER_LIMB_COLOR
    assert len({km.LEFT_LIMB_COLOR, km.RIGHT_LIMB_COLOR, km.CENTER_LIMB_COLOR}) == 3
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for _, _, c in rules)


def test_face_5_metadata_pairs_suffixed_names_and_defaults_unknown_sigmas(kpext_log):
    category = {"id": 1, "name": "face", "keypoints": FACE_5, "skeleton": [[1, 3], [2, 3], [4, 5]]}
    meta = keypoint_metadata_from_category(category)
    assert meta["keypoint_flip_map"] == [("left_eye", "right_eye"), ("mouth_left", "mouth_right")]
    default = DEFAULT_OKS_SIGMA
    # Issue 12: COCO's person-scale sigmas do not apply to a face's "nose" (a person's is
    # relative to the whole body); the face gets the default, with one warning ...
    assert meta["keypoint_oks_sigmas"] == [default] * 5
    default_lines = [
        r.getMessage() for r in warnings_of(kpext_log) if "OKS sigma" in r.getMessage()
    ]
    assert len(default_lines) == 1 and "oks_sigmas=" in default_lines[0]
    # ... and COCO's by name only when asked for.
    meta = keypoint_metadata_from_category(category, "coco")
    assert meta["keypoint_oks_sigmas"] == [0.025, 0.025, 0.026, default, default]
    assert [r[:2] for r in meta["keypoint_connection_rules"]] == [
        ("left_eye", "nose"), ("right_eye", "nose"), ("mouth_left", "mouth_right"),
    ]  # fmt: skip


def test_body_15_metadata_pairs_mixed_naming_conventions():
    meta = keypoint_metadata_from_category({"id": 1, "name": "body", "keypoints": BODY_15})
    assert meta["keypoint_flip_map"] == [
        ("l_shoulder", "r_shoulder"),
        ("LElbow", "RElbow"),
        ("wrist_left", "wrist_right"),
        ("leftHip", "rightHip"),
        ("LEFT_KNEE", "Right_Knee"),
        ("left_eye_inner_corner", "right_eye_inner_corner"),
    ]
    assert meta["keypoint_connection_rules"] == [] and meta["skeleton"] == []
    assert meta["keypoint_oks_sigmas"] == [DEFAULT_OKS_SIGMA] * 15


@pytest.mark.parametrize(
    "name, side",
    [
        ("left_eye", "left"), ("Right_Eye", "right"), ("l_eye", "left"), ("R-eye", "right"),
        ("eye_left", "left"), ("eye_R", "right"), ("eye_left_inner", "left"),
        ("leftEye", "left"), ("RightEye", "right"), ("LEFT_EYE", "left"), ("lefteye", "left"),
        ("nose", None), ("lip_top", None), ("left_eye_right_side", None),
    ],
)  # fmt: skip
def test_keypoint_side_recognises_prefix_suffix_infix_and_camel_case(name, side):
    assert km.keypoint_side(name)[0] == side


def test_flip_map_pairs_only_unambiguous_names_that_both_exist():
    assert km.pair_left_right_names(["left_hand", "nose", "right_foot"]) == []
    # Two different "left eye"s for one right eye: flipping either would be a guess.
    assert km.pair_left_right_names(["left_eye", "l_eye", "right_eye"]) == []
    assert km.pair_left_right_names(["eye_right_inner", "eye_left_inner"]) == [
        ("eye_left_inner", "eye_right_inner")
    ]


def test_given_oks_sigmas_are_used_and_checked():
    category = {"id": 1, "name": "face", "keypoints": FACE_5}
    assert keypoint_metadata_from_category(category, [0.1] * 5)["keypoint_oks_sigmas"] == [0.1] * 5
    with pytest.raises(KeypointDataError, match="oks_sigmas has 4 values"):
        keypoint_metadata_from_category(category, [0.1] * 4)
    with pytest.raises(KeypointDataError, match="positive"):
        keypoint_metadata_from_category(category, [0.1, 0.1, 0.0, 0.1, 0.1])


def test_sigmas_of_keypoints_known_only_by_their_count():
    # what tracking and the demo use for a model's output without dataset metadata
    assert km.oks_sigmas_for_count(17) == [
        COCO_PERSON_OKS_SIGMAS[n] for n in COCO_PERSON_KEYPOINT_NAMES
    ]
    assert km.oks_sigmas_for_count(5) == [DEFAULT_OKS_SIGMA] * 5


@pytest.mark.parametrize(
    "category, match",
    [
        ({"keypoints": []}, "non-empty 'keypoints'"),
        ({"keypoints": ["a", "b", "a"]}, "duplicate keypoint names"),
        ({"keypoints": ["a", "b"], "skeleton": [[1, 3]]}, r"\[1, 2\]"),
        ({"keypoints": ["a", "b"], "skeleton": [[0, 1]]}, "1-based"),
    ],
)
def test_invalid_category_is_rejected(category, match):
    with pytest.raises(KeypointDataError, match=match):
        keypoint_metadata_from_category({"id": 1, "name": "x", **category})


def test_registration_sets_metadata_from_the_json(tmp_path, dataset_name):
    coco = valid_coco(keypoint_names=FACE_5)
    coco["categories"][0].update(name="face", skeleton=[[1, 3], [2, 3]])
    json_file, image_root = write_coco(tmp_path, coco)
    register_keypoint_coco(dataset_name, json_file, image_root)

    meta = MetadataCatalog.get(dataset_name)
    assert meta.json_file == json_file and meta.image_root == image_root
    assert meta.evaluator_type == "coco"
    assert meta.thing_classes == ["face"]
    assert meta.thing_dataset_id_to_contiguous_id == {1: 0}
    assert meta.keypoint_names == FACE_5
    assert meta.keypoint_flip_map == [("left_eye", "right_eye"), ("mouth_left", "mouth_right")]
    assert len(meta.keypoint_connection_rules) == len(meta.skeleton) == 2
    assert meta.keypoint_oks_sigmas[:3] == [0.025, 0.025, 0.026]
    assert meta.keypoint_oks_sigmas[3:] == [DEFAULT_OKS_SIGMA] * 2


def test_registration_with_given_sigmas(tmp_path, dataset_name):
    json_file, image_root = write_coco(tmp_path, valid_coco(num_keypoints=5))
    register_keypoint_coco(dataset_name, json_file, image_root, oks_sigmas=[0.2] * 5)
    assert MetadataCatalog.get(dataset_name).keypoint_oks_sigmas == [0.2] * 5


# --------------------------------------------------------------------------- #
# Loading: parity with Detectron2 and conventions
# --------------------------------------------------------------------------- #


def test_records_match_detectron2_load_coco_json(tmp_path, dataset_name):
    coco = valid_coco()
    json_file, image_root = write_coco(tmp_path, coco)
    ours = load_keypoint_coco_json(json_file, image_root)
    d2_name = dataset_name + "_d2"
    try:
        theirs = load_coco_json(json_file, image_root, dataset_name=d2_name)
    finally:
        forget_dataset(d2_name)

    assert len(ours) == len(theirs) == 3
    for mine, ref in zip(ours, theirs):
        assert mine.keys() == ref.keys()
        for key in ("file_name", "height", "width", "image_id"):
            assert mine[key] == ref[key]
        assert len(mine["annotations"]) == len(ref["annotations"])
        for ann, ref_ann in zip(mine["annotations"], ref["annotations"]):
            # The one documented difference: kpext does not load segmentations.
            ref_ann = {k: v for k, v in ref_ann.items() if k != "segmentation"}
            assert ann.keys() == ref_ann.keys()
            for key in ann:
                assert ann[key] == ref_ann[key], key
    assert [r["image_id"] for r in ours] == [1, 2, 3]  # sorted, as Detectron2 does
    assert ours[2]["annotations"] == []  # images without annotations are kept


def test_keypoints_get_half_pixel_offset_on_x_and_y_only(tmp_path):
    coco = valid_coco()
    raw = coco["annotations"][0]["keypoints"]
    raw[0:6] = [10, 20, 2, 0, 0, 0]
    json_file, image_root = write_coco(tmp_path, coco)
    kps = load_keypoint_coco_json(json_file, image_root)[0]["annotations"][0]["keypoints"]
    assert kps[0:6] == [10.5, 20.5, 2.0, 0.5, 0.5, 0.0]
    assert len(kps) == 51 and all(isinstance(v, float) for v in kps)


def test_record_fields_and_types(tmp_path):
    json_file, image_root = write_coco(tmp_path, valid_coco())
    record = load_keypoint_coco_json(json_file, image_root)[0]
    assert record["file_name"] == os.path.join(image_root, "img1.jpg")
    assert (record["width"], record["height"], record["image_id"]) == (64, 48, 1)
    ann = record["annotations"][0]
    assert set(ann) == {"iscrowd", "bbox", "bbox_mode", "category_id", "keypoints"}
    assert ann["bbox_mode"] == BoxMode.XYWH_ABS and ann["category_id"] == 0


@pytest.mark.parametrize("num_keypoints", [5, 15, 17, 68, 106])
def test_any_number_of_keypoints_registers_and_loads(tmp_path, dataset_name, num_keypoints):
    json_file, image_root = write_coco(tmp_path, valid_coco(num_keypoints))
    register_keypoint_coco(dataset_name, json_file, image_root)
    records = DatasetCatalog.get(dataset_name)
    assert len(MetadataCatalog.get(dataset_name).keypoint_names) == num_keypoints
    lengths = [len(a["keypoints"]) for r in records for a in r["annotations"]]
    assert lengths == [3 * num_keypoints] * 3


def test_datasetcatalog_get_returns_fresh_records(tmp_path, dataset_name):
    json_file, image_root = write_coco(tmp_path, valid_coco())
    register_keypoint_coco(dataset_name, json_file, image_root)
    first = DatasetCatalog.get(dataset_name)
    assert first == load_keypoint_coco_json(json_file, image_root)
    first[0]["annotations"][0]["keypoints"][0] = -1.0  # callers may mutate their copy
    assert DatasetCatalog.get(dataset_name)[0]["annotations"][0]["keypoints"][0] != -1.0


def test_json_is_parsed_once_for_registration_and_load(tmp_path, dataset_name, monkeypatch):
    parses = []
    real_parse = coco_json._parse_json_file
    monkeypatch.setattr(
        coco_json, "_parse_json_file", lambda *a: parses.append(a) or real_parse(*a)
    )
    coco = valid_coco()
    json_file, image_root = write_coco(tmp_path, coco)
    register_keypoint_coco(dataset_name, json_file, image_root)
    DatasetCatalog.get(dataset_name)
    assert len(parses) == 1

    coco["annotations"].pop()  # rewriting the file invalidates the cached parse
    write_coco(tmp_path, coco, images=False)
    assert sum(len(r["annotations"]) for r in DatasetCatalog.get(dataset_name)) == 2
    assert len(parses) == 2


def test_other_categories_are_dropped(tmp_path, dataset_name):
    coco = valid_coco()
    coco["categories"].append({"id": 7, "name": "ball", "supercategory": "thing"})
    coco["annotations"].append({**annotation(13, 1), "category_id": 7, "keypoints": "n/a"})
    json_file, image_root = write_coco(tmp_path, coco)
    register_keypoint_coco(dataset_name, json_file, image_root)
    records = DatasetCatalog.get(dataset_name)
    assert MetadataCatalog.get(dataset_name).thing_classes == ["person"]
    assert all_annotation_ids(records, coco) == [10, 11, 12]


def test_category_name_selects_among_different_keypoint_categories(tmp_path, dataset_name):
    coco = valid_coco()
    coco["categories"].append({"id": 2, "name": "face", "keypoints": FACE_5})
    coco["annotations"].append(annotation(13, 1, 5, category_id=2))
    json_file, image_root = write_coco(tmp_path, coco)
    with pytest.raises(KeypointDataError, match="category_name"):
        register_keypoint_coco(dataset_name, json_file, image_root)

    register_keypoint_coco(dataset_name, json_file, image_root, category_name="face")
    meta = MetadataCatalog.get(dataset_name)
    assert meta.thing_classes == ["face"] and meta.thing_dataset_id_to_contiguous_id == {2: 0}
    records = DatasetCatalog.get(dataset_name)
    kept = [(a["category_id"], len(a["keypoints"])) for r in records for a in r["annotations"]]
    assert kept == [(0, 15)]


def test_categories_sharing_a_keypoint_list_become_classes(tmp_path, dataset_name):
    coco = valid_coco()
    coco["categories"].append(person_category(category_id=5, name="mannequin"))
    coco["annotations"].append(annotation(13, 2, category_id=5))
    json_file, image_root = write_coco(tmp_path, coco)
    register_keypoint_coco(dataset_name, json_file, image_root)
    meta = MetadataCatalog.get(dataset_name)
    assert meta.thing_classes == ["person", "mannequin"]
    assert meta.thing_dataset_id_to_contiguous_id == {1: 0, 5: 1}
    records = DatasetCatalog.get(dataset_name)
    assert sorted(a["category_id"] for r in records for a in r["annotations"]) == [0, 0, 0, 1]


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


# --------------------------------------------------------------------------- #
# Registration twice; the built-in synthetic datasets
# --------------------------------------------------------------------------- #


def test_registering_a_name_twice_is_an_error(tmp_path, dataset_name):
    json_file, image_root = write_coco(tmp_path, valid_coco())
    register_keypoint_coco(dataset_name, json_file, image_root)
    with pytest.raises(ValueError, match=f"Dataset '{dataset_name}' is already registered"):
        register_keypoint_coco(dataset_name, json_file, image_root)
    assert len(DatasetCatalog.get(dataset_name)) == 3  # the first registration still works


def test_synthetic_datasets_are_registered_on_import_and_idempotently():
    assert {"kpext_synth_train", "kpext_synth_val"} <= set(DatasetCatalog.list())
    assert "keypoints_coco_2017_train" in DatasetCatalog.list()  # Detectron2's own, untouched
    register_all_synthetic()  # importing twice / calling again must not raise
    import importlib

    importlib.reload(kpext.data)
    meta = MetadataCatalog.get("kpext_synth_val")
    assert meta.keypoint_names == list(COCO_PERSON_KEYPOINT_NAMES)
    assert meta.thing_classes == ["person"] and meta.evaluator_type == "coco"
    expected_json = os.path.join("synthetic", "annotations", "person_keypoints_val.json")
    assert meta.json_file.endswith(expected_json)


def test_datasets_root_comes_from_environment(monkeypatch):
    monkeypatch.delenv("KPEXT_DATASETS", raising=False)
    monkeypatch.setenv("DETECTRON2_DATASETS", "/d2")
    assert builtin.default_datasets_root() == "/d2"
    monkeypatch.setenv("KPEXT_DATASETS", "/kp")
    assert builtin.default_datasets_root() == "/kp"
    assert builtin.synthetic_split_files("/kp", "train") == (
        "/kp/synthetic/annotations/person_keypoints_train.json",
        "/kp/synthetic/train/images",
    )


@pytest.fixture
def synthetic_at(tmp_path):
    """Re-register the synthetic datasets under tmp_path; restore them afterwards."""

    def drop_synthetic():
        for split in builtin.SYNTHETIC_SPLITS:
            name = f"kpext_synth_{split}"
            forget_dataset(name)

    drop_synthetic()
    register_all_synthetic(str(tmp_path))  # before any JSON exists: must not read it
    yield tmp_path
    drop_synthetic()
    register_all_synthetic()


def test_synthetic_loader_is_lazy_and_metadata_equals_registered_json(synthetic_at, dataset_name):
    json_file, image_root = builtin.synthetic_split_files(str(synthetic_at), "val")
    assert not os.path.exists(json_file)
    os.makedirs(os.path.dirname(json_file))
    os.makedirs(image_root)
    coco = valid_coco()
    with open(json_file, "w") as f:
        json.dump(coco, f)
    for image in coco["images"]:
        size = (image["width"], image["height"])
        Image.new("RGB", size).save(os.path.join(image_root, image["file_name"]))

    records = DatasetCatalog.get("kpext_synth_val")
    assert all_annotation_ids(records, coco) == [10, 11, 12]

    # The static metadata is exactly what reading the JSON gives.
    register_keypoint_coco(dataset_name, json_file, image_root)
    static = MetadataCatalog.get("kpext_synth_val").as_dict()
    from_json = MetadataCatalog.get(dataset_name).as_dict()
    static.pop("name"), from_json.pop("name")
    assert static == from_json


def test_synthetic_loader_rejects_a_json_that_disagrees_with_its_metadata(synthetic_at):
    json_file, image_root = builtin.synthetic_split_files(str(synthetic_at), "train")
    os.makedirs(os.path.dirname(json_file))
    with open(json_file, "w") as f:
        json.dump(valid_coco(num_keypoints=5), f)
    with pytest.raises(KeypointDataError, match="keypoint_names in the file .* differ"):
        DatasetCatalog.get("kpext_synth_train")
