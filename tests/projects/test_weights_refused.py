"""Every script that runs a trained model (demo.py, predict_image.py, export_model.py,
count_reps.py) refuses weights that do not fit the model its config builds: one line naming
the parameters and the config.yaml saved beside the weights. With that config, they run."""

import os

import cv2
import numpy as np
import pytest
import torch
from script_loading import REPO, load_script

import kpext

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.modeling import build_model

BASE_CONFIG = os.path.join(REPO, "configs", "synthetic", "keypoint_rcnn_R18_FPN_kpext.yaml")
# A thin model at 128 px (built in a fraction of a second), trained "from" BASE_CONFIG: BASE_CONFIG
# itself, with its 128-wide FPN, is then the wrong config for the run's 32-wide weights.
THIN = [
    "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
    "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS", "(32, 32)",
    "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "128", "TEST.DETECTIONS_PER_IMAGE", "3",
]  # fmt: skip
SCRIPTS = {
    "demo": ("projects", "PoseEstimation", "demo.py"),
    "predict_image": ("projects", "PoseEstimation", "predict_image.py"),
    "export_model": ("projects", "PoseEstimation", "export_model.py"),
    "count_reps": ("projects", "RepCounter", "count_reps.py"),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """output/<run>/config.yaml and model_final.pth as train_net.py leaves them; an image; a
    3-frame video. The box classifier's person logit is raised so that every detection scores
    above the scripts' default 0.5 threshold: random weights would give about 0.5."""
    folder = tmp_path_factory.mktemp("run")
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    cfg.merge_from_list(THIN)
    (folder / "config.yaml").write_text(cfg.dump())
    torch.manual_seed(3)
    model = build_model(cfg)
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias[0] = 6.0  # class 0: person
    DetectionCheckpointer(model, save_dir=str(folder)).save("model_final", iteration=9)

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    cv2.imwrite(str(folder / "image.png"), image)
    video = folder / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (128, 128))
    for _ in range(3):
        writer.write(image)
    writer.release()
    return {
        "dir": folder,
        "config": str(folder / "config.yaml"),
        "weights": str(folder / "model_final.pth"),
        "image": str(folder / "image.png"),
        "video": str(video),
    }


def argv_of(script, config, run, out):
    """The script's command line for ``config`` and the run's weights, writing under ``out``."""
    weights = ["MODEL.WEIGHTS", run["weights"]]
    return {
        "demo": ["--config-file", config, "--input", run["image"], "--output", str(out / "d"),
                 *weights],
        "predict_image": [config, run["weights"], run["image"]],
        "export_model": ["--config-file", config, "--format", "torchscript", "--image",
                         run["image"], "--output", str(out / "model.ts"), *weights],
        "count_reps": ["--video-input", run["video"], "--config-file", config, "--output",
                       str(out / "reps.mp4"), *weights],
    }[script]  # fmt: skip


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_weights_of_another_config_are_refused_naming_the_saved_one(script, run, tmp_path):
    main = load_script(f"_kpext_refused_{script}", *SCRIPTS[script]).main
    with pytest.raises(SystemExit) as stop:
        main(argv_of(script, BASE_CONFIG, run, tmp_path))
    message = stop.value.code
    assert isinstance(message, str) and "\n" not in message, message
    assert message.startswith(
        f"{script}.py: error: {run['weights']} does not fit the model built from {BASE_CONFIG}: "
    )
    assert "backbone.fpn_lateral2.weight: (32, 64, 1, 1) in the file, (128, 64, 1, 1)" in message
    assert message.endswith(f"use the config they were trained with: {run['config']}")
    assert not os.listdir(tmp_path)  # refused before writing anything


@pytest.mark.parametrize("script", ["predict_image", "count_reps"])
def test_the_saved_config_runs(script, run, tmp_path, capsys):
    """demo.py and export_model.py run with fitting weights in test_demo_cli.py and
    export/test_cli.py; the other two here."""
    load_script(f"_kpext_fitting_{script}", *SCRIPTS[script]).main(
        argv_of(script, run["config"], run, tmp_path)
    )
    out = capsys.readouterr().out
    if script == "predict_image":
        assert "person 0: box (" in out and "right_ankle: " in out
    else:
        assert "repetitions (part hip, track " in out
        assert (tmp_path / "reps.mp4").is_file()
