"""kpext datasets: COCO-format keypoint registration with validation, and the
built-in synthetic datasets (registered on import)."""
from .builtin import register_all_synthetic
from .coco_keypoints import (
    KeypointDataError,
    current_on_invalid,
    dataset_oks_sigmas,
    invalid_record_policy,
    keypoint_metadata_from_category,
    load_keypoint_coco_json,
    oks_sigmas_for_names,
    register_keypoint_coco,
)

__all__ = [
    "KeypointDataError",
    "current_on_invalid",
    "dataset_oks_sigmas",
    "invalid_record_policy",
    "keypoint_metadata_from_category",
    "load_keypoint_coco_json",
    "oks_sigmas_for_names",
    "register_all_synthetic",
    "register_keypoint_coco",
]

register_all_synthetic()
