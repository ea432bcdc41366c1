"""Person-level left/right decoding: one side assignment for the whole body.

Decoded keypoint by keypoint, a head unsure which side is which puts some left/right pairs one
way and others the other way, or both points of a pair on the same limb (the pose error
breakdown counts these as inversions). A person seen from the front has all its left points on
one side of the image and all its right points on the other; seen from behind, the other way
round. This decoder keeps the per-keypoint locations and chooses, per person, that orientation
``o`` (left points at larger or at smaller image x) which costs the heatmaps least:

* a pair ``(l, r)`` whose two points are at least ``min_separation`` box widths apart in x has a
  side sign ``sign(x_l - x_r)``; pairs closer than that (profile views, limbs in front of the
  body) carry no side and are left alone;
* making a pair agree with ``o`` costs nothing if it does, else the heatmap margin of exchanging
  its two points, ``(h_l(p_l) - h_l(p_r)) + (h_r(p_r) - h_r(p_l))`` (for logits, a log-likelihood
  ratio; ``h`` read at the cell under each point);
* ``o`` minimises the summed cost; pairs that disagree with it are exchanged, their scores read
  from their maps at their new places. A person with fewer than ``min_pairs`` sided pairs keeps
  its keypoints.

So confident pairs (a clear face, clear shoulders) decide the side of uncertain ones, where the
independent decoding would flip a coin per pair. It needs no host read (traceable).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch

from .geometry import heatmap_to_image, image_to_heatmap

__all__ = ["left_right_pairs_of", "consistent_left_right"]


def left_right_pairs_of(flip_indices: Sequence[int]) -> Tuple[Tuple[int, int], ...]:
    """The (left, right) index pairs of a flip map given as each keypoint's counterpart."""
    return tuple((k, int(f)) for k, f in enumerate(flip_indices) if k < int(f))


def _values_at(flat: torch.Tensor, maps: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """``flat[r, maps[p], cells[r, p]]``: R x P heatmap values of maps ``maps`` (P) at flat cell
    indices ``cells`` (R x P)."""
    return flat[:, maps, :].gather(2, cells[..., None])[..., 0]


def _second_peaks(
    flat: torch.Tensor, maps: torch.Tensor, shared: torch.Tensor, size, radius: float
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Best cell of maps ``maps`` (P) at least ``radius`` cells from ``shared`` (R x P x 2,
    continuous heatmap coordinates): R x P flat cell indices and R x P values."""
    h, w = size
    rows = torch.arange(h, device=flat.device, dtype=shared.dtype) + 0.5
    cols = torch.arange(w, device=flat.device, dtype=shared.dtype) + 0.5
    dy = rows[None, None, :, None] - shared[..., 1, None, None]
    dx = cols[None, None, None, :] - shared[..., 0, None, None]
    far = (dx.square() + dy.square()).flatten(2) >= radius**2  # R x P x HW
    values = flat[:, maps, :].masked_fill(~far, float("-inf"))
    best, cell = values.max(dim=2)
    return cell, best


def _cell_centres(cells: torch.Tensor, w: int) -> torch.Tensor:
    """Flat cell indices -> ... x 2 continuous heatmap coordinates of their centres."""
    return torch.stack([(cells % w).float() + 0.5, (cells // w).float() + 0.5], dim=-1)


def consistent_left_right(
    keypoints: torch.Tensor,
    heatmaps: torch.Tensor,
    boxes: torch.Tensor,
    pairs: torch.Tensor,
    min_separation: float = 0.1,
    min_pairs: int = 2,
    double_radius: float = 0.06,
    orientation_cost: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Keypoints with each person's left/right pairs made to agree on one orientation.

    Args:
        keypoints: R x K x 3 decoded (x, y, score), image coordinates.
        heatmaps: R x K x H x W, the maps they were decoded from (the codec's activation).
        boxes: R x 4 RoIs (x0, y0, x1, y1) of the heatmaps.
        pairs: P x 2 long (left, right) keypoint indices.
        min_separation: least |x_l - x_r|, in box widths, for a pair to have a side.
        min_pairs: least number of sided pairs for a person's orientation to be chosen.
        double_radius: a pair whose two points are closer than this (box widths) is a double:
            both on one limb. One of them moves to its map's best cell at least
            ``min_separation`` box widths away, the one whose move agrees with the orientation
            (else the cheaper move).
        orientation_cost: R x 2 extra costs of orientation +1 and -1 (e.g. from a facing
            classifier); a person with one decides even with fewer than ``min_pairs`` pairs.
    Returns:
        R x K x 3: the same points, some pairs exchanged or undoubled, with scores from their
        new cells.
    """
    if keypoints.shape[0] == 0 or pairs.numel() == 0:
        return keypoints
    r, k, h, w = heatmaps.shape
    to_cells = image_to_heatmap(keypoints[..., :2], boxes, (h, w))
    col = to_cells[..., 0].floor().long().clamp(0, w - 1)
    row = to_cells[..., 1].floor().long().clamp(0, h - 1)
    flat_cells = row * w + col  # R x K
    flat = heatmaps.flatten(2)
    left, right = pairs[:, 0], pairs[:, 1]
    own_l = _values_at(flat, left, flat_cells[:, left])
    own_r = _values_at(flat, right, flat_cells[:, right])
    l_at_r = _values_at(flat, left, flat_cells[:, right])
    r_at_l = _values_at(flat, right, flat_cells[:, left])
    swap_cost = (own_l - l_at_r) + (own_r - r_at_l)  # R x P, >= 0 at per-map maxima

    width = (boxes[:, 2] - boxes[:, 0]).clamp(min=1e-6)[:, None]
    x_l, x_r = keypoints[:, left, 0], keypoints[:, right, 0]
    separation = (x_l - x_r) / width
    gap = (keypoints[:, left, :2] - keypoints[:, right, :2]).norm(dim=-1) / width
    double = gap < double_radius
    sided = (separation.abs() >= min_separation) & ~double
    sign = torch.where(separation > 0, 1.0, -1.0)

    # A double: move left (A) or right (B) to its best cell away from the shared point.
    shared = (to_cells[:, left] + to_cells[:, right]) / 2
    radius = float(min_separation) * w
    cell_a, value_a = _second_peaks(flat, left, shared, (h, w), radius)
    cell_b, value_b = _second_peaks(flat, right, shared, (h, w), radius)
    usable = double & torch.isfinite(value_a) & torch.isfinite(value_b)
    cost_a = torch.where(usable, own_l - value_a, torch.zeros_like(own_l))
    cost_b = torch.where(usable, own_r - value_b, torch.zeros_like(own_r))
    centre_a = _cell_centres(cell_a, w)
    centre_b = _cell_centres(cell_b, w)
    # x of the moved point against the one staying, in cells: the pair's side after the move
    sign_a = torch.where(centre_a[..., 0] > to_cells[:, right, 0], 1.0, -1.0)
    sign_b = torch.where(to_cells[:, left, 0] > centre_b[..., 0], 1.0, -1.0)

    def pair_costs(o: float) -> torch.Tensor:
        pairs_cost = (sided & (sign != o)).to(swap_cost.dtype) * swap_cost
        a_fits, b_fits = sign_a == o, sign_b == o
        fallback = torch.minimum(cost_a, cost_b)
        double_cost = torch.where(
            a_fits & b_fits,
            fallback,
            torch.where(a_fits, cost_a, torch.where(b_fits, cost_b, fallback)),
        )
        return (pairs_cost + usable.to(swap_cost.dtype) * double_cost).sum(1)

    cost_plus, cost_minus = pair_costs(1.0), pair_costs(-1.0)
    decided = ((sided | usable).sum(1) >= min_pairs)[:, None]
    if orientation_cost is not None:
        cost_plus = cost_plus + orientation_cost[:, 0]
        cost_minus = cost_minus + orientation_cost[:, 1]
        decided = decided | ((sided | usable).sum(1) >= 1)[:, None]
    orientation = torch.where(cost_plus <= cost_minus, 1.0, -1.0)[:, None]
    swap = sided & (sign != orientation) & decided  # R x P
    a_fits, b_fits = sign_a == orientation, sign_b == orientation
    # Move A when only A's move fits, or when both or neither fit and A's is cheaper. Written
    # with logical operators: a select between boolean tensors (torch.where) exports as an
    # ONNX Where on bool, which onnxruntime (1.32) has no CPU kernel for.
    prefer_a = (a_fits & ~b_fits) | ((a_fits == b_fits) & (cost_a <= cost_b))
    move_a = usable & decided & prefer_a
    move_b = usable & decided & ~move_a

    out = keypoints.clone()
    xy_l, xy_r = keypoints[:, left, :2], keypoints[:, right, :2]
    moved_a = heatmap_to_image(centre_a, boxes, (h, w))
    moved_b = heatmap_to_image(centre_b, boxes, (h, w))
    new_l = torch.where(swap[..., None], xy_r, torch.where(move_a[..., None], moved_a, xy_l))
    new_r = torch.where(swap[..., None], xy_l, torch.where(move_b[..., None], moved_b, xy_r))
    out[:, left, :2] = new_l
    out[:, right, :2] = new_r
    score_l, score_r = keypoints[:, left, 2], keypoints[:, right, 2]
    out[:, left, 2] = torch.where(swap, l_at_r, torch.where(move_a, value_a, score_l))
    out[:, right, 2] = torch.where(swap, r_at_l, torch.where(move_b, value_b, score_r))
    return out
