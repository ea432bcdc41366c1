"""Real keypoint datasets as they are published (issue 12).

One small fixture per normalisation rule, written here into tmp dirs (tiny images drawn
with cv2): each registers, trains two iterations of the tiniest model and evaluates to a
finite keypoint AP on CPU (one parametrised end-to-end test), and fast unit tests check
each rule's result and warning. Inputs that cannot be normalised are refused with an
error naming the file, the record and the fix.
"""

import copy
import json
import logging
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from engine_helpers import BASE_CONFIG, TINY_OVERRIDES  # the engine tests' model

from kpext import add_kpext_config
from kpext.data import (
    KeypointDataError,
    load_keypoint_coco_json,
    normalization,
    register_keypoint_coco,
)
from kpext.data import coco_keypoints as ck
from kpext.data import keypoint_metadata as km
from kpext.data import keypoint_names as kn
from kpext.data.coco_json import read_coco_json
from kpext.data.keypoint_sets import (
    COCO_PERSON_KEYPOINT_NAMES,
    COCO_PERSON_OKS_SIGMAS,
    DEFAULT_OKS_SIGMA,
)
from kpext.engine import KpextTrainer, check_horizontal_flip
from kpext.evaluation import build_keypoint_evaluator, normalized_ground_truth_file

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog

REPO = Path(__file__).resolve().parents[2]
NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]
SKELETON = [[1, 2], [1, 3], [2, 4], [3, 5]]
IMAGE_SIZE = 96
NUM_IMAGES = 4


# --------------------------------------------------------------------------- #
# Fixture files: a well-formed tiny set, then one deviation per rule
# --------------------------------------------------------------------------- #


def object_keypoints(index):
    """Five points inside the object's box [16 + 4i, 16, 48, 56]; the last is occluded."""
    x0 = 16 + 4 * index
    points = [(x0 + 24, 30), (x0 + 16, 24), (x0 + 32, 24), (x0 + 8, 18), (x0 + 40, 18)]
    return [[float(x), float(y), 1 if i == 4 else 2] for i, (x, y) in enumerate(points)]


def well_formed_coco(names=NAMES, category_name="fox"):
    """Four 96x96 images with one object each, in COCO's layout exactly."""
    images, annotations = [], []
    for i in range(NUM_IMAGES):
        images.append({"id": i + 1, "file_name": f"{i + 1:03d}.png", "width": 96, "height": 96})
        flat = [v for point in object_keypoints(i)[: len(names)] for v in point]
        flat += [0.0, 0.0, 0] * (len(names) - len(flat) // 3)
        annotations.append(
            {
                "id": 100 + i,
                "image_id": i + 1,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [16.0 + 4 * i, 16.0, 48.0, 56.0],
                "area": 48.0 * 56.0,
                "num_keypoints": sum(1 for v in flat[2::3] if v > 0),
                "keypoints": flat,
            }
        )
    category = {"id": 1, "name": category_name, "supercategory": "animal"}
    category.update(keypoints=list(names), skeleton=[list(p) for p in SKELETON])
    return {"images": images, "annotations": annotations, "categories": [category]}


def write_dataset(directory, coco):
    """``coco`` as JSON plus a drawn image per entry; returns (json_file, image_root)."""
    image_root = directory / "images"
    image_root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for image in coco["images"]:
        picture = rng.integers(40, 90, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        for ann in coco["annotations"]:
            if ann.get("image_id") == image["id"] and ann.get("bbox"):
                x, y, w, h = (int(v) for v in ann["bbox"])
                cv2.ellipse(picture, (x + w // 2, y + h // 2), (w // 2, h // 2), 0, 0, 360,
                            (200, 150, 90), -1)  # fmt: skip
        cv2.imwrite(str(image_root / image["file_name"]), picture)
    json_file = directory / "annotations.json"
    json_file.write_text(json.dumps(coco))
    return str(json_file), str(image_root)


def _pop(field):
    def mutate(coco):
        for ann in coco["annotations"]:
            ann.pop(field)

    return mutate


def _nested(coco):
    for ann in coco["annotations"]:
        flat = ann["keypoints"]
        ann["keypoints"] = [flat[i : i + 3] for i in range(0, len(flat), 3)]


def _center_scale(coco):
    for ann in coco["annotations"]:
        x, y, w, h = ann.pop("bbox")
        ann["center"], ann["scale"] = [x + w / 2, y + h / 2], [w / 200, h / 200]


def _num_keypoints_zero(coco):
    for ann in coco["annotations"]:
        ann["num_keypoints"] = 0


def _zero_based_skeleton(coco):
    coco["categories"][0]["skeleton"] = [[a - 1, b - 1] for a, b in SKELETON]


def _skeleton_out_of_range(coco):
    coco["categories"][0]["skeleton"] = SKELETON + [[5, 17], [16, 17]]  # copied from COCO's


def _sibling_field(coco):
    for ann in coco["annotations"]:
        ann["keypoints_5"] = ann["keypoints"]
        ann["keypoints"] = [0.0] * 51  # a 17-point person field next to the 5-point one


def _duplicate_id(coco):
    coco["annotations"][2]["id"] = coco["annotations"][1]["id"]


def _unnamed_points(coco):
    coco["categories"][0]["keypoints"] = ["p1", "p2", "p3", "p4", "p5"]


def _camel_case(coco):
    coco["categories"][0]["keypoints"] = ["nose", "leftEye", "rightEye", "LEFT_EAR", "RIGHT_EAR"]


def _many_categories(coco):
    coco["categories"] += [
        {**coco["categories"][0], "id": 2, "name": "wolf"},
        {**coco["categories"][0], "id": 3, "name": "dog"},
    ]
    for i, ann in enumerate(coco["annotations"]):
        ann["category_id"] = 1 + i % 3


# name -> (mutation, register_keypoint_coco options, start of the expected warning or None)
REAL_FORMATS = {
    "iscrowd missing": (_pop("iscrowd"), {}, "annotation(s) have no 'iscrowd'"),
    "area missing": (_pop("area"), {}, "annotation(s) have no 'area'"),
    "num_keypoints missing": (_pop("num_keypoints"), {}, "annotation(s) have no 'num_keypoints'"),
    "num_keypoints disagrees": (_num_keypoints_zero, {}, "have a 'num_keypoints' that differs"),
    "skeleton 0-based": (_zero_based_skeleton, {}, "skeleton uses 0-based keypoint indices"),
    "skeleton out of range": (_skeleton_out_of_range, {}, "dropped 2 skeleton entr"),
    "nested keypoints": (_nested, {}, "have nested [[x, y, v], ...] keypoints"),
    "bbox from keypoints": (_pop("bbox"), {}, "using the box of their labelled keypoints"),
    "bbox from center/scale": (_center_scale, {}, "using their 'center' and 'scale'"),
    "keypoints_field": (_sibling_field, {"keypoints_field": "keypoints_5"}, None),
    "duplicate id skipped": (_duplicate_id, {"on_invalid": "skip"}, "1 x duplicate annotation id"),
    "flip_map given": (_unnamed_points, {"flip_map": [("p2", "p3"), ("p4", "p5")]}, None),
    "symmetric by declaration": (_unnamed_points, {"flip_map": []}, None),
    "camelCase and upper-case sides": (_camel_case, {}, None),
    "many categories, one keypoint set": (_many_categories, {}, None),
}


def real_format_file(tmp_path, case):
    mutate, options, _ = REAL_FORMATS[case]
    coco = well_formed_coco()
    mutate(coco)
    return (*write_dataset(tmp_path, coco), options)


def warning_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# --------------------------------------------------------------------------- #
# End to end: register, train two iterations, evaluate
# --------------------------------------------------------------------------- #


class _QuietTrainer(KpextTrainer):
    def build_writers(self):
        return []  # no metrics files or TensorBoard for two iterations


def train_and_evaluate(dataset_name, output_dir, *overrides):
    """Train the engine tests' tiny model two iterations on ``dataset_name`` and evaluate it
    on the same dataset; returns Detectron2's results dict."""
    meta = MetadataCatalog.get(dataset_name)
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    cfg.merge_from_list(TINY_OVERRIDES)
    cfg.merge_from_list(list(overrides))
    cfg.DATASETS.TRAIN = cfg.DATASETS.TEST = (dataset_name,)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = len(meta.keypoint_names)
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = len(meta.thing_classes)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0  # an untrained model must still detect
    cfg.SOLVER.MAX_ITER, cfg.SOLVER.CHECKPOINT_PERIOD = 2, 1000
    cfg.OUTPUT_DIR = str(output_dir)
    os.makedirs(output_dir, exist_ok=True)  # default_setup's job in train_net
    trainer = _QuietTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    return trainer._last_eval_results


@pytest.mark.parametrize("case", list(REAL_FORMATS))
def test_real_format_registers_trains_and_evaluates(tmp_path, dataset_name, kpext_log, case):
    json_file, image_root, options = real_format_file(tmp_path / "data", case)
    register_keypoint_coco(dataset_name, json_file, image_root, **options)
    results = train_and_evaluate(dataset_name, tmp_path / "out")
    assert math.isfinite(results["keypoints"]["AP"]) and math.isfinite(results["bbox"]["AP"])

    expected = REAL_FORMATS[case][2]
    if expected is not None:
        lines = [line for line in warning_lines(kpext_log) if expected in line]
        assert len(lines) == 1, warning_lines(kpext_log)  # once per dataset
        assert json_file in lines[0]
    # The evaluation ground truth lies under the output folder, not next to the data.
    assert not list(Path(json_file).parent.glob("*ground_truth*"))
    assert list((tmp_path / "out").rglob("ground_truth/*.json"))


# --------------------------------------------------------------------------- #
# Each rule's result
# --------------------------------------------------------------------------- #


def load_case(tmp_path, case):
    json_file, image_root, options = real_format_file(tmp_path, case)
    load_options = {k: v for k, v in options.items() if k in ("keypoints_field", "on_invalid")}
    return json_file, load_keypoint_coco_json(json_file, image_root, **load_options)


def test_nested_keypoints_load_like_flat_ones(tmp_path):
    _, nested = load_case(tmp_path / "a", "nested keypoints")
    flat = load_keypoint_coco_json(*write_dataset(tmp_path / "b", well_formed_coco()))
    assert [r["annotations"] for r in nested] == [r["annotations"] for r in flat]


def test_box_from_center_and_scale_is_the_published_box(tmp_path):
    _, records = load_case(tmp_path, "bbox from center/scale")
    assert records[1]["annotations"][0]["bbox"] == pytest.approx([20.0, 16.0, 48.0, 56.0])


def test_box_from_keypoints_encloses_them_with_the_documented_margin(tmp_path):
    _, records = load_case(tmp_path, "bbox from keypoints")
    # image 1's points span x 24..56, y 18..30 (pixel indices): pad 10% of 32 = 3.2 px
    assert records[0]["annotations"][0]["bbox"] == pytest.approx([20.8, 14.8, 38.4, 18.4])
    assert normalization.bbox_from_keypoints([5.0, 5.0, 2], 96, 96) == [3.0, 3.0, 4.0, 4.0]
    assert normalization.bbox_from_keypoints([5.0, 5.0, 0], 96, 96) is None


def test_keypoints_field_reads_the_named_field(tmp_path):
    _, records = load_case(tmp_path, "keypoints_field")
    assert [len(a["keypoints"]) for r in records for a in r["annotations"]] == [15] * 4


def test_skeleton_is_normalised_never_refused(tmp_path, dataset_name, kpext_log):
    json_file, image_root, _ = real_format_file(tmp_path, "skeleton 0-based")
    register_keypoint_coco(dataset_name, json_file, image_root)
    assert MetadataCatalog.get(dataset_name).skeleton == SKELETON
    assert km.normalize_skeleton([[1, 2], [2, 6], "x", [0, 1]], 5) == (
        [[1, 2]],
        False,
        [[2, 6], "x", [0, 1]],
    )
    assert km.normalize_skeleton("nonsense", 5) == ([], False, ["nonsense"])


def test_evaluation_ground_truth_has_what_pycocotools_reads(tmp_path, dataset_name, kpext_log):
    coco = well_formed_coco()
    for rule in (_pop("iscrowd"), _pop("area"), _pop("num_keypoints"), _pop("id"), _nested):
        rule(coco)
    coco["annotations"][0]["keypoints"][4] = [0, 0, 0]  # one point unlabelled
    json_file, image_root = write_dataset(tmp_path / "data", coco)
    register_keypoint_coco(dataset_name, json_file, image_root)
    path = normalized_ground_truth_file(dataset_name, str(tmp_path / "out"))
    assert path.startswith(str(tmp_path / "out"))
    ground_truth = json.loads(Path(path).read_text())
    anns = ground_truth["annotations"]
    assert [a["num_keypoints"] for a in anns] == [4, 5, 5, 5]
    assert [a["iscrowd"] for a in anns] == [0] * 4 and [a["id"] for a in anns] == [1, 2, 3, 4]
    assert [a["area"] for a in anns] == [48.0 * 56.0] * 4
    assert all(len(a["keypoints"]) == 15 for a in anns)
    assert ground_truth["categories"][0]["skeleton"] == SKELETON
    assert "have no 'id'" in "\n".join(warning_lines(kpext_log))

    # Cached: a second evaluator reads the same file without writing it again.
    mtime = os.stat(path).st_mtime_ns
    assert normalized_ground_truth_file(dataset_name, str(tmp_path / "out")) == path
    assert os.stat(path).st_mtime_ns == mtime
    # The registered metadata still names the user's file.
    assert MetadataCatalog.get(dataset_name).json_file == json_file


def test_evaluator_scores_ground_truth_of_a_deviating_file_fully(tmp_path, dataset_name):
    import torch

    from detectron2.structures import Boxes, Instances

    json_file, image_root, _ = real_format_file(tmp_path, "bbox from center/scale")
    register_keypoint_coco(dataset_name, json_file, image_root)
    cfg = get_cfg()
    add_kpext_config(cfg)
    evaluator = build_keypoint_evaluator(cfg, dataset_name, str(tmp_path / "eval"), False)
    evaluator.reset()
    for record in DatasetCatalog.get(dataset_name):
        inst = Instances((record["height"], record["width"]))
        ann = record["annotations"][0]
        x, y, w, h = ann["bbox"]
        inst.pred_boxes = Boxes(torch.tensor([[x, y, x + w, y + h]]))
        inst.scores, inst.pred_classes = torch.ones(1), torch.zeros(1, dtype=torch.long)
        inst.pred_keypoints = torch.tensor(ann["keypoints"]).reshape(1, -1, 3)
        evaluator.process([record], [{"instances": inst}])
    results = evaluator.evaluate()
    assert results["keypoints"]["AP"] == pytest.approx(100.0)


def test_records_skipped_by_the_policy_are_not_evaluation_ground_truth(tmp_path, dataset_name):
    json_file, image_root, _ = real_format_file(tmp_path, "duplicate id skipped")
    register_keypoint_coco(dataset_name, json_file, image_root, on_invalid="skip")
    path = normalized_ground_truth_file(dataset_name, str(tmp_path / "out"))
    assert [a["id"] for a in json.loads(Path(path).read_text())["annotations"]] == [100, 101, 103]


def test_warnings_are_printed_once_per_dataset(tmp_path, kpext_log):
    json_file, image_root, _ = real_format_file(tmp_path, "iscrowd missing")
    for _ in range(3):
        load_keypoint_coco_json(json_file, image_root)
    assert len([w for w in warning_lines(kpext_log) if "'iscrowd'" in w]) == 1


def test_well_formed_file_prints_no_normalisation_warning(tmp_path, dataset_name, kpext_log):
    coco = well_formed_coco(names=COCO_PERSON_KEYPOINT_NAMES, category_name="person")
    json_file, image_root = write_dataset(tmp_path, coco)
    register_keypoint_coco(dataset_name, json_file, image_root)
    normalized_ground_truth_file(dataset_name, str(tmp_path / "out"))
    assert warning_lines(kpext_log) == []


def test_every_rule_is_documented_with_its_warning():
    readme = (REPO / "datasets" / "README.md").read_text()
    for rule, message in normalization.RULES.items():
        before, after = message.split("{first}")
        assert before in readme and after in readme, rule


# --------------------------------------------------------------------------- #
# Refused inputs: the error names the file, the record and the fix
# --------------------------------------------------------------------------- #


def test_keypoints_in_a_sibling_field_name_it_and_the_option(tmp_path):
    json_file, image_root, _ = real_format_file(tmp_path, "keypoints_field")
    for policy in ("error", "skip"):
        with pytest.raises(KeypointDataError) as error:
            load_keypoint_coco_json(json_file, image_root, on_invalid=policy)
        message = str(error.value)
        assert message.startswith(f"{json_file}: annotation id 100 (image id 1): ")
        assert "'keypoints_5'" in message and "keypoints_field='keypoints_5'" in message


def test_duplicate_annotation_ids_are_an_error_naming_file_and_id(tmp_path):
    json_file, image_root, _ = real_format_file(tmp_path, "duplicate id skipped")
    with pytest.raises(KeypointDataError) as error:
        load_keypoint_coco_json(json_file, image_root)
    message = str(error.value)
    assert message.startswith(f"{json_file}: annotation id 101 (image id 3): ")
    assert "also used by annotation id 101 (image id 2)" in message
    assert "on_invalid='skip'" in message and "DATASETS.KPEXT.ON_INVALID skip" in message
    assert error.value.reason == "duplicate annotation id"


def test_missing_box_without_anything_to_take_it_from(tmp_path):
    coco = well_formed_coco()
    ann = coco["annotations"][0]
    ann.pop("bbox")
    ann["keypoints"] = [0.0, 0.0, 0] * 5
    json_file, image_root = write_dataset(tmp_path, coco)
    with pytest.raises(KeypointDataError) as error:
        load_keypoint_coco_json(json_file, image_root)
    message = str(error.value)
    assert message.startswith(f"{json_file}: annotation id 100 (image id 1): ")
    assert "add a 'bbox' [x, y, width, height]" in message


def test_categories_with_different_keypoint_sets_are_named(tmp_path, dataset_name):
    coco = well_formed_coco()
    coco["categories"].append(
        {"id": 2, "name": "hand", "keypoints": ["wrist", "thumb_tip", "index_tip"]}
    )
    json_file, image_root = write_dataset(tmp_path, coco)
    with pytest.raises(KeypointDataError) as error:
        register_keypoint_coco(dataset_name, json_file, image_root)
    message = str(error.value)
    assert message.startswith(f"{json_file}: categories with different keypoint lists")
    assert "['fox']: 5 keypoints" in message and "['hand']: 3 keypoints" in message
    assert "category_name='fox'" in message
    register_keypoint_coco(dataset_name, json_file, image_root, category_name="fox")


def flip_cfg(dataset_name, flip="horizontal"):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    cfg.DATASETS.TRAIN = (dataset_name,)
    cfg.INPUT.RANDOM_FLIP = flip
    return cfg


def test_horizontal_flip_without_pairs_is_refused(tmp_path, dataset_name, kpext_log):
    coco = well_formed_coco()
    _unnamed_points(coco)
    json_file, image_root = write_dataset(tmp_path, coco)
    register_keypoint_coco(dataset_name, json_file, image_root)
    assert any("no left/right keypoint pairs" in w for w in warning_lines(kpext_log))
    with pytest.raises(ValueError) as error:
        KpextTrainer.build_train_loader(flip_cfg(dataset_name))
    message = str(error.value)
    assert f"Dataset '{dataset_name}' has 5 keypoints (p1, p2" in message
    assert "flip_map=[('left_x', 'right_x'), ...]" in message and "flip_map=[]" in message
    assert "INPUT.RANDOM_FLIP none" in message
    check_horizontal_flip(flip_cfg(dataset_name, "none"))
    check_horizontal_flip(flip_cfg(dataset_name, "vertical"))


def test_flip_map_override_is_checked(tmp_path, dataset_name):
    json_file, image_root = write_dataset(tmp_path, well_formed_coco())
    with pytest.raises(KeypointDataError, match=r"names \['tail'\], not keypoints of this set"):
        register_keypoint_coco(dataset_name, json_file, image_root, flip_map=[("left_eye", "tail")])
    with pytest.raises(KeypointDataError, match="only one pair"):
        register_keypoint_coco(
            dataset_name, json_file, image_root, flip_map=[("left_eye", "right_eye")] * 2
        )
    register_keypoint_coco(
        dataset_name, json_file, image_root, flip_map=[("left_ear", "right_ear")]
    )
    meta = MetadataCatalog.get(dataset_name)
    assert meta.keypoint_flip_map == [("left_ear", "right_ear")]
    assert meta.keypoint_flip_map_declared


# --------------------------------------------------------------------------- #
# Left/right pairing and OKS sigmas
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "left, right",
    [
        ("left_eye", "right_eye"), ("l_eye", "r_eye"), ("Left Eye", "Right Eye"),
        ("leftEye", "rightEye"), ("eye_l", "eye_r"), ("LEFT_EYE", "RIGHT_EYE"),
        ("LeftEye", "RightEye"), ("eye-left", "eye-right"),
    ],
)  # fmt: skip
def test_common_naming_styles_pair(left, right):
    assert kn.pair_left_right_names(["nose", right, left]) == [(left, right)]
    assert kn.normalized_keypoint_name(left) == "left_eye"


def test_ambiguous_pairs_are_refused_and_reported(kpext_log):
    names = ["left_eye", "l_eye", "right_eye", "left_paw"]
    category = {"id": 1, "name": "cat", "keypoints": names}
    meta = km.keypoint_metadata_from_category(category, source="cats.json")
    assert meta["keypoint_flip_map"] == []
    [unpaired] = [w for w in warning_lines(kpext_log) if "no unique partner" in w]
    assert "left_eye, l_eye, right_eye, left_paw" in unpaired and unpaired.startswith("cats.json")


def test_pairs_made_are_logged_once_per_dataset(tmp_path, dataset_name, kpext_log):
    json_file, image_root = write_dataset(tmp_path, well_formed_coco())
    register_keypoint_coco(dataset_name, json_file, image_root)
    DatasetCatalog.get(dataset_name)
    lines = [
        r.getMessage() for r in kpext_log.records if "left/right keypoint pair" in r.getMessage()
    ]
    assert lines == [
        f"{json_file}: horizontal flip swaps 2 left/right keypoint pair(s): "
        "left_eye<->right_eye, left_ear<->right_ear"
    ]


def test_coco_sigmas_are_found_whatever_the_naming_style():
    styled = [kn.normalized_keypoint_name(n).upper() for n in COCO_PERSON_KEYPOINT_NAMES]
    camel = ["nose", "leftEye", "rightEye"] + list(COCO_PERSON_KEYPOINT_NAMES[3:])
    coco_sigmas = [COCO_PERSON_OKS_SIGMAS[n] for n in COCO_PERSON_KEYPOINT_NAMES]
    for names in (styled, camel):
        # COCO's 17 under another naming style are COCO's person keypoints, whatever the name
        category = {"id": 1, "name": "human_body", "keypoints": names}
        assert km.keypoint_metadata_from_category(category)["keypoint_oks_sigmas"] == coco_sigmas


def test_only_person_keypoints_get_coco_sigmas(kpext_log):
    paw = {"id": 1, "name": "dog", "keypoints": ["nose", "left_eye", "right_eye", "tail"]}
    assert km.keypoint_metadata_from_category(paw)["keypoint_oks_sigmas"] == [DEFAULT_OKS_SIGMA] * 4
    [line] = [w for w in warning_lines(kpext_log) if "OKS sigmas" in w]
    assert "category 'dog' (id 1) is not a person" in line and "oks_sigmas=" in line
    person = {**paw, "name": "person"}
    sigmas = km.keypoint_metadata_from_category(person)["keypoint_oks_sigmas"]
    assert sigmas == [0.026, 0.025, 0.025, DEFAULT_OKS_SIGMA]
    given = km.keypoint_metadata_from_category(paw, [0.1, 0.2, 0.3, 0.4])
    assert given["keypoint_oks_sigmas"] == [0.1, 0.2, 0.3, 0.4]


def test_synthetic_and_face_sets_keep_their_sigmas():
    synth = MetadataCatalog.get("kpext_synth_val").keypoint_oks_sigmas
    assert synth == [COCO_PERSON_OKS_SIGMAS[n] for n in COCO_PERSON_KEYPOINT_NAMES]
    assert ck.normalized_ground_truth("keypoints_coco_2017_val") is None  # Detectron2's own


def test_normalisation_does_not_modify_the_parsed_file(tmp_path):
    json_file, image_root, _ = real_format_file(tmp_path, "nested keypoints")
    before = copy.deepcopy(read_coco_json(json_file))
    load_keypoint_coco_json(json_file, image_root)
    assert read_coco_json(json_file) == before
