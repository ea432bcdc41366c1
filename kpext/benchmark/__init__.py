"""Measurements behind `make bench`: keypoint-branch timing and head comparisons."""

from .timing import KeypointBranchTiming, time_keypoint_branch

__all__ = ["KeypointBranchTiming", "time_keypoint_branch"]
