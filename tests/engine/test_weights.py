"""kpext.engine.weights and KpextPredictor: weights that do not fit the model built are refused,
with one line naming the parameters and the config.yaml saved beside the weights."""

import os

import numpy as np
import pytest
import torch
from engine_helpers import BASE_CONFIG

import kpext
from kpext.engine import KpextPredictor, WeightsMismatchError, load_checked_weights

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.modeling import build_model

# A thin model at 128 px: built in a fraction of a second. FPN_WIDTH is what the "wrong
# config" below changes, as the README's old snippet did (a 128-wide FPN for a 64-wide model).
FPN_WIDTH = 32
TINY = [
    "MODEL.FPN.OUT_CHANNELS", str(FPN_WIDTH), "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
    "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS", "(32, 32)",
    "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "128",
]  # fmt: skip


def tiny_cfg(*opts):
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    cfg.merge_from_list(TINY + list(opts))
    return cfg


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder as train_net.py leaves it: config.yaml and model_final.pth (with the
    iteration, as Detectron2's checkpointer saves it); and the model's state."""
    folder = tmp_path_factory.mktemp("run")
    cfg = tiny_cfg()
    (folder / "config.yaml").write_text(cfg.dump())
    torch.manual_seed(7)
    model = build_model(cfg)
    DetectionCheckpointer(model, save_dir=str(folder)).save("model_final", iteration=99)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return {"dir": folder, "weights": str(folder / "model_final.pth"), "state": state}


def save_state(path, state, **extra):
    torch.save({"model": state, **extra}, str(path))
    return str(path)


def test_fitting_weights_load_every_parameter_and_return_the_rest(run):
    model = build_model(tiny_cfg())
    extra = load_checked_weights(model, run["weights"])
    assert extra == {"iteration": 99}  # not model keys, not refused
    for name, value in model.state_dict().items():
        assert torch.equal(value, run["state"][name]), name


def test_other_shapes_name_the_parameters_and_the_saved_config(run):
    wrong = tiny_cfg("MODEL.FPN.OUT_CHANNELS", str(2 * FPN_WIDTH))
    with pytest.raises(WeightsMismatchError) as error:
        load_checked_weights(build_model(wrong), run["weights"], "wrong.yaml")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{run['weights']} does not fit the model built from wrong.yaml:")
    assert (
        f"backbone.fpn_lateral2.weight: ({FPN_WIDTH}, 64, 1, 1) in the file, "
        f"({2 * FPN_WIDTH}, 64, 1, 1) in the model" in message
    )
    assert " parameters of another shape (" in message and " more)" in message
    # Parameters of another shape are reported once, not also as missing.
    assert "missing" not in message
    assert message.endswith(f"use the config they were trained with: {run['dir']}/config.yaml")


def test_parameters_missing_from_the_file_are_refused(run, tmp_path):
    state = dict(run["state"])
    del state["roi_heads.keypoint_head.score_lowres.weight"]
    weights = save_state(tmp_path / "model.pth", state)
    with pytest.raises(WeightsMismatchError, match="1 model parameters missing from the file "
                       r"\(roi_heads.keypoint_head.score_lowres.weight\)"):  # fmt: skip
        load_checked_weights(build_model(tiny_cfg()), weights)


def test_parameters_the_model_lacks_are_refused(run, tmp_path):
    """A checkpoint of a model with a branch this config does not build (say, a facing head)."""
    state = dict(run["state"])
    state["roi_heads.keypoint_head.facing.weight"] = torch.zeros(4, 32)
    state["roi_heads.keypoint_head.facing.bias"] = torch.zeros(4)
    weights = save_state(tmp_path / "model.pth", state, iteration=5, optimizer={}, scheduler={})
    with pytest.raises(WeightsMismatchError) as error:
        load_checked_weights(build_model(tiny_cfg()), weights)
    assert "2 file parameters not in the model (roi_heads.keypoint_head.facing.weight; " in str(
        error.value
    )


def test_what_does_not_change_a_prediction_is_not_refused(run, tmp_path):
    """BatchNorm step counters and the pixel mean/std (from the config) may be absent, and
    old files' anchor buffers (non-persistent today) present, as Detectron2 allows."""
    state = {
        k: v
        for k, v in run["state"].items()
        if not k.endswith("num_batches_tracked") and k not in ("pixel_mean", "pixel_std")
    }
    assert len(state) < len(run["state"]) - 2  # the tiny model has BatchNorm layers
    state["proposal_generator.anchor_generator.cell_anchors.0"] = torch.zeros(3, 4)
    load_checked_weights(build_model(tiny_cfg()), save_state(tmp_path / "model.pth", state))


def test_without_a_saved_config_the_message_says_where_runs_save_it(run, tmp_path):
    weights = save_state(tmp_path / "model.pth", run["state"])
    with pytest.raises(WeightsMismatchError, match="saves it as config.yaml in its OUTPUT_DIR"):
        load_checked_weights(build_model(tiny_cfg("MODEL.FPN.OUT_CHANNELS", "16")), weights)


def test_the_saved_config_with_a_model_changing_override_says_drop_it(run):
    config = str(run["dir"] / "config.yaml")
    with pytest.raises(WeightsMismatchError, match="drop the overrides that change the model"):
        KpextPredictor.from_config_file(config, run["weights"], ["MODEL.FPN.OUT_CHANNELS", "16"])


def test_unreadable_or_missing_weights_are_one_line(tmp_path):
    corrupt = tmp_path / "model.pth"
    corrupt.write_bytes(b"not a checkpoint" * 8)
    for weights in (str(corrupt), str(tmp_path / "none.pth")):
        with pytest.raises(ValueError, match=f"cannot load weights {weights}: ") as error:
            load_checked_weights(build_model(tiny_cfg()), weights)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="sets no MODEL.WEIGHTS"):
        KpextPredictor(tiny_cfg())


def test_predictor_runs_the_run_and_refuses_another_config(run):
    image = np.full((128, 160, 3), 90, np.uint8)
    predictor = KpextPredictor.from_config_file(
        str(run["dir"] / "config.yaml"), run["weights"], score_threshold=0.0
    )
    assert predictor.cfg.MODEL.WEIGHTS == run["weights"]
    for name, value in predictor.model.state_dict().items():
        assert torch.equal(value, run["state"][name]), name
    assert predictor(image)["instances"].image_size == (128, 160)

    wrong = tiny_cfg("MODEL.FPN.OUT_CHANNELS", str(2 * FPN_WIDTH), "MODEL.WEIGHTS", run["weights"])
    with pytest.raises(WeightsMismatchError, match=os.path.join(str(run["dir"]), "config.yaml")):
        KpextPredictor(wrong)
