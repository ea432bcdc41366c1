"""Tracking metrics of a tracker's output against a scene's ground truth.

HOTA (DetA, AssA), IDF1, MOTA and ID switches come from ``motrics`` (MIT; a
Rust implementation checked in its CI to give TrackEval's CLEAR, Identity and
HOTA numbers exactly), fed per-frame similarity matrices:

* keypoints: OKS of each output pose against each ground-truth person
  (:func:`kpext.modeling.postprocess.keypoint_oks_matrix`, the ground truth as
  reference: its area, its labelled keypoints, COCO's sigmas). HOTA sweeps its
  thresholds over it; *keypoint MOTA* (PoseTrack's idea, with a person-level
  OKS >= 0.5 match instead of PCKh per keypoint), keypoint IDF1 and ID
  switches take OKS >= 0.5;
* boxes: IoU, MOT's match at 0.5 for MOTA, IDF1 and ID switches.

Several sequences are scored together by concatenating them with their
identities kept apart, which is how TrackEval combines sequences (sums of
matches, misses, false positives and switches; AssA weighted by matches).

The jitter of the output keypoints (:func:`keypoint_jitter`) is written here:
it is not a tracking metric of any library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import motrics
import numpy as np

from kpext.data.keypoint_metadata import oks_sigmas_for_count
from kpext.modeling.postprocess import keypoint_oks_matrix
from kpext.video.association import hungarian_match
from kpext.video.tracking import box_iou_matrix

from .tracking_scenes import GroundTruthFrame

__all__ = ["TrackedFrame", "oks_similarity", "tracking_metrics", "keypoint_jitter"]

SIGMAS = np.asarray(oks_sigmas_for_count(17), dtype=np.float64)
MATCH = 0.5  # OKS or IoU of a match for MOTA, IDF1, ID switches and the jitter
# keypoints scoring at most this are not drawn by demo.py (TEST.KPEXT.VIS_KEYPOINT_THRESHOLD)
KEYPOINT_SHOWN = 0.05
# identities of two sequences never meet once offset by this much
_ID_STRIDE = 1_000_000

Sequence_ = Tuple[Sequence[GroundTruthFrame], Sequence["TrackedFrame"]]


@dataclass
class TrackedFrame:
    """A tracker's output for one frame: ids P, keypoints P x K x 3, boxes P x 4."""

    ids: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray


def oks_similarity(gt: GroundTruthFrame, out: TrackedFrame) -> np.ndarray:
    """G x P OKS of the output poses against the ground truth (its area and labelled
    keypoints, visibility > 0)."""
    if not len(gt.ids) or not len(out.ids):
        return np.zeros((len(gt.ids), len(out.ids)))
    return keypoint_oks_matrix(gt.keypoints, out.keypoints, gt.areas, SIGMAS).numpy()


def _iou_similarity(gt: GroundTruthFrame, out: TrackedFrame) -> np.ndarray:
    if not len(gt.ids) or not len(out.ids):
        return np.zeros((len(gt.ids), len(out.ids)))
    return box_iou_matrix(gt.boxes, out.boxes)


def _concatenated(sequences: Sequence[Sequence_], similarity) -> Tuple[list, list, list]:
    """Per-frame gt ids, output ids and similarity lists of all sequences in a row."""
    gt_ids, out_ids, sims = [], [], []
    for s, (gt_frames, out_frames) in enumerate(sequences):
        if len(gt_frames) != len(out_frames):
            raise ValueError(f"{len(gt_frames)} ground-truth frames, {len(out_frames)} output")
        for gt, out in zip(gt_frames, out_frames):
            gt_ids.append([int(i) + s * _ID_STRIDE for i in gt.ids])
            out_ids.append([int(i) + s * _ID_STRIDE for i in out.ids])
            sims.append(similarity(gt, out).tolist())
    return gt_ids, out_ids, sims


def tracking_metrics(sequences: Sequence[Sequence_]) -> Dict[str, float]:
    """HOTA, DetA, AssA (OKS), keypoint MOTA / IDF1 / ID switches (OKS >= 0.5), box HOTA,
    MOTA, IDF1 and ID switches (IoU >= 0.5) of one or more (ground truth, output) sequences,
    in percent (switches as counts)."""
    gt_ids, out_ids, oks = _concatenated(sequences, oks_similarity)
    _, _, iou = _concatenated(sequences, _iou_similarity)
    hota = motrics.compute_hota_from_similarity(gt_ids, out_ids, oks)
    kp_clear = motrics.compute_clear_from_similarity(gt_ids, out_ids, oks, MATCH)
    kp_identity = motrics.compute_identity_from_similarity(gt_ids, out_ids, oks, MATCH)
    box_hota = motrics.compute_hota_from_similarity(gt_ids, out_ids, iou)
    clear = motrics.compute_clear_from_similarity(gt_ids, out_ids, iou, MATCH)
    identity = motrics.compute_identity_from_similarity(gt_ids, out_ids, iou, MATCH)
    return {
        "hota": 100 * hota.hota,
        "deta": 100 * hota.deta,
        "assa": 100 * hota.assa,
        "kp_mota": 100 * kp_clear.mota,
        "kp_idf1": 100 * kp_identity.idf1,
        "kp_idsw": kp_clear.num_switches,
        "box_hota": 100 * box_hota.hota,
        "mota": 100 * clear.mota,
        "idf1": 100 * identity.idf1,
        "idsw": clear.num_switches,
        "gt_detections": clear.num_gt,
    }


def keypoint_jitter(sequences: Sequence[Sequence_]) -> Dict[str, float]:
    """How much the output keypoints shake, against the ground truth's own motion.

    Each frame's output is matched to the ground truth (OKS >= 0.5, the best total
    OKS). For every person matched to the same track in three consecutive frames,
    every keypoint visible in all three and shown (score above 0.05) in all three
    gives the distance between the output's acceleration and the truth's
    (``x[t+1] - 2 x[t] + x[t-1]``, pixels per frame^2): ``jitter`` is its mean.
    ``error`` is the mean distance (px) of the shown, visible keypoints of every
    match to their truth: what smoothing costs in lag shows there.
    """
    accelerations: List[float] = []
    errors: List[float] = []
    for gt_frames, out_frames in sequences:
        # per frame: gt id -> (track id, output pose K x 3, truth K x 3)
        matched: List[Dict[int, Tuple[int, np.ndarray, np.ndarray]]] = []
        for gt, out in zip(gt_frames, out_frames):
            pairs = hungarian_match(oks_similarity(gt, out), MATCH)
            frame = {}
            for g, p in pairs:
                pose, truth = out.keypoints[p], gt.keypoints[g]
                frame[int(gt.ids[g])] = (int(out.ids[p]), pose, truth)
                shown = (truth[:, 2] == 2) & (pose[:, 2] > KEYPOINT_SHOWN)
                errors.extend(np.linalg.norm(pose[shown, :2] - truth[shown, :2], axis=1))
            matched.append(frame)
        for t in range(1, len(matched) - 1):
            for person, (track, pose, truth) in matched[t].items():
                before, after = matched[t - 1].get(person), matched[t + 1].get(person)
                if before is None or after is None or not before[0] == track == after[0]:
                    continue
                poses = np.stack([before[1], pose, after[1]])
                truths = np.stack([before[2], truth, after[2]])
                shown = ((truths[:, :, 2] == 2) & (poses[:, :, 2] > KEYPOINT_SHOWN)).all(axis=0)
                acc_out = poses[2, :, :2] - 2 * poses[1, :, :2] + poses[0, :, :2]
                acc_gt = truths[2, :, :2] - 2 * truths[1, :, :2] + truths[0, :, :2]
                accelerations.extend(np.linalg.norm(acc_out - acc_gt, axis=1)[shown])
    return {
        "jitter": float(np.mean(accelerations)) if accelerations else float("nan"),
        "error": float(np.mean(errors)) if errors else float("nan"),
        "keypoint_triples": len(accelerations),
    }
