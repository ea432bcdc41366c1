"""A whole kpext model traced to TorchScript through Detectron2's TracingAdapter (raw
``Instances``, heatmaps included) gives the eager model's boxes and keypoints, saved and
reloaded, on the example and on an unseen image. kpext's own export is
:func:`kpext.export.export_model` (tests/export/test_parity.py)."""

import os

import pytest
import torch

from kpext import add_kpext_config
from kpext.export import quiet_tracer

from detectron2.config import get_cfg
from detectron2.export import TracingAdapter
from detectron2.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "synthetic", "keypoint_rcnn_R18_FPN_kpext.yaml")


def small_model(head: str):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list([
        "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
        "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS", "(32, 32)",
        "MODEL.KPEXT.GAUSSIAN.CONV_DIMS", "(32, 32)",
        "MODEL.KPEXT.HOURGLASS.CHANNELS", "32", "MODEL.ROI_KEYPOINT_HEAD.NAME", head,
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
    ])  # fmt: skip
    torch.manual_seed(0)
    return build_model(cfg).eval()


def _inference_without_postprocess(model, inputs):
    """Raw predictions (boxes in the input image's coordinates) as a list of dicts."""
    return [{"instances": i} for i in model.inference(inputs, do_postprocess=False)]


def trace_model(model, image: torch.Tensor):
    """The model traced on one C x H x W image (which needs a detection: the trace keeps the
    example's branch) and the adapter whose ``outputs_schema`` rebuilds ``Instances``."""
    adapter = TracingAdapter(model, [{"image": image}], _inference_without_postprocess)
    with quiet_tracer(), torch.no_grad():
        traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
    return traced, adapter


def run_traced(traced, adapter: TracingAdapter, image: torch.Tensor):
    with torch.no_grad():
        return adapter.outputs_schema(traced(image))[0]["instances"]


@pytest.mark.parametrize(
    "head", ["KpextKRCNNHead", "GaussianKeypointHead", "HourglassKeypointHead"]
)
def test_traced_model_matches_eager(head, tmp_path):
    model = small_model(head)
    example = torch.rand(3, 128, 160) * 255
    traced, adapter = trace_model(model, example)
    path = tmp_path / "model.ts"
    with quiet_tracer():  # torch.jit.save/load warn that TorchScript is deprecated
        traced.save(str(path))
        reloaded = torch.jit.load(str(path))
    for image in (example, torch.rand(3, 128, 160) * 255):  # the example and an unseen image
        with torch.no_grad():
            eager = model.inference([{"image": image}], do_postprocess=False)[0]
        exported = run_traced(reloaded, adapter, image)
        assert len(eager) > 0 and len(exported) == len(eager)
        torch.testing.assert_close(
            exported.pred_boxes.tensor, eager.pred_boxes.tensor, rtol=0, atol=1e-3
        )
        torch.testing.assert_close(
            exported.pred_keypoints, eager.pred_keypoints, rtol=1e-4, atol=1e-2
        )
