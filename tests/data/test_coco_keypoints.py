"""Tests of kpext.data's COCO keypoint metadata, registration and loading (the bad-input
policy: test_coco_bad_input.py).

Every test writes its own tiny COCO JSON and images under tmp_path.
"""

import json
import os

import pytest
from coco_helpers import (
    all_annotation_ids,
    annotation,
    forget_dataset,
    person_category,
    valid_coco,
    warnings_of,
    write_coco,
)
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
from kpext.data import keypoint_metadata as km
from kpext.data import keypoint_names as kn
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

FACE_5 = ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]
# Mixed naming conventions on purpose: prefixes, suffixes, single letters, camelCase, caps.
BODY_15 = [
    "head_top", "neck", "r_shoulder", "l_shoulder", "RElbow", "LElbow", "wrist_right",
    "wrist_left", "pelvis", "rightHip", "leftHip", "Right_Knee", "LEFT_KNEE",
    "right_eye_inner_corner", "left_eye_inner_corner",
]  # fmt: skip


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
    assert kn.keypoint_side(name)[0] == side


def test_flip_map_pairs_only_unambiguous_names_that_both_exist():
    assert kn.pair_left_right_names(["left_hand", "nose", "right_foot"]) == []
    # Two different "left eye"s for one right eye: flipping either would be a guess.
    assert kn.pair_left_right_names(["left_eye", "l_eye", "right_eye"]) == []
    assert kn.pair_left_right_names(["eye_right_inner", "eye_left_inner"]) == [
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
