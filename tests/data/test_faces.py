"""Kaggle facial-keypoints CSV -> COCO conversion, the synthetic face generator, and the
registration of the 15- and 68-point face datasets."""

import csv
import json
import os

import cv2
import numpy as np
import pytest

from kpext.data import KeypointDataError
from kpext.data.faces import face_annotation_path, face_image_dir, register_face_datasets
from kpext.data.keypoint_names import pair_left_right_names
from kpext.data.keypoint_sets import (
    FACE15_OKS_SIGMAS,
    FACE15_SKELETON,
    FACE68_KEYPOINT_NAMES,
    FACE68_OKS_SIGMAS,
    FACE68_SKELETON,
    KAGGLE_FACE_KEYPOINT_NAMES,
)
from kpext_synth.faces import FaceSynthConfig, face_csv_path, generate_face_split
from kpext_synth.kaggle import (
    KAGGLE_CORE_KEYPOINTS,
    convert_kaggle_csv,
    kaggle_columns,
    read_kaggle_csv,
)

from detectron2.data import DatasetCatalog, MetadataCatalog

NAMES = KAGGLE_FACE_KEYPOINT_NAMES
SIZE = 96


def typical_keypoints():
    """Kaggle's mean face, roughly: {name: (x, y)} in pixel-index coordinates."""
    return {
        "left_eye_center": (66.4, 37.7), "right_eye_center": (30.3, 37.6),
        "left_eye_inner_corner": (59.2, 37.9), "left_eye_outer_corner": (73.3, 37.7),
        "right_eye_inner_corner": (36.7, 37.9), "right_eye_outer_corner": (22.4, 38.0),
        "left_eyebrow_inner_end": (56.1, 29.3), "left_eyebrow_outer_end": (79.5, 29.9),
        "right_eyebrow_inner_end": (39.3, 29.6), "right_eyebrow_outer_end": (15.9, 30.4),
        "nose_tip": (48.4, 62.7), "mouth_left_corner": (63.3, 75.9),
        "mouth_right_corner": (32.9, 76.1), "mouth_center_top_lip": (47.9, 72.9),
        "mouth_center_bottom_lip": (48.6, 78.9),
    }  # fmt: skip


def csv_fields(keypoints, image):
    """One CSV row (Kaggle column order) from {name: (x, y) or None} and an (S, S) image."""
    fields = []
    for name in NAMES:
        point = keypoints.get(name)
        fields += ["", ""] if point is None else [f"{point[0]:.4f}", f"{point[1]:.4f}"]
    return fields + [" ".join(map(str, image.reshape(-1).tolist()))]


def write_csv(path, rows, header=None):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header or kaggle_columns())
        writer.writerows(rows)
    return str(path)


def random_image(seed):
    return np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE), dtype=np.uint8)


@pytest.fixture
def small_csv(tmp_path):
    """Row 1: all 15 points; row 2: the 4 core points only; row 3: nose tip missing."""
    full = typical_keypoints()
    core = {name: full[name] for name in KAGGLE_CORE_KEYPOINTS}
    no_nose = {name: p for name, p in full.items() if name != "nose_tip"}
    rows = [
        csv_fields(full, random_image(1)),
        csv_fields(core, random_image(2)),
        csv_fields(no_nose, random_image(3)),
    ]
    return write_csv(tmp_path / "training.csv", rows)


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_conversion_round_trip_with_missing_labels(small_csv, tmp_path):
    out = tmp_path / "coco"
    report = convert_kaggle_csv(small_csv, str(out))
    data = load(report.json_files["train"])
    assert report.num_rows == 3 and report.num_images == {"train": 3}
    assert report.num_labelled_points == 15 + 4 + 14
    assert data["categories"][0]["keypoints"] == list(NAMES)
    assert data["categories"][0]["skeleton"] == FACE15_SKELETON
    assert [im["id"] for im in data["images"]] == [1, 2, 3]

    full = typical_keypoints()
    by_image = {ann["image_id"]: ann for ann in data["annotations"]}
    for image_id, expected_labelled in (
        (1, NAMES),
        (2, KAGGLE_CORE_KEYPOINTS),
        (3, [n for n in NAMES if n != "nose_tip"]),
    ):
        ann = by_image[image_id]
        kps = np.array(ann["keypoints"]).reshape(15, 3)
        assert ann["num_keypoints"] == len(expected_labelled)
        for k, name in enumerate(NAMES):
            if name in expected_labelled:
                assert kps[k, 2] == 2
                np.testing.assert_allclose(kps[k, :2], full[name], atol=1e-3)
            else:
                assert list(kps[k]) == [0, 0, 0], name  # missing: v=0, x=y=0 (masked in the loss)
        # the face box holds every labelled point (continuous coordinates = index + 0.5)
        x, y, w, h = ann["bbox"]
        labelled = kps[kps[:, 2] > 0, :2] + 0.5
        assert (labelled[:, 0] >= x).all() and (labelled[:, 0] <= x + w).all()
        assert (labelled[:, 1] >= y).all() and (labelled[:, 1] <= y + h).all()
        assert 0 <= x and 0 <= y and x + w <= SIZE and y + h <= SIZE
        assert ann["area"] == pytest.approx(w * h, rel=1e-3)

    # images are lossless copies of the CSV pixels, named after their row
    for image_id in (1, 2, 3):
        png = cv2.imread(
            os.path.join(face_image_dir(str(out), "train"), f"{image_id:06d}.png"),
            cv2.IMREAD_UNCHANGED,
        )
        np.testing.assert_array_equal(png, random_image(image_id))


def test_box_modes_and_known_boxes(small_csv, tmp_path):
    report = convert_kaggle_csv(small_csv, str(tmp_path / "a"), box="image")
    assert {tuple(a["bbox"]) for a in load(report.json_files["train"])["annotations"]} == {
        (0, 0, 96, 96)
    }
    report = convert_kaggle_csv(small_csv, str(tmp_path / "b"), face_boxes={2: [10, 12, 50, 60]})
    boxes = {a["image_id"]: a["bbox"] for a in load(report.json_files["train"])["annotations"]}
    assert boxes[2] == [10, 12, 50, 60] and boxes[1] != boxes[2]


def test_val_fraction_splits_rows(small_csv, tmp_path):
    report = convert_kaggle_csv(small_csv, str(tmp_path), val_fraction=0.34, seed=0)
    assert report.num_images == {"train": 2, "val": 1}
    val_image = load(report.json_files["val"])["images"][0]
    assert os.path.isfile(
        os.path.join(face_image_dir(str(tmp_path), "val"), val_image["file_name"])
    )
    assert not os.path.exists(
        os.path.join(face_image_dir(str(tmp_path), "train"), val_image["file_name"])
    )


def test_malformed_image_field_is_reported_by_row(tmp_path):
    full = typical_keypoints()
    good = csv_fields(full, random_image(1))
    short = csv_fields(full, random_image(2))
    short[-1] = short[-1].rsplit(" ", 1)[0]  # 9215 values
    bad_token = csv_fields(full, random_image(3))
    tokens = bad_token[-1].split()
    tokens[5] = "12a"
    bad_token[-1] = " ".join(tokens)
    path = write_csv(tmp_path / "bad.csv", [good, short, good])
    with pytest.raises(
        KeypointDataError, match=r"bad\.csv: row 2 \(line 3\): Image has 9215 values, expected 9216"
    ):
        convert_kaggle_csv(path, str(tmp_path / "out"))
    assert not os.path.exists(
        face_annotation_path(str(tmp_path / "out"), 15, "train")
    )  # no partial JSON

    path = write_csv(tmp_path / "token.csv", [good, good, bad_token])
    with pytest.raises(KeypointDataError, match=r"row 3 .*Image value #6 is '12a', not an integer"):
        list(read_kaggle_csv(path))

    path = write_csv(tmp_path / "skip.csv", [good, short, good, bad_token])
    report = convert_kaggle_csv(path, str(tmp_path / "skip"), on_invalid="skip")
    assert [row for row, _ in report.skipped] == [2, 4]
    assert report.num_rows == 4 and report.num_images == {"train": 2}
    assert "row 2" in report.summary() and "row 4" in report.summary()
    assert [im["id"] for im in load(report.json_files["train"])["images"]] == [1, 3]


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("nose_tip_x", "abc", r"row 1 .*nose_tip_x is 'abc', not a number"),
        ("nose_tip_y", "", r"row 1 .*nose_tip_x is given but nose_tip_y is empty"),
        ("nose_tip_x", "150", r"row 1 .*nose_tip at \(150.0, .*\) is outside the 96x96 image"),
        ("nose_tip_y", "nan", r"row 1 .*nose_tip_y is 'nan'"),
    ],
)
def test_bad_coordinates_are_errors(tmp_path, column, value, message):
    fields = csv_fields(typical_keypoints(), random_image(1))
    fields[kaggle_columns().index(column)] = value
    path = write_csv(tmp_path / "coords.csv", [fields])
    with pytest.raises(KeypointDataError, match=message):
        list(read_kaggle_csv(path))


def test_wrong_column_set_is_an_error(tmp_path):
    header = [c for c in kaggle_columns() if c != "nose_tip_y"] + ["nose_tip_z"]
    path = write_csv(tmp_path / "cols.csv", [], header=header)
    with pytest.raises(
        KeypointDataError,
        match=r"cols\.csv: wrong columns: missing column\(s\) nose_tip_y; "
        r"unexpected column\(s\) 'nose_tip_z'",
    ):
        list(read_kaggle_csv(path))
    path = write_csv(tmp_path / "test.csv", [["1", "0 " * 9216]], header=["ImageId", "Image"])
    with pytest.raises(KeypointDataError, match="Kaggle's test.csv"):
        list(read_kaggle_csv(path))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(KeypointDataError, match="empty file"):
        list(read_kaggle_csv(str(empty)))


def test_columns_in_another_order_are_fine(tmp_path):
    fields = csv_fields(typical_keypoints(), random_image(1))
    header = kaggle_columns()
    order = [len(header) - 1] + list(range(len(header) - 1))[::-1]
    path = write_csv(
        tmp_path / "order.csv", [[fields[i] for i in order]], header=[header[i] for i in order]
    )
    (row,) = list(read_kaggle_csv(path))
    np.testing.assert_allclose(
        row.keypoints[NAMES.index("nose_tip")], typical_keypoints()["nose_tip"]
    )


def test_rows_without_labels_are_left_out_and_listed(tmp_path):
    path = write_csv(
        tmp_path / "unlabelled.csv",
        [csv_fields(typical_keypoints(), random_image(1)), csv_fields({}, random_image(2))],
    )
    report = convert_kaggle_csv(path, str(tmp_path / "out"))
    assert report.unlabelled_rows == [2] and report.num_images == {"train": 1}
    assert "without any labelled keypoint (rows 2)" in report.summary()


def test_flip_pairs_derive_from_the_names():
    pairs = pair_left_right_names(NAMES)
    assert pairs == [
        ("left_eye_center", "right_eye_center"),
        ("left_eye_inner_corner", "right_eye_inner_corner"),
        ("left_eye_outer_corner", "right_eye_outer_corner"),
        ("left_eyebrow_inner_end", "right_eyebrow_inner_end"),
        ("left_eyebrow_outer_end", "right_eyebrow_outer_end"),
        ("mouth_left_corner", "mouth_right_corner"),
    ]
    pairs68 = pair_left_right_names(FACE68_KEYPOINT_NAMES)
    assert len(FACE68_KEYPOINT_NAMES) == 68 == len(set(FACE68_KEYPOINT_NAMES))
    assert len(pairs68) == 29  # 68 points = 29 pairs + 10 on the midline
    assert ("jaw_left_1", "jaw_right_1") in pairs68 and (
        "left_eye_inner",
        "right_eye_inner",
    ) in pairs68
    # iBUG mirror symmetry: point i (1-based) mirrors point 18 - i on the jaw, 45 <-> 38 on the eyes
    index = {n: i + 1 for i, n in enumerate(FACE68_KEYPOINT_NAMES)}
    assert index["jaw_right_3"] + index["jaw_left_3"] == 18
    assert (index["right_eye_upper_outer"], index["left_eye_upper_outer"]) == (38, 45)
    assert (index["mouth_right_corner"], index["mouth_left_corner"]) == (49, 55)
    for edges, k in ((FACE15_SKELETON, 15), (FACE68_SKELETON, 68)):
        assert all(1 <= a <= k and 1 <= b <= k and a != b for a, b in edges)


def test_generator_is_deterministic_and_keeps_kaggle_conventions(tmp_path):
    cfg = FaceSynthConfig(num_images=4, seed=3, missing_fraction=0.5, occluder_prob=0.5)
    first = generate_face_split(str(tmp_path / "a"), "train", cfg, show_progress=False)
    second = generate_face_split(str(tmp_path / "b"), "train", cfg, show_progress=False)
    for key in ("csv", "faces15", "faces68"):
        assert open(first[key], "rb").read() == open(second[key], "rb").read(), key
    for name in os.listdir(face_image_dir(str(tmp_path / "a"), "train")):
        a = cv2.imread(
            os.path.join(face_image_dir(str(tmp_path / "a"), "train"), name), cv2.IMREAD_UNCHANGED
        )
        b = cv2.imread(
            os.path.join(face_image_dir(str(tmp_path / "b"), "train"), name), cv2.IMREAD_UNCHANGED
        )
        np.testing.assert_array_equal(a, b)
        assert a.shape == (96, 96)

    rows = list(read_kaggle_csv(first["csv"]))  # the generator's CSV passes the converter's checks
    assert len(rows) == 4
    left, right = NAMES.index("left_eye_center"), NAMES.index("right_eye_center")
    assert all(
        r.keypoints[left, 0] > r.keypoints[right, 0] for r in rows
    )  # subject's left on the image's right
    assert all(r.labelled.sum() in (4, 15) for r in rows)
    data68 = load(first["faces68"])
    for ann in data68["annotations"]:
        kps = np.array(ann["keypoints"]).reshape(68, 3)
        assert set(kps[:, 2]) <= {1, 2} and (kps[:, :2] >= 0).all() and (kps[:, :2] <= 95).all()
    # both JSONs describe the same images and face boxes
    data15 = load(first["faces15"])
    assert data15["images"] == data68["images"]
    assert [a["bbox"] for a in data15["annotations"]] == [a["bbox"] for a in data68["annotations"]]
    assert first["csv"] == face_csv_path(str(tmp_path / "a"), "train")


def test_generator_missing_fraction_keeps_the_core_points(tmp_path):
    paths = generate_face_split(
        str(tmp_path),
        "val",
        FaceSynthConfig(num_images=3, missing_fraction=1.0),
        show_progress=False,
    )
    assert [a["num_keypoints"] for a in load(paths["faces15"])["annotations"]] == [4, 4, 4]


@pytest.mark.parametrize(
    "field, value, flag",
    [
        ("num_images", 0, "--num-images"),
        ("max_yaw", 50.0, "--max-yaw"),
        ("missing_fraction", 1.5, "--missing-fraction"),
        ("max_face_frac", 0.3, "--max-face-frac"),
        ("image_size", 16, "--image-size"),
    ],
)
def test_generator_config_is_validated(field, value, flag):
    cfg = FaceSynthConfig(num_images=1)
    setattr(cfg, field, value)
    with pytest.raises(ValueError, match=flag):
        cfg.validate()


@pytest.fixture(scope="module")
def face_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    for split, seed in (("train", 0), ("val", 1)):
        generate_face_split(
            str(root), split, FaceSynthConfig(num_images=3, seed=seed), show_progress=False
        )
    return str(root)


def test_registration_with_15_and_68_points(face_root):
    names = register_face_datasets(face_root, prefix="test_faces_meta")
    try:
        assert names == [
            "test_faces_meta15_train",
            "test_faces_meta68_train",
            "test_faces_meta15_val",
            "test_faces_meta68_val",
        ]
        meta15, meta68 = (
            MetadataCatalog.get("test_faces_meta15_train"),
            MetadataCatalog.get("test_faces_meta68_val"),
        )
        assert list(meta15.keypoint_names) == list(NAMES) and len(meta68.keypoint_names) == 68
        assert ("left_eye_center", "right_eye_center") in [
            tuple(p) for p in meta15.keypoint_flip_map
        ]
        assert len(meta68.keypoint_flip_map) == 29
        assert list(meta15.keypoint_oks_sigmas) == list(FACE15_OKS_SIGMAS)
        assert list(meta68.keypoint_oks_sigmas) == list(FACE68_OKS_SIGMAS)
        assert meta15.thing_classes == ["face"] and meta15.evaluator_type == "coco"
        records = DatasetCatalog.get("test_faces_meta68_val")
        assert len(records) == 3 and len(records[0]["annotations"]) == 1
        assert len(records[0]["annotations"][0]["keypoints"]) == 68 * 3
        records15 = DatasetCatalog.get("test_faces_meta15_train")
        assert len(records15[0]["annotations"][0]["keypoints"]) == 15 * 3
        # registering again keeps the datasets (no error), as the train script may call it twice
        assert register_face_datasets(face_root, prefix="test_faces_meta") == names
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
