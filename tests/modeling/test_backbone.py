"""build_kpext_resnet_fpn_backbone: Detectron2's ResNet-18/34 + FPN at any width."""

import pytest
import torch

from kpext import add_kpext_config
from kpext.modeling.backbone import build_kpext_resnet_fpn_backbone

from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_model
from detectron2.modeling.backbone.fpn import build_resnet_fpn_backbone
from detectron2.structures import Boxes, Instances, Keypoints
from detectron2.utils.events import EventStorage

INPUT = ShapeSpec(channels=3)


def resnet_cfg(depth: int = 18, stem: int = 64, res2: int = 64, fpn: int = 32):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = stem
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = res2
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.FPN.OUT_CHANNELS = fpn
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    return cfg


@pytest.mark.parametrize("depth", [18, 34])
def test_at_width_64_it_is_detectron2s_network_weight_for_weight(depth):
    """Same parameter names and shapes as Detectron2's builder; with Detectron2's weights
    loaded strictly, the same outputs."""
    cfg = resnet_cfg(depth)
    torch.manual_seed(0)
    theirs = build_resnet_fpn_backbone(cfg, INPUT).eval()
    ours = build_kpext_resnet_fpn_backbone(cfg, INPUT).eval()
    their_shapes = {k: v.shape for k, v in theirs.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == their_shapes
    ours.load_state_dict(theirs.state_dict(), strict=True)
    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        want, got = theirs(image), ours(image)
    assert sorted(got) == sorted(want) == ["p2", "p3", "p4", "p5", "p6"]
    for name in want:
        torch.testing.assert_close(got[name], want[name])


def test_half_width_halves_every_stage_and_quarters_the_convolution_weights():
    full = build_kpext_resnet_fpn_backbone(resnet_cfg(18), INPUT)
    half = build_kpext_resnet_fpn_backbone(resnet_cfg(18, stem=32, res2=32), INPUT)
    channels = {k: s.channels for k, s in half.bottom_up.output_shape().items()}
    assert channels == {"res2": 32, "res3": 64, "res4": 128, "res5": 256}
    assert {k: s.stride for k, s in half.output_shape().items()} == {
        k: s.stride for k, s in full.output_shape().items()
    }

    def resnet_conv_weights(backbone):
        return sum(p.numel() for n, p in backbone.bottom_up.named_parameters() if p.dim() == 4)

    # Every basic-block convolution has in x out channels halved (the stem's input stays 3).
    ratio = resnet_conv_weights(half) / resnet_conv_weights(full)
    assert 0.24 < ratio < 0.26
    outputs = half(torch.rand(2, 3, 64, 64))
    assert {k: tuple(v.shape[:2]) for k, v in outputs.items()} == {
        f"p{i}": (2, 32) for i in range(2, 7)
    }


def test_options_basic_blocks_lack_are_refused_with_the_key():
    cfg = resnet_cfg(18)
    cfg.MODEL.RESNETS.NUM_GROUPS = 2
    with pytest.raises(ValueError, match="NUM_GROUPS=1"):
        build_kpext_resnet_fpn_backbone(cfg, INPUT)


def test_deeper_resnets_go_to_detectron2s_builder():
    cfg = resnet_cfg(50, res2=256)
    backbone = build_kpext_resnet_fpn_backbone(cfg, INPUT)
    assert backbone.bottom_up.output_shape()["res5"].channels == 2048


def test_the_demo_recipe_trains():
    """The `make demo` config (half-width backbone selected by name from the registry,
    GroupNorm): a few SGD steps on one fixed image with two people lower the total loss."""
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file("configs/synthetic/keypoint_rcnn_R18_FPN_demo.yaml")
    cfg.merge_from_list(["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", 32])
    assert cfg.MODEL.BACKBONE.NAME == "build_kpext_resnet_fpn_backbone"
    torch.manual_seed(0)
    model = build_model(cfg)
    assert model.backbone.bottom_up.output_shape()["res5"].channels == 256
    batch = [_image_with_two_people()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    with EventStorage(0):
        for _ in range(6):
            loss = sum(model(batch).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def _image_with_two_people():
    torch.manual_seed(1)
    image = torch.full((3, 128, 128), 100.0)
    boxes = torch.tensor([[10.0, 20.0, 50.0, 110.0], [70.0, 10.0, 120.0, 120.0]])
    for x0, y0, x1, y1 in boxes.int().tolist():
        image[:, y0:y1, x0:x1] = 200.0
    keypoints = torch.zeros(2, 17, 3)
    for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        keypoints[i, :, 0] = torch.linspace(x0 + 2, x1 - 2, 17)
        keypoints[i, :, 1] = torch.linspace(y0 + 2, y1 - 2, 17)
        keypoints[i, :, 2] = 2
    instances = Instances((128, 128))
    instances.gt_boxes = Boxes(boxes)
    instances.gt_classes = torch.zeros(2, dtype=torch.long)
    instances.gt_keypoints = Keypoints(keypoints)
    return {"image": image, "instances": instances, "height": 128, "width": 128}
