"""projects/FaceLandmarks/compare_heads.py: the table's numbers, the picture's layout,
clear errors."""

import json
import os

import cv2
import numpy as np
import pytest
from script_loading import load_script

compare = load_script("kpext_compare_heads", "projects", "FaceLandmarks", "compare_heads.py")


def _run(tmp_path, name, head, error, ap, pictures=("000001.jpg", "000002.jpg")):
    run_dir = tmp_path / name
    (run_dir / "predictions").mkdir(parents=True)
    metrics = {"mean_px_error": error, "rmse_px": error * 1.2, "nme_iod_percent": 5.0,
               "keypoint_AP": ap, "keypoint_AP50": 90.0, "keypoint_AP75": None, "box_AP": 60.0,
               "faces_missed": 0}  # fmt: skip
    summary = {"config": head, "train_seconds": 12.0, "datasets": {"kpext_faces15_val": metrics}}
    (run_dir / "face_metrics.json").write_text(json.dumps(summary))
    for i, picture in enumerate(pictures):
        cv2.imwrite(str(run_dir / "predictions" / picture), np.full((64, 80, 3), 40 * i, np.uint8))
    return str(run_dir)


def test_table_compares_each_run_with_the_first(tmp_path, capsys):
    runs = [
        _run(tmp_path, "a", "StockHead", 2.0, 50.0),
        _run(tmp_path, "b", "HourglassKeypointHead", 1.5, 62.5),
    ]
    compare.main(runs)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) == 3  # header, two runs
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    assert cells[:4] == ["b", "HourglassKeypointHead", "1.50", "1.80"]
    assert cells[-2:] == ["0.75x", "+12.5"]  # 1.5 / 2.0 and 62.5 - 50.0
    assert "n/a" in cells  # the missing AP75


def test_picture_has_a_labelled_row_per_run_and_the_common_faces(tmp_path):
    runs = [
        _run(tmp_path, "a", "A", 2.0, 50.0, pictures=("1.jpg", "2.jpg", "3.jpg")),
        _run(tmp_path, "b", "B", 1.0, 60.0, pictures=("2.jpg", "3.jpg")),
    ]
    out = str(tmp_path / "cmp.png")
    compare.main(runs + ["--picture", out, "--tile", "50", "--num-images", "5"])
    picture = cv2.imread(out)
    assert picture.shape[:2] == (2 * (28 + 50), 2 * 50)  # 2 runs; faces 2 and 3 only


def test_missing_metrics_name_the_file(tmp_path):
    with pytest.raises(SystemExit, match="face_metrics.json does not exist"):
        compare.main([str(tmp_path / "nowhere")])


def test_runs_without_common_pictures_are_an_error(tmp_path):
    runs = [
        _run(tmp_path, "a", "A", 2.0, 50.0, pictures=("1.jpg",)),
        _run(tmp_path, "b", "B", 1.0, 60.0, pictures=("2.jpg",)),
    ]
    with pytest.raises(SystemExit, match="no prediction pictures in common"):
        compare.main(runs + ["--picture", str(tmp_path / "x.png")])


def test_runs_on_different_datasets_are_named(tmp_path, capsys):
    a = _run(tmp_path, "a", "A", 2.0, 50.0)
    b = _run(tmp_path, "b", "B", 1.0, 60.0)
    metrics_path = os.path.join(b, "face_metrics.json")
    summary = json.load(open(metrics_path))
    summary["datasets"] = {"kpext_faces68_val": summary["datasets"]["kpext_faces15_val"]}
    json.dump(summary, open(metrics_path, "w"))
    compare.main([a, b])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert (
        "dataset" in rows[0] and "kpext_faces68_val" in rows[2] and "kpext_faces15_val" in rows[1]
    )
