"""projects/PoseEstimation/demo.py: bad input stops cleanly; images and a video run with a
tiny random model."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from script_loading import load_script

import kpext
from kpext_synth.people import SyntheticConfig
from kpext_synth.scene import render_image

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.modeling import build_model

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(REPO_ROOT, "projects", "PoseEstimation", "demo.py")
BASE_CONFIG = os.path.join(REPO_ROOT, "configs", "synthetic", "keypoint_rcnn_R18_FPN_kpext.yaml")
# a thin model at 128 px: builds and runs in a fraction of a second on a CPU
TINY_CONFIG = f"""_BASE_: "{BASE_CONFIG}"
MODEL:
  FPN:
    OUT_CHANNELS: 32
  ROI_BOX_HEAD:
    FC_DIM: 64
  ROI_KEYPOINT_HEAD:
    CONV_DIMS: (32, 32)
INPUT:
  MIN_SIZE_TEST: 128
  MAX_SIZE_TEST: 128
TEST:
  DETECTIONS_PER_IMAGE: 3
"""
VIDEO_FRAMES = 10


demo = load_script("kpext_pose_demo", "projects", "PoseEstimation", "demo.py")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A config without MODEL.WEIGHTS, a random-init checkpoint for it, 2 images and a
    10-frame video."""
    folder = tmp_path_factory.mktemp("tiny")
    config = folder / "tiny.yaml"
    config.write_text(TINY_CONFIG)

    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(str(config))
    DetectionCheckpointer(build_model(cfg), save_dir=str(folder)).save("tiny_model")

    rng = np.random.default_rng(0)
    images = []
    for i in range(2):
        image, _ = render_image(
            SyntheticConfig(num_images=1, width=128, height=128, max_people=2), rng
        )
        images.append(folder / "images" / f"person_{i}.jpg")
        os.makedirs(images[-1].parent, exist_ok=True)
        cv2.imwrite(str(images[-1]), image)

    video = folder / "walk.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (128, 96))
    base, _ = render_image(SyntheticConfig(num_images=1, width=160, height=96, max_people=1), rng)
    for t in range(VIDEO_FRAMES):
        writer.write(np.ascontiguousarray(base[:, 2 * t : 2 * t + 128]))  # the camera pans
    writer.release()
    return {
        "config": str(config),
        "weights": str(folder / "tiny_model.pth"),
        "images": [str(p) for p in images],
        "video": str(video),
    }


def demo_error(argv):
    """Run demo.main in this process; returns its error message (it must stop with one)."""
    with pytest.raises(SystemExit) as stop:
        demo.main(argv)
    message = stop.value.code
    assert isinstance(message, str), f"expected an error message, got exit code {message!r}"
    assert "\n" not in message.strip()
    return message


def tree(folder):
    return sorted(
        os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs
    )


def test_missing_input_file(tiny, tmp_path):
    missing = str(tmp_path / "nowhere.jpg")
    out = tmp_path / "out"
    message = demo_error(
        [
            "--config-file",
            tiny["config"],
            "--input",
            missing,
            "--output",
            str(out),
            "MODEL.WEIGHTS",
            tiny["weights"],
        ]
    )
    assert missing in message and "not found" in message
    assert not out.exists()


def test_unreadable_image(tiny, tmp_path):
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a picture\n")
    out = tmp_path / "out"
    argv = [
        "--config-file",
        tiny["config"],
        "--input",
        tiny["images"][0],
        str(fake),
        "--output",
        str(out),
    ]
    message = demo_error(argv + ["MODEL.WEIGHTS", tiny["weights"]])
    assert str(fake) in message and "cannot read image" in message
    assert not out.exists()  # checked before any picture is written


def test_video_that_cannot_be_opened(tiny, tmp_path):
    fake = tmp_path / "clip.mp4"
    fake.write_text("not a video\n" * 10)
    out = tmp_path / "out"
    argv = ["--config-file", tiny["config"], "--video-input", str(fake), "--output", str(out)]
    message = demo_error(argv + ["MODEL.WEIGHTS", tiny["weights"]])
    assert str(fake) in message and "cannot open video" in message
    assert not out.exists()


def test_config_without_weights_or_missing_weights(tiny, tmp_path):
    out = tmp_path / "out"
    message = demo_error(
        ["--config-file", tiny["config"], "--input", tiny["images"][0], "--output", str(out)]
    )
    assert tiny["config"] in message and "MODEL.WEIGHTS" in message
    missing = str(tmp_path / "no_model.pth")
    argv = ["--config-file", tiny["config"], "--video-input", tiny["video"], "--output", str(out)]
    message = demo_error(argv + ["MODEL.WEIGHTS", missing])
    assert missing in message
    assert not out.exists()


def test_bad_input_from_the_command_line_is_one_line_on_stderr(tiny, tmp_path):
    missing = str(tmp_path / "nowhere.mp4")
    argv = [
        "--config-file",
        tiny["config"],
        "--video-input",
        missing,
        "--output",
        str(tmp_path / "out"),
    ]
    done = subprocess.run(
        [sys.executable, DEMO] + argv + ["MODEL.WEIGHTS", tiny["weights"]],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and missing in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_images_one_picture_per_input(tiny, tmp_path):
    out = tmp_path / "pictures"
    folder = os.path.dirname(tiny["images"][0])
    argv = [
        "--config-file",
        tiny["config"],
        "--input",
        os.path.join(folder, "*.jpg"),
        "--output",
        str(out),
    ]
    done = subprocess.run(
        [sys.executable, DEMO]
        + argv
        + ["--confidence-threshold", "0.0", "MODEL.WEIGHTS", tiny["weights"]],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert tree(out) == ["person_0.jpg", "person_1.jpg"]
    for name in tree(out):
        picture = cv2.imread(str(out / name))
        # pictures are enlarged to TEST.KPEXT.VIS_MIN_SIZE (512) on the short side
        assert picture is not None and min(picture.shape[:2]) == 512


def test_single_image_to_a_file(tiny, tmp_path):
    out = tmp_path / "one" / "drawn.png"
    demo.main(
        [
            "--config-file",
            tiny["config"],
            "--input",
            tiny["images"][1],
            "--output",
            str(out),
            "--confidence-threshold",
            "0.0",
            "MODEL.WEIGHTS",
            tiny["weights"],
        ]  # fmt: skip
    )
    assert tree(out.parent) == ["drawn.png"]


def test_video_same_frames_size_and_fps_with_jsonl(tiny, tmp_path):
    out = tmp_path / "video_out"
    demo.main(
        [
            "--config-file",
            tiny["config"],
            "--video-input",
            tiny["video"],
            "--output",
            str(out),
            "--confidence-threshold",
            "0.0",
            "MODEL.WEIGHTS",
            tiny["weights"],
        ]  # fmt: skip
    )
    assert tree(out) == ["walk.jsonl", "walk.mp4"]
    capture = cv2.VideoCapture(str(out / "walk.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == VIDEO_FRAMES
    assert (
        int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    ) == (128, 96)
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    capture.release()
    with open(out / "walk.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert [r["frame"] for r in records] == list(range(VIDEO_FRAMES))
    persons = [p for r in records for p in r["persons"]]
    assert persons, "with a 0 threshold the random model returns detections"
    for p in persons:
        assert set(p) == {"track_id", "bbox", "score", "keypoints", "category_id"}
        assert len(p["keypoints"]) == 17 * 3 and len(p["bbox"]) == 4
        assert isinstance(p["track_id"], int) and p["track_id"] >= 1
    for r in records:  # track ids are unique within a frame
        ids = [p["track_id"] for p in r["persons"]]
        assert len(ids) == len(set(ids))


def test_overrides_after_the_image_list_are_taken_as_overrides():
    args = demo.get_parser().parse_args(
        [
            "--config-file",
            "c.yaml",
            "--output",
            "out",
            "--input",
            "a.jpg",
            "b/*.jpg",
            "MODEL.WEIGHTS",
            "w.pth",
        ]
    )
    demo.split_trailing_opts(args)
    assert args.input == ["a.jpg", "b/*.jpg"] and args.opts == ["MODEL.WEIGHTS", "w.pth"]
