"""The README's Python snippets, run as written, in a folder laid out as they expect; and the
versions its export section names, which must be constraints.txt's.

Each ```python block of README.md is run with its working directory set to a temporary folder
holding the files it names: for the predictor snippet a run folder standing in for what
`make demo` leaves (output/demo/config.yaml, output/demo/model_final.pth) and
datasets/synthetic/val/images/000001.jpg; for the dataset snippet a small hands/ COCO set.
The stand-in model is `make demo`'s recipe (half-width ResNet-18 with GroupNorm, 64-wide FPN)
with thinner heads at 128 px, with seeded random weights: what is tested is which config and
weights the snippet loads, which any weights a freshly built model does not have show.
"""

import json
import os
import re

import cv2
import numpy as np
import pytest
import torch

import kpext
from kpext.engine import WeightsMismatchError
from kpext_synth.people import SyntheticConfig
from kpext_synth.scene import render_image

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import DefaultPredictor
from detectron2.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
DEMO_CONFIG = os.path.join(REPO, "configs", "synthetic", "keypoint_rcnn_R18_FPN_demo.yaml")
# What the README's snippet merged before (and what a user might still pass): the config the
# demo recipe starts from, whose model (full-width ResNet-18 with BatchNorm, 128-wide FPN)
# the demo's weights do not fit.
WRONG_CONFIG = "configs/synthetic/keypoint_rcnn_R18_FPN_kpext.yaml"
SAVED_CONFIG = "output/demo/config.yaml"
THINNER = [
    "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "128",
    "MODEL.ROI_BOX_HEAD.FC_DIM", "64", "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS", "(32, 32)",
]  # fmt: skip
HAND_KEYPOINTS = ["wrist"] + [f"{f}{i}" for f in ("thumb", "index", "middle", "ring", "pinky")
                              for i in range(1, 5)]  # fmt: skip


def python_snippets():
    """(line number, code) of each ```python block of README.md."""
    text = open(README, encoding="utf-8").read()
    return [
        (text.count("\n", 0, m.start(1)) + 1, m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)
    ]


def snippet_using(name):
    """The one README snippet that uses ``name``, as (line number, code)."""
    found = [(line, code) for line, code in python_snippets() if name in code]
    assert len(found) == 1, f"README.md: {len(found)} Python snippets use {name}, expected 1"
    return found[0]


def run_snippet(line, code, folder, monkeypatch):
    """exec the snippet in ``folder``; tracebacks point at README.md's lines. Returns its
    variables."""
    monkeypatch.chdir(folder)
    namespace = {"__name__": "readme_snippet"}
    exec(compile("\n" * (line - 1) + code, README, "exec"), namespace)
    return namespace


def test_every_snippet_is_run_here():
    """A new snippet must get its files here, or it would go untested and drift."""
    tested = ("KpextPredictor", "register_keypoint_coco")
    for line, code in python_snippets():
        uses = [name for name in tested if name in code]
        assert len(uses) == 1, f"README.md:{line}: give this snippet a test in {__file__}"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A folder with output/demo/{config.yaml, model_final.pth}, the val image the snippet
    reads, and configs/ (so that a snippet naming a repository config finds it)."""
    folder = tmp_path_factory.mktemp("readme")
    run = folder / "output" / "demo"
    run.mkdir(parents=True)
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(DEMO_CONFIG)
    cfg.merge_from_list(THINNER)
    (run / "config.yaml").write_text(cfg.dump())  # as train_net.py saves it
    torch.manual_seed(20261206)
    DetectionCheckpointer(build_model(cfg), save_dir=str(run)).save("model_final", iteration=699)
    images = folder / "datasets" / "synthetic" / "val" / "images"
    images.mkdir(parents=True)
    image, _ = render_image(
        SyntheticConfig(num_images=1, width=128, height=128, max_people=2),
        np.random.default_rng(0),
    )
    cv2.imwrite(str(images / "000001.jpg"), image)
    os.symlink(os.path.join(REPO, "configs"), folder / "configs")
    return folder


def reference_instances(folder, config):
    """What Detectron2's DefaultPredictor gives with ``config`` and the run's weights."""
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(str(folder / config))
    cfg.MODEL.WEIGHTS = str(folder / "output" / "demo" / "model_final.pth")
    image = cv2.imread(str(folder / "datasets" / "synthetic" / "val" / "images" / "000001.jpg"))
    return DefaultPredictor(cfg)(image)["instances"]


def test_predictor_snippet_predicts_with_the_runs_model(demo_run, monkeypatch, capsys):
    line, code = snippet_using("KpextPredictor")
    instances = run_snippet(line, code, demo_run, monkeypatch)["instances"]
    expected = reference_instances(demo_run, SAVED_CONFIG)
    assert len(expected) > 0  # else any model would match
    assert len(instances) == len(expected)
    assert torch.allclose(instances.pred_keypoints, expected.pred_keypoints, atol=1e-4)
    assert torch.allclose(instances.pred_boxes.tensor, expected.pred_boxes.tensor, atol=1e-4)
    assert "tensor(" in capsys.readouterr().out  # it prints the keypoints


def test_predictor_snippet_with_the_wrong_config_names_the_saved_one(demo_run, monkeypatch):
    line, code = snippet_using("KpextPredictor")
    assert SAVED_CONFIG in code
    wrong = code.replace(SAVED_CONFIG, WRONG_CONFIG)
    with pytest.raises(WeightsMismatchError) as error:
        run_snippet(line, wrong, demo_run, monkeypatch)
    message = str(error.value)
    assert message.startswith(
        f"output/demo/model_final.pth does not fit the model built from {WRONG_CONFIG}: "
    )
    assert "parameters of another shape (backbone.fpn_lateral2.weight: " in message
    assert message.endswith(f"use the config they were trained with: {SAVED_CONFIG}")
    # What the README says of Detectron2's own predictor: it loads what fits and predicts.
    monkeypatch.chdir(demo_run)
    silent = reference_instances(demo_run, WRONG_CONFIG)
    right = reference_instances(demo_run, SAVED_CONFIG)
    assert len(silent) != len(right) or not torch.allclose(
        silent.pred_boxes.tensor, right.pred_boxes.tensor
    )


def test_dataset_snippet_registers_the_hands(tmp_path, monkeypatch):
    hands = tmp_path / "hands"
    (hands / "images").mkdir(parents=True)
    cv2.imwrite(str(hands / "images" / "1.jpg"), np.zeros((64, 64, 3), np.uint8))
    points = [[10 + 2 * i, 20 + i, 2] for i in range(len(HAND_KEYPOINTS))]
    coco = {
        "images": [{"id": 1, "file_name": "1.jpg", "width": 64, "height": 64}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [8, 18, 48, 30], "area": 1440,
             "iscrowd": 0, "num_keypoints": len(points), "keypoints": sum(points, [])}
        ],
        "categories": [{"id": 1, "name": "hand", "keypoints": HAND_KEYPOINTS, "skeleton": []}],
    }  # fmt: skip
    for split in ("train", "val"):
        (hands / f"{split}.json").write_text(json.dumps(coco))
    names = ("my_hands_train", "my_hands_val")
    try:
        run_snippet(*snippet_using("register_keypoint_coco"), tmp_path, monkeypatch)
        for name in names:
            assert MetadataCatalog.get(name).keypoint_names == HAND_KEYPOINTS
            (record,) = DatasetCatalog.get(name)
            assert len(record["annotations"][0]["keypoints"]) == 3 * len(HAND_KEYPOINTS)  # x, y, v
    finally:  # the names are global: leave them free for other tests
        for name in names:
            if name in DatasetCatalog.list():
                DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_export_section_names_the_pinned_versions():
    """The versions the README says the export was tested with are constraints.txt's: a
    refresh of the file that moves them fails here until the README follows."""
    text = open(README, encoding="utf-8").read()
    named = re.search(r"Tested with onnxruntime (\S+), onnx (\S+) and torch (\S+) \(CPU\)", text)
    assert named, "README.md: the export section no longer names the versions tested"
    pins = dict(
        line.strip().split("==")
        for line in open(os.path.join(REPO, "constraints.txt"), encoding="utf-8")
        if "==" in line and not line.startswith("#")
    )
    assert named.groups() == (pins["onnxruntime"], pins["onnx"], pins["torch"])
