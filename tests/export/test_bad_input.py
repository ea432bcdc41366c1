"""Configs the export cannot honour and unusable files give one-line errors naming the cause."""

import cv2
import numpy as np
import pytest
from export_helpers import tiny_cfg
from script_loading import load_script

from kpext.export import (
    ExportError,
    OnnxPredictor,
    TorchScriptPredictor,
    check_exportable,
    export_model,
)

from detectron2.modeling import build_model

REPO = __file__.rsplit("/tests/", 1)[0]


@pytest.mark.parametrize(
    "key,value",
    [("TEST.AUG.ENABLED", True), ("MODEL.MASK_ON", True), ("MODEL.KEYPOINT_ON", False)],
)
def test_config_the_export_cannot_honour_names_the_option(key, value):
    cfg = tiny_cfg()
    cfg.merge_from_list([key, str(value)])
    with pytest.raises(ExportError, match=key.replace(".", r"\.")):
        check_exportable(cfg)


def test_example_without_detection_is_refused(tmp_path):
    cfg = tiny_cfg(score_thresh=1.0)  # nothing scores above 1
    model = build_model(cfg).eval()
    with pytest.raises(ExportError, match="no detection"):
        export_model(model, cfg, np.zeros((64, 64, 3), np.uint8), str(tmp_path / "m.onnx"))


@pytest.mark.parametrize("predictor", [OnnxPredictor, TorchScriptPredictor])
def test_missing_or_corrupt_file_gives_one_line(predictor, tmp_path):
    cfg = tiny_cfg()
    with pytest.raises(ExportError, match="not found") as missing:
        predictor(str(tmp_path / "none.onnx"), cfg)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not a model" * 10)
    with pytest.raises(ExportError, match="cannot load") as bad:
        predictor(str(corrupt), cfg)
    for error in (missing, bad):
        assert "\n" not in str(error.value)


def test_demo_with_missing_onnx_exits_with_one_line(tmp_path):
    demo = load_script("_kpext_demo", "projects", "PoseEstimation", "demo.py")
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    missing = tmp_path / "missing.onnx"
    with pytest.raises(SystemExit) as exit_:
        demo.main(
            ["--config-file", f"{REPO}/configs/synthetic/keypoint_rcnn_R18_FPN_kpext.yaml",
             "--onnx", str(missing), "--input", str(image), "--output", str(tmp_path / "out")]
        )  # fmt: skip
    assert str(exit_.value) == f"demo.py: error: ONNX model not found: {missing}"
