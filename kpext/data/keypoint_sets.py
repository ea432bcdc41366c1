"""Keypoint sets known to kpext: names, skeletons and OKS sigmas.

* COCO's 17 person keypoints (:data:`COCO_PERSON_KEYPOINT_NAMES`).
* The 15 face points of Kaggle's facial-keypoints set
  (:data:`KAGGLE_FACE_KEYPOINT_NAMES`, in the CSV's column order).
* The iBUG 300-W 68-point face layout (jaw 17, brows 5+5, nose 9, eyes 6+6,
  mouth 20) with names that pair left and right (``jaw_left_3``/``jaw_right_3``,
  ``left_eye_inner``/``right_eye_inner``, ...), so that
  :func:`~kpext.data.keypoint_names.pair_left_right_names` derives the flip map
  (:data:`FACE68_KEYPOINT_NAMES`).

Skeletons use COCO's convention: pairs of 1-based keypoint indices, as stored in
``categories[i]["skeleton"]`` of a COCO keypoint JSON.

Face OKS sigmas (:data:`FACE15_OKS_SIGMAS`, :data:`FACE68_OKS_SIGMAS`) are
relative to the square root of the *face box* area, about the face width: 0.025
for eye, nose and mouth points (a 1.5 px error on a 60 px face), 0.035 for the
ill-defined brow ends and inner-mouth points, 0.03 along the nose bridge and 0.045
for jaw points, which slide along the contour. With kappa = 2 sigma, OKS 0.5 on a
60 px face allows about 3.5 px of error on the eyes, OKS 0.75 about 2.3 px.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

__all__ = [
    "COCO_PERSON_KEYPOINT_NAMES",
    "COCO_PERSON_SKELETON",
    "COCO_PERSON_OKS_SIGMAS",
    "DEFAULT_OKS_SIGMA",
    "KAGGLE_FACE_KEYPOINT_NAMES",
    "FACE15_SKELETON",
    "FACE15_OKS_SIGMAS",
    "FACE68_KEYPOINT_NAMES",
    "FACE68_SKELETON",
    "FACE68_OKS_SIGMAS",
    "coco_keypoint_category",
]

# --------------------------------------------------------------------------- #
# COCO person
# --------------------------------------------------------------------------- #

COCO_PERSON_KEYPOINT_NAMES: Tuple[str, ...] = (
    "nose",
    "left_eye", "right_eye",
    "left_ear", "right_ear",
    "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
    "left_hip", "right_hip",
    "left_knee", "right_knee",
    "left_ankle", "right_ankle",
)  # fmt: skip

COCO_PERSON_SKELETON: List[List[int]] = [
    [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
    [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
]  # fmt: skip

# Per-keypoint OKS sigmas of the COCO keypoint benchmark (cocoapi's COCOeval).
COCO_PERSON_OKS_SIGMAS: Dict[str, float] = {
    "nose": 0.026,
    "left_eye": 0.025, "right_eye": 0.025,
    "left_ear": 0.035, "right_ear": 0.035,
    "left_shoulder": 0.079, "right_shoulder": 0.079,
    "left_elbow": 0.072, "right_elbow": 0.072,
    "left_wrist": 0.062, "right_wrist": 0.062,
    "left_hip": 0.107, "right_hip": 0.107,
    "left_knee": 0.087, "right_knee": 0.087,
    "left_ankle": 0.089, "right_ankle": 0.089,
}  # fmt: skip

# Sigma for keypoint names COCO does not define. 0.05 sits between COCO's face
# points (0.025-0.035) and its body joints (0.06-0.11): a moderate tolerance of
# about 5% of the object scale, also used by common face-landmark OKS setups.
DEFAULT_OKS_SIGMA: float = 0.05


# --------------------------------------------------------------------------- #
# Faces: Kaggle's 15 points and iBUG's 68
# --------------------------------------------------------------------------- #

# Kaggle's column order (each name has an _x and a _y column).
KAGGLE_FACE_KEYPOINT_NAMES: Tuple[str, ...] = (
    "left_eye_center", "right_eye_center",
    "left_eye_inner_corner", "left_eye_outer_corner",
    "right_eye_inner_corner", "right_eye_outer_corner",
    "left_eyebrow_inner_end", "left_eyebrow_outer_end",
    "right_eyebrow_inner_end", "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner", "mouth_right_corner",
    "mouth_center_top_lip", "mouth_center_bottom_lip",
)  # fmt: skip

# 1-based pairs (COCO's convention): each eye inner corner - centre - outer corner,
# the brows, nose tip to the inner eye corners and the upper lip, the mouth loop.
FACE15_SKELETON: List[List[int]] = [
    [3, 1], [1, 4], [5, 2], [2, 6], [7, 8], [9, 10],
    [3, 11], [5, 11], [11, 14],
    [12, 14], [14, 13], [13, 15], [15, 12],
]  # fmt: skip


def _face68_names() -> Tuple[str, ...]:
    """iBUG 300-W order. The subject's right side is on the image's left, so the
    iBUG points 1-8 are ``jaw_right_1..8`` and 10-17 ``jaw_left_8..1``: mirrored
    points share their number, which is what pairs them."""
    jaw = [f"jaw_right_{i}" for i in range(1, 9)] + ["jaw_center"]
    jaw += [f"jaw_left_{i}" for i in range(8, 0, -1)]
    brows = [f"right_brow_{i}" for i in range(1, 6)] + [f"left_brow_{i}" for i in range(5, 0, -1)]
    nose = ["nose_bridge_1", "nose_bridge_2", "nose_bridge_3", "nose_tip",
            "nose_right_2", "nose_right_1", "nose_base", "nose_left_1", "nose_left_2"]  # fmt: skip
    right_eye = ["right_eye_outer", "right_eye_upper_outer", "right_eye_upper_inner",
                 "right_eye_inner", "right_eye_lower_inner", "right_eye_lower_outer"]  # fmt: skip
    left_eye = ["left_eye_inner", "left_eye_upper_inner", "left_eye_upper_outer",
                "left_eye_outer", "left_eye_lower_outer", "left_eye_lower_inner"]  # fmt: skip
    outer_mouth = [
        "mouth_right_corner", "upper_lip_right_2", "upper_lip_right_1", "upper_lip_center",
        "upper_lip_left_1", "upper_lip_left_2", "mouth_left_corner",
        "lower_lip_left_2", "lower_lip_left_1", "lower_lip_center",
        "lower_lip_right_1", "lower_lip_right_2",
    ]  # fmt: skip
    inner_mouth = [
        "inner_mouth_right_corner", "inner_upper_lip_right", "inner_upper_lip_center",
        "inner_upper_lip_left", "inner_mouth_left_corner", "inner_lower_lip_left",
        "inner_lower_lip_center", "inner_lower_lip_right",
    ]  # fmt: skip
    return tuple(jaw + brows + nose + right_eye + left_eye + outer_mouth + inner_mouth)


FACE68_KEYPOINT_NAMES: Tuple[str, ...] = _face68_names()


def _chain(first: int, last: int, closed: bool = False) -> List[List[int]]:
    """1-based skeleton edges along iBUG points ``first..last``."""
    edges = [[i, i + 1] for i in range(first, last)]
    return edges + [[last, first]] if closed else edges


FACE68_SKELETON: List[List[int]] = (
    _chain(1, 17) + _chain(18, 22) + _chain(23, 27) + _chain(28, 31) + _chain(32, 36)
    + [[31, 34]] + _chain(37, 42, closed=True) + _chain(43, 48, closed=True)
    + _chain(49, 60, closed=True) + _chain(61, 68, closed=True)
)  # fmt: skip

# See the module docstring: relative to sqrt(face box area), not COCO's person area.
_EYE_NOSE_MOUTH_SIGMA = 0.025
_BROW_SIGMA = 0.035
_NOSE_BRIDGE_SIGMA = 0.03
_INNER_MOUTH_SIGMA = 0.035
_JAW_SIGMA = 0.045


def _face_sigma(name: str) -> float:
    if "brow" in name:
        return _BROW_SIGMA
    if name.startswith("jaw"):
        return _JAW_SIGMA
    if name.startswith("nose_bridge"):
        return _NOSE_BRIDGE_SIGMA
    if name.startswith("inner_"):
        return _INNER_MOUTH_SIGMA
    return _EYE_NOSE_MOUTH_SIGMA


FACE15_OKS_SIGMAS: Tuple[float, ...] = tuple(_face_sigma(n) for n in KAGGLE_FACE_KEYPOINT_NAMES)
FACE68_OKS_SIGMAS: Tuple[float, ...] = tuple(_face_sigma(n) for n in FACE68_KEYPOINT_NAMES)


# --------------------------------------------------------------------------- #
# COCO categories
# --------------------------------------------------------------------------- #


def coco_keypoint_category(
    name: str, keypoint_names: Sequence[str], skeleton: Sequence[Sequence[int]]
) -> Dict[str, Any]:
    """The COCO category (id 1) of a keypoint set, as a keypoint JSON's ``categories`` holds it."""
    return {
        "id": 1,
        "name": name,
        "supercategory": name,
        "keypoints": list(keypoint_names),
        "skeleton": [list(edge) for edge in skeleton],
    }
