"""DefaultTrainer with kpext's evaluator, and the config set-up shared by scripts."""
from __future__ import annotations

import os

from detectron2.config import CfgNode, get_cfg
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
    default_setup(cfg, args)
    return cfg


class KpextTrainer(DefaultTrainer):
    """DefaultTrainer whose evaluator is COCOEvaluator (boxes + OKS keypoint AP)."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_keypoint_evaluator(cfg, dataset_name, output_folder)
