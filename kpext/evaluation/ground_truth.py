"""The ground truth COCOEvaluator reads: a normalised copy, written once per dataset.

Detectron2's ``COCOEvaluator`` hands the metadata's ``json_file`` to pycocotools, which
needs ``iscrowd``, ``area`` and ``num_keypoints`` in every annotation and flat
``keypoints``. Real datasets often lack them, and records skipped by
``DATASETS.KPEXT.ON_INVALID skip`` would still count as ground truth. For a dataset
registered by :func:`kpext.data.register_keypoint_coco`, evaluation therefore reads
:func:`kpext.data.coco_keypoints.normalized_ground_truth`: what training reads, with those
fields filled. It is written under the evaluation's output folder (never next to the
user's data, which may be read-only), named by a digest of the source file's version and
the load options, and reused while they do not change.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from typing import Optional

from ..data import coco_keypoints
from ..io import atomic_open

__all__ = ["ground_truth_cache_dir", "normalized_ground_truth_file"]

logger = logging.getLogger(__name__)


def ground_truth_cache_dir(output_dir: Optional[str]) -> str:
    """``<output_dir>/ground_truth``, or a folder of the system's temporary directory when
    the evaluator has no output folder."""
    if output_dir:
        return os.path.join(output_dir, "ground_truth")
    return os.path.join(tempfile.gettempdir(), f"kpext_ground_truth_{os.getuid()}")


def normalized_ground_truth_file(dataset_name: str, output_dir: Optional[str]) -> Optional[str]:
    """Path of the normalised ground truth of ``dataset_name`` (written now unless an
    up-to-date copy exists), or None when the dataset was not registered by
    :func:`~kpext.data.register_keypoint_coco` (its ``json_file`` is then read as it is)."""
    key = coco_keypoints.ground_truth_key(dataset_name)
    if key is None:
        return None
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
    path = os.path.join(ground_truth_cache_dir(output_dir), f"{dataset_name}_{digest}.json")
    if os.path.isfile(path):
        return path
    ground_truth = coco_keypoints.normalized_ground_truth(dataset_name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Several processes (DDP ranks) may write the same file: each writes its own temporary
    # file and renames it, so a reader sees a complete file or none.
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(ground_truth, f)
    logger.info("Evaluation ground truth of '%s' written to %s", dataset_name, path)
    return path
