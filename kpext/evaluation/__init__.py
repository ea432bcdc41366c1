"""Evaluation: Detectron2's COCOEvaluator set up for keypoint datasets."""
from .coco import build_keypoint_evaluator, dataset_oks_sigmas

__all__ = ["build_keypoint_evaluator", "dataset_oks_sigmas"]
