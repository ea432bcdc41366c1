"""Backbones sized for small CPU budgets: ResNet-18/34 + FPN at any width.

Detectron2's ``build_resnet_backbone`` refuses ``MODEL.RESNETS.RES2_OUT_CHANNELS != 64`` for
ResNet-18/34 (basic blocks). Trained from scratch on a 2-core CPU, the backbone costs most of an
iteration, and the synthetic people need far less width than ImageNet: half the width costs about
a quarter of the FLOPs. ``build_kpext_resnet_fpn_backbone`` builds the same ResNet-18/34 + FPN as
Detectron2's ``build_resnet_fpn_backbone`` with the stem and stage widths read from
``MODEL.RESNETS.STEM_OUT_CHANNELS`` and ``MODEL.RESNETS.RES2_OUT_CHANNELS`` (stages double it).
Deeper ResNets are handed to Detectron2's builder unchanged.
"""

from __future__ import annotations

from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone import FPN, ResNet
from detectron2.modeling.backbone.fpn import LastLevelMaxPool
from detectron2.modeling.backbone.resnet import BasicBlock, BasicStem, build_resnet_backbone

__all__ = ["build_basic_resnet", "build_kpext_resnet_fpn_backbone"]

BASIC_BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


def build_basic_resnet(cfg, input_shape: ShapeSpec) -> ResNet:
    """ResNet-18/34 whose stem and res2 widths come from the config (res3-5 double each stage).

    Raises ``ValueError`` for the options Detectron2 also refuses for basic blocks (groups,
    deformable convolutions, dilated res5), naming the key to change.
    """
    r = cfg.MODEL.RESNETS
    if r.DEPTH not in BASIC_BLOCKS_PER_STAGE:
        raise ValueError(
            f"build_basic_resnet builds ResNet-18/34, not MODEL.RESNETS.DEPTH={r.DEPTH}"
        )
    if r.NUM_GROUPS != 1 or r.RES5_DILATION != 1 or any(r.DEFORM_ON_PER_STAGE):
        raise ValueError(
            "ResNet-18/34 basic blocks support neither groups, res5 dilation nor deformable "
            "convolutions: set MODEL.RESNETS.NUM_GROUPS=1, RES5_DILATION=1 and "
            "DEFORM_ON_PER_STAGE=[False]*4"
        )
    stem = BasicStem(
        in_channels=input_shape.channels, out_channels=r.STEM_OUT_CHANNELS, norm=r.NORM
    )
    in_channels, out_channels = r.STEM_OUT_CHANNELS, r.RES2_OUT_CHANNELS
    stages = []
    for idx, num_blocks in enumerate(BASIC_BLOCKS_PER_STAGE[r.DEPTH]):
        first_stride = 1 if idx == 0 else 2
        stages.append(
            ResNet.make_stage(
                block_class=BasicBlock,
                num_blocks=num_blocks,
                stride_per_block=[first_stride] + [1] * (num_blocks - 1),
                in_channels=in_channels,
                out_channels=out_channels,
                norm=r.NORM,
            )
        )
        in_channels, out_channels = out_channels, out_channels * 2
    return ResNet(stem, stages, out_features=r.OUT_FEATURES, freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT)


@BACKBONE_REGISTRY.register()
def build_kpext_resnet_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """Detectron2's ResNet + FPN, with ResNet-18/34 at the width the config asks for.

    Select it with ``MODEL.BACKBONE.NAME: "build_kpext_resnet_fpn_backbone"``. At
    ``RES2_OUT_CHANNELS: 64`` and ``STEM_OUT_CHANNELS: 64`` it builds the same network, parameter
    for parameter, as ``build_resnet_fpn_backbone``.
    """
    if cfg.MODEL.RESNETS.DEPTH in BASIC_BLOCKS_PER_STAGE:
        bottom_up = build_basic_resnet(cfg, input_shape)
    else:
        bottom_up = build_resnet_backbone(cfg, input_shape)
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
