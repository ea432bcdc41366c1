"""Evaluation: Detectron2's COCOEvaluator set up for keypoint datasets."""

from ..data import dataset_oks_sigmas
from .coco import build_keypoint_evaluator

__all__ = ["build_keypoint_evaluator", "dataset_oks_sigmas"]
