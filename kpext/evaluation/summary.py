"""After evaluation: one summary of every test set (keypoint AP, box AP, where the keypoint
errors go, tall people).

``train_net.py`` prints it after training or ``--eval-only`` and writes it to
``OUTPUT_DIR/summary.json``. With more than one test set, each later set's keypoint AP
is also given as a fraction of the first set's: for ``make demo`` (``kpext_synth_val``,
then ``kpext_synth_val_heldout``) that fraction says how much of its AP the model keeps
on drawing styles it never saw in training.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional

from ..data.keypoint_metadata import dataset_oks_sigmas, oks_sigmas_for_count
from ..io import atomic_open
from .ground_truth import normalized_ground_truth_file
from .pose_errors import format_pose_errors, pose_error_breakdown
from .tall_people import format_tall_person_recall, tall_person_recall

__all__ = ["summarize_test_results", "format_summary", "write_summary", "TALL_FRACTION"]

# People taller than this fraction of their image are counted apart (tall_people).
TALL_FRACTION = 0.6


def _per_dataset(results: Mapping[str, Any], dataset_names: List[str]) -> Dict[str, Mapping]:
    """Detectron2's ``DefaultTrainer.test`` returns the metrics of a single test set
    unwrapped ({"bbox": ..., "keypoints": ...}); of several, keyed by dataset name."""
    if len(dataset_names) == 1 and dataset_names[0] not in results:
        return {dataset_names[0]: results}
    return {name: results.get(name, {}) for name in dataset_names}


def _ap(metrics: Mapping[str, Any], task: str) -> float:
    return float(metrics.get(task, {}).get("AP", float("nan")))


def keypoint_counterparts(dataset_name: str, num_keypoints: int) -> List[int]:
    """Each keypoint's left/right counterpart index from the dataset's flip map (Detectron2's
    ``create_keypoint_hflip_indices``); the identity for a set without one."""
    from detectron2.data import MetadataCatalog
    from detectron2.data.detection_utils import create_keypoint_hflip_indices

    if not MetadataCatalog.get(dataset_name).get("keypoint_flip_map", None):
        return list(range(num_keypoints))
    return [int(i) for i in create_keypoint_hflip_indices([dataset_name])]


def summarize_test_results(cfg, results: Mapping[str, Any]) -> Dict[str, Any]:
    """Keypoint and box AP of each test set, its pose error breakdown and recall of its
    tall people.

    Args:
        cfg: the run's config (``DATASETS.TEST``, ``OUTPUT_DIR``).
        results: what ``DefaultTrainer.test`` returned.
    Returns ``{"datasets": [{name, keypoint_ap, box_ap, kp_ap_vs_first, tall_people,
    keypoint_errors}]}``; ``keypoint_errors`` is :func:`pose_error_breakdown`'s dict (good /
    jitter / inversion / swap / miss shares and the oracle APs). Both are None when the set's
    predictions file is missing.
    """
    from detectron2.data import MetadataCatalog

    names = list(cfg.DATASETS.TEST)
    metrics = _per_dataset(results, names)
    rows = []
    first_ap = None
    for name in names:
        folder = os.path.join(cfg.OUTPUT_DIR, "inference", name)
        predictions = os.path.join(folder, "coco_instances_results.json")
        ground_truth = normalized_ground_truth_file(name, folder) or MetadataCatalog.get(name).get(
            "json_file", ""
        )
        tall = errors = None
        if os.path.isfile(predictions) and os.path.isfile(ground_truth):
            sigmas = dataset_oks_sigmas(name, cfg.TEST.KEYPOINT_OKS_SIGMAS) or None
            tall = tall_person_recall(ground_truth, predictions, TALL_FRACTION, sigmas=sigmas)
            errors = _pose_errors(name, ground_truth, predictions, sigmas)
        kp_ap = _ap(metrics[name], "keypoints")
        first_ap = kp_ap if first_ap is None else first_ap
        rows.append(
            {
                "name": name,
                "keypoint_ap": kp_ap,
                "box_ap": _ap(metrics[name], "bbox"),
                "kp_ap_vs_first": kp_ap / first_ap if first_ap else float("nan"),
                "tall_people": tall,
                "keypoint_errors": errors,
            }
        )
    return {"datasets": rows}


def _pose_errors(name: str, ground_truth: str, predictions: str, sigmas) -> Optional[Dict]:
    with open(ground_truth, encoding="utf-8") as f:
        dataset = json.load(f)
    with open(predictions, encoding="utf-8") as f:
        results = json.load(f)
    num_keypoints = next(
        (len(a["keypoints"]) // 3 for a in dataset["annotations"] if "keypoints" in a), 0
    )
    if not num_keypoints:
        return None
    sigmas = list(sigmas) if sigmas else oks_sigmas_for_count(num_keypoints)
    return pose_error_breakdown(
        dataset, results, sigmas, keypoint_counterparts(name, num_keypoints)
    )


def _keypoint_names(dataset_name: str) -> Optional[List[str]]:
    from detectron2.data import MetadataCatalog

    names = MetadataCatalog.get(dataset_name).get("keypoint_names", None)
    return list(names) if names else None


def format_summary(summary: Mapping[str, Any]) -> str:
    """The summary as a few lines of text."""
    lines = []
    rows = summary["datasets"]
    for index, row in enumerate(rows):
        line = f"{row['name']}: keypoint AP {row['keypoint_ap']:.1f}, box AP {row['box_ap']:.1f}"
        if index:
            line += f" ({row['kp_ap_vs_first']:.2f} of {rows[0]['name']}'s keypoint AP)"
        lines.append(line)
        if row["tall_people"] is not None:
            lines.append("  " + format_tall_person_recall(row["tall_people"], "", TALL_FRACTION))
        if row.get("keypoint_errors"):
            errors = format_pose_errors(row["keypoint_errors"], _keypoint_names(row["name"]))
            lines += ["  " + line for line in errors.split("\n")]
    return "\n".join(lines)


def write_summary(cfg, results: Mapping[str, Any]) -> Dict[str, Any]:
    """Summarise, print and write ``OUTPUT_DIR/summary.json``; returns the summary."""
    summary = summarize_test_results(cfg, results)
    path = os.path.join(cfg.OUTPUT_DIR, "summary.json")
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    print("Summary (" + path + "):\n" + format_summary(summary), flush=True)
    return summary
