"""Synthetic multi-person keypoint dataset in COCO format.

Every image shows 1 to N articulated 2D people on a cluttered background, labelled
with COCO's 17 person keypoints. The set exists so that the whole training and
evaluation pipeline can be exercised, and a detector learned from scratch, on a
small CPU machine without downloading COCO.

It is written by :func:`generate_split` / :func:`ensure_synthetic_dataset` with the
settings of a :class:`SyntheticConfig` (:data:`DEFAULT_SPLITS`: the demo's splits). The
renderer lives in one module per concern:

* :mod:`~kpext_synth.people_config`: :class:`SyntheticConfig`, the style names,
  the default splits (re-exported here);
* :mod:`~kpext_synth.body`: the 3-D body model and its random poses;
* :mod:`~kpext_synth.camera`: the yaw turn and the orthographic projection;
* :mod:`~kpext_synth.parts`: the projected person's drawn parts, far to near;
* :mod:`~kpext_synth.colors`, :mod:`~kpext_synth.shapes`: palettes and
  2-D outlines;
* :mod:`~kpext_synth.styles`: the styles people are drawn in;
* :mod:`~kpext_synth.painting`, :mod:`~kpext_synth.background`:
  drawing the parts in their style, and the cluttered backgrounds;
* :mod:`~kpext_synth.scene`: one image: layout, labels (visibility, boxes),
  camera effects.

People are drawn as filled, slightly shaded parts: tapered capsules for limbs, a
convex torso, an elliptic head with hair on the back/top and eyes, nose and ears on
the visible side, hands and shoes. Parts of one person are painted far to near, and
people in a random depth order. Cues that keep the task learnable: limbs differ in
colour from the torso; the head is skin-coloured with eyes and a reddish nose marker
on the facing side and hair on the back; a round badge marks the front of the chest
(foreshortened as the body turns, absent from behind); feet point forwards.

Left and right can be told only from the way a person faces, never from a side-specific
look: the left and right limbs are drawn alike and the light comes from above, so a
horizontally mirrored image is exactly the image of the mirrored person (yaw negated, left
and right poses exchanged; tested), and training with horizontal flips (which swap the
labels) teaches no contradiction. What each style keeps of the facing cues: ``classic``,
``textured`` and ``lowcontrast`` all of them (``lowcontrast`` at its low contrast);
``outline`` the face features, the badge's outline, the hair line and the feet; a
``silhouette`` only the outline of the body and head (nose and feet in profile), so
front and back views of it are ambiguous.

Determinism
-----------
Image ``i`` of split ``s`` is drawn from ``numpy.random.default_rng([seed,
crc32(s), i])``, so it does not depend on how many images are generated, and the
JSON contains nothing that varies between runs.

Files
-----
Where the files of a split lie and the COCO category they use are the dataset's
facts, defined with its registration in :mod:`kpext.data.builtin`
(:func:`~kpext.data.builtin.synthetic_annotation_path`,
:func:`~kpext.data.builtin.synthetic_image_dir`,
:data:`~kpext.data.builtin.SYNTHETIC_CATEGORY`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, Dict, Mapping, Optional

import cv2
from tqdm import tqdm

from kpext.data.builtin import SYNTHETIC_CATEGORY, synthetic_annotation_path, synthetic_image_dir

from .generation import write_json_atomically
from .people_config import (
    DEFAULT_SPLITS,
    HELDOUT_STYLES,
    STYLES,
    TRAIN_STYLE_MIX,
    TRAIN_STYLES,
    SyntheticConfig,
)
from .render import image_rng
from .scene import render_image

__all__ = [
    "GENERATOR_VERSION",
    # the split settings, re-exported from people_config: what callers of the writer pass
    "DEFAULT_SPLITS",
    "STYLES",
    "TRAIN_STYLES",
    "TRAIN_STYLE_MIX",
    "HELDOUT_STYLES",
    "SyntheticConfig",
    "split_is_current",
    "generate_split",
    "ensure_synthetic_dataset",
]

# Bump whenever the images or labels produced for a given config change, so that
# ensure_synthetic_dataset() regenerates stale data.
# 1.1: styles, the "style" field of the annotations; 1.2: no cue a mirror inverts (no
# left/right limb tint, light from above, symmetric low-contrast tones), larger face
# features and a chest badge on the front; 1.3: the "yaw" field of the annotations
GENERATOR_VERSION = "1.3"


# The generator's name in the JSONs' ``info``: the module's path when the format was
# fixed, kept so that the same settings still give byte-identical files.
_GENERATOR_NAME = "kpext.data.synthetic"


def _info(split: str, cfg: SyntheticConfig) -> Dict[str, Any]:
    return {
        "description": "kpext synthetic multi-person keypoints",
        "generator": _GENERATOR_NAME,
        "version": GENERATOR_VERSION,
        "split": split,
        "seed": cfg.seed,
        "config": dataclasses.asdict(cfg),
    }


def _coco_annotation(ann: Dict[str, Any], ann_id: int, image_id: int) -> Dict[str, Any]:
    flat = []
    for x, y, v in ann["keypoints"]:
        flat.extend([round(float(x), 2), round(float(y), 2), int(v)])
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": 1,
        "bbox": [round(float(b), 2) for b in ann["bbox"]],
        "area": float(ann["area"]),
        "iscrowd": 0,
        "keypoints": flat,
        "num_keypoints": int(ann["num_keypoints"]),
        "style": ann["style"],
        "yaw": ann["yaw"],
    }


_IMAGE_NAME = re.compile(r"^\d{6,}\.jpg$")


def generate_split(
    out_root: str, split: str, cfg: SyntheticConfig, show_progress: bool = True
) -> str:
    """Generate one split: images, then the COCO JSON (written atomically, so an
    interrupted run leaves no JSON and is regenerated next time). Returns the JSON path."""
    cfg.validate()
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", split):
        raise ValueError(f"split name must use letters, digits, '_' or '-', got {split!r}")
    images_folder = synthetic_image_dir(out_root, split)
    os.makedirs(images_folder, exist_ok=True)
    for stale in os.listdir(images_folder):  # images of an earlier, maybe larger, run
        if _IMAGE_NAME.match(stale):
            os.remove(os.path.join(images_folder, stale))

    images, annotations = [], []
    progress = tqdm(
        range(cfg.num_images), desc=f"synthetic {split}", unit="img", disable=not show_progress
    )
    for index in progress:
        image, anns = render_image(cfg, image_rng(cfg.seed, split, index))
        image_id = index + 1
        file_name = f"{image_id:06d}.jpg"
        file_path = os.path.join(images_folder, file_name)
        if not cv2.imwrite(file_path, image, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality]):
            raise OSError(f"could not write {file_path}")
        images.append(
            {"id": image_id, "file_name": file_name, "width": cfg.width, "height": cfg.height}
        )
        for ann in anns:
            annotations.append(_coco_annotation(ann, len(annotations) + 1, image_id))

    json_path = synthetic_annotation_path(out_root, split)
    data = {
        "info": _info(split, cfg),
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [SYNTHETIC_CATEGORY],
    }
    write_json_atomically(json_path, data)
    return json_path


def split_is_current(out_root: str, split: str, cfg: SyntheticConfig) -> bool:
    """True when the split's JSON exists, was made by this generator version with
    these settings, and all its images exist."""
    path = synthetic_annotation_path(out_root, split)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    info = data.get("info", {}) if isinstance(data, dict) else {}
    # compared as JSON stores it: the styles tuple comes back as a list
    config = json.loads(json.dumps(dataclasses.asdict(cfg)))
    if info.get("version") != GENERATOR_VERSION or info.get("config") != config:
        return False
    folder = synthetic_image_dir(out_root, split)
    images = data.get("images", [])
    return all(os.path.isfile(os.path.join(folder, im["file_name"])) for im in images)


def ensure_synthetic_dataset(
    out_root: str,
    splits: Optional[Mapping[str, SyntheticConfig]] = None,
    show_progress: bool = True,
) -> Dict[str, str]:
    """Generate the splits that are missing or stale (see :func:`split_is_current`).

    ``splits`` defaults to :data:`DEFAULT_SPLITS`. Returns ``{split: json_path}``.
    """
    splits = DEFAULT_SPLITS if splits is None else splits
    paths = {}
    for split, cfg in splits.items():
        if split_is_current(out_root, split, cfg):
            paths[split] = synthetic_annotation_path(out_root, split)
        else:
            paths[split] = generate_split(out_root, split, cfg, show_progress=show_progress)
    return paths
