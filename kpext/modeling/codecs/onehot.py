"""One-hot keypoint codec: the target scheme of the Mask R-CNN keypoint head.

Training target: for each RoI and keypoint, the index of the heatmap cell that
contains the keypoint, trained with a cross-entropy over the ``H*W`` cells
(``"cross_entropy"``, the codec's only loss); the head's output is decoded as is
(logits).

Decoding reproduces Detectron2's ``heatmaps_to_keypoints`` (bicubic upsampling of
each RoI's logits to the box's size in pixels, argmax, softmax score normalised
over the heatmap) without its Python loop and without upsampling whole maps:
the bicubic map is only evaluated at the output pixels within ``window`` heatmap
cells of the low-resolution peak, for all RoIs and keypoints at once
(``grid_sample`` uses the same cubic kernel and border clamping as
``interpolate``). The bicubic maximum lies within one cell of the low-resolution
maximum except when a second, almost equal mode overshoots more; there the
result can differ from Detectron2's by picking the other mode; so can a box a
few pixels wide, whose few output pixels may all miss the peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ...geometry import cell_centre, cell_index
from ..losses import spatial_softmax_cross_entropy
from .base import KeypointCodec, check_loss, register_codec
from .geometry import image_to_heatmap

# Longest box side (pixels) a TorchScript-traced model decodes exactly: Detectron2's
# largest default test size. Tracing makes the search window this large for every box.
TRACE_MAX_BOX_SIDE = 1344


@dataclass
class OneHotTargets:
    """Cell indices and validity, R x K each (``index = row * W + col``)."""

    index: torch.Tensor
    valid: torch.Tensor


@register_codec
class OneHotCodec(KeypointCodec):
    """Encode keypoints as heatmap cell indices; decode logits like Detectron2.

    Args:
        window: the bicubic maximum is searched at box (output pixel) resolution
            within this many heatmap cells, plus half an output pixel, of the
            heatmap's argmax cell (Detectron2 searches the whole box).
        loss: ``"cross_entropy"``, the only one.
        max_box_side: the longest box side (pixels) decoded exactly off the CPU, where the
            search window is sized for it instead of for the largest box at hand (reading
            that size from the device would stall it); Detectron2 clips boxes to the
            network's input, at most ``INPUT.MAX_SIZE_TEST`` long. On the CPU, the window
            is sized for the boxes at hand; the results are the same either way.
    """

    name = "onehot"
    losses = ("cross_entropy",)

    def __init__(
        self,
        window: float = 1.0,
        loss: str = "cross_entropy",
        max_box_side: float = TRACE_MAX_BOX_SIDE,
    ):
        check_loss(self, loss)
        self.window = float(window)
        self.max_box_side = float(max_box_side)

    @classmethod
    def from_config(cls, cfg) -> "OneHotCodec":
        """``MODEL.KPEXT.DECODE_WINDOW``, ``INPUT.MAX_SIZE_TEST`` (the longest box side), and
        ``MODEL.KPEXT.TARGET.LOSS`` checked."""
        return cls(
            window=cfg.MODEL.KPEXT.DECODE_WINDOW,
            loss=cls.loss_from_config(cfg),
            max_box_side=max_test_box_side(cfg),
        )

    def loss(
        self, raw: torch.Tensor, targets: OneHotTargets, normalizer: Optional[float] = None
    ) -> torch.Tensor:
        """Spatial softmax cross-entropy of the R x K x H x W logits (Mask R-CNN's keypoint loss);
        see :class:`~kpext.modeling.codecs.base.KeypointCodec` for the arguments."""
        return spatial_softmax_cross_entropy(raw, targets.index, targets.valid, normalizer)

    def encode(
        self, keypoints: torch.Tensor, boxes: torch.Tensor, size: Tuple[int, int]
    ) -> OneHotTargets:
        """Args:
            keypoints: R x K x 3 (x, y, v) in continuous image coordinates.
            boxes: R x 4 RoIs (x0, y0, x1, y1).
            size: (H, W) of the heatmap.
        Returns:
            :class:`OneHotTargets` with R x K index (long) and valid (bool).
        """
        h, w = size
        if boxes.numel() == 0:
            empty = keypoints.new_zeros(keypoints.shape[:2])
            return OneHotTargets(empty.long(), empty.bool())
        uv = image_to_heatmap(keypoints[..., :2], boxes, size)
        col = uv[..., 0].floor().long()
        row = uv[..., 1].floor().long()
        # A keypoint exactly on the far box edge belongs to the last cell, not outside.
        # (torch.where, not a boolean-mask assignment, which finds the cells on the host.)
        col = torch.where(keypoints[..., 0] == boxes[:, None, 2], torch.full_like(col, w - 1), col)
        row = torch.where(keypoints[..., 1] == boxes[:, None, 3], torch.full_like(row, h - 1), row)
        inside = (col >= 0) & (row >= 0) & (col < w) & (row < h)
        valid = inside & (keypoints[..., 2] > 0)
        index = torch.where(valid, row * w + col, torch.zeros_like(col))
        return OneHotTargets(index, valid)

    def decode(self, logits: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Args:
            logits: R x K x H x W heatmap logits.
            boxes: R x 4 boxes (x0, y0, x1, y1) in image coordinates.
        Returns:
            R x K x 3 (x, y, score) in continuous image coordinates; the score is
            Detectron2's: the bicubic peak's softmax weight over the H x W cells.
        """
        logits = (
            logits.detach().float()
        )  # half-precision heatmaps would round box-scale coordinates
        boxes = boxes.detach().to(logits.dtype)
        r, k, h, w = logits.shape
        if r == 0:
            return logits.new_zeros((0, k, 3))
        widths = (boxes[:, 2] - boxes[:, 0]).clamp(min=1)
        heights = (boxes[:, 3] - boxes[:, 1]).clamp(min=1)
        out_w, out_h = widths.ceil(), heights.ceil()

        flat = logits.reshape(r, k, h * w)
        peak = flat.argmax(dim=2)
        peak_col, peak_row = (
            (peak % w).to(logits.dtype),
            torch.div(peak, w, rounding_mode="floor").to(logits.dtype),
        )
        cols, col_mask = _output_window(peak_col, out_w, w, self.window, self.max_box_side)
        rows, row_mask = _output_window(peak_row, out_h, h, self.window, self.max_box_side)

        values = _sample_bicubic(logits, rows, cols, out_h, out_w)  # R x K x Ly x Lx
        mask = row_mask[..., :, None] & col_mask[..., None, :]
        values = values.masked_fill(~mask, float("-inf"))
        best_value, best = values.flatten(2).max(dim=2)
        lx = cols.shape[-1]
        best_col = torch.gather(cols, 2, (best % lx)[..., None])[..., 0]
        best_row = torch.gather(rows, 2, torch.div(best, lx, rounding_mode="floor")[..., None])[
            ..., 0
        ]

        x = cell_centre(best_col) * (widths / out_w)[:, None] + boxes[:, None, 0]
        y = cell_centre(best_row) * (heights / out_h)[:, None] + boxes[:, None, 1]
        score = torch.exp(best_value - torch.logsumexp(flat, dim=2))
        return torch.stack([x, y, score], dim=2)


def max_test_box_side(cfg) -> float:
    """The longest side a predicted box can have: Detectron2 clips boxes to the resized test
    image, whose long side is at most ``INPUT.MAX_SIZE_TEST`` (and at least
    ``TRACE_MAX_BOX_SIDE`` is kept, the traced bound)."""
    return float(max(cfg.INPUT.MAX_SIZE_TEST, TRACE_MAX_BOX_SIDE))


def window_length_from_boxes(device: torch.device) -> bool:
    """Size the search window for the boxes at hand (read on the host) only where the
    tensors are on the host already; on an accelerator that read would be a sync."""
    return device.type == "cpu"


def _output_window(
    peak: torch.Tensor,
    out_size: torch.Tensor,
    in_size: int,
    radius: float,
    max_box_side: float = TRACE_MAX_BOX_SIDE,
):
    """Output pixel indices whose source position lies near ``peak``.

    The window spans ``radius`` heatmap cells around the peak plus half an output
    pixel's spacing, so that small boxes (output coarser than the heatmap) still
    include the output pixel nearest to the continuous maximum.

    Args:
        peak: R x K low-resolution peak index (float).
        out_size: R output size in pixels (ceil of the box side).
        in_size: heatmap side length.
        max_box_side: the bound on ``out_size`` used where the boxes are not read
            (:func:`window_length_from_boxes`).
    Returns:
        (R x K x L indices as float, R x K x L bool mask of real entries), L the
        largest window over all RoIs.
    """
    scale = (out_size / in_size)[:, None]
    reach = radius + 0.5 / scale
    # Source position of output pixel i is (i + 0.5) / scale - 0.5 (align_corners=False).
    first = torch.ceil(cell_index(cell_centre(peak - reach) * scale)).clamp(min=0)
    last = torch.minimum(
        torch.floor(cell_index(cell_centre(peak + reach) * scale)), out_size[:, None] - 1
    )
    if torch.jit.is_tracing():
        # A trace freezes this length: size it for the largest box a traced model may see.
        length = int(math.ceil(2 * radius * TRACE_MAX_BOX_SIDE / in_size + 1)) + 2
    elif window_length_from_boxes(peak.device):
        length = int(math.ceil(float((2 * reach * scale).max()))) + 2
    else:
        # 2 * reach * scale = 2 * radius * out_size / in_size + 1, out_size <= max_box_side.
        # Extra entries past ``last`` are masked: the maximum found is the same.
        length = int(math.ceil(2 * radius * max_box_side / in_size + 1)) + 2
    offsets = torch.arange(length, device=peak.device, dtype=peak.dtype)
    index = first[..., None] + offsets
    mask = index <= last[..., None]
    return index, mask


def _sample_bicubic(
    logits: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    out_h: torch.Tensor,
    out_w: torch.Tensor,
) -> torch.Tensor:
    """Values of ``interpolate(logits, (out_h, out_w), mode="bicubic")`` at given pixels.

    Args:
        logits: R x K x H x W.
        rows: R x K x Ly output row indices; cols: R x K x Lx output column indices.
        out_h, out_w: R output sizes.
    Returns:
        R x K x Ly x Lx.
    """
    r, k, h, w = logits.shape
    # Normalised grid coordinate of output pixel i of n pixels: 2 * (i + 0.5) / n - 1.
    gx = 2 * cell_centre(cols) / out_w[:, None, None] - 1
    gy = 2 * cell_centre(rows) / out_h[:, None, None] - 1
    ly, lx = rows.shape[-1], cols.shape[-1]
    grid = torch.stack(
        [gx[..., None, :].expand(r, k, ly, lx), gy[..., :, None].expand(r, k, ly, lx)], dim=-1
    )
    sampled = F.grid_sample(
        logits.reshape(r * k, 1, h, w),
        grid.reshape(r * k, ly, lx, 2),
        mode="bicubic",
        padding_mode="border",
        align_corners=False,
    )
    return sampled.reshape(r, k, ly, lx)
