"""COCOEvaluator with the dataset's own OKS sigmas (keypoint AP for any keypoint set)."""

from __future__ import annotations

from typing import Optional

from detectron2.evaluation import COCOEvaluator

from .. import compat
from ..data import dataset_oks_sigmas


def build_keypoint_evaluator(
    cfg, dataset_name: str, output_dir: Optional[str] = None, distributed: bool = True
) -> COCOEvaluator:
    """COCOEvaluator on boxes and keypoints with the dataset's OKS sigmas.

    The fast C++ COCOeval is used only when detectron2's compiled ops exist.
    """
    return COCOEvaluator(
        dataset_name,
        tasks=("bbox", "keypoints"),
        distributed=distributed,
        output_dir=output_dir,
        use_fast_impl=compat.HAS_COMPILED_OPS,
        kpt_oks_sigmas=dataset_oks_sigmas(dataset_name, cfg.TEST.KEYPOINT_OKS_SIGMAS),
    )
