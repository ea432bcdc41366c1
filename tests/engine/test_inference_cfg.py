"""kpext.engine.inference: the config checks of demo.py and count_reps.py, one line each."""

import os

import pytest

from kpext.engine.inference import check_inference_weights, load_inference_cfg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "synthetic", "keypoint_rcnn_R18_FPN_kpext.yaml")


def test_config_is_merged_with_overrides_and_threshold():
    cfg = load_inference_cfg(CONFIG, ["MODEL.WEIGHTS", "w.pth"], 0.3)
    assert cfg.MODEL.WEIGHTS == "w.pth" and cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST == 0.3
    assert cfg.MODEL.ROI_KEYPOINT_HEAD.NAME == "KpextKRCNNHead" and cfg.is_frozen()


@pytest.mark.parametrize(
    "config, opts, message",
    [
        ("nowhere.yaml", [], "config file not found: nowhere.yaml"),
        (CONFIG, ["MODEL.NO_SUCH_KEY", "1"], "bad config .*MODEL.NO_SUCH_KEY"),
        (CONFIG, ["MODEL.WEIGHTS"], "bad config"),
        (
            CONFIG,
            ["MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS", "5"],
            "keypoint_rcnn_R18_FPN_kpext.yaml: .* 17 keypoints",
        ),
    ],
)
def test_config_problems_are_one_line_errors(config, opts, message):
    with pytest.raises(ValueError, match=message) as error:
        load_inference_cfg(config, opts, 0.5)
    assert "\n" not in str(error.value)


def test_weights_must_be_given_and_exist(tmp_path):
    with pytest.raises(ValueError, match="sets no MODEL.WEIGHTS"):
        check_inference_weights(load_inference_cfg(CONFIG, [], 0.5), "c.yaml")
    with pytest.raises(ValueError, match="weights file not found"):
        check_inference_weights(
            load_inference_cfg(CONFIG, ["MODEL.WEIGHTS", str(tmp_path / "w.pth")], 0.5), "c.yaml"
        )
    (tmp_path / "w.pth").write_bytes(b"")
    check_inference_weights(
        load_inference_cfg(CONFIG, ["MODEL.WEIGHTS", str(tmp_path / "w.pth")], 0.5), "c.yaml"
    )
