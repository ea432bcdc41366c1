"""kpext.preprocessing: the one test-time preprocessing, as DefaultPredictor's, honouring
INPUT.FORMAT, for the pictures of predictions and the exported graph alike."""

import numpy as np
import pytest
import torch

from kpext import add_kpext_config
from kpext.export import preprocess
from kpext.preprocessing import model_input
from kpext.visualization import save_prediction_pictures

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import DefaultPredictor
from detectron2.structures import Instances


def _cfg(fmt: str):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    cfg.INPUT.FORMAT = fmt
    cfg.INPUT.MIN_SIZE_TEST = 40
    cfg.INPUT.MAX_SIZE_TEST = 70
    return cfg


def _image(height=30, width=50):
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["BGR", "RGB"])
def test_model_input_is_default_predictors(fmt):
    cfg = _cfg(fmt)
    predictor = DefaultPredictor(cfg)
    seen = []
    predictor.model = lambda inputs: seen.append(inputs[0]) or [{}]
    image = _image()
    predictor(image)
    ours = model_input(image, cfg)
    assert (ours["height"], ours["width"]) == (seen[0]["height"], seen[0]["width"]) == (30, 50)
    assert ours["image"].shape == (3, 40, 67) and ours["image"].dtype == torch.float32
    assert torch.equal(ours["image"], seen[0]["image"])
    assert ours["image"].stride() == seen[0]["image"].stride()
    # RGB reverses the channels, BGR keeps them
    first = ours["image"][:, 0, 0].tolist()
    resized_bgr = model_input(image, _cfg("BGR"))["image"][:, 0, 0].tolist()
    assert first == (resized_bgr[::-1] if fmt == "RGB" else resized_bgr)


@pytest.mark.parametrize("fmt", ["BGR", "RGB"])
def test_export_preprocess_is_model_input(fmt):
    cfg = _cfg(fmt)
    image = _image()
    tensor, size = preprocess(image, cfg)
    assert tensor.is_contiguous()
    assert torch.equal(tensor, model_input(image, cfg)["image"])
    assert size.tolist() == [30, 50] and size.dtype == torch.int64


def test_pictures_of_predictions_honour_input_format(tmp_path):
    """save_prediction_pictures gives the model its input in INPUT.FORMAT's channel order
    (it used to pass BGR whatever the format)."""
    import cv2

    path = str(tmp_path / "a.png")
    image = _image()
    cv2.imwrite(path, image)
    name = "kpext_test_preprocessing_pictures"
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: [{"file_name": path, "image_id": 1}])
        MetadataCatalog.get(name).set(keypoint_names=[], keypoint_connection_rules=[])
    cfg = _cfg("RGB")
    seen = []

    class Model(torch.nn.Module):
        def forward(self, inputs):
            seen.append(inputs[0])
            empty = Instances((inputs[0]["height"], inputs[0]["width"]), scores=torch.zeros(0))
            return [{"instances": empty}]

    written = save_prediction_pictures(cfg, Model(), name, str(tmp_path / "out"), 1)
    assert len(written) == 1
    assert torch.equal(seen[0]["image"], model_input(image, cfg)["image"])
