"""OKS keypoint AP per image, and paired bootstrap intervals of AP differences.

pycocotools' ``COCOeval.evaluate`` matches detections to ground truth image by
image; ``accumulate`` then pools the matches of all images into one
precision/recall curve. :func:`per_image_matches` keeps the per-image matches and
:func:`keypoint_ap` pools any multiset of images the way ``accumulate`` does, so AP
can be recomputed cheaply on bootstrap resamples of the val images (an image drawn
twice counts twice). On all images, once each, it equals ``COCOeval.stats[0]``.

Noise has two sources (``../shared/notes/measuring.md``): training (seed, data
order) and evaluation (which images). :func:`paired_bootstrap` resamples both:
image ids (the same resample for every head) and seeds (the same seed indices for
every head, whose runs share a seed's data order), and reports the percentile
interval of the mean AP difference to a reference head.
"""

from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

# pycocotools' recall thresholds and the keypoint OKS thresholds (0.50:0.05:0.95).
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)


@dataclass
class ImageMatches:
    """One image's detections matched at each OKS threshold (T thresholds, D detections, G gts).

    ``scores`` D (sorted high to low, at most maxDets), ``matched`` T x D bool,
    ``ignored`` T x D bool (matched to an ignored gt, or outside the area range),
    ``num_gt`` the number of gts that count (not ignored).
    """

    scores: np.ndarray
    matched: np.ndarray
    ignored: np.ndarray
    num_gt: int


def per_image_matches(coco_gt, results: List[dict], sigmas: Sequence[float]) -> List[ImageMatches]:
    """Run pycocotools' keypoint matching and keep it per image (area range "all").

    Args:
        coco_gt: a ``pycocotools.coco.COCO`` with the ground truth.
        results: COCO keypoint results (``image_id``, ``category_id``, ``keypoints``, ``score``).
        sigmas: K OKS sigmas of the keypoint set.
    Returns:
        one :class:`ImageMatches` per image of ``coco_gt`` (sorted by image id).
    """
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco_dt = coco_gt.loadRes(copy.deepcopy(results)) if results else _empty_results(coco_gt)
        evaluator = COCOeval(coco_gt, coco_dt, "keypoints")
        evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        evaluator.evaluate()
    params = evaluator.params
    num_images = len(params.imgIds)
    max_det = params.maxDets[-1]
    num_thresholds = len(params.iouThrs)
    matches = [_empty_matches(num_thresholds) for _ in range(num_images)]
    # evalImgs is ordered category, area range, image; area range 0 is "all".
    num_areas = len(params.areaRng)
    for k in range(len(params.catIds)):
        for i in range(num_images):
            entry = evaluator.evalImgs[k * num_areas * num_images + i]
            if entry is not None:
                matches[i] = _merge(matches[i], _image_matches(entry, max_det))
    return matches


def _empty_results(coco_gt):
    from pycocotools.coco import COCO

    empty = COCO()
    empty.dataset = {
        "images": coco_gt.dataset["images"],
        "categories": coco_gt.dataset["categories"],
        "annotations": [],
    }
    empty.createIndex()
    return empty


def _empty_matches(num_thresholds: int) -> ImageMatches:
    return ImageMatches(
        np.zeros(0), np.zeros((num_thresholds, 0), bool), np.zeros((num_thresholds, 0), bool), 0
    )


def _image_matches(entry: dict, max_det: int) -> ImageMatches:
    return ImageMatches(
        scores=np.asarray(entry["dtScores"][:max_det], dtype=np.float64),
        matched=np.asarray(entry["dtMatches"])[:, :max_det] > 0,
        ignored=np.asarray(entry["dtIgnore"])[:, :max_det].astype(bool),
        num_gt=int(np.count_nonzero(np.asarray(entry["gtIgnore"]) == 0)),
    )


def _merge(a: ImageMatches, b: ImageMatches) -> ImageMatches:
    """Several categories of one image pooled (they share one curve when one category is scored)."""
    return ImageMatches(
        np.concatenate([a.scores, b.scores]),
        np.concatenate([a.matched, b.matched], axis=1),
        np.concatenate([a.ignored, b.ignored], axis=1),
        a.num_gt + b.num_gt,
    )


def keypoint_ap(
    matches: Sequence[ImageMatches], image_indices: Optional[Sequence[int]] = None
) -> float:
    """AP (mean over OKS thresholds 0.50:0.95 and 101 recall points) of a multiset of images.

    Pools the images' matches as ``COCOeval.accumulate`` does: detections sorted by
    score (stable), cumulative true/false positives, precision made monotone,
    sampled at 101 recall thresholds. Returns NaN when no ground truth counts.
    """
    chosen = [matches[i] for i in (range(len(matches)) if image_indices is None else image_indices)]
    num_gt = sum(m.num_gt for m in chosen)
    if num_gt == 0:
        return float("nan")
    scores = np.concatenate([m.scores for m in chosen])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([m.matched for m in chosen], axis=1)[:, order]
    ignored = np.concatenate([m.ignored for m in chosen], axis=1)[:, order]
    tp = np.cumsum(matched & ~ignored, axis=1, dtype=np.float64)
    fp = np.cumsum(~matched & ~ignored, axis=1, dtype=np.float64)
    precisions = []
    for tp_t, fp_t in zip(tp, fp):
        precisions.append(_precision_at_recall_thresholds(tp_t, fp_t, num_gt))
    return float(np.mean(precisions))


def _precision_at_recall_thresholds(tp: np.ndarray, fp: np.ndarray, num_gt: int) -> np.ndarray:
    recall = tp / num_gt
    precision = tp / (fp + tp + np.spacing(1))
    # Interpolated precision: the best precision at this recall or any higher one.
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    sampled = np.zeros(len(RECALL_THRESHOLDS))
    positions = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
    valid = positions < len(precision)
    sampled[valid] = precision[positions[valid]]
    return sampled


@dataclass
class PairedDifference:
    """Mean AP difference (head - reference, in AP points x 100) and its 95% percentile interval."""

    mean: float
    low: float
    high: float


def paired_bootstrap(
    runs: Dict[str, List[List[ImageMatches]]],
    reference: str,
    num_resamples: int = 1000,
    seed: int = 0,
) -> Dict[str, PairedDifference]:
    """Bootstrap interval of each head's mean AP minus the reference head's.

    Args:
        runs: head name -> one list of per-image matches per training seed; every head
            has the same seeds in the same order and the same images.
        reference: the head the others are compared with.
    Each resample draws image indices and seed indices with replacement, the same for
    every head (paired), and compares the heads' AP averaged over the drawn seeds.
    Values are in AP points (0-100).
    """
    rng = np.random.default_rng(seed)
    num_seeds = len(runs[reference])
    num_images = len(runs[reference][0])
    for name, per_seed in runs.items():
        if len(per_seed) != num_seeds or any(len(m) != num_images for m in per_seed):
            raise ValueError(
                f"head {name!r}: runs must have {num_seeds} seeds of {num_images} images "
                f"like {reference!r}"
            )
    point = {name: _mean_ap(per_seed, range(num_seeds), None) for name, per_seed in runs.items()}
    samples: Dict[str, List[float]] = {name: [] for name in runs}
    for _ in range(num_resamples):
        images = rng.integers(0, num_images, num_images)
        seeds = rng.integers(0, num_seeds, num_seeds)
        ref = _mean_ap(runs[reference], seeds, images)
        for name, per_seed in runs.items():
            samples[name].append(_mean_ap(per_seed, seeds, images) - ref)
    return {
        name: PairedDifference(
            mean=100 * (point[name] - point[reference]),
            low=100 * float(np.nanpercentile(values, 2.5)),
            high=100 * float(np.nanpercentile(values, 97.5)),
        )
        for name, values in samples.items()
    }


def _mean_ap(per_seed: List[List[ImageMatches]], seeds, images) -> float:
    return float(np.mean([keypoint_ap(per_seed[s], images) for s in seeds]))
