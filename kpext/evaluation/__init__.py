"""Evaluation: Detectron2's COCOEvaluator set up for keypoint datasets, on the normalised
ground truth of what training reads."""

from ..data import dataset_oks_sigmas
from .coco import build_keypoint_evaluator
from .ground_truth import normalized_ground_truth_file

__all__ = ["build_keypoint_evaluator", "dataset_oks_sigmas", "normalized_ground_truth_file"]
