"""The instruments behind `make bench` (not part of the installed kpext): a shared frozen
detector and its caches, head training on it, per-image keypoint AP and paired bootstrap,
keypoint-branch timing.

Importing it also puts the repository's ``datasets/`` on ``sys.path`` (the one place the
benchmarks do): they generate their synthetic splits with ``kpext_synth``, the renderers that
live there and are not installed with kpext. Every bench script imports ``kpext_bench`` before
``kpext_synth`` (isort puts this third-party-sorted package first)."""

import os
import sys

_DATASETS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "datasets",
)
if _DATASETS not in sys.path:
    sys.path.append(_DATASETS)

from .timing import KeypointBranchTiming, time_keypoint_branch  # noqa: E402

__all__ = ["KeypointBranchTiming", "time_keypoint_branch"]
