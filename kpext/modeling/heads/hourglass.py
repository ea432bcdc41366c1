"""HourglassKeypointHead: stacked hourglasses with intermediate supervision (Newell et al. 2016)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable
from detectron2.layers import Conv2d, ConvTranspose2d, ShapeSpec, get_norm
from detectron2.modeling import ROI_KEYPOINT_HEAD_REGISTRY

from .base import KeypointHeadBase, flip_test_args, oks_loss_args
from .gaussian import init_heatmap_layers
from .heatmap_loss import check_loss_name, codec_from_target_cfg, decodable_heatmaps, heatmap_loss


class Residual(nn.Module):
    """Bottleneck residual block (1x1, 3x3, 1x1 convs), pre-activation."""

    def __init__(self, in_channels: int, out_channels: int, norm: str):
        super().__init__()
        mid = out_channels // 2
        self.body = nn.Sequential(
            get_norm(norm, in_channels) or nn.Identity(), nn.ReLU(),
            nn.Conv2d(in_channels, mid, 1),
            get_norm(norm, mid) or nn.Identity(), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, padding=1),
            get_norm(norm, mid) or nn.Identity(), nn.ReLU(),
            nn.Conv2d(mid, out_channels, 1),
        )  # fmt: skip
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

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
        self.inner = Hourglass(depth - 1, channels, norm) if depth > 1 else Residual(channels, channels, norm)
        self.up = Residual(channels, channels, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2, ceil_mode=True))))
        return self.skip(x) + F.interpolate(low, size=x.shape[-2:], mode="nearest")


@ROI_KEYPOINT_HEAD_REGISTRY.register()
class HourglassKeypointHead(KeypointHeadBase):
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
        num_keypoints: int,
        codec,
        num_stacks: int = 2,
        depth: int = 2,
        channels: int = 128,
        norm: str = "BN",
        num_upsample: int = 1,
        stack_loss_weights: Sequence[float] = (1.0, 1.0),
        loss: str = "mse",
        loss_weight: float = 1.0,
        oks_loss_weight: float = 0.0,
        oks_sigmas: Sequence[float] = (),
        soft_argmax_beta: float = 20.0,
        flip_indices: Optional[Sequence[int]] = None,
    ):
        """
        Args:
            num_stacks: number of hourglass modules.
            depth: poolings per hourglass.
            channels: feature channels.
            norm: norm inside residual blocks ("" for none).
            num_upsample: stride-2 transposed convs before the first stack.
            stack_loss_weights: loss weight per stack (``num_stacks`` values).
        Other arguments: see :class:`GaussianKeypointHead`.
        """
        super().__init__(
            num_keypoints=num_keypoints,
            codec=codec,
            loss_weight=loss_weight,
            oks_loss_weight=oks_loss_weight,
            oks_sigmas=oks_sigmas,
            soft_argmax_beta=soft_argmax_beta,
            flip_indices=flip_indices,
        )
        if len(stack_loss_weights) != num_stacks:
            raise ValueError(
                f"MODEL.KPEXT.HOURGLASS.STACK_LOSS_WEIGHTS has {len(stack_loss_weights)} values "
                f"for {num_stacks} stacks"
            )
        check_loss_name(codec, loss)
        self.loss = loss
        self.stack_loss_weights = list(stack_loss_weights)
        stem = [Conv2d(input_shape.channels, channels, 3, padding=1, norm=get_norm(norm, channels), activation=nn.ReLU())]
        for _ in range(num_upsample):
            stem += [ConvTranspose2d(channels, channels, 4, stride=2, padding=1), nn.ReLU()]
        self.stem = nn.Sequential(*stem)
        self.hourglasses = nn.ModuleList(Hourglass(depth, channels, norm) for _ in range(num_stacks))
        self.features = nn.ModuleList(
            nn.Sequential(
                Residual(channels, channels, norm),
                Conv2d(channels, channels, 1, norm=get_norm(norm, channels), activation=nn.ReLU()),
            )
            for _ in range(num_stacks)
        )
        self.predictors = nn.ModuleList(nn.Conv2d(channels, num_keypoints, 1) for _ in range(num_stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(num_stacks - 1))
        self.merge_predictions = nn.ModuleList(nn.Conv2d(num_keypoints, channels, 1) for _ in range(num_stacks - 1))
        init_heatmap_layers(self, list(self.predictors), loss)

    @classmethod
    def from_config(cls, cfg, input_shape):
        k = cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS
        head = cfg.MODEL.KPEXT.HOURGLASS
        target = cfg.MODEL.KPEXT.TARGET
        return {
            "input_shape": input_shape,
            "num_keypoints": k,
            "codec": codec_from_target_cfg(target),
            "num_stacks": head.NUM_STACKS,
            "depth": head.DEPTH,
            "channels": head.CHANNELS,
            "norm": head.NORM,
            "num_upsample": head.NUM_UPSAMPLE,
            "stack_loss_weights": head.STACK_LOSS_WEIGHTS,
            "loss": target.LOSS,
            "loss_weight": target.LOSS_WEIGHT,
            "soft_argmax_beta": cfg.MODEL.KPEXT.SOFT_ARGMAX_BETA,
            **oks_loss_args(cfg, k),
            **flip_test_args(cfg),
        }

    def layers(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stem(x)
        predictions = []
        for i, (hourglass, features, predictor) in enumerate(zip(self.hourglasses, self.features, self.predictors)):
            feat = features(hourglass(x))
            pred = predictor(feat)
            predictions.append(pred)
            if i < len(self.merge_features):
                x = x + self.merge_features[i](feat) + self.merge_predictions[i](pred)
        return predictions

    def heatmap_losses(self, stages, keypoints, boxes, num_images) -> Dict[str, torch.Tensor]:
        losses = {}
        last = len(stages) - 1
        for i, (heatmaps, weight) in enumerate(zip(stages, self.stack_loss_weights)):
            name = "loss_keypoint" if i == last else f"loss_keypoint_stack{i}"
            losses[name] = heatmap_loss(self.codec, self.loss, heatmaps, keypoints, boxes) * weight * self.loss_weight
        return losses

    def inference_heatmaps(self, heatmaps: torch.Tensor) -> torch.Tensor:
        return decodable_heatmaps(self.codec, self.loss, heatmaps)
