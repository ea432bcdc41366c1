"""Time the keypoint branch (RoI pooling, head network, decoding) on fixed boxes (on a GPU,
each step waits for its kernels)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import torch

from kpext.modeling.heads import KeypointHeadBase

from detectron2.modeling.roi_heads.keypoint_head import keypoint_rcnn_inference
from detectron2.structures import Boxes, Instances


@dataclass
class KeypointBranchTiming:
    """Median milliseconds per box of each step, over ``repeats`` runs."""

    pool_ms: float
    head_ms: float
    decode_ms: float

    @property
    def branch_ms(self) -> float:
        return self.pool_ms + self.head_ms + self.decode_ms


def fixed_boxes(image_size, num_boxes: int, seed: int = 0) -> torch.Tensor:
    """``num_boxes`` person-like boxes (taller than wide) in an H x W image, alike for all heads."""
    h, w = image_size
    g = torch.Generator().manual_seed(seed)
    heights = torch.empty(num_boxes).uniform_(0.15, 0.8, generator=g) * h
    widths = heights * torch.empty(num_boxes).uniform_(0.3, 0.7, generator=g)
    x0 = torch.rand(num_boxes, generator=g) * (w - widths)
    y0 = torch.rand(num_boxes, generator=g) * (h - heights)
    return torch.stack([x0, y0, x0 + widths, y0 + heights], dim=1)


def peaked_heatmaps(shape, seed: int = 0) -> torch.Tensor:
    """R x K x H x W maps with one Gaussian peak each plus noise, like a trained head's output."""
    r, k, h, w = shape
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    centre = torch.rand(r, k, 2, generator=g) * torch.tensor([w - 6.0, h - 6.0]) + 3
    dist2 = (xx - centre[..., 0, None, None]) ** 2 + (yy - centre[..., 1, None, None]) ** 2
    return torch.exp(-dist2 / (2 * (h / 28.0) ** 2)) + 0.02 * torch.randn(r, k, h, w, generator=g)


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-call allocations stay out of the numbers
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000.0


@torch.no_grad()
def time_keypoint_branch(
    model, image: torch.Tensor, num_boxes: int = 20, repeats: int = 7, trained: bool = True
) -> KeypointBranchTiming:
    """Per-box time of pool, head and decode of a GeneralizedRCNN's keypoint branch.

    Args:
        model: a GeneralizedRCNN with ``roi_heads.keypoint_pooler`` and ``keypoint_head``.
        image: 3 x H x W float image (already resized as the model expects).
        trained: False for an untrained model, whose raw outputs are decoded
            as peaked heatmaps of the same shape instead (decoding cost does not
            depend on the values, but Detectron2's decoder asserts on the huge
            logits of an untrained 8-conv head).
    """
    model.eval()
    images = model.preprocess_image([{"image": image}])
    features = model.backbone(images.tensor)
    steps = branch_steps(model, features, fixed_boxes(image.shape[-2:], num_boxes), trained)
    pool_ms, head_ms, decode_ms = (
        _median_ms(steps[s], repeats) for s in ("pool", "head", "decode")
    )
    return KeypointBranchTiming(pool_ms / num_boxes, head_ms / num_boxes, decode_ms / num_boxes)


def branch_steps(model, features, boxes: torch.Tensor, trained: bool = True):
    """Callables for the pool, head and decode steps of ``model``'s keypoint branch on fixed inputs.

    Args:
        features: FPN level -> 1 x C x h x w features of one image.
        boxes: N x 4 boxes in that image's coordinates.
        trained: see :func:`time_keypoint_branch`.
    """
    roi_heads = model.roi_heads
    head = roi_heads.keypoint_head
    feature_list = [features[f] for f in roi_heads.keypoint_in_features]
    box_list = [Boxes(boxes.to(feature_list[0].device))]
    pooled = roi_heads.keypoint_pooler(feature_list, box_list)
    kpext_head = isinstance(head, KeypointHeadBase)
    # kpext heads: the inference path (activation, and the flip test when it is on).
    run_head = (
        (lambda: head.predict_heatmaps(pooled)) if kpext_head else (lambda: head.layers(pooled))
    )
    outputs = run_head()
    if not trained:
        last = outputs[-1] if isinstance(outputs, list) else outputs
        outputs = peaked_heatmaps(last.shape).to(last.device)
    if kpext_head:
        heatmaps = outputs
        decode = lambda: head.decode(heatmaps, box_list[0].tensor)  # noqa: E731
    else:  # Detectron2's stock head: its own decoding loop
        h, w = feature_list[0].shape[-2:]
        instances = Instances((h * 4, w * 4))
        instances.pred_boxes = box_list[0]
        decode = lambda: keypoint_rcnn_inference(outputs, [instances])  # noqa: E731
    device = feature_list[0].device
    return {
        "pool": _synchronized(lambda: roi_heads.keypoint_pooler(feature_list, box_list), device),
        "head": _synchronized(run_head, device),
        "decode": _synchronized(decode, device),
    }


def _synchronized(fn: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """``fn``, and on a GPU a wait for its queue after it: a step's time covers its kernels,
    not only their launch (on the CPU, ``fn`` itself)."""
    if device.type != "cuda":
        return fn

    def run():
        out = fn()
        torch.cuda.synchronize(device)
        return out

    return run


@torch.no_grad()
def interleaved_branch_timing(
    models: Dict[str, Tuple[torch.nn.Module, Dict[str, torch.Tensor]]],
    boxes: torch.Tensor,
    repeats: int = 7,
    trained: bool = True,
) -> Dict[str, KeypointBranchTiming]:
    """Per-box pool/head/decode time of several models, alternated round by round.

    Each round times every model's every step once, so a change in machine load
    touches all models alike; the result is the median over ``repeats`` rounds
    (after one warm-up round). ``models``: name -> (model, one image's FPN features).
    """
    steps = {}
    for name, (model, features) in models.items():
        model.eval()
        steps[name] = branch_steps(model, features, boxes, trained)
    samples = {name: {step: [] for step in fns} for name, fns in steps.items()}
    for round_index in range(repeats + 1):
        for name, fns in steps.items():
            for step, fn in fns.items():
                start = time.perf_counter()
                fn()
                if round_index:  # round 0 warms up
                    samples[name][step].append(time.perf_counter() - start)
    n = len(boxes)
    return {
        name: KeypointBranchTiming(
            *(
                statistics.median(samples[name][step]) * 1000.0 / n
                for step in ("pool", "head", "decode")
            )
        )
        for name in steps
    }


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
