"""COCOEvaluator with the dataset's own OKS sigmas (keypoint AP for any keypoint set)."""
from __future__ import annotations

from typing import List, Optional

from detectron2.data import MetadataCatalog
from detectron2.evaluation import COCOEvaluator

from .. import compat


def dataset_oks_sigmas(dataset_name: str, cfg_sigmas=()) -> List[float]:
    """Per-keypoint OKS sigmas: ``TEST.KEYPOINT_OKS_SIGMAS`` if set, else the dataset's metadata.

    Raises ValueError when the config's sigmas do not match the dataset's keypoint count.
    """
    meta = MetadataCatalog.get(dataset_name)
    names = meta.get("keypoint_names", None)
    sigmas = list(cfg_sigmas) or list(meta.get("keypoint_oks_sigmas", []))
    if names is not None and sigmas and len(sigmas) != len(names):
        raise ValueError(
            f"{dataset_name}: {len(sigmas)} OKS sigmas for {len(names)} keypoints "
            "(check TEST.KEYPOINT_OKS_SIGMAS)"
        )
    return sigmas


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
