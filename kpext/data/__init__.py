"""kpext datasets: COCO-format keypoint registration with validation, keypoint
metadata (sides, flip pairs, colours, OKS sigmas), the named keypoint sets, and
the built-in synthetic datasets (registered on import).

Loading: :mod:`~kpext.data.coco_keypoints` (reading by :mod:`~kpext.data.coco_json`, checks
by :mod:`~kpext.data.coco_validation`, the policy in :mod:`~kpext.data.invalid_records`),
:mod:`~kpext.data.builtin` (the synthetic people), :mod:`~kpext.data.faces` (the face
datasets). Metadata: :mod:`~kpext.data.keypoint_metadata` (with
:mod:`~kpext.data.keypoint_names`: sides and pairs from names),
:mod:`~kpext.data.keypoint_sets`, :mod:`~kpext.data.facing`. What writes the datasets (the
renderers of the synthetic sets, the Kaggle converter) is not part of kpext: it lives in the
repository, ``datasets/kpext_synth``.
"""

from .builtin import register_all_synthetic
from .coco_keypoints import load_keypoint_coco_json, register_keypoint_coco
from .invalid_records import current_on_invalid, invalid_record_policy
from .keypoint_metadata import (
    KeypointDataError,
    dataset_oks_sigmas,
    keypoint_metadata_from_category,
    model_oks_sigmas,
    oks_sigmas_for_count,
    oks_sigmas_for_names,
)

__all__ = [
    "KeypointDataError",
    "current_on_invalid",
    "dataset_oks_sigmas",
    "model_oks_sigmas",
    "invalid_record_policy",
    "keypoint_metadata_from_category",
    "load_keypoint_coco_json",
    "oks_sigmas_for_count",
    "oks_sigmas_for_names",
    "register_all_synthetic",
    "register_keypoint_coco",
]

register_all_synthetic()
