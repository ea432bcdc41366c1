"""TorchScript export of kpext models through Detectron2's tracing tools."""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch

from detectron2.export import TracingAdapter
from detectron2.structures import Instances


def _inference_without_postprocess(model, inputs: List[Dict[str, torch.Tensor]]):
    """Raw predictions (boxes in the input image's coordinates) as a list of dicts."""
    instances = model.inference(inputs, do_postprocess=False)
    return [{"instances": i} for i in instances]


def trace_model(model, image: torch.Tensor) -> Tuple[torch.jit.ScriptModule, TracingAdapter]:
    """Trace a GeneralizedRCNN on one C x H x W image (already resized as the model expects).

    Returns the traced module, which takes an image tensor and returns flat tensors,
    and the adapter whose ``outputs_schema`` turns them back into ``Instances``
    (``pred_boxes``, ``scores``, ``pred_keypoints``, ``pred_keypoint_heatmaps``...).
    The trace is specialised to the example's branch: an image with no detection
    at all should be handled before calling it.
    """
    model.eval()
    adapter = TracingAdapter(model, [{"image": image}], _inference_without_postprocess)
    with torch.no_grad():
        traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
    return traced, adapter


def run_traced(traced, adapter: TracingAdapter, image: torch.Tensor) -> Instances:
    """Run a traced model on a C x H x W image; returns its ``Instances``."""
    with torch.no_grad():
        return adapter.outputs_schema(traced(image))[0]["instances"]
