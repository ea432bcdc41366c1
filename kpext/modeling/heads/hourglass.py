"""HourglassKeypointHead: stacked hourglasses with intermediate supervision (Newell et al. 2016)."""

from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.layers import Conv2d, ConvTranspose2d, ShapeSpec, get_norm
from detectron2.modeling import ROI_KEYPOINT_HEAD_REGISTRY

from .base import init_heatmap_layers
from .codec_head import CodecKeypointHead


def hourglass_norm(norm: str, channels: int) -> Optional[nn.Module]:
    """Detectron2's ``get_norm``, except that "GN" uses the largest number of groups up to 32
    that divides ``channels``: thin hourglasses (bottlenecks have half the channels) stay valid."""
    if norm == "GN":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    return get_norm(norm, channels)


class Residual(nn.Module):
    """Bottleneck residual block (1x1, 3x3, 1x1 convs), pre-activation."""

    def __init__(self, in_channels: int, out_channels: int, norm: str):
        super().__init__()
        mid = out_channels // 2
        self.body = nn.Sequential(
            hourglass_norm(norm, in_channels) or nn.Identity(), nn.ReLU(),
            nn.Conv2d(in_channels, mid, 1),
            hourglass_norm(norm, mid) or nn.Identity(), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, padding=1),
            hourglass_norm(norm, mid) or nn.Identity(), nn.ReLU(),
            nn.Conv2d(mid, out_channels, 1),
        )  # fmt: skip
        self.skip = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    """Max-pool down ``depth`` times, nearest-neighbour up, a residual skip at each scale.

    C x H x W -> C x H x W for any H, W (odd sizes are restored by the upsampling).
    """

    def __init__(self, depth: int, channels: int, norm: str):
        super().__init__()
        self.skip = Residual(channels, channels, norm)
        self.down = Residual(channels, channels, norm)
        self.inner = (
            Hourglass(depth - 1, channels, norm)
            if depth > 1
            else Residual(channels, channels, norm)
        )
        self.up = Residual(channels, channels, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2, ceil_mode=True))))
        return self.skip(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


@ROI_KEYPOINT_HEAD_REGISTRY.register()
class HourglassKeypointHead(CodecKeypointHead):
    """Stacked hourglasses on RoI features, a heatmap prediction after every stack.

    Input R x C x S x S pooled features, upsampled ``num_upsample`` times by
    stride-2 transposed convs; each stack predicts R x K x H x W heatmaps
    (1x1 conv), supervised with its own loss weight; between stacks the
    prediction is mapped back by a 1x1 conv and added to the features. The
    last stack's heatmaps are decoded.
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        num_stacks: int = 2,
        depth: int = 2,
        channels: int = 128,
        norm: str = "BN",
        num_upsample: int = 1,
        **common,
    ):
        """
        Args:
            num_stacks: number of hourglass modules.
            depth: poolings per hourglass.
            channels: feature channels.
            norm: norm inside residual blocks ("" for none).
            num_upsample: stride-2 transposed convs before the first stack.
            common: see :class:`CodecKeypointHead`; ``stage_loss_weights`` needs
                ``num_stacks`` values.
        """
        super().__init__(**common)
        if len(self.stage_loss_weights) != num_stacks:
            raise ValueError(
                "MODEL.KPEXT.HOURGLASS.STACK_LOSS_WEIGHTS has "
                f"{len(self.stage_loss_weights)} values "
                f"for {num_stacks} stacks"
            )
        k = self.num_keypoints
        stem = [
            Conv2d(
                input_shape.channels,
                channels,
                3,
                padding=1,
                norm=hourglass_norm(norm, channels),
                activation=nn.ReLU(),
            )
        ]
        for _ in range(num_upsample):
            stem += [ConvTranspose2d(channels, channels, 4, stride=2, padding=1), nn.ReLU()]
        self.stem = nn.Sequential(*stem)
        self.hourglasses = nn.ModuleList(
            Hourglass(depth, channels, norm) for _ in range(num_stacks)
        )
        self.features = nn.ModuleList(
            nn.Sequential(
                Residual(channels, channels, norm),
                Conv2d(
                    channels, channels, 1, norm=hourglass_norm(norm, channels), activation=nn.ReLU()
                ),
            )
            for _ in range(num_stacks)
        )
        self.predictors = nn.ModuleList(nn.Conv2d(channels, k, 1) for _ in range(num_stacks))
        self.merge_features = nn.ModuleList(
            nn.Conv2d(channels, channels, 1) for _ in range(num_stacks - 1)
        )
        self.merge_predictions = nn.ModuleList(
            nn.Conv2d(k, channels, 1) for _ in range(num_stacks - 1)
        )
        init_heatmap_layers(self, list(self.predictors), self.codec)

    @classmethod
    def from_config(cls, cfg, input_shape):
        head = cfg.MODEL.KPEXT.HOURGLASS
        return {
            "input_shape": input_shape,
            "num_stacks": head.NUM_STACKS,
            "depth": head.DEPTH,
            "channels": head.CHANNELS,
            "norm": head.NORM,
            "num_upsample": head.NUM_UPSAMPLE,
            **cls.common_args(cfg, input_shape),
            "stage_loss_weights": head.STACK_LOSS_WEIGHTS,
        }

    def layers(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stem(x)
        predictions = []
        for i, (hourglass, features, predictor) in enumerate(
            zip(self.hourglasses, self.features, self.predictors)
        ):
            feat = features(hourglass(x))
            pred = predictor(feat)
            predictions.append(pred)
            if i < len(self.merge_features):
                x = x + self.merge_features[i](feat) + self.merge_predictions[i](pred)
        return predictions
