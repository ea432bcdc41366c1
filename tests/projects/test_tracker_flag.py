"""--tracker of demo.py and count_reps.py: the default, each choice, and the detector threshold
each tracker needs."""

import os

import pytest
from script_loading import load_script

import kpext
from kpext.video import ByteTrackPoseTracker, KalmanOksTracker, PoseTracker

from detectron2.config import get_cfg

demo = load_script("kpext_pose_demo_tracker", "projects", "PoseEstimation", "demo.py")
count_reps = load_script("kpext_count_reps_tracker", "projects", "RepCounter", "count_reps.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "synthetic", "keypoint_rcnn_R18_FPN_kpext.yaml")
KINDS = {"kalman-oks": KalmanOksTracker, "greedy": PoseTracker, "bytetrack": ByteTrackPoseTracker}


def demo_args(*extra):
    return demo.get_parser().parse_args(
        ["--config-file", CONFIG, "--video-input", "walk.mp4", "--output", "out/", *extra]
    )


@pytest.fixture(scope="module")
def cfg():
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    return cfg


def test_demo_defaults_to_kalman_oks_with_its_own_memory(cfg):
    args = demo_args()
    assert args.tracker == "kalman-oks"
    runner = demo.build_runner(cfg, predictor=None, args=args, fps=25.0, metadata=None)
    assert isinstance(runner.tracker, KalmanOksTracker) and runner.tracker.max_age == 30
    # people start tracks from --confidence-threshold on; less confident ones continue them
    assert runner.tracker.high_score == 0.5 and runner.score_threshold == 0.1
    assert runner.smoother.max_age == 30
    assert demo.detector_score_threshold(args) == 0.1


@pytest.mark.parametrize("name", sorted(KINDS))
def test_demo_tracker_flag_picks_the_tracker(cfg, name):
    args = demo_args("--tracker", name, "--max-age", "7", "--confidence-threshold", "0.6")
    runner = demo.build_runner(cfg, predictor=None, args=args, fps=25.0, metadata=None)
    assert type(runner.tracker) is KINDS[name] and runner.tracker.max_age == 7
    floor = 0.6 if name == "greedy" else 0.1
    assert runner.score_threshold == demo.detector_score_threshold(args) == floor


def test_demo_images_and_exported_models_keep_the_confidence_threshold():
    images = demo.get_parser().parse_args(
        ["--config-file", CONFIG, "--input", "a.jpg", "--output", "out/"]
    )
    assert demo.detector_score_threshold(images) == 0.5
    assert demo.detector_score_threshold(demo_args("--onnx", "model.onnx")) == 0.5


def test_demo_refuses_an_unknown_tracker(capsys):
    with pytest.raises(SystemExit):
        demo_args("--tracker", "sort")
    assert "invalid choice: 'sort'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(KINDS))
def test_count_reps_tracker_flag(name):
    parser = count_reps.get_parser()
    assert parser.parse_args([]).tracker == "kalman-oks"
    args = parser.parse_args(["--video-input", "v.mp4", "--config-file", CONFIG, "--tracker", name])
    runner = count_reps.build_runner(None, args, sigmas=None, fps=30.0)
    assert type(runner.tracker) is KINDS[name]
    floor = 0.5 if name == "greedy" else 0.1
    assert runner.score_threshold == floor
    assert count_reps.build_cfg(args).MODEL.ROI_HEADS.SCORE_THRESH_TEST == floor
