"""Where keypoint AP goes: each labelled keypoint of a detected person classified as good,
jitter, inversion, swap or miss, and the AP with each error class corrected.

The classes follow Ronchi and Perona's COCO error analysis ("Benchmarking and Error Diagnosis
in Multi-Instance Pose Estimation", ICCV 2017; their ``coco-analyze``). With COCO's keypoint
similarity ``ks(p, g) = exp(-|p - g|^2 / (2 s^2 (2 sigma)^2))`` (``s^2`` the person's area,
``sigma`` the keypoint's OKS sigma), a predicted keypoint ``k`` of a detection matched to person
``P`` is:

* **good** when ``ks`` to ``P``'s keypoint ``k`` is at least 0.85;
* **jitter** when it is in [0.5, 0.85): the right part, placed loosely;
* **inversion** when it is below 0.5 but ``ks`` to another labelled keypoint ``j`` of the same
  person is at least 0.5 (with ``j``'s sigma): the wrong part of the right person.
  ``inversion_left_right`` counts those where ``j`` is ``k``'s left/right counterpart
  (the dataset's flip map), the common case; a set without left/right pairs has none of them;
* **swap** when none of the above holds but ``ks`` to keypoint ``k`` of another person of the
  image is at least 0.5 (with that person's area): the right part of the wrong person;
* **miss** otherwise.

Detections are matched to people image by image, highest score first (COCO's top 20): each
takes the unmatched person it has the highest OKS with, when that OKS is at least
:data:`MATCH_OKS` (coco-analyze's 0.1). Only labelled keypoints (``v > 0``) of matched people are
classified; people no detection matched are counted apart (``people_unmatched``).

The **oracle APs** are COCO keypoint AP after correcting one class alone: every keypoint of
that class is moved onto its ground truth, the rest is left as predicted. Their gain over the
AP says what fixing that class is worth (an upper bound: a real fix also moves other points).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from collections import defaultdict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..data.facing import FACING_VIEWS, facing_view, read_yaw
from ..modeling.oks import keypoint_similarity, pose_similarity

__all__ = [
    "GROUPINGS",
    "ERROR_CLASSES",
    "MATCH_OKS",
    "classify_keypoint_errors",
    "pose_error_breakdown",
    "format_pose_errors",
]

ERROR_CLASSES = ("good", "jitter", "inversion", "swap", "miss")
# The classes the oracle APs correct (a good keypoint needs no correction).
CORRECTED_CLASSES = ("jitter", "inversion", "swap", "miss")
GOOD_KS = 0.85
JITTER_KS = 0.5
MATCH_OKS = 0.1
MAX_DETECTIONS = 20  # per image, as COCO's keypoint AP
# COCO's area ranges (pixels^2): small below 32^2, large above 96^2.
SIZE_BOUNDS = (32.0**2, 96.0**2)
# Who the classes are broken down for: each grouping names a person's group, or None when the
# annotation does not say (then that grouping is left out of the breakdown).
GROUPINGS = ("view", "style", "size")


def person_groups(person: Mapping[str, Any]) -> Dict[str, Optional[str]]:
    """A matched person's group in each of :data:`GROUPINGS`: ``view`` from its ``"yaw"``
    (:func:`kpext.data.facing.facing_view`; the synthetic sets write it), ``style`` from its
    ``"style"`` (the synthetic sets' drawing style), ``size`` from its area (COCO's small /
    medium / large)."""
    style = person.get("style")
    area = float(person.get("area", 0.0))
    size = "small" if area < SIZE_BOUNDS[0] else "medium" if area <= SIZE_BOUNDS[1] else "large"
    return {
        "view": facing_view(read_yaw(person)),
        "style": style if isinstance(style, str) else None,
        "size": size,
    }


def _new_counts() -> Dict[str, int]:
    return {name: 0 for name in ERROR_CLASSES + ("inversion_left_right",)}


def _count(counts: Dict[str, int], cls: str) -> None:
    """Add one keypoint of class ``cls`` (``inversion_left_right`` counts as an inversion too)."""
    if cls == "inversion_left_right":
        counts["inversion_left_right"] += 1
        cls = "inversion"
    counts[cls] += 1


def _shares(counts: Mapping[str, int]) -> Dict[str, float]:
    total = sum(counts[name] for name in ERROR_CLASSES)
    return {name: (counts[name] / total if total else math.nan) for name in counts}


def _group_rows(groups: Mapping[str, Dict[str, int]], total: int, order=()) -> Dict[str, Dict]:
    """``{group: {keypoints, share_of_keypoints, counts, shares}}``, groups in ``order`` first."""
    names = [g for g in order if g in groups] + sorted(g for g in groups if g not in order)
    rows = {}
    for name in names:
        n = sum(groups[name][c] for c in ERROR_CLASSES)
        rows[name] = {
            "keypoints": n,
            "share_of_keypoints": n / total if total else math.nan,
            "counts": dict(groups[name]),
            "shares": _shares(groups[name]),
        }
    return rows


def _keypoints(record: Mapping[str, Any]) -> np.ndarray:
    """K x 3 keypoints of a COCO annotation or result (flat x, y, v/score triples)."""
    return np.asarray(record["keypoints"], dtype=np.float64).reshape(-1, 3)


def _similarity(points: np.ndarray, targets: np.ndarray, area: float, sigmas: np.ndarray):
    """COCO keypoint similarity of ``points`` (... x 2) to ``targets`` (... x 2) whose sigmas
    (broadcasting to ...) are ``sigmas``, for a person of ``area``
    (:func:`kpext.modeling.oks.keypoint_similarity`)."""
    return keypoint_similarity(np.sum((points - targets) ** 2, axis=-1), area, sigmas)


def _oks(pred: np.ndarray, person: Mapping[str, Any], sigmas: np.ndarray) -> float:
    gt = _keypoints(person)
    squared = np.sum((pred[:, :2] - gt[:, :2]) ** 2, axis=-1)
    return pose_similarity(squared, float(person["area"]), sigmas, gt[:, 2] > 0)


def _match(detections: List[Mapping], people: List[Mapping], sigmas: np.ndarray) -> List[Tuple]:
    """(detection, person index) pairs: highest score first, each detection taking the
    unmatched person of highest OKS, at least MATCH_OKS."""
    taken: set = set()
    pairs = []
    for det in sorted(detections, key=lambda d: -d["score"])[:MAX_DETECTIONS]:
        pred = _keypoints(det)
        scores = [-1.0 if i in taken else _oks(pred, p, sigmas) for i, p in enumerate(people)]
        if scores and max(scores) >= MATCH_OKS:
            best = int(np.argmax(scores))
            taken.add(best)
            pairs.append((det, best))
    return pairs


def classify_keypoint_errors(
    pred: np.ndarray,
    person: Mapping[str, Any],
    others: Sequence[Mapping[str, Any]],
    sigmas: Sequence[float],
    counterpart: Sequence[int],
) -> List[Optional[str]]:
    """The class of each predicted keypoint of a detection matched to ``person``.

    Args:
        pred: K x 2 (or K x 3) predicted keypoints, in the labels' pixel convention.
        person: the matched COCO annotation (``keypoints``, ``area``).
        others: the image's other (non-crowd) people.
        sigmas: K OKS sigmas; counterpart: each keypoint's left/right counterpart index.
    Returns:
        K entries: one of ``good``/``jitter``/``inversion``/``swap``/``miss``, with
        ``inversion_left_right`` for an inversion onto the counterpart; None for keypoints
        the person has no label for.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)[:, :2]
    gt = _keypoints(person)
    labelled = gt[:, 2] > 0
    area = float(person["area"])
    own = _similarity(pred, gt[:, :2], area, sigmas)
    # K x K: keypoint k's prediction against the person's keypoint j (j's sigma).
    cross = _similarity(pred[:, None, :], gt[None, :, :2], area, sigmas[None, :])
    cross[:, ~labelled] = 0.0
    np.fill_diagonal(cross, 0.0)
    swapped = np.zeros(len(pred), dtype=bool)
    for other in others:
        theirs = _keypoints(other)
        near = _similarity(pred, theirs[:, :2], float(other["area"]), sigmas) >= JITTER_KS
        swapped |= near & (theirs[:, 2] > 0)
    classes: List[Optional[str]] = []
    for k in range(len(pred)):
        if not labelled[k]:
            classes.append(None)
        elif own[k] >= GOOD_KS:
            classes.append("good")
        elif own[k] >= JITTER_KS:
            classes.append("jitter")
        elif cross[k].max() >= JITTER_KS:
            lr = counterpart[k] != k and cross[k, counterpart[k]] >= JITTER_KS
            classes.append("inversion_left_right" if lr else "inversion")
        elif swapped[k]:
            classes.append("swap")
        else:
            classes.append("miss")
    return classes


def _keypoint_ap(dataset: Mapping[str, Any], results: List[Mapping], sigmas) -> float:
    """COCO keypoint AP (percent) of ``results`` against ``dataset``, quietly."""
    if not results:
        return 0.0
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(dict(dataset))
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(coco_gt, coco_dt, "keypoints")
        evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0] * 100.0)


def _people_and_detections(
    coco_gt: Mapping[str, Any], predictions: Sequence[Mapping[str, Any]]
) -> Tuple[Dict[Any, List[Mapping]], Dict[Any, List[Mapping]]]:
    """By image: the people (not crowds) with keypoints, and the detections with keypoints."""
    people: Dict[Any, List[Mapping]] = defaultdict(list)
    for ann in coco_gt["annotations"]:
        if not ann.get("iscrowd", 0) and "keypoints" in ann:
            people[ann["image_id"]].append(ann)
    detections: Dict[Any, List[Mapping]] = defaultdict(list)
    for det in predictions:
        if "keypoints" in det:
            detections[det["image_id"]].append(det)
    return people, detections


def _corrected(
    det: Mapping[str, Any], pred: np.ndarray, gt: np.ndarray, classes: Sequence[Optional[str]]
) -> Dict[str, Dict]:
    """For each of :data:`CORRECTED_CLASSES`: the detection with its keypoints of that class
    (and its subclasses) moved onto their labels."""
    corrected = {}
    for name in CORRECTED_CLASSES:
        fixed = pred.copy()
        for k, cls in enumerate(classes):
            if cls is not None and cls.startswith(name):
                fixed[k, :2] = gt[k, :2]
        corrected[name] = {**det, "keypoints": fixed.reshape(-1).tolist()}
    return corrected


def _tallies(
    counts: Dict[str, int],
    by_keypoint: List[Dict[str, int]],
    by_group: Mapping[str, Mapping[str, Dict[str, int]]],
    num_people: int,
    matched_people: int,
) -> Dict[str, Any]:
    """The breakdown's counts and shares: overall, per keypoint, per group of each grouping
    that the data has (``by_view``, ``by_style``, ``by_size``); the people matched."""
    total = sum(counts[name] for name in ERROR_CLASSES)
    result: Dict[str, Any] = {
        "keypoints": total,
        "counts": counts,
        "shares": _shares(counts),
        "people": num_people,
        "people_matched": matched_people,
        "people_unmatched": num_people - matched_people,
        # K entries: each keypoint's classes (of its labelled points of matched people)
        "by_keypoint": [
            {"keypoints": sum(c[n] for n in ERROR_CLASSES), "counts": c, "shares": _shares(c)}
            for c in by_keypoint
        ],
    }
    orders = {"view": FACING_VIEWS, "size": ("small", "medium", "large")}
    for grouping in GROUPINGS:
        if by_group[grouping]:
            rows = _group_rows(by_group[grouping], total, orders.get(grouping, ()))
            result[f"by_{grouping}"] = rows
    return result


def pose_error_breakdown(
    coco_gt: Mapping[str, Any],
    predictions: Sequence[Mapping[str, Any]],
    sigmas: Sequence[float],
    counterpart: Sequence[int],
    oracle_ap: bool = True,
) -> Dict[str, Any]:
    """The error classes of every labelled keypoint of matched people, and the oracle APs.

    Args:
        coco_gt: a COCO keypoint dataset dict (``images``, ``annotations``, ``categories``).
        predictions: COCO results (``image_id``, ``category_id``, ``score``, ``keypoints``).
        sigmas: K OKS sigmas; counterpart: each keypoint's left/right counterpart index (itself
            when it has none; Detectron2's ``create_keypoint_hflip_indices``).
        oracle_ap: also compute the AP and one oracle AP per corrected class (pycocotools).
    Returns:
        ``keypoints`` (classified), ``counts`` and ``shares`` of each class of
        :data:`ERROR_CLASSES` plus ``inversion_left_right`` (a subset of ``inversion``),
        ``people``, ``people_matched``, ``people_unmatched``; ``by_keypoint`` (K entries:
        ``keypoints``, ``counts``, ``shares`` of that keypoint); ``by_view``, ``by_style``,
        ``by_size`` (group -> ``keypoints``, ``share_of_keypoints``, ``counts``, ``shares``;
        each only when some matched person has that attribute: :func:`person_groups`); with
        ``oracle_ap``: ``ap`` and ``oracle_ap`` (class -> AP with that class corrected).
    """
    sigmas_np = np.asarray(sigmas, dtype=np.float64)
    people, detections = _people_and_detections(coco_gt, predictions)
    counts = _new_counts()
    by_group: Dict[str, Dict[str, Dict[str, int]]] = {
        g: defaultdict(_new_counts) for g in GROUPINGS
    }
    by_keypoint = [_new_counts() for _ in counterpart]
    num_people = sum(len(p) for p in people.values())
    matched_people = 0
    corrected: Dict[str, List[Dict]] = {name: [] for name in CORRECTED_CLASSES}
    unmatched_results: List[Dict] = []
    for image_id in set(people) | set(detections):
        anns, dets = people.get(image_id, []), detections.get(image_id, [])
        pairs = _match(dets, anns, sigmas_np)
        matched_people += len(pairs)
        paired_ids = {id(det) for det, _ in pairs}
        unmatched_results += [d for d in dets if id(d) not in paired_ids]
        for det, index in pairs:
            person = anns[index]
            others = [a for i, a in enumerate(anns) if i != index]
            pred = _keypoints(det)
            classes = classify_keypoint_errors(pred, person, others, sigmas_np, counterpart)
            for name, fixed in _corrected(det, pred, _keypoints(person), classes).items():
                corrected[name].append(fixed)
            groups = [
                by_group[g][name] for g, name in person_groups(person).items() if name is not None
            ]
            for k, cls in enumerate(classes):
                if cls is None:
                    continue
                for tally in [counts, by_keypoint[k]] + groups:
                    _count(tally, cls)
    result = _tallies(counts, by_keypoint, by_group, num_people, matched_people)
    if oracle_ap:
        result["ap"] = _keypoint_ap(coco_gt, list(predictions), sigmas)
        result["oracle_ap"] = {
            name: _keypoint_ap(coco_gt, corrected[name] + unmatched_results, sigmas)
            for name in CORRECTED_CLASSES
        }
    return result


def format_pose_errors(
    breakdown: Mapping[str, Any], keypoint_names: Optional[Sequence[str]] = None
) -> str:
    """A few lines: the share of each class, the oracle APs (when computed), good and
    left/right inversions by view (when the people have a yaw) and by style, and the keypoints
    most often inverted (named by ``keypoint_names`` when given)."""
    shares = breakdown["shares"]
    if not breakdown["keypoints"]:
        return "keypoint errors: no labelled keypoint of a matched person"
    parts = [f"{name} {shares[name]:.1%}" for name in ERROR_CLASSES]
    parts[2] += f" (left/right {shares['inversion_left_right']:.1%})"
    lines = [
        f"keypoint errors of {breakdown['keypoints']} labelled keypoints "
        f"({breakdown['people_matched']}/{breakdown['people']} people matched): " + ", ".join(parts)
    ]
    if "oracle_ap" in breakdown:
        oracle = ", ".join(f"{k} {v:.1f}" for k, v in breakdown["oracle_ap"].items())
        lines.append(f"keypoint AP {breakdown['ap']:.1f}; with each class corrected: {oracle}")
    for grouping in ("view", "style"):
        rows = breakdown.get(f"by_{grouping}")
        if rows:
            cells = [
                f"{name} ({row['share_of_keypoints']:.0%}) good {row['shares']['good']:.1%} "
                f"l/r {row['shares']['inversion_left_right']:.1%}"
                for name, row in rows.items()
            ]
            lines.append(f"by {grouping}: " + "; ".join(cells))
    inverted = [
        (row["shares"]["inversion"], k)
        for k, row in enumerate(breakdown.get("by_keypoint", []))
        if row["keypoints"]
    ]
    if inverted:
        worst = sorted(inverted, reverse=True)[:4]
        names = keypoint_names or [str(k) for k in range(len(breakdown["by_keypoint"]))]
        lines.append("most inverted: " + ", ".join(f"{names[k]} {share:.0%}" for share, k in worst))
    return "\n".join(lines)
