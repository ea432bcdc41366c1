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


@dataclass
class PooledMatches:
    """All images' detections of one run, sorted by score once (stable, in image order).

    ``image`` D: the image of each detection; ``true_positive`` / ``false_positive``
    T x D (matched or not, not ignored); ``num_gt`` I: the counted gts of each image.
    """

    image: np.ndarray
    true_positive: np.ndarray
    false_positive: np.ndarray
    num_gt: np.ndarray

    @classmethod
    def of(cls, matches: Sequence[ImageMatches]) -> "PooledMatches":
        scores = np.concatenate([m.scores for m in matches])
        order = np.argsort(-scores, kind="mergesort")
        image = np.concatenate([np.full(len(m.scores), i) for i, m in enumerate(matches)])
        matched = np.concatenate([m.matched for m in matches], axis=1)[:, order]
        ignored = np.concatenate([m.ignored for m in matches], axis=1)[:, order]
        return cls(
            image=image[order].astype(np.int64),
            true_positive=(matched & ~ignored).astype(np.float64),
            false_positive=(~matched & ~ignored).astype(np.float64),
            num_gt=np.array([m.num_gt for m in matches], dtype=np.float64),
        )

    def ap(self, counts: Optional[np.ndarray] = None) -> float:
        """AP of the images taken ``counts[i]`` times each (None: each once).

        A detection of an image drawn twice counts twice. Detections keep the run's
        score order; only for equal scores does that order differ from sorting the
        resampled set anew, as pycocotools would, which breaks the tie another way.
        """
        counts = np.ones(len(self.num_gt)) if counts is None else np.asarray(counts, np.float64)
        num_gt = float(counts @ self.num_gt)
        if num_gt == 0:
            return float("nan")
        weights = counts[self.image]
        tp = np.cumsum(self.true_positive * weights, axis=1)
        fp = np.cumsum(self.false_positive * weights, axis=1)
        return float(
            np.mean([_precision_at_recall_thresholds(t, f, num_gt) for t, f in zip(tp, fp)])
        )


def keypoint_ap(
    matches: Sequence[ImageMatches], image_indices: Optional[Sequence[int]] = None
) -> float:
    """AP (mean over OKS thresholds 0.50:0.95 and 101 recall points) of a multiset of images.

    Pools the images' matches as ``COCOeval.accumulate`` does: detections sorted by
    score (stable), cumulative true/false positives, precision made monotone,
    sampled at 101 recall thresholds. Returns NaN when no ground truth counts.
    """
    counts = None
    if image_indices is not None:
        counts = np.bincount(np.asarray(image_indices, dtype=np.int64), minlength=len(matches))
    return PooledMatches.of(matches).ap(counts)


def _precision_at_recall_thresholds(tp: np.ndarray, fp: np.ndarray, num_gt: float) -> np.ndarray:
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
    pooled = {name: [PooledMatches.of(m) for m in per_seed] for name, per_seed in runs.items()}
    point = {name: _mean_ap(p, range(num_seeds), None) for name, p in pooled.items()}
    samples: Dict[str, List[float]] = {name: [] for name in runs}
    for _ in range(num_resamples):
        counts = np.bincount(rng.integers(0, num_images, num_images), minlength=num_images)
        seeds = rng.integers(0, num_seeds, num_seeds)
        ref = _mean_ap(pooled[reference], seeds, counts)
        for name, p in pooled.items():
            samples[name].append(_mean_ap(p, seeds, counts) - ref)
    return {
        name: PairedDifference(
            mean=100 * (point[name] - point[reference]),
            low=100 * float(np.nanpercentile(values, 2.5)),
            high=100 * float(np.nanpercentile(values, 97.5)),
        )
        for name, values in samples.items()
    }


def _mean_ap(per_seed: List[PooledMatches], seeds, counts) -> float:
    return float(np.mean([per_seed[s].ap(counts) for s in seeds]))
