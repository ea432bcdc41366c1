"""Face keypoint datasets: their files, their category, and their registration.

A face dataset's folder holds ``annotations/faces{15,68}_<split>.json`` with the images of a
split in ``images/<split>``: the layout that ``datasets/make_faces.py`` (synthetic faces) and
``datasets/kaggle_faces_to_coco.py`` (Kaggle's ``training.csv``) write. Both writers live in
the repository's ``datasets/kpext_synth`` (not installed with kpext): this module holds what
training needs, the facts the writers write by (:func:`face_annotation_path`,
:func:`face_image_dir`, :func:`face15_category`, :func:`face68_category`) and
:func:`register_face_datasets`. The 15- and 68-point face keypoint sets themselves (names,
skeletons, OKS sigmas) are defined in :mod:`kpext.data.keypoint_sets`;
:data:`~kpext.data.keypoint_sets.FACE15_OKS_SIGMAS` and
:data:`~kpext.data.keypoint_sets.FACE68_OKS_SIGMAS` are relative to the square root of the
*face box* area.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Sequence, Tuple

from detectron2.data import DatasetCatalog, MetadataCatalog

from .coco_keypoints import register_keypoint_coco
from .keypoint_sets import (
    FACE15_OKS_SIGMAS,
    FACE15_SKELETON,
    FACE68_KEYPOINT_NAMES,
    FACE68_OKS_SIGMAS,
    FACE68_SKELETON,
    KAGGLE_FACE_KEYPOINT_NAMES,
    coco_keypoint_category,
)

__all__ = [
    "FACE_SPLITS",
    "face_category",
    "face15_category",
    "face68_category",
    "face_annotation_path",
    "face_image_dir",
    "register_face_datasets",
]

logger = logging.getLogger(__name__)

FACE_SPLITS: Tuple[str, ...] = ("train", "val")


def face_category(names: Sequence[str], skeleton: Sequence[Sequence[int]]) -> Dict[str, Any]:
    """The COCO category of a face keypoint set (id 1, name ``face``)."""
    return coco_keypoint_category("face", names, skeleton)


def face15_category() -> Dict[str, Any]:
    return face_category(KAGGLE_FACE_KEYPOINT_NAMES, FACE15_SKELETON)


def face68_category() -> Dict[str, Any]:
    return face_category(FACE68_KEYPOINT_NAMES, FACE68_SKELETON)


def face_annotation_path(root: str, num_points: int, split: str) -> str:
    """``<root>/annotations/faces<num_points>_<split>.json``."""
    return os.path.join(root, "annotations", f"faces{num_points}_{split}.json")


def face_image_dir(root: str, split: str) -> str:
    """``<root>/images/<split>``: the image root of a split's ``file_name`` s."""
    return os.path.join(root, "images", split)


def register_face_datasets(
    root: str, *, prefix: str = "kpext_faces", splits: Sequence[str] = FACE_SPLITS
) -> List[str]:
    """Register ``<prefix>15_<split>`` and ``<prefix>68_<split>`` for each split.

    Files: ``<root>/annotations/faces{15,68}_<split>.json`` with images in
    ``<root>/images/<split>`` (the layout of ``datasets/kaggle_faces_to_coco.py`` and
    ``datasets/make_faces.py``). The metadata comes from the face keypoint sets
    (names, skeleton, flip pairs, :data:`FACE15_OKS_SIGMAS` /
    :data:`FACE68_OKS_SIGMAS`), so the files may be generated after registering;
    they are read, and checked against that metadata, when a dataset is loaded.
    A name that is already registered is kept (with a warning if it points at
    other files). Returns the names.
    """
    sets = (
        (15, face15_category(), FACE15_OKS_SIGMAS),
        (68, face68_category(), FACE68_OKS_SIGMAS),
    )
    names = []
    for split in splits:
        for num_points, category, sigmas in sets:
            name = f"{prefix}{num_points}_{split}"
            json_file = face_annotation_path(root, num_points, split)
            names.append(name)
            if name in DatasetCatalog.list():
                registered = MetadataCatalog.get(name).get("json_file")
                if registered != json_file:
                    logger.warning(
                        "Dataset '%s' is already registered with %s; "
                        "not re-registering it with %s.",
                        name, registered, json_file,
                    )  # fmt: skip
                continue
            register_keypoint_coco(
                name,
                json_file,
                face_image_dir(root, split),
                categories=[category],
                oks_sigmas=sigmas,
            )
    return names
