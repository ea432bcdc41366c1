"""A kpext model traced to TorchScript gives the eager model's keypoints."""

import os

import pytest
import torch

from kpext import add_kpext_config
from kpext.export import quiet_tracer, run_traced, trace_model

from detectron2.config import get_cfg
from detectron2.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
