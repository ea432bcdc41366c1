"""kpext datasets: COCO-format keypoint registration with validation, and the
built-in synthetic datasets (registered on import)."""
from .builtin import register_all_synthetic
from .coco_keypoints import (
    KeypointDataError,
    dataset_oks_sigmas,
    keypoint_metadata_from_category,
    load_keypoint_coco_json,
    oks_sigmas_for_names,
    register_keypoint_coco,
)

__all__ = [
    "KeypointDataError",
    "dataset_oks_sigmas",
    "keypoint_metadata_from_category",
    "load_keypoint_coco_json",
    "oks_sigmas_for_names",
    "register_all_synthetic",
    "register_keypoint_coco",
]

register_all_synthetic()
