"""SimCCKeypointHead: 1-D coordinate classification (SimCC, RTMPose's head) inside the RoI head.

SimCC (Li et al., ECCV 2022; RTMPose, 2023) classifies each keypoint's x and y separately, into
bins along each axis, with Gaussian-smoothed labels, instead of scoring every cell of a 2-D map.
Here the network predicts, per RoI and keypoint, W x-logits and H y-logits from the keypoint's
flattened feature map (a layer shared by all keypoints, as RTMPose's), and hands the codec their
sum, the separable R x K x H x W logits ``l(x, y) = a(x) + b(y)``.

Why that is SimCC with no codec of its own: a spatial softmax of separable logits is the
product of the two 1-D softmaxes, and a 2-D Gaussian target is the product of two 1-D
Gaussians, so the ``softmax_gaussian`` codec's cross-entropy on these maps is the sum of the
two axes' cross-entropies against Gaussian-smoothed 1-D labels (SimCC's loss, up to the labels'
entropy), and its Newton step at the peak is a 1-D step per axis. The 2-D maps keep every
decoder of kpext working unchanged: the flip test, person-level left/right decoding (the maps
are log-likelihoods up to a constant), export. ``tests/modeling/test_simcc.py`` checks the
equivalence against 1-D cross-entropies computed apart.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec
from detectron2.modeling import ROI_KEYPOINT_HEAD_REGISTRY

from .base import conv_stack, init_heatmap_layers
from .codec_head import CodecKeypointHead


@ROI_KEYPOINT_HEAD_REGISTRY.register()
class SimCCKeypointHead(CodecKeypointHead):
    """3x3 convs, a 1x1 conv to K channels, then per keypoint its flattened S x S map through a
    shared hidden layer to ``map_size`` x-logits and ``map_size`` y-logits.

    Input R x C x S x S pooled features; output R x K x M x M separable logits (M =
    ``map_size``; 56, Mask R-CNN's map, by default). Meant for the ``softmax_gaussian`` codec
    (SimCC with Gaussian label smoothing) or ``onehot`` (one-hot 1-D labels); the configs in
    ``configs/*/keypoint_rcnn_*_simcc.yaml`` set it.
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        conv_dims: Sequence[int],
        norm: str = "",
        hidden_dim: int = 256,
        map_size: int = 56,
        **common,
    ):
        """
        Args:
            conv_dims: output channels of each 3x3 conv on the pooled features.
            norm: norm after each conv ("" for none).
            hidden_dim: width of the hidden layer shared by all keypoints.
            map_size: bins per axis (the side of the separable maps the codec reads).
            common: see :class:`CodecKeypointHead` (:meth:`~CodecKeypointHead.common_args`).
        """
        super().__init__(**common)
        if map_size < 2:
            raise ValueError(f"MODEL.KPEXT.SIMCC.MAP_SIZE must be at least 2, got {map_size}")
        if not input_shape.height or not input_shape.width:
            raise ValueError(
                "SimCCKeypointHead needs the pooled RoI size (MODEL.ROI_KEYPOINT_HEAD."
                f"POOLER_RESOLUTION) in its input shape, got {input_shape}"
            )
        self.convs, channels = conv_stack(input_shape.channels, conv_dims, norm)
        self.keypoint_maps = Conv2d(channels, self.num_keypoints, 1)
        area = input_shape.height * input_shape.width
        self.hidden = nn.Sequential(nn.Linear(area, hidden_dim), nn.ReLU())
        self.x_logits = nn.Linear(hidden_dim, map_size)
        self.y_logits = nn.Linear(hidden_dim, map_size)
        self.map_size = map_size
        init_heatmap_layers(self, [], self.codec)
        nn.init.kaiming_normal_(self.hidden[0].weight, nonlinearity="relu")
        nn.init.zeros_(self.hidden[0].bias)
        for predictor in (self.x_logits, self.y_logits):
            # Small logits at the start: both axes' softmaxes near uniform, like stock's maps.
            nn.init.normal_(predictor.weight, std=0.01)
            nn.init.zeros_(predictor.bias)

    @classmethod
    def from_config(cls, cfg, input_shape):
        head = cfg.MODEL.KPEXT.SIMCC
        return {
            "input_shape": input_shape,
            "conv_dims": head.CONV_DIMS,
            "norm": head.NORM,
            "hidden_dim": head.HIDDEN_DIM,
            "map_size": head.MAP_SIZE,
            **cls.common_args(cfg, input_shape),
        }

    def axis_logits(self, x: torch.Tensor):
        """R x C x S x S features -> (R x K x M x-logits, R x K x M y-logits)."""
        maps = self.keypoint_maps(self.convs(x))  # R x K x S x S
        hidden = self.hidden(maps.flatten(2))  # R x K x hidden
        return self.x_logits(hidden), self.y_logits(hidden)

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        """R x C x S x S features -> R x K x M x M separable logits ``y[..., :, None] +
        x[..., None, :]``."""
        x_logits, y_logits = self.axis_logits(x)
        return y_logits[..., :, None] + x_logits[..., None, :]
