"""Heatmap and coordinate losses against independent numpy / loop computations."""

import contextlib
import io
import math

import numpy as np
import pytest
import torch

from kpext.modeling.codecs import GaussianCodec
from kpext.modeling.losses import (
    heatmap_focal_loss,
    oks_loss,
    soft_argmax_2d,
    spatial_softmax_cross_entropy,
    weighted_heatmap_mse,
)

COCO_SIGMAS = [
    0.26,
    0.25,
    0.25,
    0.35,
    0.35,
    0.79,
    0.79,
    0.72,
    0.72,
    0.62,
    0.62,
    1.07,
    1.07,
    0.87,
    0.87,
    0.89,
    0.89,
]


def random_weights(r: int, k: int) -> torch.Tensor:
    """Mix of 0, 1 and fractional weights."""
    w = torch.rand(r, k)
    return torch.where(w < 0.3, torch.zeros_like(w), torch.where(w < 0.7, torch.ones_like(w), w))


# ---------------------------------------------------------------------------
# weighted_heatmap_mse
# ---------------------------------------------------------------------------


def mse_reference(pred, target, weights, normalizer=None):
    pred, target, weights = (np.asarray(t, dtype=np.float64) for t in (pred, target, weights))
    r_count, k_count, h, w = pred.shape
    total, count = 0.0, 0
    for r in range(r_count):
        for k in range(k_count):
            sq = 0.0
            for i in range(h):
                for j in range(w):
                    sq += (pred[r, k, i, j] - target[r, k, i, j]) ** 2
            total += weights[r, k] * sq / (h * w)
            count += weights[r, k] > 0
    return total / (count if normalizer is None else normalizer)


def test_mse_matches_loops():
    pred, target = torch.randn(3, 4, 5, 6), torch.rand(3, 4, 5, 6)
    weights = random_weights(3, 4)
    loss = weighted_heatmap_mse(pred, target, weights)
    assert loss.dtype == torch.float32 and loss.dim() == 0
    assert float(loss) == pytest.approx(mse_reference(pred, target, weights), rel=1e-5)
    assert float(weighted_heatmap_mse(pred, target, weights, normalizer=7.0)) == pytest.approx(
        mse_reference(pred, target, weights, 7.0), rel=1e-5
    )


def test_mse_zero_weights_is_zero_and_backpropagates():
    pred = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = weighted_heatmap_mse(pred, torch.rand(2, 3, 4, 4), torch.zeros(2, 3))
    assert float(loss) == 0.0
    loss.backward()
    assert pred.grad is not None and torch.all(pred.grad == 0)


def test_mse_bfloat16_computed_in_float32():
    pred = torch.randn(2, 3, 8, 8).bfloat16().requires_grad_()
    target = torch.rand(2, 3, 8, 8)
    weights = torch.ones(2, 3)
    loss = weighted_heatmap_mse(pred, target, weights)
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(
        mse_reference(pred.detach().float(), target, weights), rel=1e-5
    )
    loss.backward()
    assert pred.grad.dtype == torch.bfloat16 and pred.grad.abs().sum() > 0
    assert weighted_heatmap_mse(pred, target, torch.zeros(2, 3)).dtype == torch.float32


def test_mse_gradient_is_analytic():
    pred = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 2, 3, 3, dtype=torch.float64)
    weights = torch.tensor([[0.5, 1.0]], dtype=torch.float64)
    weighted_heatmap_mse(pred, target, weights).backward()
    # d/dp of w * mean((p - t)^2) / 2 keypoints = w * 2 (p - t) / 9 / 2
    expected = weights[..., None, None] * (pred.detach() - target) / 9
    torch.testing.assert_close(pred.grad, expected)


# ---------------------------------------------------------------------------
# heatmap_focal_loss
# ---------------------------------------------------------------------------


def focal_reference(logits, target, weights, alpha=2.0, beta=4.0, normalizer=None):
    """Per-map loop; positives are each map's highest target cell."""
    logits, target, weights = (np.asarray(t, dtype=np.float64) for t in (logits, target, weights))
    total, count = 0.0, 0
    for r in range(logits.shape[0]):
        for k in range(logits.shape[1]):
            x, y = logits[r, k].ravel(), target[r, k].ravel()
            pos = int(np.argmax(y))
            map_loss = 0.0
            for c in range(x.size):
                p = 1 / (1 + math.exp(-x[c]))
                if c == pos:
                    map_loss -= (1 - p) ** alpha * math.log(p)
                else:
                    map_loss -= (1 - y[c]) ** beta * p**alpha * math.log(1 - p)
            total += weights[r, k] * map_loss
            count += weights[r, k] > 0
    return total / (count if normalizer is None else normalizer)


def centernet_neg_loss(pred_prob, gt):
    """CenterNet's ``_neg_loss`` as published: positives where gt == 1, one per object."""
    pos = gt.eq(1).float()
    neg = gt.lt(1).float()
    pos_loss = (torch.log(pred_prob) * torch.pow(1 - pred_prob, 2) * pos).sum()
    neg_loss = (
        torch.log(1 - pred_prob) * torch.pow(pred_prob, 2) * torch.pow(1 - gt, 4) * neg
    ).sum()
    return -(pos_loss + neg_loss) / pos.sum()


def gaussian_targets(r, k, size, sigma=2.0, on_centres=False):
    """Encoded Gaussians at random positions (exactly on cell centres if asked)."""
    h, w = size
    uv = torch.rand(r, k, 2, dtype=torch.float64) * torch.tensor([w - 4.0, h - 4.0]) + 2
    if on_centres:
        uv = uv.floor() + 0.5
    boxes = torch.tensor([[0.0, 0.0, w, h]], dtype=torch.float64).repeat(r, 1)
    kp = torch.cat([uv, torch.ones(r, k, 1, dtype=torch.float64)], dim=2)
    return GaussianCodec(sigma=sigma).encode(kp, boxes, size).heatmaps.float()


def test_focal_matches_loops_with_off_grid_peaks():
    target = gaussian_targets(2, 3, (6, 7))
    assert float(target.amax()) < 1  # off-grid peaks: no cell reaches 1
    logits = torch.randn(2, 3, 6, 7) * 3
    weights = random_weights(2, 3)
    weights[0, 0] = 1.0
    loss = heatmap_focal_loss(logits, target, weights)
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(focal_reference(logits, target, weights), rel=1e-5)
    assert float(
        heatmap_focal_loss(logits, target, weights, alpha=1.5, beta=3.0, normalizer=4.0)
    ) == pytest.approx(focal_reference(logits, target, weights, 1.5, 3.0, 4.0), rel=1e-5)


def test_focal_equals_centernet_when_peaks_are_on_cell_centres():
    target = gaussian_targets(3, 4, (10, 12), on_centres=True)
    assert torch.all(target.flatten(2).amax(dim=2) == 1)
    logits = torch.randn(3, 4, 10, 12, dtype=torch.float64)
    ours = heatmap_focal_loss(logits, target, torch.ones(3, 4))
    theirs = centernet_neg_loss(torch.sigmoid(logits), target.double())
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


def test_focal_is_stable_for_extreme_logits():
    target = gaussian_targets(1, 2, (5, 5))
    logits = torch.full((1, 2, 5, 5), -120.0)
    pos = target.flatten(2).argmax(dim=2)
    logits.view(1, 2, 25)[0, 0, pos[0, 0]] = 120.0  # confident and right
    logits.requires_grad_()
    loss = heatmap_focal_loss(logits, target, torch.tensor([[1.0, 0.0]]))
    loss.backward()
    assert torch.isfinite(loss) and float(loss) == pytest.approx(0.0, abs=1e-30)
    assert torch.all(torch.isfinite(logits.grad))
    # Confident and wrong at the positive: -log(sigmoid(-120)) = 120.
    wrong = torch.full((1, 1, 5, 5), -120.0)
    loss = heatmap_focal_loss(wrong, target[:, :1], torch.ones(1, 1))
    assert float(loss) == pytest.approx(120.0, rel=1e-6)


def test_focal_zero_weights_and_bfloat16():
    logits = torch.randn(2, 2, 4, 4, requires_grad=True)
    loss = heatmap_focal_loss(logits, torch.rand(2, 2, 4, 4), torch.zeros(2, 2))
    assert float(loss) == 0.0
    loss.backward()
    assert torch.all(logits.grad == 0)

    target = gaussian_targets(2, 2, (6, 6))
    half = (torch.randn(2, 2, 6, 6) * 2).bfloat16().requires_grad_()
    loss = heatmap_focal_loss(half, target, torch.ones(2, 2))
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(
        focal_reference(half.detach().float(), target, torch.ones(2, 2)), rel=1e-5
    )
    loss.backward()
    assert half.grad.abs().sum() > 0


# ---------------------------------------------------------------------------
# soft_argmax_2d
# ---------------------------------------------------------------------------


def test_soft_argmax_of_sharp_map_is_cell_centre():
    maps = torch.zeros(2, 3, 7, 9)
    cells = [[(0, 0), (3, 4), (6, 8)], [(2, 7), (5, 1), (6, 0)]]
    for r, row in enumerate(cells):
        for k, (i, j) in enumerate(row):
            maps[r, k, i, j] = 1.0
    coords = soft_argmax_2d(maps, beta=100.0)
    expected = torch.tensor([[[j + 0.5, i + 0.5] for i, j in row] for row in cells])
    torch.testing.assert_close(coords, expected, atol=1e-5, rtol=0)


def test_soft_argmax_matches_explicit_expectation_and_has_gradients():
    maps = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    coords = soft_argmax_2d(maps, beta=2.5)
    m = maps.detach().numpy()
    for r in range(2):
        for k in range(3):
            p = np.exp(2.5 * m[r, k] - (2.5 * m[r, k]).max())
            p /= p.sum()
            ii, jj = np.mgrid[0:5, 0:6]
            assert coords[r, k, 0].item() == pytest.approx((p * (jj + 0.5)).sum(), rel=1e-10)
            assert coords[r, k, 1].item() == pytest.approx((p * (ii + 0.5)).sum(), rel=1e-10)
    coords[..., 0].sum().backward()
    assert maps.grad.abs().sum() > 0
    # Raising a cell right of the expected x moves x to the right.
    assert maps.grad[0, 0, 2, 5] > 0 and maps.grad[0, 0, 2, 0] < 0
    uniform = soft_argmax_2d(torch.zeros(1, 1, 4, 10), beta=5.0)
    torch.testing.assert_close(uniform, torch.tensor([[[5.0, 2.0]]]))


def test_soft_argmax_bfloat16_is_float32():
    coords = soft_argmax_2d(torch.randn(1, 2, 6, 6).bfloat16(), beta=3.0)
    assert coords.dtype == torch.float32 and torch.all((coords > 0) & (coords < 6))


# ---------------------------------------------------------------------------
# oks_loss
# ---------------------------------------------------------------------------


def random_instances(r: int, k: int):
    gt = torch.rand(r, k, 3) * 100
    gt[..., 2] = (torch.rand(r, k) > 0.3).float() * 2
    gt[0, 0, 2] = 2.0
    areas = torch.rand(r) * 5000 + 500
    return gt, areas


def test_oks_loss_zero_for_perfect_and_grows_with_distance():
    gt, areas = random_instances(4, 17)
    sigmas = torch.tensor(COCO_SIGMAS)
    assert float(oks_loss(gt[..., :2], gt, areas, sigmas)) == pytest.approx(0.0, abs=1e-7)
    direction = torch.randn(4, 17, 2)
    losses = [
        float(oks_loss(gt[..., :2] + t * direction, gt, areas, sigmas))
        for t in (0.5, 2.0, 8.0, 32.0)
    ]
    assert all(a < b for a, b in zip(losses, losses[1:])) and losses[-1] < 1


def test_oks_loss_hand_computed_instance():
    # 3 keypoints, the middle one not visible: only the first and last count.
    gt = torch.tensor([[[10.0, 20.0, 2.0], [50.0, 50.0, 0.0], [30.0, 40.0, 1.0]]])
    pred = torch.tensor([[[13.0, 24.0], [0.0, 0.0], [30.0, 41.0]]])
    area, sigmas = 400.0, [0.5, 0.2, 0.25]
    e0 = 25.0 / (2 * area * (2 * 0.5) ** 2)  # d^2 = 3^2 + 4^2
    e2 = 1.0 / (2 * area * (2 * 0.25) ** 2)
    expected = 1 - (math.exp(-e0) + math.exp(-e2)) / 2
    loss = oks_loss(pred, gt, torch.tensor([area]), sigmas)
    assert float(loss) == pytest.approx(expected, abs=1e-7)  # 1 - OKS in float32
    loss64 = oks_loss(pred.double(), gt.double(), torch.tensor([area], dtype=torch.float64), sigmas)
    assert loss64.dtype == torch.float64 and float(loss64) == pytest.approx(expected, rel=1e-12)


def test_oks_loss_matches_pycocotools():
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt, areas = random_instances(3, 17)
    pred = gt[..., :2] + torch.randn(3, 17, 2) * 6
    sigmas = np.array(COCO_SIGMAS)
    images = [{"id": i + 1, "width": 200, "height": 200} for i in range(3)]
    annotations = [
        {
            "id": i + 1,
            "image_id": i + 1,
            "category_id": 1,
            "iscrowd": 0,
            "area": float(areas[i]),
            "bbox": [0.0, 0.0, 100.0, 100.0],
            "keypoints": gt[i].reshape(-1).tolist(),
            "num_keypoints": int((gt[i, :, 2] > 0).sum()),
        }
        for i in range(3)
    ]
    results = [
        {
            "image_id": i + 1,
            "category_id": 1,
            "score": 1.0,
            "keypoints": torch.cat([pred[i], torch.ones(17, 1)], dim=1).reshape(-1).tolist(),
        }
        for i in range(3)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": 1, "name": "person"}],
        }
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), "keypoints")
        evaluator.params.kpt_oks_sigmas = sigmas
        evaluator._prepare()
        coco_oks = [float(evaluator.computeOks(i + 1, 1)[0, 0]) for i in range(3)]
    expected = 1 - np.mean(coco_oks)
    loss = oks_loss(pred, gt, areas, torch.tensor(COCO_SIGMAS))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_oks_loss_skips_instances_without_visible_keypoints():
    gt, areas = random_instances(3, 5)
    pred = gt[..., :2] + 3.0
    sigmas = torch.full((5,), 0.5)
    gt[1, :, 2] = 0  # instance 1 has nothing visible: excluded, not counted as OKS 0 or 1
    both = oks_loss(pred, gt, areas, sigmas)
    singles = [float(oks_loss(pred[[i]], gt[[i]], areas[[i]], sigmas)) for i in (0, 2)]
    assert float(both) == pytest.approx(sum(singles) / 2, rel=1e-6)


def test_oks_loss_nothing_visible_and_gradients():
    gt, areas = random_instances(2, 4)
    gt[..., 2] = 0
    pred = torch.randn(2, 4, 2, requires_grad=True)
    loss = oks_loss(pred, gt, areas, [0.3] * 4)
    assert float(loss) == 0.0
    loss.backward()
    assert torch.all(pred.grad == 0)

    gt, areas = random_instances(2, 4)
    pred = (gt[..., :2] + 5.0).bfloat16().requires_grad_()
    loss = oks_loss(pred, gt, areas, [0.3] * 4)
    assert loss.dtype == torch.float32
    loss.backward()
    visible = gt[..., 2] > 0
    # Moving towards the ground truth lowers the loss: gradient points away from it.
    assert torch.all(pred.grad.float()[visible] > 0) and torch.all(pred.grad[~visible] == 0)


def test_spatial_softmax_cross_entropy_unchanged():
    logits = torch.randn(2, 3, 4, 4)
    index = torch.randint(0, 16, (2, 3))
    valid = torch.tensor([[True, False, True], [True, True, False]])
    loss = spatial_softmax_cross_entropy(logits, index, valid, None)
    flat = logits.reshape(6, 16)
    expected = (
        -sum(
            torch.log_softmax(flat[n], 0)[index.reshape(-1)[n]]
            for n in range(6)
            if valid.reshape(-1)[n]
        )
        / 4
    )
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
