"""Tests of the synthetic keypoint dataset generator and its CLI."""

import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from script_loading import load_script
from synthetic_helpers import generate_and_read

from kpext.data.builtin import synthetic_annotation_path, synthetic_image_dir
from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_SKELETON
from kpext_synth.body import LimbPose, PersonSpec
from kpext_synth.people import (
    GENERATOR_VERSION,
    SyntheticConfig,
    ensure_synthetic_dataset,
)
from kpext_synth.scene import render_image, render_people

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(REPO_ROOT, "datasets", "make_synthetic.py")
KP = {name: i for i, name in enumerate(COCO_PERSON_KEYPOINT_NAMES)}

SMALL = SyntheticConfig(num_images=6, seed=3, width=128, height=128)
CROWDED = SyntheticConfig(num_images=8, seed=5, width=128, height=128, min_people=6, max_people=6)


def _read_images(root, data, split="train"):
    folder = synthetic_image_dir(str(root), split)
    return {im["id"]: cv2.imread(os.path.join(folder, im["file_name"])) for im in data["images"]}


@pytest.fixture(scope="module")
def small_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    return (root,) + generate_and_read(root, SMALL)


@pytest.fixture(scope="module")
def crowded_images():
    rng_of = lambda i: np.random.default_rng([CROWDED.seed, i])  # noqa: E731
    return [render_image(CROWDED, rng_of(i)) for i in range(CROWDED.num_images)]


# --- determinism -----------------------------------------------------------


def test_same_seed_gives_identical_files(tmp_path, small_split):
    root, _, raw, data = small_split
    _, raw_again, data_again = generate_and_read(tmp_path, SMALL)
    assert raw_again == raw
    first, again = _read_images(root, data), _read_images(tmp_path, data_again)
    assert first.keys() == again.keys()
    for image_id, image in first.items():
        assert image is not None and image.shape == (128, 128, 3)
        np.testing.assert_array_equal(image, again[image_id])


def test_render_image_is_deterministic_for_a_generator_state():
    image_a, anns_a = render_image(SMALL, np.random.default_rng(7))
    image_b, anns_b = render_image(SMALL, np.random.default_rng(7))
    np.testing.assert_array_equal(image_a, image_b)
    assert len(anns_a) == len(anns_b)
    for a, b in zip(anns_a, anns_b):
        np.testing.assert_array_equal(a["keypoints"], b["keypoints"])
        assert a["bbox"] == b["bbox"] and a["area"] == b["area"]


def test_different_seed_gives_different_data(tmp_path, small_split):
    root, _, raw, data = small_split
    _, raw_other, data_other = generate_and_read(
        tmp_path, dataclasses.replace(SMALL, seed=SMALL.seed + 1)
    )
    assert data_other["annotations"] != data["annotations"]
    first, other = _read_images(root, data), _read_images(tmp_path, data_other)
    assert all(not np.array_equal(first[i], other[i]) for i in first)


def test_more_images_keep_the_first_ones(tmp_path, small_split):
    root, _, _, data = small_split
    _, _, longer = generate_and_read(
        tmp_path, dataclasses.replace(SMALL, num_images=SMALL.num_images + 3)
    )
    assert len(longer["images"]) == SMALL.num_images + 3
    assert longer["images"][: SMALL.num_images] == data["images"]
    assert longer["annotations"][: len(data["annotations"])] == data["annotations"]
    first, more = _read_images(root, data), _read_images(tmp_path, longer)
    for image_id, image in first.items():
        np.testing.assert_array_equal(image, more[image_id])


# --- COCO format ------------------------------------------------------------


def test_json_layout(small_split):
    root, path, _, data = small_split
    assert path == synthetic_annotation_path(str(root), "train")
    assert path == os.path.join(str(root), "annotations", "person_keypoints_train.json")
    assert data["info"]["version"] == GENERATOR_VERSION and data["info"]["seed"] == SMALL.seed
    # as JSON stores it: the styles tuple reads back as a list
    assert data["info"]["config"] == json.loads(json.dumps(dataclasses.asdict(SMALL)))
    assert data["categories"] == [{
        "id": 1, "name": "person", "supercategory": "person",
        "keypoints": list(COCO_PERSON_KEYPOINT_NAMES),
        "skeleton": [list(p) for p in COCO_PERSON_SKELETON],
    }]  # fmt: skip
    assert [im["id"] for im in data["images"]] == list(range(1, SMALL.num_images + 1))
    for im in data["images"]:
        assert im["file_name"] == f"{im['id']:06d}.jpg"
        assert (im["width"], im["height"]) == (128, 128)
        assert os.path.isfile(
            os.path.join(synthetic_image_dir(str(root), "train"), im["file_name"])
        )
    ids = [a["id"] for a in data["annotations"]]
    assert len(ids) == len(set(ids)) and len(ids) >= SMALL.num_images
    for ann in data["annotations"]:
        assert ann["category_id"] == 1 and ann["iscrowd"] == 0 and len(ann["keypoints"]) == 51
        assert isinstance(ann["area"], float) and all(isinstance(b, float) for b in ann["bbox"])
        assert all(round(x, 2) == x for x in ann["keypoints"])


def test_ground_truth_as_detections_scores_perfect_keypoint_ap(small_split):
    _, path, _, data = small_split
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(path)
        results = [
            {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
            for a in data["annotations"]
        ]
        evaluator = COCOeval(gt, gt.loadRes(results), iouType="keypoints")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


# --- labels -----------------------------------------------------------------


def _check_person_labels(ann, width=128, height=128):
    kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
    num_keypoints, bbox, area = ann["num_keypoints"], ann["bbox"], ann["area"]
    assert set(np.unique(kps[:, 2])) <= {0.0, 1.0, 2.0}
    outside = kps[:, 2] == 0
    assert np.all(kps[outside, :2] == 0)
    labelled = kps[~outside]
    assert np.all((labelled[:, 0] >= 0) & (labelled[:, 0] <= width - 1))
    assert np.all((labelled[:, 1] >= 0) & (labelled[:, 1] <= height - 1))
    assert num_keypoints == int((~outside).sum()) > 0
    x, y, w, h = bbox
    assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= width and y + h <= height
    # bbox is in continuous coordinates, keypoints in pixel-index ones (-0.5)
    assert np.all(labelled[:, 0] + 0.5 >= x - 1) and np.all(labelled[:, 0] + 0.5 <= x + w + 1)
    assert np.all(labelled[:, 1] + 0.5 >= y - 1) and np.all(labelled[:, 1] + 0.5 <= y + h + 1)
    assert 0 < area <= w * h


def test_json_labels_are_consistent(small_split):
    _, _, _, data = small_split
    for ann in data["annotations"]:
        _check_person_labels(ann)


def test_crowded_images_have_occluded_keypoints(crowded_images):
    people, hidden = 0, 0
    for image, anns in crowded_images:
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        for ann in anns:
            _check_person_labels(ann)
            hidden += int((ann["keypoints"][:, 2] == 1).sum())
        people += len(anns)
    assert people >= 4 * len(crowded_images)  # crowded settings do give crowded images
    assert hidden > 0


def test_keypoints_under_people_drawn_later_are_hidden(crowded_images):
    """Checked against the silhouettes, independently of how render_people decides."""
    for _, anns in crowded_images:
        for i, ann in enumerate(anns):
            in_front = np.zeros_like(ann["mask"])
            for later in anns[i + 1 :]:
                in_front |= later["mask"]
            for x, y, v in ann["keypoints"]:
                if v > 0 and in_front[int(np.floor(y + 0.5)), int(np.floor(x + 0.5))]:
                    assert v == 1


def _frontal(center, height=100.0, **kwargs):
    return PersonSpec(center=center, height=height, yaw=0.0, **kwargs)


def test_person_exactly_in_front_hides_the_one_behind():
    canvas = np.zeros((160, 160, 3), np.uint8)
    behind, front = render_people(canvas, [_frontal((80.0, 80.0)), _frontal((80.0, 80.0))])
    assert np.all(behind["keypoints"][:, 2] == 1)
    assert np.all(front["keypoints"][:, 2] == 2)
    np.testing.assert_array_equal(behind["keypoints"], front["keypoints"] * [1, 1, 0.5])
    assert behind["visible_area"] == 0 and front["visible_area"] == front["area"]


def test_partly_covered_person():
    canvas = np.zeros((160, 200, 3), np.uint8)
    # the person in front stands to the right, over the left side of the one behind
    behind, front = render_people(canvas, [_frontal((90.0, 80.0)), _frontal((105.0, 80.0))])
    assert np.all(front["keypoints"][:, 2] == 2)
    vis = behind["keypoints"][:, 2]
    assert vis[KP["left_shoulder"]] == 1 and vis[KP["left_hip"]] == 1  # under the front torso
    assert vis[KP["right_shoulder"]] == 2 and vis[KP["right_ankle"]] == 2
    for x, y, v in behind["keypoints"]:
        covered = front["mask"][int(np.floor(y + 0.5)), int(np.floor(x + 0.5))]
        assert v == (1 if covered else 2)


def test_keypoints_outside_the_image_are_unlabelled():
    canvas = np.zeros((128, 128, 3), np.uint8)
    # only the upper body of this person is inside the image
    (ann,) = render_people(canvas, [_frontal((64.0, 150.0), height=150.0)])
    kps = ann["keypoints"]
    for name in ("left_ankle", "right_ankle", "left_knee", "right_knee"):
        assert tuple(kps[KP[name]]) == (0.0, 0.0, 0.0)
    assert kps[KP["nose"], 2] == 2 and ann["num_keypoints"] == int((kps[:, 2] > 0).sum()) < 17
    _check_person_labels(ann)


def test_left_and_right_stay_true_to_the_body():
    canvas = np.zeros((160, 400, 3), np.uint8)
    front, back, facing_right = render_people(
        canvas, [_frontal((60.0, 80.0)), PersonSpec((200.0, 80.0), 100.0, yaw=180.0),
                 PersonSpec((330.0, 80.0), 100.0, yaw=90.0)]
    )  # fmt: skip
    for joint in ("eye", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
        left, right = KP["left_" + joint], KP["right_" + joint]
        # facing the camera, the person's left is on the image's right; from behind, on its left
        assert front["keypoints"][left, 0] > front["keypoints"][right, 0]
        assert back["keypoints"][left, 0] < back["keypoints"][right, 0]
    assert np.all(back["keypoints"][[KP["nose"], KP["left_eye"], KP["right_eye"]], 2] == 1)
    # in profile facing the image's right, the left side is turned away
    assert facing_right["keypoints"][KP["left_ear"], 2] == 1
    assert facing_right["keypoints"][KP["right_ear"], 2] == 2
    assert facing_right["keypoints"][KP["nose"], 0] > facing_right["keypoints"][KP["right_ear"], 0]


def test_elbows_and_knees_bend_one_way():
    canvas = np.zeros((200, 200, 3), np.uint8)
    # a profile facing the image's right: forearms bend forwards (+x), shins backwards (-x)
    bent = PersonSpec((100.0, 100.0), 150.0, yaw=90.0,
                      left_arm=LimbPose(0, 0, 90, 0), right_arm=LimbPose(0, 0, 90, 0),
                      left_leg=LimbPose(0, 0, 90, 0), right_leg=LimbPose(0, 0, 90, 0))  # fmt: skip
    backwards = LimbPose(0, 0, -90, 0)
    over_bent = dataclasses.replace(bent, left_arm=backwards, left_leg=backwards)
    (ann,) = render_people(canvas, [bent])
    kps = ann["keypoints"]
    for s in ("left", "right"):
        assert kps[KP[s + "_wrist"], 0] > kps[KP[s + "_elbow"], 0] + 20
        assert kps[KP[s + "_ankle"], 0] < kps[KP[s + "_knee"], 0] - 20
    (clipped,) = render_people(canvas.copy(), [over_bent])  # negative bends are clipped to straight
    straight = clipped["keypoints"]
    assert abs(straight[KP["left_wrist"], 0] - straight[KP["left_elbow"], 0]) < 2


# --- ensure / regeneration ---------------------------------------------------


def test_ensure_generates_only_missing_or_changed_splits(tmp_path):
    cfg = SyntheticConfig(num_images=2, width=64, height=64, max_people=2)
    paths = ensure_synthetic_dataset(str(tmp_path), {"train": cfg, "val": cfg}, show_progress=False)
    assert paths == {s: synthetic_annotation_path(str(tmp_path), s) for s in ("train", "val")}
    stamp = {s: os.stat(p).st_mtime_ns for s, p in paths.items()}
    os.remove(paths["val"])
    ensure_synthetic_dataset(str(tmp_path), {"train": cfg, "val": cfg}, show_progress=False)
    assert os.stat(paths["train"]).st_mtime_ns == stamp["train"]  # untouched
    assert os.path.isfile(paths["val"])
    changed = dataclasses.replace(cfg, num_images=3)
    ensure_synthetic_dataset(str(tmp_path), {"train": changed}, show_progress=False)
    with open(paths["train"]) as f:
        assert len(json.load(f)["images"]) == 3
    assert not [f for f in os.listdir(os.path.dirname(paths["train"])) if f.endswith(".tmp")]


# --- validation and CLI ------------------------------------------------------


@pytest.mark.parametrize(
    "changes, flag",
    [
        ({"num_images": 0}, "--num-images"),
        ({"width": 32}, "--width"),
        ({"height": 63}, "--height"),
        ({"min_people": 0}, "--min-people"),
        ({"min_people": 4, "max_people": 3}, "--max-people"),
        ({"max_people": 21}, "--max-people"),
        ({"min_person_height": 4}, "--min-person-height"),
        ({"min_person_height": 300}, "--min-person-height"),
        ({"max_person_height_frac": 0.0}, "--max-person-height-frac"),
        ({"seed": -1}, "--seed"),
        ({"num_images": 2.5}, "--num-images"),
    ],
)
def test_validate_rejects_bad_settings(changes, flag):
    with pytest.raises(ValueError, match=flag):
        dataclasses.replace(SMALL, **changes).validate()


def test_validate_accepts_defaults():
    SyntheticConfig(num_images=1).validate()
    SMALL.validate()


def test_cli_rejects_bad_flag_with_exit_code_2(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    command = [sys.executable, CLI, "--out", str(tmp_path / "out"),
               "--min-people", "5", "--max-people", "2"]  # fmt: skip
    result = subprocess.run(
        command, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert "--max-people" in result.stderr and "error" in result.stderr
    assert not (tmp_path / "out").exists()


def _load_cli():
    return load_script("make_synthetic", "datasets", "make_synthetic.py")


def test_cli_generates_and_skips_up_to_date_splits(tmp_path, capsys):
    cli = _load_cli()
    args = ["--out", str(tmp_path), "--split", "val", "--num-images", "2",
            "--width", "64", "--height", "64", "--quiet"]  # fmt: skip
    assert cli.main(args) == 0
    with open(synthetic_annotation_path(str(tmp_path), "val")) as f:
        info = json.load(f)["info"]
    assert info["config"]["num_images"] == 2 and info["config"]["seed"] == 1  # val's default seed
    assert cli.main(args) == 0
    assert "up to date" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--split", "../evil"])
    assert exit_info.value.code == 2
