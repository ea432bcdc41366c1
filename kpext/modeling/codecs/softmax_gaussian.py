"""Gaussian-smoothed targets under a spatial softmax: Mask R-CNN's loss with soft labels.

Mask R-CNN trains keypoint heatmaps as a softmax over the H x W cells against a
one-hot cell; Gaussian-heatmap heads (SimpleBaseline, HRNet) regress a Gaussian with
MSE. This codec takes the best of both: the softmax cross-entropy, whose gradients
stay strong (MSE on mostly-zero maps learns slowly from scratch), against a target
*distribution* that is a Gaussian of ``sigma`` cells around the exact sub-pixel
keypoint (no rounding to a cell, unlike the one-hot target).

Decoding needs no blur and no log: at the optimum the logits are the log of the
target up to a constant, ``-d^2 / 2 sigma^2 + c``, an exact quadratic, so one Newton
step on the raw logits' 3 x 3 neighbourhood (the DARK step, without DARK's modulation)
recovers the sub-pixel peak. Where the step is not usable (border peak, no maximum,
step over a cell) the quarter-cell shift is used.

Score: the softmax probability at the peak times ``2 pi sigma^2`` (the inverse of a
perfect target's peak probability), so a confident, target-shaped prediction scores
about 1 and a flat one about ``2 pi sigma^2 / (H W)``.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from ..losses import soft_target_cross_entropy
from .base import LocatingCodec, register_codec
from .gaussian import (
    GaussianCodec,
    GaussianTargets,
    dark_offsets,
    neighbourhood_3x3,
    quarter_offsets,
)
from .geometry import cell_centre_xy, peak_cells


@register_codec
class SoftmaxGaussianCodec(LocatingCodec):
    """Gaussian target distributions, spatial softmax cross-entropy, Newton-step decoding.

    Args:
        sigma: standard deviation of the target Gaussian, in heatmap cells.
    """

    name = "softmax_gaussian"
    losses = ("softmax_ce",)

    def __init__(self, sigma: float = 2.0):
        self._gaussian = GaussianCodec(sigma=sigma, refine="none")  # validates sigma, draws targets
        self.sigma = float(sigma)

    # The Gaussian codec's decoding options: this codec decodes by a Newton step on its logits,
    # so a value other than the default would be silently ignored; it is refused instead.
    GAUSSIAN_ONLY_KEYS = ("REFINE", "DARK_BORDER")

    @classmethod
    def from_config(cls, cfg) -> "SoftmaxGaussianCodec":
        """``MODEL.KPEXT.TARGET``: SIGMA (LOSS must be empty or "softmax_ce"; REFINE and
        DARK_BORDER at their defaults)."""
        cls.loss_from_config(cfg)
        from detectron2.config import get_cfg

        from ...config import add_kpext_config  # the defaults, without a copy of them here

        defaults = get_cfg()
        add_kpext_config(defaults)
        for key in cls.GAUSSIAN_ONLY_KEYS:
            value, default = cfg.MODEL.KPEXT.TARGET[key], defaults.MODEL.KPEXT.TARGET[key]
            if value != default:
                raise ValueError(
                    f"MODEL.KPEXT.TARGET.{key} {value!r} applies to the gaussian codec only; "
                    "softmax_gaussian decodes with a Newton step on its logits: leave it at "
                    f"its default {default!r}"
                )
        return cls(sigma=cfg.MODEL.KPEXT.TARGET.SIGMA)

    def encode(
        self, keypoints: torch.Tensor, boxes: torch.Tensor, size: Tuple[int, int]
    ) -> GaussianTargets:
        """R x K x H x W target distributions (each valid map sums to 1) and R x K weights.

        A keypoint counts when it is labelled (v > 0) and inside the RoI, as for
        :class:`GaussianCodec`; its Gaussian is cut at the map's edge and renormalised.
        """
        targets = self._gaussian.encode(keypoints, boxes, size)
        total = (
            targets.heatmaps.flatten(2)
            .sum(dim=2)
            .clamp(min=torch.finfo(targets.heatmaps.dtype).tiny)
        )
        return GaussianTargets(targets.heatmaps / total[..., None, None], targets.weights)

    def loss(
        self, raw: torch.Tensor, targets: GaussianTargets, normalizer: Optional[float] = None
    ) -> torch.Tensor:
        """Cross-entropy of the spatial softmax of ``raw`` (R x K x H x W logits) against the
        target distributions, summed over valid keypoints and divided by ``normalizer``
        (None: by their number)."""
        return soft_target_cross_entropy(raw, targets.heatmaps, targets.weights > 0, normalizer)

    def locate(self, logits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(R x K x 2 continuous heatmap (x, y), R x K score) of R x K x H x W logits
        (``decode`` maps them into the boxes: :class:`.base.LocatingCodec`)."""
        maps = logits.detach().float()
        r, k, h, w = maps.shape
        if r == 0 or k == 0:
            return maps.new_zeros((r, k, 2)), maps.new_zeros((r, k))
        peak, row, col = peak_cells(maps)
        centre = cell_centre_xy(row, col, maps.dtype)
        window = neighbourhood_3x3(maps, row, col)
        step, ok = dark_offsets(window, row, col, (h, w))
        offset = torch.where(ok[..., None], step, quarter_offsets(window, row, col, (h, w)))
        probability = torch.exp(peak - torch.logsumexp(maps.reshape(r, k, h * w), dim=2))
        return centre + offset, probability * (2 * math.pi * self.sigma**2)
