"""RoIAlign on the CPU as a sparse matrix of bilinear weights: kpext's training kernel.

torchvision's CPU ``roi_align`` runs one RoI after another on one core, and its backward is a
serial scatter that walks every channel plane of the feature map (on the demo's training step,
30% of the time). RoIAlign is linear in the features: every output value is a weighted sum of
feature pixels, the weights set by the boxes alone. With the features as rows of channels
(``N*H*W x C``) and ``M`` the ``R*PH*PW x N*H*W`` matrix of those weights,

* forward:  ``output = M @ features``
* backward: ``grad_features = M^T @ grad_output``

``M`` is built for all RoIs at once from per-axis sample weights (each output bin's weights are
the outer product of a row and a column part, torchvision's bilinear weights summed over the
bin's samples) and both products are sparse CSR times dense products, which MKL runs in
parallel with a whole channel vector per non-zero. The result equals
``torchvision.ops.roi_align`` up to float rounding: ``aligned`` True and False, adaptive
(``sampling_ratio`` <= 0: ``ceil(roi size / output size)`` samples per RoI and axis) and fixed
sampling, torchvision's border rules (a sample beyond -1 or the size adds nothing, coordinates
below 0 are clamped, the last row and column collapse), and the input gradient. Boxes get no
gradient (Detectron2's proposals are detached). Boxes of negative size with ``aligned`` True
give zeros (torchvision's CUDA kernel does the same; its CPU kernel fails on them).

:class:`FastROIAlign` is Detectron2's ``ROIAlign`` with this kernel for CPU tensors; CUDA
tensors, tracing and scripting keep torchvision's op (exported graphs keep its ONNX symbol).
:func:`use_fast_cpu_roi_align` puts it into a model's ``ROIPooler``\\ s; ``MODEL.KPEXT.ROI_ALIGN``
("auto": on the CPU) decides in ``KpextTrainer.build_model``.
"""

from __future__ import annotations

import warnings
from typing import List, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from detectron2.config import CfgNode
from detectron2.layers import ROIAlign
from detectron2.modeling.poolers import ROIPooler

__all__ = [
    "ROI_ALIGN_SETTINGS",
    "FastROIAlign",
    "configure_roi_align",
    "roi_align_cpu",
    "use_fast_cpu_roi_align",
]

# MODEL.KPEXT.ROI_ALIGN's values.
ROI_ALIGN_SETTINGS = ("auto", "torchvision")


class _AxisTaps(NamedTuple):
    """The feature rows (or columns) one axis of every output bin reads, with their weights.

    ``index``: R x P x K pixel indices along the axis, always inside the map;
    ``weight``: R x P x K, torchvision's bilinear weights of the bin's samples along this axis,
    summed per pixel (0 for unused taps); ``taps``: R, how many of the K taps RoI r uses.
    """

    index: Tensor
    weight: Tensor
    taps: Tensor


def _sample_positions(start: Tensor, length: Tensor, bins: int, grid: Tensor) -> Tensor:
    """R x P x G sample coordinates along one axis, G = the largest grid (torchvision's order
    of operations, so that the positions are the same floats): ``start + p * bin +
    ((g + 0.5) * bin) / grid``."""
    num_rois, dtype = start.shape[0], start.dtype
    largest = max(int(grid.max()), 1) if num_rois else 1
    bin_size = (length / bins).view(num_rois, 1, 1)
    p = torch.arange(bins, dtype=dtype).view(1, bins, 1)
    g = torch.arange(largest, dtype=dtype).view(1, 1, largest) + 0.5
    divisor = grid.clamp(min=1).to(dtype).view(num_rois, 1, 1)
    return (start.view(num_rois, 1, 1) + p * bin_size) + (g * bin_size) / divisor


def _axis_taps(start: Tensor, length: Tensor, bins: int, grid: Tensor, extent: int) -> _AxisTaps:
    """The taps of one axis for R RoIs (``start``, ``length``: R, in feature pixels; ``grid``:
    R samples per bin; ``extent``: the map's size along the axis).

    Each sample reads two neighbouring pixels. When the samples of a bin are closer than a
    pixel (always with adaptive sampling) they share pixels: their weights are merged into a
    band of consecutive pixels (``grid + 1`` wide instead of ``2 * grid``), which makes the
    matrix smaller; samples far apart (a fixed ratio on a large box) keep two taps each.
    """
    num_rois = start.shape[0]
    pos = _sample_positions(start, length, bins, grid)
    largest = pos.shape[2]
    used = torch.arange(largest).view(1, 1, largest) < grid.view(num_rois, 1, 1)
    # torchvision: a sample with y < -1 or y > H adds nothing (NaN boxes fail both tests).
    keep = used & (pos >= -1) & (pos <= extent)
    pos = pos.clamp(min=0)
    low = pos.to(torch.int64).clamp_(0, extent - 1)  # truncation = floor for pos >= 0
    at_last = low >= extent - 1  # the last row/column: both neighbours are the last pixel
    high = torch.where(at_last, low, low + 1)
    frac = torch.where(at_last, torch.zeros_like(pos), pos - low)
    zero = torch.zeros_like(pos)
    index = torch.stack((low, high), dim=3).view(num_rois, bins, 2 * largest)
    weight = torch.stack(
        (torch.where(keep, 1 - frac, zero), torch.where(keep, frac, zero)), dim=3
    ).view(num_rois, bins, 2 * largest)

    # A bin's samples are monotone along the axis, so its lowest and highest pixels are those
    # of its first and last samples: the band of consecutive pixels it reads starts at `base`.
    last = (grid - 1).clamp(min=0).view(num_rois, 1, 1).expand(num_rois, bins, 1)
    base = torch.minimum(low[:, :, :1], low.gather(2, last))
    top = torch.maximum(high[:, :, :1], high.gather(2, last))
    taps = torch.where(grid > 0, (top - base + 1).amax(dim=(1, 2)), 0)  # R
    width = int(taps.max()) if num_rois else 0
    if width > 2 * largest:  # samples far apart: two taps per sample, repeated pixels allowed
        return _AxisTaps(index, weight, torch.where(grid > 0, 2 * grid, 0))
    width = max(width, 1)
    band = torch.zeros(num_rois, bins, width, dtype=weight.dtype)
    # Unused taps weigh 0: wherever the clamp puts them, they add nothing.
    band.scatter_add_(2, (index - base).clamp_(0, width - 1), weight)
    band_index = (base + torch.arange(width)).clamp_(max=extent - 1)
    return _AxisTaps(band_index, band, taps)


def _ragged_ranges(counts: Tensor) -> Tuple[Tensor, Tensor]:
    """For ``counts`` (n, >= 0): the owner (which of the n) of each of ``counts.sum()``
    entries, and for each owner the index of its first entry (n)."""
    owner = torch.repeat_interleave(counts, output_size=int(counts.sum()))
    return owner, torch.cumsum(counts, 0) - counts


class _Sampling:
    """The sampling matrix ``M`` (``R*PH*PW x N*H*W``, CSR) of one RoIAlign call and the
    products with it; ``M^T`` is built on the first backward only.

    Row ``(r * PH + ph) * PW + pw`` holds the weights of output bin (ph, pw) of RoI r over the
    feature pixels ``(n * H + y) * W + x``.
    """

    def __init__(
        self,
        crow: Tensor,
        col: Tensor,
        value: Tensor,
        row: Tensor,
        feature_shape: Tuple[int, int, int, int],
        output_size: Tuple[int, int],
    ):
        self.feature_shape = feature_shape
        self.output_size = output_size
        self.num_rois = (crow.numel() - 1) // (output_size[0] * output_size[1])
        n, _, h, w = feature_shape
        self.num_pixels = n * h * w
        self.matrix = _csr(crow, col, value, (crow.numel() - 1, self.num_pixels))
        self._col, self._value, self._row = col, value, row
        self._transposed: Optional[Tensor] = None

    def transposed(self) -> Tensor:
        """``M^T`` in CSR: the non-zeros sorted by pixel (``N*H*W x R*PH*PW``)."""
        if self._transposed is None:
            order = torch.argsort(self._col, stable=True)  # the same sums on every run
            counts = torch.bincount(self._col, minlength=self.num_pixels)
            crow = torch.zeros(self.num_pixels + 1, dtype=self._col.dtype)
            torch.cumsum(counts, 0, out=crow[1:])
            self._transposed = _csr(
                crow,
                self._row.index_select(0, order),
                self._value.index_select(0, order),
                (self.num_pixels, self.matrix.shape[0]),
            )
        return self._transposed

    def pool(self, features: Tensor) -> Tensor:
        """``N x C x H x W`` features -> ``R x C x PH x PW`` RoI features."""
        c = features.shape[1]
        if self.num_rois == 0:
            return features.new_zeros(0, c, *self.output_size)
        rows = self.matrix @ _pixel_rows(features)
        return rows.view(self.num_rois, *self.output_size, c).permute(0, 3, 1, 2).contiguous()

    def unpool(self, grad_output: Tensor) -> Tensor:
        """``R x C x PH x PW`` -> ``N x C x H x W``: the transposed product (the gradient)."""
        c = grad_output.shape[1]
        if self.num_rois == 0:
            return grad_output.new_zeros(self.feature_shape)
        rows = grad_output.permute(0, 2, 3, 1).reshape(-1, c)
        return _from_pixel_rows(self.transposed() @ rows, self.feature_shape)


def _csr(crow: Tensor, col: Tensor, value: Tensor, size: Tuple[int, int]) -> Tensor:
    """A sparse CSR tensor, without torch's once-per-process "beta" warning (the indices are
    valid by construction: every pixel index is clamped into the map)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, value, size, check_invariants=False)


def _pixel_rows(features: Tensor) -> Tensor:
    """``N x C x H x W`` -> ``N*H*W x C`` (channels last): one row per pixel, so that each
    non-zero of ``M`` reads a contiguous channel vector."""
    n, c, h, w = features.shape
    if features.is_contiguous(memory_format=torch.channels_last):
        return features.permute(0, 2, 3, 1).reshape(n * h * w, c)
    features = features.contiguous()
    rows = features.new_empty(n, h * w, c)
    # One 2-D transpose per image: torch copies those in cache blocks, while the 4-D permuted
    # copy reads with a stride of H*W floats, a power of two on FPN maps (16 KB at 64 x 64),
    # and was 10x slower (7 ms against 0.7 ms for 4 x 64 x 64 x 64).
    for i in range(n):
        rows[i].copy_(features[i].view(c, h * w).t())
    return rows.view(n * h * w, c)


def _from_pixel_rows(rows: Tensor, feature_shape: Tuple[int, int, int, int]) -> Tensor:
    """``N*H*W x C`` -> contiguous ``N x C x H x W`` (per image, as :func:`_pixel_rows`)."""
    n, c, h, w = feature_shape
    out = rows.new_empty(n, c, h, w)
    per_image = rows.view(n, h * w, c)
    for i in range(n):
        out[i].view(c, h * w).copy_(per_image[i].t())
    return out


def _sampling_matrix(
    rois: Tensor,
    feature_shape: Tuple[int, int, int, int],
    output_size: Tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> _Sampling:
    """``M`` for ``rois`` (R x 5: batch index, x0, y0, x1, y1, in the compute dtype), as
    torchvision's kernel computes each RoI's samples."""
    n, _, height, width = feature_shape
    ph, pw = output_size
    offset = 0.5 if aligned else 0.0
    x0 = rois[:, 1] * spatial_scale - offset
    y0 = rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale - offset - x0
    roi_h = rois[:, 4] * spatial_scale - offset - y0
    if not aligned:  # torchvision forces malformed RoIs to 1 x 1
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    if sampling_ratio > 0:
        grid_h = torch.full(roi_h.shape, sampling_ratio, dtype=torch.int64)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(roi_h / ph).to(torch.int64)
        grid_w = torch.ceil(roi_w / pw).to(torch.int64)
    count = (grid_h * grid_w).clamp(min=1).to(rois.dtype)  # the average over the bin's samples
    ys = _axis_taps(y0, roi_h, ph, grid_h, height)
    xs = _axis_taps(x0, roi_w, pw, grid_w, width)

    batch = rois[:, 0].to(torch.int64)
    # Row part of every pixel index and weight (the 1/count folded in): R x PH x Ky.
    y_pixel = batch.view(-1, 1, 1) * (height * width) + ys.index * width
    y_weight = ys.weight / count.view(-1, 1, 1)
    entries = _dense_entries if _little_padding(ys.taps, xs.taps) else _ragged_entries
    crow, col, value, row = entries(y_pixel, y_weight, ys.taps, xs.index, xs.weight, xs.taps)
    largest_index = max(col.numel(), n * height * width, crow.numel())
    index_dtype = torch.int32 if largest_index < 2**31 else torch.int64  # MKL's own width
    return _Sampling(
        crow.to(index_dtype),
        col.to(index_dtype),
        value,
        row.to(index_dtype),
        feature_shape,
        output_size,
    )


def _little_padding(taps_y: Tensor, taps_x: Tensor) -> bool:
    """Whether giving every RoI the largest number of taps wastes under a quarter of ``M``."""
    if taps_y.numel() == 0:
        return True
    used = int((taps_y * taps_x).sum())
    return 4 * used >= 3 * int(taps_y.max()) * int(taps_x.max()) * taps_y.numel()


EntryTuple = Tuple[Tensor, Tensor, Tensor, Tensor]


def _dense_entries(
    y_pixel: Tensor,
    y_weight: Tensor,
    taps_y: Tensor,
    x_pixel: Tensor,
    x_weight: Tensor,
    taps_x: Tensor,
) -> EntryTuple:
    """CSR arrays (crow, col, value, row) with Ky x Kx entries in every bin (unused ones weigh
    0): plain broadcasting, for RoIs of similar sizes."""
    r, ph, ky = y_pixel.shape
    pw, kx = x_pixel.shape[1:]
    col = y_pixel.view(r, ph, 1, ky, 1) + x_pixel.view(r, 1, pw, 1, kx)
    value = y_weight.view(r, ph, 1, ky, 1) * x_weight.view(r, 1, pw, 1, kx)
    bins = r * ph * pw
    crow = torch.arange(bins + 1) * (ky * kx)
    row = torch.arange(bins).view(bins, 1).expand(bins, ky * kx).reshape(-1)
    return crow, col.reshape(-1), value.reshape(-1), row


def _ragged_entries(
    y_pixel: Tensor,
    y_weight: Tensor,
    taps_y: Tensor,
    x_pixel: Tensor,
    x_weight: Tensor,
    taps_x: Tensor,
) -> EntryTuple:
    """CSR arrays with exactly ``taps_y[r] * taps_x[r]`` entries in each bin of RoI r: for RoIs
    of mixed sizes (one large RoI would otherwise pad every bin to its taps)."""
    r, ph, ky = y_pixel.shape
    pw, kx = x_pixel.shape[1:]
    roi = torch.arange(r).view(r, 1, 1)
    # Per bin (r, ph, pw): where its RoI's row taps and column taps start in the flat tables.
    bin_y = ((roi * ph + torch.arange(ph).view(1, ph, 1)) * ky).expand(r, ph, pw).reshape(-1)
    bin_x = ((roi * pw + torch.arange(pw).view(1, 1, pw)) * kx).expand(r, ph, pw).reshape(-1)
    per_bin = ph * pw
    # (bin, row tap) pairs, then (bin, row tap, column tap) entries, bin-major as CSR needs.
    # The k-th entry of an owner whose entries start at `first` is at arange - first + k.
    bin_of_pair, first = _ragged_ranges(taps_y.repeat_interleave(per_bin))
    y_flat = (bin_y - first).index_select(0, bin_of_pair) + torch.arange(bin_of_pair.numel())
    pair_pixel = y_pixel.reshape(-1).index_select(0, y_flat)
    pair_weight = y_weight.reshape(-1).index_select(0, y_flat)
    pair_of_entry, first = _ragged_ranges(
        taps_x.repeat_interleave(per_bin).index_select(0, bin_of_pair)
    )
    x_start = bin_x.index_select(0, bin_of_pair) - first
    x_flat = x_start.index_select(0, pair_of_entry) + torch.arange(pair_of_entry.numel())
    col = pair_pixel.index_select(0, pair_of_entry) + x_pixel.reshape(-1).index_select(0, x_flat)
    value = pair_weight.index_select(0, pair_of_entry) * x_weight.reshape(-1).index_select(
        0, x_flat
    )
    row = bin_of_pair.index_select(0, pair_of_entry)
    crow = torch.zeros(r * per_bin + 1, dtype=torch.int64)
    torch.cumsum((taps_y * taps_x).repeat_interleave(per_bin), 0, out=crow[1:])
    return crow, col, value, row


class _RoIAlign(torch.autograd.Function):
    """features (N x C x H x W) -> RoI features (R x C x PH x PW), given the sampling."""

    @staticmethod
    def forward(ctx, features: Tensor, sampling: _Sampling) -> Tensor:
        ctx.sampling = sampling
        return sampling.pool(features)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        return _RoIAlignTransposed.apply(grad_output, ctx.sampling), None


class _RoIAlignTransposed(torch.autograd.Function):
    """The backward as a function of its own (linear in the gradient: its gradient is the
    forward), so that double backward works too."""

    @staticmethod
    def forward(ctx, grad_output: Tensor, sampling: _Sampling) -> Tensor:
        ctx.sampling = sampling
        return sampling.unpool(grad_output)

    @staticmethod
    def backward(ctx, grad_grad: Tensor):
        return _RoIAlign.apply(grad_grad, ctx.sampling), None


def _rois_tensor(boxes: Union[Tensor, List[Tensor]]) -> Tensor:
    """R x 5 (batch index, x0, y0, x1, y1) from torchvision's two box formats."""
    if isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(f"rois must be R x 5 (batch index, x0, y0, x1, y1), got {boxes.shape}")
        return boxes
    rois = [torch.cat([torch.full_like(b[:, :1], i), b], dim=1) for i, b in enumerate(boxes)]
    return torch.cat(rois) if rois else torch.zeros(0, 5)


def roi_align_cpu(
    input: Tensor,
    boxes: Union[Tensor, List[Tensor]],
    output_size: Union[int, Tuple[int, int]],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """``torchvision.ops.roi_align`` on CPU tensors, as a sparse matrix product.

    Args:
        input: N x C x H x W features (float32, float64; bfloat16 and float16 are computed in
            float32 and returned in their dtype, as torchvision does under autocast).
        boxes: R x 5 (batch index, x0, y0, x1, y1) in input image coordinates, or a list of
            N tensors of K_i x 4. They get no gradient.
        output_size, spatial_scale, sampling_ratio, aligned: as torchvision's.

    Returns:
        R x C x PH x PW, in the input's dtype.
    """
    ph, pw = _pair(output_size)
    compute_dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
    # Boxes stay in the compute dtype even for bf16 features (Detectron2's ROIAlign would round
    # them to bf16 first: a box edge of 200 px moves by up to 0.5 px).
    rois = _rois_tensor(boxes).detach().to(compute_dtype)
    n, c, h, w = input.shape
    if rois.shape[0] and not bool(torch.isfinite(rois).all()):
        raise ValueError("roi_align_cpu: boxes must be finite")
    batch = rois[:, 0]
    if rois.shape[0] and (bool((batch < 0).any()) or bool((batch >= n).any())):
        raise ValueError(f"roi_align_cpu: batch indices must lie in [0, {n}), the input's N")
    if input.numel() == 0 or ph * pw == 0:  # zeros, as torchvision (sum() keeps the graph)
        return input.new_zeros(rois.shape[0], c, ph, pw) + input.sum()
    # No autocast inside: the sparse products must not run in bf16.
    with torch.autocast("cpu", enabled=False):
        sampling = _sampling_matrix(
            rois, (n, c, h, w), (ph, pw), spatial_scale, sampling_ratio, aligned
        )
        output = _RoIAlign.apply(input.to(compute_dtype), sampling)
    return output.to(input.dtype)


def _cpu_kernel_applies(input: Tensor) -> bool:
    """Whether :class:`FastROIAlign` uses kpext's kernel: eager CPU tensors only (CUDA keeps
    torchvision's kernel; traced, scripted and compiled graphs keep torchvision's op)."""
    if not isinstance(input, Tensor) or input.device.type != "cpu" or input.is_quantized:
        return False
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return not (is_compiling is not None and is_compiling())


class FastROIAlign(ROIAlign):
    """Detectron2's :class:`~detectron2.layers.ROIAlign` (same arguments, same outputs) with
    :func:`roi_align_cpu` for CPU tensors and torchvision's ``roi_align`` otherwise."""

    @classmethod
    def from_roi_align(cls, module: ROIAlign) -> "FastROIAlign":
        """The same pooling as ``module``."""
        return cls(module.output_size, module.spatial_scale, module.sampling_ratio, module.aligned)

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        """
        Args:
            input: N x C x H x W features.
            rois: R x 5 boxes: batch index, then x0, y0, x1, y1.

        Returns:
            R x C x output_size.
        """
        if not _cpu_kernel_applies(input):
            return super().forward(input, rois)
        assert rois.dim() == 2 and rois.size(1) == 5
        return roi_align_cpu(
            input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )


def use_fast_cpu_roi_align(model: nn.Module) -> int:
    """Replace every Detectron2 ``ROIAlign`` (pooler types ROIAlign and ROIAlignV2) in the
    ``level_poolers`` of the model's ``ROIPooler``\\ s by a :class:`FastROIAlign` with the same
    parameters. Other pooler types (ROIPool, ROIAlignRotated) and subclasses are left alone.

    Returns:
        How many level poolers were replaced.
    """
    replaced = 0
    for pooler in [m for m in model.modules() if isinstance(m, ROIPooler)]:
        for level, module in enumerate(pooler.level_poolers):
            if type(module) is ROIAlign:  # exact type: a subclass may compute something else
                pooler.level_poolers[level] = FastROIAlign.from_roi_align(module)
                replaced += 1
    return replaced


def configure_roi_align(model: nn.Module, cfg: CfgNode) -> int:
    """Apply ``MODEL.KPEXT.ROI_ALIGN`` to a model built from ``cfg``: "auto" swaps in
    :class:`FastROIAlign` when ``MODEL.DEVICE`` is the CPU, "torchvision" leaves the model alone.

    Returns:
        How many level poolers now use kpext's CPU kernel.
    """
    setting = cfg.MODEL.KPEXT.ROI_ALIGN
    if setting not in ROI_ALIGN_SETTINGS:
        raise ValueError(
            f"MODEL.KPEXT.ROI_ALIGN must be one of {ROI_ALIGN_SETTINGS}, got {setting!r}"
        )
    if setting == "torchvision" or torch.device(cfg.MODEL.DEVICE).type != "cpu":
        return 0
    return use_fast_cpu_roi_align(model)
