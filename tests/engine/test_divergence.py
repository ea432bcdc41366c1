"""Non-finite losses stop training with the iteration and the name of the loss."""

import pytest
import torch
from engine_helpers import BASE_CONFIG, TINY_OVERRIDES

from kpext import add_kpext_config
from kpext.data import register_keypoint_coco
from kpext.engine import KpextTrainer, describe_divergence
from kpext.modeling.heads import KpextKRCNNHead

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.modeling import ROI_KEYPOINT_HEAD_REGISTRY

NAN_FROM_ITERATION = 2


@ROI_KEYPOINT_HEAD_REGISTRY.register()
class NaNFromIterationTwoHead(KpextKRCNNHead):
    """KpextKRCNNHead whose loss turns NaN from its third training call on."""

    calls = 0

    def heatmap_losses(self, stages, keypoints, boxes, num_images):
        losses = super().heatmap_losses(stages, keypoints, boxes, num_images)
        NaNFromIterationTwoHead.calls += 1
        if NaNFromIterationTwoHead.calls > NAN_FROM_ITERATION:
            losses["loss_keypoint"] = losses["loss_keypoint"] * float("nan")
        return losses


def test_divergence_names_iteration_and_loss(tiny_synthetic_root, tmp_path):
    name = "kpext_test_divergence_train"
    if name not in DatasetCatalog.list():
        synthetic = tiny_synthetic_root / "synthetic"
        register_keypoint_coco(
            name,
            str(synthetic / "annotations" / "person_keypoints_train.json"),
            str(synthetic / "train" / "images"),
        )
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    cfg.merge_from_list(TINY_OVERRIDES)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NAME = "NaNFromIterationTwoHead"
    cfg.DATASETS.TRAIN = (name,)
    cfg.DATASETS.TEST = ()
    cfg.SOLVER.MAX_ITER = 6
    cfg.OUTPUT_DIR = str(tmp_path)
    NaNFromIterationTwoHead.calls = 0
    trainer = KpextTrainer(cfg)
    trainer.resume_or_load(resume=False)
    with pytest.raises(FloatingPointError, match=r"iteration 2: loss_keypoint = nan is not finite"):
        trainer.train()
    assert not (tmp_path / "model_final.pth").exists()


def test_divergence_message_lists_every_bad_loss():
    message = describe_divergence(
        7,
        {
            "loss_cls": torch.tensor(0.5),
            "loss_a": torch.tensor(float("inf")),
            "loss_b": torch.tensor(float("nan")),
        },
    )
    assert "iteration 7" in message and "loss_a = inf" in message and "loss_b = nan" in message
    assert "loss_cls = 0.5" in message
