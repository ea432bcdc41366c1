"""Synthetic grey face crops labelled in the Kaggle 15-point format and the iBUG 68-point layout.

Every image is one face on a cluttered background, ``image_size`` pixels square
(96 by default, like Kaggle's facial-keypoints set). The set exists so that the
face-keypoint pipeline (Kaggle CSV -> COCO JSON -> Keypoint R-CNN with any kpext
head -> pixel error and OKS AP) runs offline on a small CPU machine.

It is written by :func:`generate_face_split` / :func:`ensure_face_dataset` with the
settings of a :class:`FaceSynthConfig` (:data:`DEFAULT_FACE_SPLITS`). The renderer lives in
one module per concern:

* :mod:`~kpext_synth.face_config`: :class:`FaceSynthConfig` and the default
  splits (re-exported here);
* :mod:`~kpext_synth.face_model`: the face model and its landmarks;
* :mod:`~kpext_synth.face_sampling`: random faces placed in the image;
* :mod:`~kpext_synth.face_painting`: drawing a face, its occluders and the
  camera effects.

Labels
------
* The 15 Kaggle points (:data:`~kpext.data.keypoint_sets.KAGGLE_FACE_KEYPOINT_NAMES`):
  eye centres are the pupils; corners, brow ends, nose tip, mouth corners and lip
  centres are the same points as in the 68-point set. The subject's left eye is
  on the image's right, as in Kaggle's data. They are written to a Kaggle-format
  CSV in which ``missing_fraction`` of the rows keep only the 4 core points
  (:data:`~kpext_synth.kaggle.KAGGLE_CORE_KEYPOINTS`), like Kaggle's file where ~70%
  do, and converted to COCO JSON by :func:`kpext_synth.kaggle.convert_kaggle_csv`
  with the generator's face box. Points covered by an occluder keep their label
  (Kaggle's CSV has no visibility; annotators label occluded points too).
* The 68 iBUG points (:data:`~kpext.data.keypoint_sets.FACE68_KEYPOINT_NAMES`) in a COCO
  JSON on the same images, with ``v=1`` for points under an occluder (bar or
  hand; glasses do not hide anything) and ``v=2`` otherwise.
* The face box (both JSONs) is the box of the head outline (ear to ear, top of
  the head to the chin) clipped to the image; its area is COCO's ``area``.

Coordinates follow COCO's pixel-index convention (the centre of pixel ``(i, j)``
is ``(i, j)``, see :mod:`kpext.geometry`), as Kaggle's do.

Determinism
-----------
Image ``i`` of split ``s`` is drawn from ``numpy.random.default_rng([seed,
crc32(s), i])``: it does not depend on how many images are generated, and the
same settings give byte-identical CSV and JSON files.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from tqdm import tqdm

from kpext.data.faces import face68_category, face_annotation_path, face_image_dir
from kpext.data.keypoint_sets import KAGGLE_FACE_KEYPOINT_NAMES
from kpext.io import atomic_open

from .face_config import DEFAULT_FACE_SPLITS, FaceSynthConfig
from .face_painting import render_face
from .face_sampling import sample_face_spec
from .generation import write_json_atomically
from .kaggle import (
    CONVERTER_VERSION,
    KAGGLE_CORE_KEYPOINTS,
    convert_kaggle_csv,
    face_annotation,
    image_file_name,
    kaggle_columns,
)
from .render import image_rng

__all__ = [
    "GENERATOR_VERSION",
    # the split settings, re-exported from face_config: what callers of the writer pass
    "FaceSynthConfig",
    "DEFAULT_FACE_SPLITS",
    "face_csv_path",
    "generate_face_split",
    "face_split_is_current",
    "ensure_face_dataset",
]

# Bump whenever the images or labels produced for a given config change, so that
# ensure_face_dataset() regenerates stale data.
GENERATOR_VERSION = "1.0"

_K15 = {name: i for i, name in enumerate(KAGGLE_FACE_KEYPOINT_NAMES)}


def face_csv_path(out_root: str, split: str) -> str:
    """``<out_root>/csv/<split>.csv``: the split in Kaggle's CSV format."""
    return os.path.join(out_root, "csv", f"{split}.csv")


def _csv_row(keypoints15: np.ndarray, image: np.ndarray) -> List[str]:
    coords = [("" if np.isnan(v) else f"{v:.4f}") for v in keypoints15.reshape(-1)]
    return coords + [" ".join(map(str, image.reshape(-1).tolist()))]


def _drop_non_core(keypoints15: np.ndarray) -> np.ndarray:
    """Blank the 11 points that most Kaggle rows miss."""
    out = keypoints15.copy()
    core = [_K15[name] for name in KAGGLE_CORE_KEYPOINTS]
    out[[k for k in range(len(out)) if k not in core]] = np.nan
    return out


def _write_csv_atomically(path: str, rows: Sequence[Sequence[str]]) -> None:
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(kaggle_columns())
        writer.writerows(rows)


# The generator's name in the JSONs' ``info``: the module's path when the format was
# fixed, kept so that the same settings still give byte-identical files.
_GENERATOR_NAME = "kpext.data.synthetic_faces"


def _info(split: str, cfg: FaceSynthConfig, num_points: int) -> Dict[str, Any]:
    return {
        "description": f"kpext synthetic faces, {num_points} keypoints",
        "generator": _GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "converter_version": CONVERTER_VERSION,
        "split": split,
        "seed": cfg.seed,
        "config": dataclasses.asdict(cfg),
    }


def generate_face_split(
    out_root: str, split: str, cfg: FaceSynthConfig, show_progress: bool = True
) -> Dict[str, str]:
    """Generate one split under ``out_root``.

    Writes the Kaggle-format CSV (:func:`face_csv_path`), converts it with
    :func:`kpext_synth.kaggle.convert_kaggle_csv` (grey PNGs in
    ``images/<split>``, ``annotations/faces15_<split>.json``, the generator's
    face boxes), and writes ``annotations/faces68_<split>.json`` on the same
    images. JSONs are written last and atomically. Returns ``{"csv", "faces15",
    "faces68"}`` paths.
    """
    cfg.validate()
    if not split or not all(c.isalnum() or c in "_-" for c in split):
        raise ValueError(f"split name must use letters, digits, '_' or '-', got {split!r}")
    rows, boxes, annotations68, images = [], {}, [], []
    progress = tqdm(
        range(cfg.num_images), desc=f"faces {split}", unit="img", disable=not show_progress
    )
    for index in progress:
        rng = image_rng(cfg.seed, split, index)
        face = render_face(sample_face_spec(rng, cfg), rng, cfg)
        keypoints15 = face.keypoints15
        if rng.random() < cfg.missing_fraction:
            keypoints15 = _drop_non_core(keypoints15)
        row = index + 1  # CSV data row number = image id, as the converter numbers them
        rows.append(_csv_row(keypoints15, face.image))
        boxes[row] = face.box
        visibility = np.where(face.visible68, 2, 1)
        annotations68.append(face_annotation(row, row, face.keypoints68, face.box, visibility))
        images.append({"id": row, "file_name": image_file_name(row), "width": cfg.image_size,
                       "height": cfg.image_size})  # fmt: skip

    csv_path = face_csv_path(out_root, split)
    _write_csv_atomically(csv_path, rows)
    report = convert_kaggle_csv(
        csv_path, out_root, split=split, image_size=cfg.image_size, face_boxes=boxes,
        info=_info(split, cfg, 15),
    )  # fmt: skip
    if report.num_images.get(split) != cfg.num_images:  # the generator wrote something invalid
        raise AssertionError(f"{csv_path}: converted {report.num_images} of {cfg.num_images} rows")
    json68 = face_annotation_path(out_root, 68, split)
    write_json_atomically(json68, {
        "info": _info(split, cfg, 68),
        "licenses": [],
        "images": images,
        "annotations": annotations68,
        "categories": [face68_category()],
    })  # fmt: skip
    return {"csv": csv_path, "faces15": report.json_files[split], "faces68": json68}


def face_split_is_current(out_root: str, split: str, cfg: FaceSynthConfig) -> bool:
    """True when both JSONs exist, were made by this generator version with these
    settings, and all their images exist."""
    for num_points in (15, 68):
        try:
            with open(face_annotation_path(out_root, num_points, split), encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return False
        info = data.get("info", {}) if isinstance(data, dict) else {}
        if info.get("version") != GENERATOR_VERSION or info.get("config") != dataclasses.asdict(
            cfg
        ):
            return False
        if info.get("converter_version") != CONVERTER_VERSION:
            return False
    folder = face_image_dir(out_root, split)
    return all(
        os.path.isfile(os.path.join(folder, im["file_name"])) for im in data.get("images", [])
    )


def ensure_face_dataset(
    out_root: str,
    splits: Optional[Mapping[str, FaceSynthConfig]] = None,
    show_progress: bool = True,
) -> Dict[str, Dict[str, str]]:
    """Generate the splits that are missing or stale; ``splits`` defaults to
    :data:`DEFAULT_FACE_SPLITS`. Returns ``{split: paths}`` (see :func:`generate_face_split`)."""
    splits = DEFAULT_FACE_SPLITS if splits is None else splits
    paths = {}
    for split, cfg in splits.items():
        if face_split_is_current(out_root, split, cfg):
            paths[split] = {
                "csv": face_csv_path(out_root, split),
                "faces15": face_annotation_path(out_root, 15, split),
                "faces68": face_annotation_path(out_root, 68, split),
            }
        else:
            paths[split] = generate_face_split(out_root, split, cfg, show_progress=show_progress)
    return paths
