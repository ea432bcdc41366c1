"""Train one keypoint head on the frozen shared detector's cache, and evaluate it two ways.

Training follows Detectron2's keypoint branch exactly (``StandardROIHeads``): the
cached RPN proposals plus the ground-truth boxes are labelled and sampled
(``label_and_sample_proposals``), foreground proposals with a visible keypoint are
pooled from the cached FPN features with the model's own ``ROIPooler`` (FPN level
assignment included) and the head computes its losses. Only the head's parameters
train, with the config's optimizer, schedule and gradient clipping.

Evaluation runs the keypoint branch (``forward_with_given_boxes``) on
1. the ground-truth boxes, score 1 (isolates keypoint localisation, as top-down
   pose papers report it), and
2. the shared detector's detections with their scores (what a user gets),
and scores both with OKS keypoint AP, kept per image for the bootstrap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from kpext.evaluation.pose_errors import pose_error_breakdown
from kpext.modeling.decoding import average_with_mirrored

from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog
from detectron2.evaluation.coco_evaluation import instances_to_coco_json
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.modeling.roi_heads.roi_heads import (
    select_foreground_proposals,
    select_proposals_with_visible_keypoints,
)
from detectron2.solver import build_lr_scheduler, build_optimizer
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from .keypoint_ap import ImageMatches, keypoint_ap, per_image_matches
from .shared_detector import CachedImage, schedule_steps


@dataclass
class HeadResult:
    """One trained head: per-image matches for both evaluations, the error classes of its
    keypoints (``errors_gt`` / ``errors_det``: class -> share of the labelled keypoints of
    matched people, :func:`kpext.evaluation.pose_errors.pose_error_breakdown`) and the
    training speed."""

    matches_gt: List[ImageMatches]
    matches_det: List[ImageMatches]
    errors_gt: Dict[str, float] = field(default_factory=dict)
    errors_det: Dict[str, float] = field(default_factory=dict)
    iteration_s: List[float] = field(default_factory=list)
    final_loss: float = float("nan")

    @property
    def ap_gt(self) -> float:
        return 100 * keypoint_ap(self.matches_gt)

    @property
    def ap_det(self) -> float:
        return 100 * keypoint_ap(self.matches_det)

    @property
    def train_s_per_iter(self) -> float:
        steady = self.iteration_s[len(self.iteration_s) // 5 :] or self.iteration_s
        return float(np.median(steady)) if steady else float("nan")


def pool_keypoint_features(
    roi_heads, images: Sequence[CachedImage], boxes: Sequence[Boxes]
) -> torch.Tensor:
    """R x C x S x S pooled features of each image's boxes, in image order.

    Images are pooled one by one, so they may differ in size."""
    pooled = []
    for image, image_boxes in zip(images, boxes):
        if len(image_boxes) == 0:
            continue
        feats = [image.features[f].float() for f in roi_heads.keypoint_in_features]
        pooled.append(roi_heads.keypoint_pooler(feats, [image_boxes]))
    if not pooled:
        s = roi_heads.keypoint_pooler.output_size
        level = images[0].features[roi_heads.keypoint_in_features[0]]
        return torch.zeros((0, level.shape[1], *s), device=level.device)
    return torch.cat(pooled)


@dataclass(frozen=True)
class HeadPrecision:
    """How a head trains: ``bf16`` runs its forward under bf16 autocast (weights, gradients
    and optimizer state stay float32, as ``SOLVER.AMP`` on the CPU, :mod:`kpext.engine.amp`);
    ``channels_last`` stores its convolution weights and input in NHWC order (oneDNN's
    preferred layout on the CPU). Evaluation always runs in float32."""

    bf16: bool = False
    channels_last: bool = False

    def autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16)

    @property
    def label(self) -> str:
        parts = ["bf16 autocast" if self.bf16 else "float32"]
        return " + ".join(parts + (["channels-last"] if self.channels_last else []))


def keypoint_branch_losses(
    roi_heads, batch: Sequence[CachedImage], precision: Optional[HeadPrecision] = None
) -> Dict[str, torch.Tensor]:
    """Detectron2's training path of the keypoint branch on cached images; float32 losses.

    ``precision`` (default float32): the head's forward under bf16 autocast and/or its
    input in channels-last memory format. Call inside an ``EventStorage`` (the RoI sampler
    records statistics)."""
    precision = precision or HeadPrecision()
    proposals = roi_heads.label_and_sample_proposals(
        [c.proposals for c in batch], [c.targets for c in batch]
    )
    foreground, _ = select_foreground_proposals(proposals, roi_heads.num_classes)
    foreground = select_proposals_with_visible_keypoints(foreground)
    pooled = pool_keypoint_features(roi_heads, batch, [x.proposal_boxes for x in foreground])
    if precision.channels_last:
        pooled = pooled.contiguous(memory_format=torch.channels_last)
    with precision.autocast(pooled.device):
        losses = roi_heads.keypoint_head(pooled, [x for x in foreground if len(x)])
    return {k: v.float() for k, v in losses.items()}


def _contiguous_layer_outputs(head) -> None:
    """Make ``head.layers`` (the network every Detectron2 and kpext keypoint head calls
    before its loss) hand back contiguous maps: the losses flatten them with ``view``
    (Detectron2's ``keypoint_rcnn_loss``), which a channels-last tensor refuses. An instance
    attribute over the class's method, removed after training."""
    layers = head.layers

    def contiguous(x):
        out = layers(x)
        if isinstance(out, (list, tuple)):
            return type(out)(o.contiguous() for o in out)
        return out.contiguous()

    head.layers = contiguous


def batch_order(num_items: int, batch_size: int, iterations: int, seed: int) -> np.ndarray:
    """iterations x batch_size item indices: shuffled epochs, the same for every head at a seed."""
    rng = np.random.default_rng(seed)
    needed = iterations * batch_size
    epochs = [rng.permutation(num_items) for _ in range(-(-needed // num_items))]
    return np.concatenate(epochs)[:needed].reshape(iterations, batch_size)


@dataclass
class TrainingLog:
    """Seconds and total loss of each head-training iteration."""

    seconds: List[float]
    losses: List[float]


def train_head(
    model,
    cfg: CfgNode,
    train_cache: Sequence[CachedImage],
    iterations: int,
    seed: int,
    precision: Optional[HeadPrecision] = None,
) -> TrainingLog:
    """Train ``model.roi_heads.keypoint_head`` in place for ``iterations`` batches.

    The rest of the model stays frozen and in eval mode. The solver is the config's
    (optimizer, warm-up, steps at 80% and 92% of ``iterations``, gradient clipping).
    ``precision``: :class:`HeadPrecision` (default float32, contiguous); the trained head
    is handed back in float32 and contiguous memory format either way.
    """
    precision = precision or HeadPrecision()
    roi_heads = model.roi_heads
    head = roi_heads.keypoint_head
    if precision.channels_last:
        head.to(memory_format=torch.channels_last)
        _contiguous_layer_outputs(head)
    for p in head.parameters():
        p.requires_grad_(True)
    head.train()
    solver_cfg = cfg.clone()
    solver_cfg.defrost()
    solver_cfg.SOLVER.MAX_ITER = iterations
    solver_cfg.SOLVER.STEPS = schedule_steps(iterations)
    solver_cfg.SOLVER.WARMUP_ITERS = min(cfg.SOLVER.WARMUP_ITERS, max(1, iterations // 10))
    optimizer = build_optimizer(solver_cfg, head)
    scheduler = build_lr_scheduler(solver_cfg, optimizer)
    order = batch_order(len(train_cache), cfg.SOLVER.IMS_PER_BATCH, iterations, seed)
    log = TrainingLog([], [])
    torch.manual_seed(seed)  # proposal sampling
    with EventStorage(0) as storage:
        for it, indices in enumerate(order):
            storage.iter = it
            start = time.perf_counter()
            batch = [train_cache[i] for i in indices]
            losses = keypoint_branch_losses(roi_heads, batch, precision)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"head training diverged at iteration {it}: "
                    f"{ {k: float(v) for k, v in losses.items()} }"
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            log.seconds.append(time.perf_counter() - start)
            log.losses.append(float(loss.detach()))
    head.eval()
    if precision.channels_last:
        head.to(memory_format=torch.contiguous_format)
        del head.layers  # the class's own again
    for p in head.parameters():
        p.requires_grad_(False)
    return log


def gt_box_instances(image: CachedImage) -> Instances:
    """The image's ground-truth boxes as detections of score 1."""
    n, device = len(image.gt_boxes), image.gt_boxes.device
    size = image.targets.image_size
    return Instances(
        size,
        pred_boxes=Boxes(image.gt_boxes),
        scores=torch.ones(n, device=device),
        pred_classes=torch.zeros(n, dtype=torch.int64, device=device),
    )


@torch.no_grad()
def predict_keypoints(
    model,
    val_cache: Sequence[CachedImage],
    dataset_name: str,
    on: str,
    mirrored_cache: Optional[Sequence[CachedImage]] = None,
    flip_indices: Optional[Sequence[int]] = None,
) -> List[dict]:
    """COCO keypoint results of the trained head on ``on`` = "gt" boxes or "det" detections.

    With ``mirrored_cache`` (the same images, mirrored) and ``flip_indices``: the
    image-level flip test (:func:`image_flip_keypoints`) instead of a single pass.
    """
    meta = MetadataCatalog.get(dataset_name)
    to_dataset_id = {v: k for k, v in meta.thing_dataset_id_to_contiguous_id.items()}
    results = []
    for index, image in enumerate(val_cache):
        boxes = gt_box_instances(image) if on == "gt" else image.detections
        if len(boxes) == 0:
            continue
        features = {f: t.float() for f, t in image.features.items()}
        if mirrored_cache is None:
            instances = model.roi_heads.forward_with_given_boxes(features, [_copy(boxes)])[0]
        else:
            mirrored = {f: t.float() for f, t in mirrored_cache[index].features.items()}
            instances = _copy(boxes)
            instances.pred_keypoints = image_flip_keypoints(
                model.roi_heads,
                features,
                mirrored,
                boxes.pred_boxes.tensor,
                image.targets.image_size[1],
                flip_indices,
            )
        instances = detector_postprocess(instances, image.height, image.width)
        for result in instances_to_coco_json(instances.to("cpu"), image.image_id):
            result["category_id"] = to_dataset_id[result["category_id"]]
            results.append(result)
    return results


def image_flip_keypoints(
    roi_heads, features, mirrored_features, boxes, width: int, flip_indices
) -> torch.Tensor:
    """Image-level flip test of a kpext head: N x K x 3 keypoints of N x 4 boxes in an image
    ``width`` pixels wide (as resized for the model).

    The head also runs on the mirrored image's features with the mirrored boxes; its
    heatmaps are mirrored back, their left/right channels swapped (``flip_indices``),
    averaged with the plain pass's and decoded (the RoI-feature flip test,
    ``TEST.KPEXT.FLIP``, mirrors pooled features instead, which a backbone that is not
    mirror-equivariant does not make the features of a mirrored image).
    """
    mirrored_boxes = boxes.clone()
    mirrored_boxes[:, 0], mirrored_boxes[:, 2] = width - boxes[:, 2], width - boxes[:, 0]
    head = roi_heads.keypoint_head

    def heatmaps(feats, b):
        pooled = roi_heads.keypoint_pooler(
            [feats[f] for f in roi_heads.keypoint_in_features], [Boxes(b)]
        )
        return head.predict_heatmaps(pooled)

    plain = heatmaps(features, boxes)
    mirrored = heatmaps(mirrored_features, mirrored_boxes)
    index = torch.as_tensor(list(flip_indices), dtype=torch.long, device=plain.device)
    return head.decode(average_with_mirrored(plain, mirrored, index), boxes)


def _copy(instances: Instances) -> Instances:
    return Instances(instances.image_size, **{k: v for k, v in instances.get_fields().items()})


def evaluate_head(
    model,
    val_cache,
    dataset_name: str,
    coco_gt,
    sigmas,
    mirrored_cache: Optional[Sequence[CachedImage]] = None,
    flip_indices: Optional[Sequence[int]] = None,
    counterparts: Optional[Sequence[int]] = None,
) -> HeadResult:
    """Per-image OKS matches on ground-truth boxes and on the shared detections (optionally
    with the image-level flip test, see :func:`predict_keypoints`), and with
    ``counterparts`` (each keypoint's left/right counterpart) their error classes."""
    flip = {"mirrored_cache": mirrored_cache, "flip_indices": flip_indices}
    on_gt = predict_keypoints(model, val_cache, dataset_name, "gt", **flip)
    on_det = predict_keypoints(model, val_cache, dataset_name, "det", **flip)
    result = HeadResult(
        matches_gt=per_image_matches(coco_gt, on_gt, sigmas),
        matches_det=per_image_matches(coco_gt, on_det, sigmas),
    )
    if counterparts is not None:
        result.errors_gt = error_shares(coco_gt, on_gt, sigmas, counterparts)
        result.errors_det = error_shares(coco_gt, on_det, sigmas, counterparts)
    return result


def error_shares(coco_gt, results: List[dict], sigmas, counterparts) -> Dict[str, float]:
    """Class -> share of the labelled keypoints of matched people (no oracle APs: the
    bench's APs are its own)."""
    breakdown = pose_error_breakdown(coco_gt.dataset, results, sigmas, counterparts, False)
    return {k: float(v) for k, v in breakdown["shares"].items()}
