"""GaussianKeypointHead: a light conv stack regressing 2D Gaussian heatmaps."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
from torch import nn

from detectron2.config import configurable
from detectron2.layers import Conv2d, ConvTranspose2d, ShapeSpec, get_norm
from detectron2.modeling import ROI_KEYPOINT_HEAD_REGISTRY

from .base import KeypointHeadBase, flip_test_args, oks_loss_args
from .heatmap_loss import check_loss_name, codec_from_target_cfg, decodable_heatmaps, heatmap_loss


@ROI_KEYPOINT_HEAD_REGISTRY.register()
class GaussianKeypointHead(KeypointHeadBase):
    """3x3 convs, stride-2 transposed convs, a 1x1 predictor of K Gaussian heatmaps.

    Input R x C x S x S pooled features; output R x K x (S * 2^num_upsample)^2
    heatmaps (28 x 28 for 14 x 14 RoIs), trained with a visibility-weighted MSE
    (or focal) loss against Gaussian targets centred at the sub-pixel keypoint,
    decoded with sub-pixel refinement; the score is the heatmap peak.
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        num_keypoints: int,
        codec,
        conv_dims: Sequence[int],
        norm: str = "",
        num_upsample: int = 1,
        loss: str = "mse",
        loss_weight: float = 1.0,
        oks_loss_weight: float = 0.0,
        oks_sigmas: Sequence[float] = (),
        soft_argmax_beta: float = 20.0,
        flip_indices: Optional[Sequence[int]] = None,
    ):
        """
        Args:
            codec: target codec (Gaussian, or one-hot for a cross-entropy variant).
            conv_dims: output channels of each 3x3 conv.
            norm: norm after each conv ("" for none).
            num_upsample: number of stride-2 transposed convs.
            loss: "mse" or "focal" (Gaussian codec only).
        Other arguments: see :class:`KeypointHeadBase`.
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
        check_loss_name(codec, loss)
        self.loss = loss
        channels = input_shape.channels
        convs = []
        for dim in conv_dims:
            convs.append(
                Conv2d(channels, dim, 3, padding=1, bias=not norm, norm=get_norm(norm, dim), activation=nn.ReLU())
            )
            channels = dim
        self.convs = nn.Sequential(*convs)
        ups = []
        for _ in range(num_upsample):
            ups += [ConvTranspose2d(channels, channels, 4, stride=2, padding=1), nn.ReLU()]
        self.upsample = nn.Sequential(*ups)
        self.predictor = Conv2d(channels, num_keypoints, 1)
        init_heatmap_layers(self, [self.predictor], loss)

    @classmethod
    def from_config(cls, cfg, input_shape):
        k = cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS
        head = cfg.MODEL.KPEXT.GAUSSIAN
        target = cfg.MODEL.KPEXT.TARGET
        return {
            "input_shape": input_shape,
            "num_keypoints": k,
            "codec": codec_from_target_cfg(target),
            "conv_dims": head.CONV_DIMS,
            "norm": head.NORM,
            "num_upsample": head.NUM_UPSAMPLE,
            "loss": target.LOSS,
            "loss_weight": target.LOSS_WEIGHT,
            "soft_argmax_beta": cfg.MODEL.KPEXT.SOFT_ARGMAX_BETA,
            **oks_loss_args(cfg, k),
            **flip_test_args(cfg),
        }

    def layers(self, x: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.upsample(self.convs(x)))

    def heatmap_losses(self, stages, keypoints, boxes, num_images) -> Dict[str, torch.Tensor]:
        loss = heatmap_loss(self.codec, self.loss, stages[-1], keypoints, boxes)
        return {"loss_keypoint": loss * self.loss_weight}

    def inference_heatmaps(self, heatmaps: torch.Tensor) -> torch.Tensor:
        return decodable_heatmaps(self.codec, self.loss, heatmaps)


def init_heatmap_layers(module: nn.Module, predictors: Sequence[nn.Module], loss: str) -> None:
    """He init for hidden convs; near-zero heatmap predictors (focal: bias at a 1% prior)."""
    predictor_ids = {id(p) for p in predictors}
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and id(m) not in predictor_ids:
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for predictor in predictors:
        nn.init.normal_(predictor.weight, std=0.001)
        # A sigmoid output starting near 0 keeps the focal loss from exploding on the many negatives.
        nn.init.constant_(predictor.bias, -4.6 if loss == "focal" else 0.0)
