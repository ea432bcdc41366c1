"""COCOEvaluator with the dataset's own OKS sigmas (keypoint AP for any keypoint set), reading
the normalised ground truth of datasets registered by kpext."""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

from detectron2.data import MetadataCatalog
from detectron2.evaluation import COCOEvaluator

from .. import compat
from ..data import dataset_oks_sigmas, invalid_record_policy
from .ground_truth import normalized_ground_truth_file


@contextlib.contextmanager
def _json_file_read_as(dataset_name: str, path: Optional[str]) -> Iterator[None]:
    """Within the block, the dataset's metadata ``json_file`` is ``path``.

    ``COCOEvaluator.__init__`` reads its ground truth from ``metadata.json_file``; the
    registered value stays the user's file (Metadata refuses to change a value, so the
    attribute is swapped in the instance dict and restored)."""
    meta = MetadataCatalog.get(dataset_name)
    if path is None:
        yield
        return
    missing = object()
    original = meta.__dict__.get("json_file", missing)
    meta.__dict__["json_file"] = path
    try:
        yield
    finally:
        if original is missing:
            del meta.__dict__["json_file"]
        else:
            meta.__dict__["json_file"] = original


def build_keypoint_evaluator(
    cfg, dataset_name: str, output_dir: Optional[str] = None, distributed: bool = True
) -> COCOEvaluator:
    """COCOEvaluator on boxes and keypoints with the dataset's OKS sigmas.

    For a dataset registered by :func:`kpext.data.register_keypoint_coco`, the ground truth
    is the normalised copy of what training reads (:mod:`kpext.evaluation.ground_truth`,
    under ``output_dir``, records chosen by ``DATASETS.KPEXT.ON_INVALID``). The fast C++
    COCOeval is used only when detectron2's compiled ops exist.
    """
    with invalid_record_policy(cfg.DATASETS.KPEXT.ON_INVALID):
        ground_truth = normalized_ground_truth_file(dataset_name, output_dir)
    with _json_file_read_as(dataset_name, ground_truth):
        return COCOEvaluator(
            dataset_name,
            tasks=("bbox", "keypoints"),
            distributed=distributed,
            output_dir=output_dir,
            use_fast_impl=compat.HAS_COMPILED_OPS,
            kpt_oks_sigmas=dataset_oks_sigmas(dataset_name, cfg.TEST.KEYPOINT_OKS_SIGMAS),
        )
