"""GaussianKeypointHead: a light conv stack regressing 2D Gaussian heatmaps."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.layers import Conv2d, ConvTranspose2d, ShapeSpec
from detectron2.modeling import ROI_KEYPOINT_HEAD_REGISTRY

from .base import conv_stack, init_heatmap_layers
from .codec_head import CodecKeypointHead


@ROI_KEYPOINT_HEAD_REGISTRY.register()
class GaussianKeypointHead(CodecKeypointHead):
    """3x3 convs, stride-2 transposed convs, a 1x1 predictor of K heatmaps, optional
    bilinear upsampling.

    Input R x C x S x S pooled features; output R x K x (S * 2^num_upsample * up_scale)^2
    heatmaps (28 x 28 for 14 x 14 RoIs by default). With the default codec (``MODEL.KPEXT.TARGET``),
    trained with a visibility-weighted MSE (or focal) loss against Gaussian targets
    centred at the sub-pixel keypoint, decoded with sub-pixel refinement; the score
    is the heatmap peak.
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        conv_dims: Sequence[int],
        norm: str = "",
        num_upsample: int = 1,
        up_scale: int = 1,
        **common,
    ):
        """
        Args:
            conv_dims: output channels of each 3x3 conv.
            norm: norm after each conv ("" for none).
            num_upsample: number of stride-2 transposed convs.
            up_scale: bilinear upsampling factor of the predicted maps (1: none); a finer
                grid for the codec at the cost of an interpolation, not of convolutions.
            common: see :class:`CodecKeypointHead` (:meth:`~CodecKeypointHead.common_args`).
        """
        super().__init__(**common)
        self.convs, channels = conv_stack(input_shape.channels, conv_dims, norm)
        ups = []
        for _ in range(num_upsample):
            ups += [ConvTranspose2d(channels, channels, 4, stride=2, padding=1), nn.ReLU()]
        self.upsample = nn.Sequential(*ups)
        self.predictor = Conv2d(channels, self.num_keypoints, 1)
        self.up_scale = up_scale
        init_heatmap_layers(self, [self.predictor], self.codec)

    @classmethod
    def from_config(cls, cfg, input_shape):
        head = cfg.MODEL.KPEXT.GAUSSIAN
        return {
            "input_shape": input_shape,
            "conv_dims": head.CONV_DIMS,
            "norm": head.NORM,
            "num_upsample": head.NUM_UPSAMPLE,
            "up_scale": head.UP_SCALE,
            **cls.common_args(cfg, input_shape),
        }

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.predictor(self.upsample(self.convs(x)))
        if self.up_scale == 1:
            return maps
        return F.interpolate(maps, scale_factor=self.up_scale, mode="bilinear", align_corners=False)
