"""Gaussian-heatmap keypoint codec (SimpleBaseline / HRNet targets, DARK decoding).

Training target: for each RoI and keypoint, a 2D Gaussian of peak 1 and standard
deviation ``sigma`` heatmap cells, centred at the keypoint's exact sub-pixel
position in continuous heatmap coordinates (cell ``(i, j)`` has its centre at
``(j + 0.5, i + 0.5)``, see :mod:`.geometry`). Nothing is rounded, so the
targets carry no quantisation bias; the maximum cell value is below 1 unless the
keypoint sits exactly on a cell centre.

Decoding: argmax cell, then a sub-pixel refinement

* ``"dark"``: Distribution-Aware coordinate Representation of Keypoints
  (Zhang et al., CVPR 2020). The heatmap is modulated by a Gaussian blur of the
  target's ``sigma`` (zero padding, then rescaled so that its maximum equals the
  original maximum, as in the paper's code), its log is taken (clamped at
  ``1e-10``), and one Newton step ``-H^-1 g`` is taken from the argmax cell, with
  the gradient ``g`` and Hessian ``H`` from central differences on the 3 x 3
  neighbourhood. For a Gaussian the log is a quadratic, so the step is exact.
  Fallback to ``"quarter"`` where the step is not trustworthy: the argmax is on
  the heatmap border (no 3 x 3 neighbourhood), ``H`` is not negative definite
  (``det <= 0`` or ``trace >= 0``: not a maximum), or the step exceeds one cell
  along either axis (the maximum lies elsewhere).
* ``"quarter"``: the classic SimpleBaseline / Hourglass shift of a quarter cell
  towards the higher of the two neighbours, per axis; no shift along an axis in
  which the peak is on the border (one neighbour is missing) or both neighbours
  are equal.
* ``"none"``: the argmax cell centre.

The score is the heatmap's value at the argmax cell (the unblurred map).

Loss: ``"mse"`` (visibility-weighted squared error summed over the cells, on the
raw output) or ``"focal"`` (CenterNet's, on logits: the decoded heatmaps are then
their sigmoid).

Near the border: the paper's zero-padded blur loses the part of the Gaussian
that lies outside the heatmap and pulls the modulated peak inwards (measured on
exact targets, sigma 2: 0.4-0.8 cell of error 1-3 cells from the border, worse
than no refinement; replicate, reflect and normalised-convolution padding were
worse still). So within ``dark_border`` cells of the border the Newton step is
taken on the log of the raw map instead (a Gaussian target is sampled, not
truncated, so its log is still exactly quadratic there), with each neighbour
floored at the least a Gaussian of this width can give it
(:func:`log_with_neighbour_floor`). The band is 3 cells: on a trained Gaussian
head's predicted heatmaps (kpext_synth_val, 100 images, same weights) it gave
+0.30 keypoint AP [95% CI +0.10, +0.57] over the earlier rule (raw map wherever
the blur kernel reached the border, 6 cells at sigma 1.5, where the raw map's
noise costs 3-5x the paper's error), +0.24 for 2 cells and +0.21 [-0.01, +0.49]
for the paper's recipe (blur everywhere).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..losses import heatmap_focal_loss, weighted_heatmap_mse
from .base import LocatingCodec, check_loss, register_codec
from .geometry import cell_centre_xy, cell_centres, image_to_heatmap, peak_cells

REFINEMENTS = ("dark", "quarter", "none")
# Floor of the modulated heatmap before the log (the DARK paper's value).
LOG_FLOOR = 1e-10
# Initial weight std of a Gaussian-MSE heatmap predictor (GaussianCodec.predictor_std).
# 0.0013: the first gradient reaching the first conv is 0.4-0.5x stock's with the light head's
# 1x1 predictor and 2-2.5x with stock's 4x4 deconv (measured 2026-12-03; it grows about as
# std^2 above, 100x at 0.01, the output noise's gradient swamping the target's).
PREDICTOR_STD = 0.0013


@dataclass
class GaussianTargets:
    """Gaussian heatmaps R x K x H x W and per-keypoint weights R x K (float, 0 or 1)."""

    heatmaps: torch.Tensor
    weights: torch.Tensor

    @property
    def valid(self) -> torch.Tensor:
        """R x K bool: the keypoints with a target."""
        return self.weights > 0


def default_blur_kernel(sigma: float) -> int:
    """Odd kernel size covering +-3 sigma: ``2 * ceil(3 * sigma) + 1`` (13 for sigma 2).

    Wider than the DARK paper's 11 for sigma 2. A truncated kernel makes the
    blurred Gaussian slightly non-Gaussian (its log no longer exactly quadratic);
    measured on exact targets with sigma 2, the worst interior error is 1e-4 cell
    with +-3 sigma and 2-3e-4 cell with +-2 sigma (kernel 9), 0.018 vs 0.024 cell
    at 2-3 sigma from the border. The blur costs little either way.
    """
    return 2 * int(math.ceil(3 * sigma)) + 1


@register_codec
class GaussianCodec(LocatingCodec):
    """Encode keypoints as Gaussian heatmaps; decode heatmaps with DARK refinement.

    Args:
        sigma: standard deviation of the target Gaussians, in heatmap cells.
        refine: ``"dark"``, ``"quarter"`` or ``"none"`` (see the module docstring).
        blur_kernel: odd size of the DARK modulation kernel; None picks
            :func:`default_blur_kernel`. Unused unless ``refine == "dark"``.
        loss: ``"mse"`` or ``"focal"`` (see the module docstring).
        dark_border: peaks fewer than this many cells from the border are refined on
            the raw map (see the module docstring); None: wherever the blur kernel
            reaches past the border (the earlier rule).
    """

    name = "gaussian"
    losses = ("mse", "focal")

    def __init__(
        self,
        sigma: float = 2.0,
        refine: str = "dark",
        blur_kernel: Optional[int] = None,
        loss: str = "mse",
        dark_border: Optional[int] = 3,
    ):
        _check_sigma(sigma)
        if refine not in REFINEMENTS:
            raise ValueError(f"refine must be one of {REFINEMENTS}, got {refine!r}")
        if blur_kernel is not None:
            _check_blur_kernel(blur_kernel)
        check_loss(self, loss)
        self.sigma = float(sigma)
        self.refine = refine
        self.blur_kernel = default_blur_kernel(sigma) if blur_kernel is None else blur_kernel
        self.loss_name = loss
        if dark_border is not None and (not isinstance(dark_border, int) or dark_border < 0):
            raise ValueError(f"dark_border must be None or an int >= 0, got {dark_border!r}")
        # Peaks this close to the border (in cells) are refined on the raw map, not the blurred one.
        self.dark_border = self.blur_kernel // 2 + 1 if dark_border is None else dark_border

    @classmethod
    def from_config(cls, cfg) -> "GaussianCodec":
        """``MODEL.KPEXT.TARGET``: SIGMA, REFINE, LOSS, DARK_BORDER (-1: the blur's reach)."""
        target = cfg.MODEL.KPEXT.TARGET
        border = None if target.DARK_BORDER < 0 else int(target.DARK_BORDER)
        return cls(
            sigma=target.SIGMA,
            refine=target.REFINE,
            loss=cls.loss_from_config(cfg),
            dark_border=border,
        )

    @property
    def predictor_bias(self) -> float:
        # Focal: a sigmoid output starting near 0 (1%) keeps the loss from exploding on the
        # many negatives.
        return -4.6 if self.loss_name == "focal" else 0.0

    @property
    def predictor_std(self) -> float:
        # A regressed heatmap starts flat (near 0, its background), but not so flat that no
        # gradient passes back to the convs: at PREDICTOR_STD the first gradient reaching the
        # first conv is within 3x of the stock head's (tests/modeling/test_init_gradients.py).
        return PREDICTOR_STD

    def loss(
        self, raw: torch.Tensor, targets: GaussianTargets, normalizer: Optional[float] = None
    ) -> torch.Tensor:
        """Visibility-weighted MSE summed over the H x W cells, or the focal loss on logits;
        see :class:`~kpext.modeling.codecs.base.KeypointCodec` for the arguments."""
        if self.loss_name == "focal":
            return heatmap_focal_loss(raw, targets.heatmaps, targets.weights, normalizer=normalizer)
        # Summed over the H*W cells rather than averaged: the same scale as the cross-entropy
        # and focal losses whatever the heatmap size (at the start, with the output near 0,
        # the sum of a target Gaussian's squares: about pi*sigma^2).
        h, w = raw.shape[-2:]
        return weighted_heatmap_mse(raw, targets.heatmaps, targets.weights, normalizer) * (h * w)

    @property
    def double_move_cost(self) -> Optional[float]:
        """None: the person decoder leaves doubles where they are. A regressed Gaussian map's
        values (or the focal loss's probabilities) are no log-likelihoods, so a second mode's
        drop says little: splitting doubles cost the hourglass 4.4 AP on gt boxes at 1600
        iterations, and 1.0 even with moves restricted to second modes within 1 nat of the
        maps' log (head benchmark, seed 0, 2026-12-07)."""
        return None

    def activation(self, raw: torch.Tensor) -> torch.Tensor:
        """Sigmoid of the focal loss's logits; the MSE's output is a heatmap already."""
        return raw.sigmoid() if self.loss_name == "focal" else raw

    def encode(
        self, keypoints: torch.Tensor, boxes: torch.Tensor, size: Tuple[int, int]
    ) -> GaussianTargets:
        """Args:
            keypoints: R x K x 3 (x, y, v) in continuous image coordinates.
            boxes: R x 4 RoIs (x0, y0, x1, y1).
            size: (H, W) of the heatmap.
        Returns:
            :class:`GaussianTargets`: heatmaps R x K x H x W and weights R x K, both
            in the keypoints' (floating) dtype. Weight 1 where ``v > 0`` and the
            keypoint's continuous heatmap coordinate lies in ``[0, W) x [0, H)``;
            maps of weight 0 are all zero.
        """
        h, w = size
        dtype = keypoints.dtype if keypoints.is_floating_point() else torch.float32
        keypoints = keypoints.to(dtype)
        r, k = keypoints.shape[:2]
        if r == 0:
            return GaussianTargets(keypoints.new_zeros((0, k, h, w)), keypoints.new_zeros((0, k)))
        uv = image_to_heatmap(keypoints[..., :2], boxes.to(dtype), size)
        u, v = uv[..., 0], uv[..., 1]
        inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
        valid = inside & (keypoints[..., 2] > 0)
        # Separable: exp(-(dx^2 + dy^2) / 2s^2) = exp(-dx^2 / 2s^2) * exp(-dy^2 / 2s^2).
        gx = _gaussian_profile(u, w, self.sigma)  # R x K x W
        gy = _gaussian_profile(v, h, self.sigma)  # R x K x H
        heatmaps = gy[..., :, None] * gx[..., None, :]
        # where, not multiply: degenerate boxes give NaN coordinates, and NaN * 0 is NaN.
        heatmaps = torch.where(valid[..., None, None], heatmaps, torch.zeros_like(heatmaps))
        return GaussianTargets(heatmaps, valid.to(dtype))

    def locate(self, heatmaps: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Peak positions in continuous heatmap coordinates (``decode`` maps them into the
        boxes: :class:`~kpext.modeling.codecs.base.LocatingCodec`).

        Args:
            heatmaps: R x K x H x W predicted heatmaps (not logits: the values are read as
                Gaussian heights, and the DARK log needs them > 0).
        Returns:
            (R x K x 2 continuous heatmap (x, y), R x K peak value: the heatmap's value at
            the argmax cell). Computed in float32 for float16/bfloat16 input, else in the
            input's dtype.
        """
        maps = _computation_dtype(heatmaps.detach())
        r, k, h, w = maps.shape
        if r == 0 or k == 0:
            return maps.new_zeros((r, k, 2)), maps.new_zeros((r, k))
        score, row, col = peak_cells(maps)
        centre = cell_centre_xy(row, col, maps.dtype)
        if self.refine == "none":
            return centre, score
        offset = quarter_offsets(neighbourhood_3x3(maps, row, col), row, col, (h, w))
        if self.refine == "dark":
            # Only the 3 x 3 windows need the log; the blurred maximum needs the whole map.
            blurred = blurred_window(maps, row, col, self.sigma, self.blur_kernel)
            # The Newton step is invariant to the map's scale: rescaling by the window's maximum
            # instead of the whole blurred map's changes nothing but where the log floor bites.
            window = log_rescaled(blurred, score, blurred.flatten(2).amax(dim=2))
            raw_window = log_with_neighbour_floor(
                neighbourhood_3x3(maps, row, col), score, self.sigma
            )
            near_border = within_cells_of_border(row, col, (h, w), self.dark_border)
            window = torch.where(near_border[..., None, None], raw_window, window)
            step, ok = dark_offsets(window, row, col, (h, w))
            offset = torch.where(ok[..., None], step, offset)
        return centre + offset, score


def _check_sigma(sigma) -> None:
    real = isinstance(sigma, (int, float)) and not isinstance(sigma, bool)
    if not (real and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0 (heatmap cells), got {sigma!r}")


def _check_blur_kernel(size) -> None:
    integer = isinstance(size, int) and not isinstance(size, bool)
    if not (integer and size >= 1 and size % 2 == 1):
        raise ValueError(f"blur_kernel must be a positive odd int or None, got {size!r}")


def _gaussian_profile(centre: torch.Tensor, length: int, sigma: float) -> torch.Tensor:
    """exp(-(c - centre)^2 / 2 sigma^2) at the cell centres c = j + 0.5: R x K -> R x K x length."""
    cells = cell_centres(length, centre)
    return torch.exp(-((cells - centre[..., None]) ** 2) / (2 * sigma**2))


def _computation_dtype(maps: torch.Tensor) -> torch.Tensor:
    """Half-precision maps are too coarse for log differences; decode them in float32."""
    if maps.dtype in (torch.float16, torch.bfloat16) or not maps.is_floating_point():
        return maps.float()
    return maps


def neighbourhood_3x3(maps: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """Values around each peak, for all RoIs and keypoints at once.

    Args:
        maps: R x K x H x W.
        row, col: R x K peak cell indices (long).
    Returns:
        R x K x 3 x 3 with ``[..., 1 + dy, 1 + dx]`` the value at ``(row + dy, col + dx)``.
        Indices are clamped into the map, so entries beyond the border repeat the
        border: meaningless, callers must mask border peaks.
    """
    r, k, h, w = maps.shape
    shifts = torch.arange(-1, 2, device=maps.device)
    rows = (row[..., None, None] + shifts[:, None]).clamp(0, h - 1)  # R x K x 3 x 1
    cols = (col[..., None, None] + shifts[None, :]).clamp(0, w - 1)  # R x K x 1 x 3
    index = (rows * w + cols).reshape(r, k, 9)
    return torch.gather(maps.reshape(r, k, h * w), 2, index).reshape(r, k, 3, 3)


def quarter_offsets(
    window: torch.Tensor, row: torch.Tensor, col: torch.Tensor, size: Tuple[int, int]
) -> torch.Tensor:
    """Quarter-cell shift towards the higher neighbour (SimpleBaseline / Hourglass).

    Args:
        window: R x K x 3 x 3 raw values around the peaks (:func:`neighbourhood_3x3`).
        row, col: R x K peak cell indices.
        size: (H, W).
    Returns:
        R x K x 2 (dx, dy) in {-0.25, 0, 0.25}; 0 along an axis where the peak
        is on the border.
    """
    h, w = size
    sx = torch.sign(window[..., 1, 2] - window[..., 1, 0])
    sy = torch.sign(window[..., 2, 1] - window[..., 0, 1])
    sx = torch.where((col >= 1) & (col <= w - 2), sx, torch.zeros_like(sx))
    sy = torch.where((row >= 1) & (row <= h - 2), sy, torch.zeros_like(sy))
    return 0.25 * torch.stack([sx, sy], dim=2)


@functools.lru_cache(maxsize=32)
def window_blur_kernel(
    sigma: float, kernel_size: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """3 x (kernel_size + 2) matrix: row ``a`` holds the normalised Gaussian taps centred
    on patch index ``a + kernel_size // 2`` (cached: built once per setting)."""
    radius = kernel_size // 2
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    norm = torch.exp(-(taps**2) / (2 * sigma**2)).sum()
    offset = torch.arange(kernel_size + 2, dtype=torch.float64)[None, :] - (
        torch.arange(3, dtype=torch.float64)[:, None] + radius
    )
    matrix = torch.exp(-(offset**2) / (2 * sigma**2)) / norm
    matrix = torch.where(offset.abs() <= radius, matrix, torch.zeros_like(matrix))
    return matrix.to(dtype=dtype, device=device)


def blurred_window(
    maps: torch.Tensor, row: torch.Tensor, col: torch.Tensor, sigma: float, kernel_size: int
) -> torch.Tensor:
    """Zero-padded Gaussian blur of each map, evaluated at the 3 x 3 cells around its peak.

    Only the (kernel_size + 2)^2 patch around each peak is read, so the cost does
    not grow with the heatmap size (blurring whole maps took most of the decode time).

    Args:
        maps: R x K x H x W; row, col: R x K peak cell indices (long).
    Returns:
        R x K x 3 x 3, ``[..., 1 + dy, 1 + dx]`` the blurred value at ``(row + dy, col + dx)``.
    """
    r, k, h, w = maps.shape
    radius = kernel_size // 2
    n = kernel_size + 2
    # Zero padding by radius + 1 makes patch index 0 land on cell row - 1 - radius.
    padded = F.pad(maps, (radius + 1,) * 4)
    wp = w + 2 * (radius + 1)
    offsets = torch.arange(n, device=maps.device)
    rows = row[..., None] + offsets
    cols = col[..., None] + offsets
    index = (rows[..., :, None] * wp + cols[..., None, :]).reshape(r, k, n * n)
    patch = torch.gather(padded.reshape(r, k, -1), 2, index).reshape(r, k, n, n)
    kernel = window_blur_kernel(float(sigma), kernel_size, maps.dtype, maps.device)
    return kernel @ patch @ kernel.T


# Largest squared distance (cells^2) from a Gaussian's centre to each cell of the 3 x 3
# window around the argmax cell: the centre lies within half a cell of the argmax cell's
# centre, so an axis neighbour is at most (1.5^2 + 0.5^2) away, a diagonal one 2 x 1.5^2.
_WINDOW_MAX_SQUARED_DISTANCE = ((4.5, 2.5, 4.5), (2.5, 0.0, 2.5), (4.5, 2.5, 4.5))


@functools.lru_cache(maxsize=32)
def window_max_squared_distance(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``_WINDOW_MAX_SQUARED_DISTANCE`` as a 3 x 3 tensor on ``device``, cached: built from the
    Python table, it would be copied from the host at every decode."""
    return torch.tensor(_WINDOW_MAX_SQUARED_DISTANCE, dtype=dtype, device=device)


def log_with_neighbour_floor(
    window: torch.Tensor, peak: torch.Tensor, sigma: float
) -> torch.Tensor:
    """``log`` of a raw 3 x 3 window, each value first raised to the lowest that cell can
    hold around the argmax of a ``sigma`` Gaussian: ``peak * exp(-d_max^2 / (2 sigma^2))``.

    Regression heads output small negative or near-zero values around a peak; the log
    of those (or a fixed ``1e-10`` floor) makes a huge gradient that throws the Newton
    step across the cell (a peak 0.5 with neighbours 0.4 and -0.01 moved by +0.49 cell
    with the fixed floor, +0.14 with this one). Values no Gaussian of this width can
    produce carry no information about the sub-cell position; exact Gaussians are
    never changed.

    Args:
        window: R x K x 3 x 3 raw values around the peaks; peak: R x K maxima.
    """
    distance2 = window_max_squared_distance(window.dtype, window.device)
    ratio = torch.exp(-distance2 / (2 * sigma**2))
    floor = peak.clamp(min=LOG_FLOOR)[..., None, None] * ratio
    return torch.log(torch.maximum(window, floor))


def within_cells_of_border(
    row: torch.Tensor, col: torch.Tensor, size: Tuple[int, int], cells: int
) -> torch.Tensor:
    """R x K bool: the peak cell lies fewer than ``cells`` cells from the map's edge."""
    h, w = size
    return (row < cells) | (col < cells) | (row >= h - cells) | (col >= w - cells)


def log_rescaled(
    window: torch.Tensor, peak: torch.Tensor, blurred_peak: torch.Tensor
) -> torch.Tensor:
    """DARK's modulated log ``log(max(b * max(m) / max(b), 1e-10))`` on a neighbourhood.

    Args:
        window: R x K x 3 x 3 blurred values ``b`` around the peaks.
        peak: R x K maximum of each raw map ``m``.
        blurred_peak: R x K maximum of the blurred values around each peak.
    Returns:
        R x K x 3 x 3. Maps whose maximum is <= 0 have nothing to refine: they
        become the constant ``log(1e-10)``, whose Hessian is singular.
    """
    scale = peak.clamp(min=0) / blurred_peak.clamp(min=torch.finfo(window.dtype).tiny)
    return torch.log((window * scale[..., None, None]).clamp(min=LOG_FLOOR))


def dark_offsets(
    window: torch.Tensor, row: torch.Tensor, col: torch.Tensor, size: Tuple[int, int]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Newton step ``-H^-1 g`` from the peak cell on the log-modulated map.

    Args:
        window: R x K x 3 x 3 log-modulated values around the peaks.
        row, col: R x K peak cell indices.
        size: (H, W).
    Returns:
        (R x K x 2 (dx, dy) offsets, R x K bool: where the step is usable — interior
        peak, negative definite Hessian, step within one cell along each axis).
        Offsets where unusable are 0.
    """
    h, w = size
    gx = (window[..., 1, 2] - window[..., 1, 0]) / 2
    gy = (window[..., 2, 1] - window[..., 0, 1]) / 2
    hxx = window[..., 1, 2] - 2 * window[..., 1, 1] + window[..., 1, 0]
    hyy = window[..., 2, 1] - 2 * window[..., 1, 1] + window[..., 0, 1]
    hxy = (window[..., 2, 2] - window[..., 2, 0] - window[..., 0, 2] + window[..., 0, 0]) / 4
    det = hxx * hyy - hxy * hxy
    interior = (col >= 1) & (col <= w - 2) & (row >= 1) & (row <= h - 2)
    maximum = (det > 0) & (hxx + hyy < 0)
    safe_det = torch.where(maximum, det, torch.ones_like(det))
    # Inverse of the 2 x 2 Hessian [[hxx, hxy], [hxy, hyy]] by its adjugate.
    dx = -(hyy * gx - hxy * gy) / safe_det
    dy = -(hxx * gy - hxy * gx) / safe_det
    ok = interior & maximum & (dx.abs() <= 1) & (dy.abs() <= 1)
    step = torch.stack([dx, dy], dim=2)
    return torch.where(ok[..., None], step, torch.zeros_like(step)), ok
