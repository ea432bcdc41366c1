"""A detector shared by every keypoint head of the benchmark, and its cached outputs.

The head benchmark compares keypoint heads, so everything else is held fixed: the
backbone, RPN and box head are trained once, cached under the output folder keyed by the
config and the data, then frozen. Two objectives (``objective``):

- ``"boxes"``: a Faster R-CNN of the same config, **without a keypoint head**, so no
  compared head shaped the features; they then carry little keypoint information, and
  heads trained on them stay at the start of learning (stock: 4 AP on gt boxes after 200
  head iterations, 10 after 800, still rising; measured 2026-12-02);
- ``"keypoints"``: the whole Keypoint R-CNN of the config (Detectron2's stock head), whose
  keypoint head is then **dropped** from the checkpoint: every compared head starts from
  its own initialisation on features that carry keypoint information. Stock's loss shaped
  them, a bias the benchmark measures by ranking the heads on both detectors.

Its FPN features,
RPN proposals and detections are computed once per image and kept in memory:
training a head then costs only RoI sampling, pooling and the head itself.

Training images are cached twice, plain and horizontally mirrored (the config's
flip augmentation, done with Detectron2's transforms and the dataset's flip map).
Features are stored as float16 (half the memory; every head sees the same rounding).
Everything cached stays on the detector's device (``MODEL.DEVICE``: the CPU, or a GPU for
``BENCH_DEVICE=cuda``), ground-truth instances included.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch

from kpext.engine import build_seeded_train_loader
from kpext.io import atomic_path
from kpext.preprocessing import test_resize

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog, DatasetMapper
from detectron2.data import transforms as T
from detectron2.data.detection_utils import create_keypoint_hflip_indices
from detectron2.engine import DefaultTrainer
from detectron2.modeling import build_model
from detectron2.structures import Instances

logger = logging.getLogger(__name__)


class _SeededTrainer(DefaultTrainer):
    """DefaultTrainer whose data order follows ``cfg.SEED`` on every Detectron2."""

    @classmethod
    def build_train_loader(cls, cfg):
        return build_seeded_train_loader(cfg)


@dataclass
class CachedImage:
    """One image as the frozen detector sees it.

    ``features``: FPN level -> 1 x C x h x w (float16); ``proposals``: Instances with
    ``proposal_boxes`` and ``objectness_logits`` (training-time top-k); ``targets``:
    Instances with ``gt_boxes``, ``gt_classes``, ``gt_keypoints`` (None for val images);
    ``detections``: Instances with ``pred_boxes``, ``scores``, ``pred_classes`` (val only).
    ``image_id``, ``height``, ``width``: the dataset record's, for COCO results.
    """

    features: Dict[str, torch.Tensor]
    proposals: Optional[Instances]
    targets: Optional[Instances]
    detections: Optional[Instances]
    gt_boxes: Optional[torch.Tensor]
    image_id: int
    height: int
    width: int


OBJECTIVES = ("boxes", "keypoints")


def detector_cfg(
    cfg: CfgNode, iterations: int, output_dir: str, objective: str = "boxes"
) -> CfgNode:
    """The shared detector of a keypoint config: same backbone, RPN, box head and solver;
    no keypoint head (``objective="boxes"``) or the config's (``"keypoints"``)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"shared detector objective {objective!r}: expected one of {OBJECTIVES}")
    det = cfg.clone()
    det.defrost()
    det.MODEL.KEYPOINT_ON = objective == "keypoints"
    det.MODEL.WEIGHTS = ""
    det.DATASETS.TEST = ()  # no evaluation during or after training
    det.TEST.EVAL_PERIOD = 0
    det.SOLVER.MAX_ITER = iterations
    det.SOLVER.STEPS = schedule_steps(iterations)
    det.SOLVER.WARMUP_ITERS = min(det.SOLVER.WARMUP_ITERS, max(1, iterations // 4))
    det.SOLVER.CHECKPOINT_PERIOD = 10 * iterations
    det.OUTPUT_DIR = output_dir
    det.freeze()
    return det


def schedule_steps(iterations: int) -> tuple:
    """Learning-rate steps at 80% and 92% of a schedule (the synthetic configs' shape); none
    for schedules too short to hold two distinct steps (smoke runs)."""
    steps = tuple(sorted({int(iterations * f) for f in (0.8, 0.92)}))
    return steps if len(steps) == 2 and 0 < steps[0] else ()


# Config nodes a box-only detector never reads: left out of its cache key, so that adding a
# keypoint-head option does not retrain the shared detector.
_KEY_IGNORED = ("MODEL.KPEXT", "MODEL.ROI_KEYPOINT_HEAD", "TEST.KPEXT", "OUTPUT_DIR")
# A detector trained with the keypoint objective reads the keypoint head's nodes too; with
# Detectron2's own keypoint head (the bench's) and DefaultTrainer, none of MODEL.KPEXT.
_KEY_IGNORED_KEYPOINTS = ("TEST.KPEXT", "OUTPUT_DIR")
_KEY_IGNORED_STOCK_KEYPOINTS = _KEY_IGNORED_KEYPOINTS + ("MODEL.KPEXT",)
# Detectron2's keypoint heads: they read no kpext key.
_DETECTRON2_KEYPOINT_HEADS = ("KRCNNConvDeconvUpsampleHead",)
# The checkpoint of the detector the heads share: the trained model without its keypoint
# head, so that no compared head can load the trained stock head's weights by name.
SHARED_WEIGHTS = "shared_detector.pth"


def cache_key(cfg: CfgNode, extra: dict) -> str:
    """Hash of the detector's config (the nodes it never reads left out: the keypoint head's
    when it has none, kpext's when its keypoint head is Detectron2's) and its training data
    files (dataset names and the files' contents: not their paths or times, so that another
    clone with the same data finds the same detector)."""
    from detectron2.data import MetadataCatalog

    files = []
    for name in cfg.DATASETS.TRAIN:
        path = MetadataCatalog.get(name).get("json_file", "")
        if path and os.path.exists(path):
            files.append([name, _file_sha1(path)])
    relevant = cfg.clone()
    relevant.defrost()
    for dotted in _ignored_keys(cfg):
        *parents, leaf = dotted.split(".")
        node = relevant
        for part in parents:
            node = node[part]
        node.pop(leaf, None)
    blob = json.dumps({"cfg": relevant.dump(), "files": files, **extra}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _file_sha1(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _ignored_keys(cfg: CfgNode) -> tuple:
    """The config nodes the detector of ``cfg`` never reads (left out of its cache key)."""
    if not cfg.MODEL.KEYPOINT_ON:
        return _KEY_IGNORED
    if cfg.MODEL.ROI_KEYPOINT_HEAD.NAME in _DETECTRON2_KEYPOINT_HEADS:
        return _KEY_IGNORED_STOCK_KEYPOINTS
    return _KEY_IGNORED_KEYPOINTS


def train_shared_detector(
    cfg: CfgNode, iterations: int, cache_root: str, seed: int = 0, objective: str = "boxes"
) -> str:
    """Train (or find cached) the shared detector; returns the path of its checkpoint
    without a keypoint head (:data:`SHARED_WEIGHTS`)."""
    probe = detector_cfg(cfg, iterations, "", objective)
    key = cache_key(probe, {"seed": seed, "iterations": iterations, "objective": objective})
    out = os.path.join(cache_root, f"detector_{key}")
    shared = os.path.join(out, SHARED_WEIGHTS)
    if os.path.exists(shared):
        logger.info("Shared detector: using the cached %s", shared)
        return shared
    weights = os.path.join(out, "model_final.pth")
    if os.path.exists(weights):  # trained, killed before the keypoint head was dropped
        return save_without_keypoint_head(weights, shared)
    det = detector_cfg(cfg, iterations, out, objective)
    det.defrost()
    det.SEED = seed
    det.freeze()
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.yaml"), "w") as f:
        f.write(det.dump())
    logger.info(
        "Shared detector: training for %d iterations (objective: %s) in %s",
        iterations,
        objective,
        out,
    )
    from detectron2.utils.env import seed_all_rng

    seed_all_rng(seed)
    trainer = _SeededTrainer(det)
    trainer.resume_or_load(resume=False)
    trainer.train()
    if not os.path.exists(weights):
        raise RuntimeError(f"Shared detector: training finished but {weights} was not written")
    return save_without_keypoint_head(weights, shared)


def save_without_keypoint_head(weights: str, path: str) -> str:
    """Write ``weights``'s model without ``roi_heads.keypoint_head.*`` to ``path``."""
    checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
    model = {
        k: v for k, v in checkpoint["model"].items() if not k.startswith("roi_heads.keypoint_head.")
    }
    with atomic_path(path) as tmp:
        torch.save({"model": model}, tmp)
    return path


def load_frozen_model(cfg: CfgNode, detector_weights: str) -> torch.nn.Module:
    """A model of ``cfg`` with the shared detector's weights, in eval mode, nothing trainable.

    With a keypoint config, the keypoint head keeps its fresh initialisation (seeded
    by the caller: the shared checkpoint has no keypoint head); with :func:`detector_cfg`,
    the detector that fills the cache.
    """
    model = build_model(cfg)
    checkpointer = DetectionCheckpointer(model)
    checkpointer.logger.setLevel(
        logging.ERROR
    )  # the keypoint head's weights are missing on purpose
    checkpointer.load(detector_weights)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _mapper(cfg: CfgNode, flip: bool) -> DatasetMapper:
    augs = [test_resize(cfg)]
    if flip:
        augs.append(T.RandomFlip(prob=1.0, horizontal=True, vertical=False))
    return DatasetMapper(
        is_train=True,  # keeps the annotations as Instances
        augmentations=augs,
        image_format=cfg.INPUT.FORMAT,
        use_keypoint=True,
        keypoint_hflip_indices=create_keypoint_hflip_indices(cfg.DATASETS.TRAIN) if flip else None,
    )


@torch.no_grad()
def cache_images(
    model: torch.nn.Module,
    cfg: CfgNode,
    dataset_name: str,
    *,
    train: bool,
    flips: bool = False,
    limit: Optional[int] = None,
    progress: bool = True,
) -> List[CachedImage]:
    """Run the frozen backbone (and RPN, and for val the box head) once per image.

    Args:
        model: the box-only detector (:func:`load_frozen_model` of :func:`detector_cfg`).
        train: cache training proposals and targets (True) or detections and gt boxes (False).
        flips: also cache each image mirrored (training only).
        limit: only the first ``limit`` records (smoke runs).
    """
    from tqdm import tqdm

    records = DatasetCatalog.get(dataset_name)[: limit or None]
    mappers = [_mapper(cfg, False)] + ([_mapper(cfg, True)] if flips else [])
    rpn = model.proposal_generator
    if train:  # training-time proposal counts, without putting the RPN in training mode
        rpn.pre_nms_topk = {False: rpn.pre_nms_topk[True], True: rpn.pre_nms_topk[True]}
        rpn.post_nms_topk = {False: rpn.post_nms_topk[True], True: rpn.post_nms_topk[True]}
    cached = []
    total = len(records) * len(mappers)
    with tqdm(total=total, desc=f"cache {dataset_name}", unit="img", disable=not progress) as bar:
        for record in records:
            for mapper in mappers:
                cached.append(_cache_one(model, mapper(dict(record)), record, train))
                bar.update(1)
    return cached


def _cache_one(model, item: dict, record: dict, train: bool) -> CachedImage:
    images = model.preprocess_image([item])
    features = model.backbone(images.tensor)
    proposals, _ = model.proposal_generator(images, features, None)
    kept = {f: features[f].to(torch.float16) for f in model.roi_heads.in_features}
    # On the model's device, beside the proposals and features (a no-op on the CPU): the RoI
    # sampler and the gt-box evaluation combine them.
    gt = item["instances"].to(images.tensor.device)
    if train:
        return CachedImage(
            kept,
            proposals[0],
            gt,
            None,
            None,
            record["image_id"],
            record["height"],
            record["width"],
        )
    detections, _ = model.roi_heads(images, features, proposals)
    det = detections[0]
    boxes_only = Instances(
        det.image_size, pred_boxes=det.pred_boxes, scores=det.scores, pred_classes=det.pred_classes
    )
    return CachedImage(
        kept,
        None,
        gt,
        boxes_only,
        gt.gt_boxes.tensor.clone(),
        record["image_id"],
        record["height"],
        record["width"],
    )


def cached_images_on_disk(
    path: str, model: torch.nn.Module, cfg: CfgNode, dataset_name: str, **kwargs
) -> List[CachedImage]:
    """:func:`cache_images`, kept in ``path`` (beside the detector's checkpoint, so keyed by it).

    A later run with the same detector loads the file instead of running the backbone again.
    """
    if os.path.exists(path):
        logger.info("Shared detector: loading cached features from %s", path)
        return torch.load(path, weights_only=False)
    cached = cache_images(model, cfg, dataset_name, **kwargs)
    with atomic_path(path) as tmp:  # a killed run leaves no half-written cache behind
        torch.save(cached, tmp)
    return cached
