"""The instruments behind `make bench` (not part of the installed kpext): a shared frozen
detector and its caches, head training on it, per-image keypoint AP and paired bootstrap,
keypoint-branch timing."""

from .timing import KeypointBranchTiming, time_keypoint_branch

__all__ = ["KeypointBranchTiming", "time_keypoint_branch"]
