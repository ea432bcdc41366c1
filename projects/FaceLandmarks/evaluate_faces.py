"""Face keypoint error in pixels, as a Detectron2 ``DatasetEvaluator``.

Every ground-truth face is matched to one prediction of its image: the
highest-scoring detection whose box overlaps the face box with IoU > 0.5, else
the highest-scoring detection (a face crop holds one face, so the top detection
is the model's answer even when its box is off), else none (the face counts as
missed and adds no error). Errors are Euclidean distances over the *labelled*
keypoints only (v > 0), scaled to a ``reference_size``-pixel image (96, Kaggle's
size), and reported as:

* ``mean_px_error``, ``median_px_error``: per keypoint, in pixels;
* ``rmse_px``: Kaggle's metric, the root mean squared error over the x and y
  coordinates (= sqrt(mean squared distance / 2));
* ``nme_iod_percent``: mean error over the inter-ocular distance, in percent:
  eye centres for the 15-point set, outer eye corners for the 68-point set (the
  300-W convention); faces without both eye points are left out of it;
* ``faces``, ``faces_matched_iou50``, ``faces_missed``, ``points``;
* ``err-<keypoint>``: mean error per keypoint (the '-' keeps these out of
  Detectron2's one-line ``copypaste`` summary, as for "AP-<category>").

The results are returned as ``{"face_keypoints": {...}}`` and written to
``face_metrics.json`` in ``output_dir``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

import kpext  # noqa: F401  (applies kpext.compat before detectron2 is imported)

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.structures import Boxes, BoxMode, pairwise_iou
from detectron2.utils import comm

logger = logging.getLogger("kpext")

MATCH_IOU = 0.5

# (left, right) keypoint names whose distance normalises the error, by preference.
INTEROCULAR_PAIRS = (("left_eye_center", "right_eye_center"), ("left_eye_outer", "right_eye_outer"))


def match_face(gt_box: np.ndarray, pred_boxes: np.ndarray, scores: np.ndarray) -> Optional[int]:
    """Index of the prediction matched to a face (see the module docstring), or None.

    Args:
        gt_box: (4,) XYXY face box.
        pred_boxes: (N, 4) XYXY predicted boxes.
        scores: (N,) their scores.
    """
    if len(pred_boxes) == 0:
        return None
    ious = pairwise_iou(
        Boxes(torch.as_tensor(gt_box[None], dtype=torch.float32)),
        Boxes(torch.as_tensor(pred_boxes, dtype=torch.float32)),
    )[0].numpy()
    order = np.argsort(-np.asarray(scores), kind="stable")
    overlapping = [i for i in order if ious[i] > MATCH_IOU]
    return int(overlapping[0]) if overlapping else int(order[0])


def _interocular_indices(names: Sequence[str]) -> Optional[tuple]:
    for left, right in INTEROCULAR_PAIRS:
        if left in names and right in names:
            return names.index(left), names.index(right)
    return None


def face_keypoint_errors(
    ground_truth: Sequence[Mapping[str, Any]],
    predictions: Mapping[Any, Mapping[str, np.ndarray]],
    keypoint_names: Sequence[str],
    reference_size: float = 96.0,
) -> Dict[str, float]:
    """Keypoint errors of matched predictions (see the module docstring).

    Args:
        ground_truth: one dict per face: ``image_id``, ``box`` (4,) XYXY,
            ``keypoints`` (K, 3) continuous image coordinates and visibility,
            ``width`` of its image.
        predictions: by image id: ``boxes`` (N, 4) XYXY, ``scores`` (N,),
            ``keypoints`` (N, K, 3) continuous image coordinates and scores.
        keypoint_names: the K names (for per-keypoint errors and the inter-ocular distance).
        reference_size: errors are scaled to an image this many pixels wide.
    """
    num_keypoints = len(keypoint_names)
    per_keypoint: List[List[float]] = [[] for _ in range(num_keypoints)]
    normalised: List[float] = []
    eyes = _interocular_indices(list(keypoint_names))
    matched_iou, missed = 0, 0
    for face in ground_truth:
        pred = predictions.get(face["image_id"])
        index = None if pred is None else match_face(face["box"], pred["boxes"], pred["scores"])
        if index is None:
            missed += 1
            continue
        ious = pairwise_iou(
            Boxes(torch.as_tensor(face["box"][None], dtype=torch.float32)),
            Boxes(torch.as_tensor(pred["boxes"][index : index + 1], dtype=torch.float32)),
        )
        matched_iou += int(ious.item() > MATCH_IOU)
        gt = np.asarray(face["keypoints"], dtype=np.float64).reshape(num_keypoints, 3)
        labelled = gt[:, 2] > 0
        scale = reference_size / float(face["width"])
        distances = np.linalg.norm(pred["keypoints"][index][:, :2] - gt[:, :2], axis=1) * scale
        for k in np.flatnonzero(labelled):
            per_keypoint[k].append(float(distances[k]))
        if eyes is not None and labelled[list(eyes)].all():
            interocular = np.linalg.norm(gt[eyes[0], :2] - gt[eyes[1], :2]) * scale
            if interocular > 0:
                normalised.append(float(distances[labelled].mean() / interocular))
    all_errors = np.array(list(itertools.chain.from_iterable(per_keypoint)))
    nan = float("nan")
    results = {
        "mean_px_error": float(all_errors.mean()) if all_errors.size else nan,
        "median_px_error": float(np.median(all_errors)) if all_errors.size else nan,
        "rmse_px": float(np.sqrt(np.mean(all_errors**2) / 2)) if all_errors.size else nan,
        "nme_iod_percent": float(100 * np.mean(normalised)) if normalised else nan,
        "faces": float(len(ground_truth)),
        "faces_matched_iou50": float(matched_iou),
        "faces_missed": float(missed),
        "points": float(all_errors.size),
    }
    for name, errors in zip(keypoint_names, per_keypoint):
        results[f"err-{name}"] = float(np.mean(errors)) if errors else nan
    return results


def ground_truth_faces(dataset_name: str) -> List[Dict[str, Any]]:
    """The faces of a registered keypoint dataset in the form :func:`face_keypoint_errors` takes."""
    faces = []
    for record in DatasetCatalog.get(dataset_name):
        for ann in record.get("annotations", []):
            if ann.get("iscrowd", 0):
                continue
            box = BoxMode.convert(list(ann["bbox"]), ann["bbox_mode"], BoxMode.XYXY_ABS)
            faces.append({
                "image_id": record["image_id"],
                "box": np.asarray(box, dtype=np.float64),
                "keypoints": np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3),
                "width": record["width"],
            })  # fmt: skip
    return faces


class FaceKeypointErrorEvaluator(DatasetEvaluator):
    """Pixel errors of face keypoints on a registered dataset (see the module docstring)."""

    def __init__(
        self,
        dataset_name: str,
        output_dir: Optional[str] = None,
        distributed: bool = True,
        reference_size: float = 96.0,
    ):
        self.dataset_name = dataset_name
        self.output_dir = output_dir
        self.distributed = distributed
        self.reference_size = reference_size
        self.keypoint_names = list(MetadataCatalog.get(dataset_name).keypoint_names)
        self._predictions: Dict[Any, Dict[str, np.ndarray]] = {}

    def reset(self) -> None:
        self._predictions = {}

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            instances = out["instances"].to("cpu")
            if not instances.has("pred_keypoints"):
                continue
            self._predictions[inp["image_id"]] = {
                "boxes": instances.pred_boxes.tensor.numpy(),
                "scores": instances.scores.numpy(),
                "keypoints": instances.pred_keypoints.numpy(),
            }

    def evaluate(self) -> Dict[str, Dict[str, float]]:
        predictions = self._predictions
        if self.distributed:
            comm.synchronize()
            gathered = comm.gather(predictions, dst=0)
            if not comm.is_main_process():
                return {}
            predictions = {k: v for part in gathered for k, v in part.items()}
        results = face_keypoint_errors(
            ground_truth_faces(self.dataset_name),
            predictions,
            self.keypoint_names,
            self.reference_size,
        )
        logger.info(
            "Face keypoints on %s: mean error %.2f px, RMSE %.2f px (at %d px), NME %.2f%% "
            "of the inter-ocular distance; %d of %d faces matched with IoU > 0.5, %d missed",
            self.dataset_name, results["mean_px_error"], results["rmse_px"], self.reference_size,
            results["nme_iod_percent"], results["faces_matched_iou50"], results["faces"],
            results["faces_missed"],
        )  # fmt: skip
        if self.output_dir:
            os.makedirs(self.output_dir, exist_ok=True)
            with open(
                os.path.join(self.output_dir, "face_metrics.json"), "w", encoding="utf-8"
            ) as f:
                # NaN (nothing to measure) is not JSON: write null
                safe = {
                    k: (None if isinstance(v, float) and np.isnan(v) else v)
                    for k, v in results.items()
                }
                json.dump({"dataset": self.dataset_name, **safe}, f, indent=1)
        return {"face_keypoints": results}
