"""projects/RepCounter: exact counts from pose records, through the library and the command line."""

import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
from motion_helpers import repetition_sequence
from script_loading import load_script

from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES as NAMES
from kpext.video import RepetitionCounter
from kpext.video.repcount import analyse_repetitions, main_track_id

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COUNT_REPS = os.path.join(REPO_ROOT, "projects", "RepCounter", "count_reps.py")
MAKE_VIDEO = os.path.join(REPO_ROOT, "projects", "RepCounter", "make_synthetic_video.py")


def person_record(track_id, keypoints):
    """A demo.py JSONL person from K x 3 keypoints (box around the confident ones)."""
    xy = keypoints[keypoints[:, 2] > 0, :2]
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    return {
        "track_id": track_id,
        "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        "score": 0.95,
        "keypoints": [round(float(v), 3) for v in keypoints.reshape(-1)],
        "category_id": 1,
    }


def exercise_records(kind, reps, seed=0, passer_by=True):
    """Frame records of one person doing ``reps`` jumps or squats (jitter, dropped frames), plus a
    smaller person walking past for 25 frames (a shorter track, which must not be counted)."""
    sequence = repetition_sequence(kind, reps, jitter=3.0, dropped_frames=3, seed=seed)
    records = []
    for t, keypoints in enumerate(sequence):
        persons = [person_record(1, keypoints)] if (keypoints[:, 2] > 0).any() else []
        if passer_by and 10 <= t < 35:
            walker = keypoints.copy()
            walker[:, 0] = walker[:, 0] * 0.5 + 8.0 * t  # smaller, moving sideways, squatting along
            walker[:, 2] = np.maximum(walker[:, 2], 0.5)
            persons.append(person_record(2, walker))
        records.append({"frame": t, "time": t / 30.0, "persons": persons})
    return records


def count_repetitions_from_records(records, keypoint_names, part="hip"):
    return analyse_repetitions(records, keypoint_names, part).count


def write_jsonl(path, records):
    with open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


@pytest.mark.parametrize("kind, reps", [("jump", 3), ("squat", 5)])
def test_library_counts_exactly(kind, reps):
    records = exercise_records(kind, reps)
    assert main_track_id(records) == 1
    assert count_repetitions_from_records(records, NAMES, "hip") == reps

    result = analyse_repetitions(records, NAMES, "hip")
    assert result.track_id == 1 and len(result.running) == len(records)
    assert result.running[-1] == reps and np.all(np.diff(result.running) >= 0)
    assert len(result.rep_frames) == reps and result.frames_seen == len(records) - 3
    assert (
        RepetitionCounter().count(result.signal) == reps
    )  # the running count ends on the batch count


def test_ankles_count_jumps_but_not_squats():
    assert count_repetitions_from_records(exercise_records("jump", 3), NAMES, "ankle") == 3
    assert count_repetitions_from_records(exercise_records("squat", 5), NAMES, "ankle") == 0


def test_nobody_and_bad_names():
    empty = [{"frame": t, "time": t / 30, "persons": []} for t in range(20)]
    result = analyse_repetitions(empty, NAMES, "hip")
    assert result.count == 0 and result.track_id is None
    with pytest.raises(ValueError, match="left_hip"):
        count_repetitions_from_records(exercise_records("jump", 1), ["nose"] * 17, "hip")


def run_script(script, *args, timeout=120):
    return subprocess.run(
        [sys.executable, script, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=timeout,
    )


def test_count_reps_cli_on_keypoints_jsonl(tmp_path):
    for kind, reps in (("jump", 3), ("squat", 5)):
        path = tmp_path / f"{kind}.jsonl"
        write_jsonl(path, exercise_records(kind, reps))
        summary = tmp_path / f"{kind}.summary.json"
        done = run_script(COUNT_REPS, "--keypoints-jsonl", path, "--summary", summary)
        assert done.returncode == 0, done.stderr[-2000:]
        assert re.search(r"^(\d+) repetitions", done.stdout, re.M).group(1) == str(reps)
        with open(summary) as f:
            data = json.load(f)
        assert (
            data["repetitions"] == reps
            and data["track_id"] == 1
            and len(data["rep_frames"]) == reps
        )


def load_count_reps():
    return load_script("kpext_count_reps", "projects", "RepCounter", "count_reps.py")


def test_count_reps_bad_input_is_one_line(tmp_path):
    count_reps = load_count_reps()
    missing = str(tmp_path / "poses.jsonl")
    with pytest.raises(SystemExit) as stop:
        count_reps.main(["--keypoints-jsonl", missing])
    assert missing in stop.value.code and "\n" not in stop.value.code
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"frame": 0, "persons": []}\nnot json\n')
    with pytest.raises(SystemExit) as stop:
        count_reps.main(["--keypoints-jsonl", str(broken)])
    assert f"{broken}:2" in stop.value.code
    with pytest.raises(SystemExit) as stop:
        count_reps.main(["--keypoints-jsonl", str(broken), "--output", str(tmp_path / "out.mp4")])
    assert "--video-input" in stop.value.code


@pytest.mark.parametrize("kind, reps", [("jump", 3), ("squat", 5)])
def test_rendered_video_ground_truth_counted_and_drawn(tmp_path, kind, reps):
    """make_synthetic_video.py's ground truth -> count_reps.py draws the running count on
    its video."""
    video = tmp_path / f"{kind}.mp4"
    made = run_script(
        MAKE_VIDEO,
        "--kind",
        kind,
        "--reps",
        reps,
        "--walkers",
        1,
        "--size",
        128,
        128,
        "--output",
        video,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    with open(tmp_path / f"{kind}.truth.json") as f:
        truth = json.load(f)
    with open(tmp_path / f"{kind}.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert truth["repetitions"] == reps and len(records) == truth["frames"]
    assert all(
        any(p["track_id"] == 1 for p in r["persons"]) for r in records
    )  # the exerciser is always seen
    assert any(p["track_id"] == 2 for r in records for p in r["persons"])  # the walker passes

    out = tmp_path / "counted" / f"{kind}_count.mp4"
    done = run_script(
        COUNT_REPS,
        "--keypoints-jsonl",
        tmp_path / f"{kind}.jsonl",
        "--video-input",
        video,
        "--output",
        out,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^(\d+) repetitions", done.stdout, re.M).group(1) == str(reps)
    assert sorted(os.listdir(out.parent)) == [f"{kind}_count.mp4", f"{kind}_count.summary.json"]
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == truth["frames"]
    assert (
        int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    ) == (128, 128)
    capture.release()
    with open(out.parent / f"{kind}_count.summary.json") as f:
        summary = json.load(f)
    assert (
        summary["repetitions"] == reps
        and summary["track_id"] == 1
        and summary["frames"] == truth["frames"]
    )
