"""DefaultTrainer with kpext's evaluator, and the config set-up shared by scripts."""
from __future__ import annotations

import os

from detectron2.config import CfgNode, get_cfg
from detectron2.data import MetadataCatalog
from detectron2.engine import DefaultTrainer, default_setup

from ..config import add_kpext_config
from ..evaluation import build_keypoint_evaluator


def setup_cfg(args) -> CfgNode:
    """Detectron2 config with kpext's keys, merged from ``args.config_file`` and ``args.opts``."""
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    check_keypoint_count(cfg)
    default_setup(cfg, args)
    return cfg


def check_keypoint_count(cfg: CfgNode) -> None:
    """Raise ValueError when a dataset's keypoint count differs from ``NUM_KEYPOINTS``.

    Without this check a mismatch surfaces as a shape error deep inside the loss,
    or not at all at inference.
    """
    if not cfg.MODEL.KEYPOINT_ON:
        return
    expected = cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS
    for name in list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST):
        names = MetadataCatalog.get(name).get("keypoint_names", None)
        if names is not None and len(names) != expected:
            raise ValueError(
                f"Dataset '{name}' has {len(names)} keypoints but the config sets "
                f"MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = {expected}"
            )


class KpextTrainer(DefaultTrainer):
    """DefaultTrainer whose evaluator is COCOEvaluator (boxes + OKS keypoint AP)."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_keypoint_evaluator(cfg, dataset_name, output_folder)
