"""Built-in kpext datasets: the synthetic person-keypoint splits.

``kpext_synth_train``, ``kpext_synth_val`` and ``kpext_synth_val_heldout`` (people
drawn only in styles that training never sees) point at
``<root>/synthetic/annotations/person_keypoints_<split>.json`` with images in
``<root>/synthetic/<split>/images``, ``root`` being ``$KPEXT_DATASETS``, else
``$DETECTRON2_DATASETS``, else ``datasets``. The files are generated on demand
(by ``datasets/make_synthetic.py``, with the repository's ``kpext_synth.people``, which is
not installed with kpext), usually after this module is imported,
so the metadata is built from :data:`SYNTHETIC_CATEGORY` instead of the JSON; the
records are still loaded lazily from the JSON, which must agree with it.

This module is the one home of the synthetic dataset's facts: its category and
where its files lie (:func:`synthetic_annotation_path`, :func:`synthetic_image_dir`).
The generator writes what it reads from here.

Detectron2's own ``keypoints_coco_2017_*`` datasets are registered by
``detectron2.data`` and left alone.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional, Tuple

from detectron2.data import DatasetCatalog, MetadataCatalog

from .coco_keypoints import register_keypoint_coco
from .keypoint_sets import COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_SKELETON, coco_keypoint_category

__all__ = [
    "SYNTHETIC_SPLITS",
    "SYNTHETIC_CATEGORY",
    "register_synthetic_split",
    "default_datasets_root",
    "synthetic_annotation_path",
    "synthetic_image_dir",
    "synthetic_split_files",
    "register_all_synthetic",
]

logger = logging.getLogger(__name__)

SYNTHETIC_SPLITS: Tuple[str, ...] = ("train", "val", "val_heldout")

# The single category of the synthetic JSONs: COCO's person, id 1, 17 keypoints.
SYNTHETIC_CATEGORY: Dict[str, Any] = coco_keypoint_category(
    "person", COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_SKELETON
)


def default_datasets_root() -> str:
    """``$KPEXT_DATASETS``, else ``$DETECTRON2_DATASETS``, else ``datasets``."""
    return os.environ.get("KPEXT_DATASETS", os.environ.get("DETECTRON2_DATASETS", "datasets"))


def synthetic_annotation_path(out_root: str, split: str) -> str:
    """``<out_root>/annotations/person_keypoints_<split>.json``; ``out_root`` is the
    synthetic set's own folder (``<datasets root>/synthetic`` for the built-in splits)."""
    return os.path.join(out_root, "annotations", f"person_keypoints_{split}.json")


def synthetic_image_dir(out_root: str, split: str) -> str:
    """``<out_root>/<split>/images``: the image root of the split's ``file_name`` s."""
    return os.path.join(out_root, split, "images")


def synthetic_split_files(root: str, split: str) -> Tuple[str, str]:
    """(json_file, image_root) of one synthetic split under the datasets ``root``."""
    synthetic = os.path.join(root, "synthetic")
    return synthetic_annotation_path(synthetic, split), synthetic_image_dir(synthetic, split)


def register_synthetic_split(split: str, root: Optional[str] = None) -> str:
    """Register the synthetic split ``split`` under ``root`` as ``kpext_synth_<split>``;
    returns the name.

    Safe to call more than once: a name that is already registered is kept as it
    is (a warning is logged if it points at other files than ``root`` would).
    """
    root = default_datasets_root() if root is None else root
    name = f"kpext_synth_{split}"
    json_file, image_root = synthetic_split_files(root, split)
    if name in DatasetCatalog.list():
        registered = MetadataCatalog.get(name).get("json_file")
        if registered != json_file:
            logger.warning(
                "Dataset '%s' is already registered with %s; not re-registering it with %s.",
                name,
                registered,
                json_file,
            )
        return name
    register_keypoint_coco(name, json_file, image_root, categories=[SYNTHETIC_CATEGORY])
    return name


def register_all_synthetic(root: Optional[str] = None) -> None:
    """Register ``kpext_synth_<split>`` for each of :data:`SYNTHETIC_SPLITS` under ``root``
    (see :func:`register_synthetic_split`)."""
    for split in SYNTHETIC_SPLITS:
        register_synthetic_split(split, root)
