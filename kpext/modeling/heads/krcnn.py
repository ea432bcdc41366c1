"""KpextKRCNNHead: the Mask R-CNN keypoint head, written in kpext; KRCNNCodecKeypointHead:
the same network with any codec's targets and decoding.

KpextKRCNNHead has the same network and loss as Detectron2's ``KRCNNConvDeconvUpsampleHead``
(parameter names match, so its checkpoints load), with vectorised decoding.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.layers import ConvTranspose2d, ShapeSpec
from detectron2.modeling import ROI_KEYPOINT_HEAD_REGISTRY

from ..codecs import OneHotCodec
from ..codecs.onehot import TRACE_MAX_BOX_SIDE, max_test_box_side
from .base import KeypointHeadBase, common_head_args, init_heatmap_layers
from .codec_head import CodecKeypointHead


class GlobalContext(nn.Module):
    """Adds to every position of R x C x H x W features a learnt function of the whole RoI's
    mean feature (R x C): what a 3x3 conv stack on a 14 x 14 RoI cannot see from one
    position, such as which way the person faces. The linear map starts at zero, so a head
    with the block starts as the one without."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


def add_krcnn_layers(
    head: nn.Module,
    channels: int,
    conv_dims: Sequence[int],
    num_keypoints: int,
    kernel: int,
    global_context: bool = False,
) -> nn.Module:
    """Add Detectron2's keypoint network to ``head``, under its parameter names (so stock
    checkpoints load): ``conv_fcn{i}`` 3x3 convs each followed by ``conv_fcn_relu{i}``, then
    (``global_context``) a :class:`GlobalContext` block ``global_context``, then
    ``score_lowres``, a stride-2 transposed conv to K maps; their names, in order, go to
    ``head.krcnn_layer_names``. Returns ``score_lowres``."""
    names = []
    for idx, dim in enumerate(conv_dims, 1):
        head.add_module(f"conv_fcn{idx}", nn.Conv2d(channels, dim, 3, stride=1, padding=1))
        head.add_module(f"conv_fcn_relu{idx}", nn.ReLU())
        names += [f"conv_fcn{idx}", f"conv_fcn_relu{idx}"]
        channels = dim
    if global_context:
        head.global_context = GlobalContext(channels)
        names.append("global_context")
    head.score_lowres = ConvTranspose2d(
        channels, num_keypoints, kernel, stride=2, padding=kernel // 2 - 1
    )
    head.krcnn_layer_names = tuple(names) + ("score_lowres",)
    return head.score_lowres


def krcnn_network_args(cfg) -> dict:
    """The KRCNN network's constructor arguments from the config, the same for
    :class:`KpextKRCNNHead` and :class:`KRCNNCodecKeypointHead`."""
    return {
        "conv_dims": cfg.MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS,
        "up_scale": cfg.MODEL.KPEXT.KRCNN.UP_SCALE,
        "deconv_kernel": cfg.MODEL.KPEXT.KRCNN.DECONV_KERNEL,
        "global_context": cfg.MODEL.KPEXT.KRCNN.GLOBAL_CONTEXT,
    }


def krcnn_heatmaps(head: nn.Module, x: torch.Tensor, up_scale: int) -> torch.Tensor:
    """R x C x S x S -> R x K x (2 up_scale S) x (2 up_scale S): the layers
    :func:`add_krcnn_layers` added, then bilinear upsampling."""
    for name in head.krcnn_layer_names:
        x = getattr(head, name)(x)
    return F.interpolate(x, scale_factor=up_scale, mode="bilinear", align_corners=False)


@ROI_KEYPOINT_HEAD_REGISTRY.register()
class KpextKRCNNHead(KeypointHeadBase):
    """Convs 3x3 + ReLU, a stride-2 transposed conv to K maps, then bilinear upsampling.

    Input R x C x S x S pooled features; heatmaps R x K x (2*up_scale*S) x (2*up_scale*S)
    (56 x 56 for the usual 14 x 14 pooler); spatial-softmax cross-entropy loss.
    Its codec is always the one-hot codec (Detectron2's targets and loss), so it
    reads none of ``MODEL.KPEXT.TARGET``; its own keys are ``MODEL.KPEXT.KRCNN``.
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        conv_dims: Sequence[int],
        up_scale: int = 2,
        deconv_kernel: int = 4,
        global_context: bool = False,
        decode_window: float = 1.0,
        decode_max_box_side: float = TRACE_MAX_BOX_SIDE,
        **common,
    ):
        """
        Args:
            input_shape: channels of the pooled features.
            conv_dims: output channels of each 3x3 conv.
            up_scale: bilinear upsampling factor after the transposed conv.
            deconv_kernel: kernel size of the stride-2 transposed conv (even).
            global_context: a :class:`GlobalContext` block before the transposed conv.
            decode_window: the one-hot codec's ``window`` (see :class:`OneHotCodec`).
            decode_max_box_side: the one-hot codec's ``max_box_side`` (``INPUT.MAX_SIZE_TEST``).
            common: see :class:`KeypointHeadBase` (K, loss weight and normaliser, OKS loss,
                decoder, facing branch; :func:`common_head_args`); the codec is always one-hot
                and the OKS loss's soft-argmax runs on the logits themselves (beta 1), the
                model's own distribution.
        """
        super().__init__(
            codec=OneHotCodec(decode_window, max_box_side=decode_max_box_side),
            soft_argmax_beta=1.0,
            **common,
        )
        self.up_scale = up_scale
        add_krcnn_layers(
            self,
            input_shape.channels,
            conv_dims,
            self.num_keypoints,
            deconv_kernel,
            global_context,
        )
        for name, param in self.named_parameters():
            if name.startswith(("facing.", "global_context.")):
                continue  # they initialise themselves
            if "bias" in name:
                nn.init.constant_(param, 0)
            else:
                nn.init.kaiming_normal_(param, mode="fan_out", nonlinearity="relu")

    @classmethod
    def from_config(cls, cfg, input_shape):
        return {
            "input_shape": input_shape,
            **krcnn_network_args(cfg),
            "decode_window": cfg.MODEL.KPEXT.DECODE_WINDOW,
            "decode_max_box_side": max_test_box_side(cfg),
            **common_head_args(cfg, input_shape),
        }

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        return krcnn_heatmaps(self, x, self.up_scale)


@ROI_KEYPOINT_HEAD_REGISTRY.register()
class KRCNNCodecKeypointHead(CodecKeypointHead):
    """Detectron2's stock keypoint network with the target and decoder of any codec.

    The network is :class:`KpextKRCNNHead`'s, layer for layer (``conv_fcn*`` 3x3 convs of
    ``MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS``, a stride-2 transposed conv to K maps, bilinear
    upsampling by ``MODEL.KPEXT.KRCNN.UP_SCALE``; 56 x 56 maps for 14 x 14 RoIs); only the
    codec (``MODEL.KPEXT.TARGET``: targets, loss, decoding) and the predictor's initial weights
    (the codec's) differ. So a row of this head against stock measures the target scheme alone.
    With ``TARGET.CODEC onehot`` it is :class:`KpextKRCNNHead`.
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        conv_dims: Sequence[int],
        up_scale: int = 2,
        deconv_kernel: int = 4,
        global_context: bool = False,
        **common,
    ):
        """
        Args:
            input_shape: channels of the pooled features.
            conv_dims: output channels of each 3x3 conv.
            up_scale: bilinear upsampling factor after the transposed conv.
            deconv_kernel: kernel size of the stride-2 transposed conv (even).
            global_context: a :class:`GlobalContext` block before the transposed conv.
            common: see :class:`CodecKeypointHead` (:meth:`~CodecKeypointHead.common_args`).
        """
        super().__init__(**common)
        self.up_scale = up_scale
        predictor = add_krcnn_layers(
            self,
            input_shape.channels,
            conv_dims,
            self.num_keypoints,
            deconv_kernel,
            global_context,
        )
        init_heatmap_layers(self, [predictor], self.codec)

    @classmethod
    def from_config(cls, cfg, input_shape):
        return {
            "input_shape": input_shape,
            **krcnn_network_args(cfg),
            **cls.common_args(cfg, input_shape),
        }

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        return krcnn_heatmaps(self, x, self.up_scale)
