"""Keypoint sets known to kpext: names, skeletons and OKS sigmas.

Skeletons use COCO's convention: pairs of 1-based keypoint indices, as stored in
``categories[i]["skeleton"]`` of a COCO keypoint JSON.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

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


def coco_keypoint_category(name: str, keypoint_names: Sequence[str], skeleton: Sequence[Sequence[int]]) -> Dict[str, Any]:
    """The COCO category (id 1) of a keypoint set, as a keypoint JSON's ``categories`` holds it."""
    return {
        "id": 1,
        "name": name,
        "supercategory": name,
        "keypoints": list(keypoint_names),
        "skeleton": [list(edge) for edge in skeleton],
    }
