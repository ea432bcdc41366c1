"""Config set-up for scripts that run a trained model (demo.py, count_reps.py, KpextPredictor):
every problem found before the model is built becomes one ``ValueError`` line naming the file.
Whether the weights fit the model is checked as they load (:mod:`kpext.engine.weights`)."""

from __future__ import annotations

import os
from typing import Optional, Sequence

from detectron2.config import CfgNode, get_cfg

from ..config import add_kpext_config
from .trainer import check_keypoint_count


def load_inference_cfg(
    config_file: str, opts: Sequence[str], score_threshold: Optional[float]
) -> CfgNode:
    """kpext's config: defaults + ``config_file`` + ``opts`` (``KEY VALUE`` pairs), the
    detection score threshold set (None: the config's), frozen, and its keypoint count
    checked against the datasets.

    Raises ValueError for a missing file, YAML errors, unknown keys, an odd number of
    overrides, or a keypoint count that differs from the datasets'.
    """
    if not os.path.isfile(config_file):
        raise ValueError(f"config file not found: {config_file}")
    cfg = get_cfg()
    add_kpext_config(cfg)
    try:
        cfg.merge_from_file(config_file)
        cfg.merge_from_list(list(opts))
    except Exception as e:  # yaml errors, unknown keys, odd override counts
        raise ValueError(f"bad config {config_file} {' '.join(opts)}: {one_line(e)}") from None
    if score_threshold is not None:
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = score_threshold
        cfg.MODEL.RETINANET.SCORE_THRESH_TEST = score_threshold
    cfg.freeze()
    try:
        check_keypoint_count(cfg)
    except ValueError as e:
        raise ValueError(f"{config_file}: {e}") from None
    return cfg


def check_inference_weights(cfg: CfgNode, config_file: str) -> None:
    """A model with random weights draws nonsense: require MODEL.WEIGHTS, and a local file
    to exist (URLs are left to the checkpointer). Raises ValueError."""
    weights = cfg.MODEL.WEIGHTS
    if not weights:
        raise ValueError(
            f"{config_file} sets no MODEL.WEIGHTS; "
            "add 'MODEL.WEIGHTS path/model_final.pth' at the end"
        )
    if "://" not in weights and not os.path.isfile(weights):
        raise ValueError(f"weights file not found: {weights}")


def one_line(error: BaseException) -> str:
    """An exception's message on one line (its type name when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__
