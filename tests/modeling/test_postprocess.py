"""Pose NMS by OKS: the OKS matrix, hard and soft suppression, and the Instances wrapper."""

import math

import numpy as np
import pytest
import torch

from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES, COCO_PERSON_OKS_SIGMAS
from kpext.modeling.postprocess import apply_pose_nms, keypoint_oks_matrix, pose_nms

from detectron2.structures import Boxes, Instances

SIGMAS = torch.tensor([COCO_PERSON_OKS_SIGMAS[n] for n in COCO_PERSON_KEYPOINT_NAMES])
K = len(SIGMAS)


def standing_pose(centre_x: float, top_y: float, height: float) -> torch.Tensor:
    """K x 3 rough person layout (x, y, score 1), ``height`` pixels tall."""
    # (dx, dy) in units of height from the top-centre, in COCO keypoint order
    layout = [
        (0.0, 0.05), (-0.02, 0.03), (0.02, 0.03), (-0.05, 0.04), (0.05, 0.04),
        (-0.12, 0.2), (0.12, 0.2), (-0.16, 0.38), (0.16, 0.38), (-0.18, 0.52), (0.18, 0.52),
        (-0.08, 0.52), (0.08, 0.52), (-0.09, 0.74), (0.09, 0.74), (-0.09, 0.97), (0.09, 0.97),
    ]  # fmt: skip
    xy = torch.tensor(layout) * height + torch.tensor([centre_x, top_y])
    return torch.cat([xy, torch.ones(K, 1)], dim=1)


def box_of(pose: torch.Tensor) -> torch.Tensor:
    return torch.cat([pose[:, :2].min(0).values, pose[:, :2].max(0).values])


def oks_loop(
    a: np.ndarray, b: np.ndarray, area: float, sigmas: np.ndarray, thr: float = 0.0
) -> float:
    """COCO's OKS of ``b`` against reference ``a``, one keypoint at a time."""
    counted = [k for k in range(len(sigmas)) if a[k, 2] > thr] or list(range(len(sigmas)))
    total = 0.0
    for k in counted:
        d2 = (a[k, 0] - b[k, 0]) ** 2 + (a[k, 1] - b[k, 1]) ** 2
        total += math.exp(-d2 / (2 * area * (2 * sigmas[k]) ** 2))
    return total / len(counted)


def hard_nms_loop(
    kpts: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: np.ndarray, thr: float
):
    """Textbook greedy NMS: take the best remaining, drop all it overlaps, repeat."""
    remaining = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    keep = []
    while remaining:
        best = remaining.pop(0)
        keep.append(best)
        remaining = [
            j for j in remaining if oks_loop(kpts[best], kpts[j], areas[best], sigmas) <= thr
        ]
    return keep


def person_with_duplicate(seed: int = 0):
    """A person, a jittered lower-scored copy of them, and a second person far away."""
    g = torch.Generator().manual_seed(seed)
    a = standing_pose(100, 50, 200)
    dup = a.clone()
    dup[:, :2] += torch.randn(K, 2, generator=g) * 1.5
    far = standing_pose(500, 80, 180)
    kpts = torch.stack([a, dup, far])
    scores = torch.tensor([0.9, 0.8, 0.7])
    boxes = torch.stack([box_of(p) for p in kpts])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return kpts, scores, areas, boxes


def test_oks_matrix_matches_loop():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(4, K, 3, generator=g) * torch.tensor([60.0, 80.0, 1.0]) + torch.tensor(
        [20.0, 10.0, 0.0]
    )
    b = a[torch.tensor([0, 2, 1, 3, 0])].clone()
    b[..., :2] += torch.randn(5, K, 2, generator=g) * 4
    a[1, :, 2] = 0.0  # no keypoint above the threshold: all keypoints count
    a[2, :5, 2] = 0.0  # face invisible: only the body counts
    areas = torch.tensor([2500.0, 900.0, 4000.0, 1600.0])

    oks = keypoint_oks_matrix(a, b, areas, SIGMAS, score_threshold=0.0)

    assert oks.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            expected = oks_loop(a[i].numpy(), b[j].numpy(), float(areas[i]), SIGMAS.numpy())
            assert oks[i, j].item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert oks[0, 0] > 0.5 and oks[0, 0] < 1.0


def test_oks_identical_poses_is_one_and_accepts_numpy():
    a = standing_pose(50, 20, 100).numpy()[None]
    oks = keypoint_oks_matrix(a, a, np.array([5000.0]), SIGMAS.numpy())
    assert oks.item() == pytest.approx(1.0)


def test_oks_matrix_rejects_mismatched_sigmas():
    a = torch.zeros(2, K, 3)
    with pytest.raises(ValueError, match="sigmas"):
        keypoint_oks_matrix(a, a, torch.ones(2), SIGMAS[:5])


def test_hard_oks_removes_duplicate_keeps_distinct_people():
    kpts, scores, areas, _ = person_with_duplicate()
    keep, new_scores = pose_nms(kpts, scores, areas, SIGMAS, method="oks", oks_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert new_scores.tolist() == pytest.approx([0.9, 0.7])


def test_soft_oks_lowers_duplicate_score_and_keeps_it():
    kpts, scores, areas, _ = person_with_duplicate()
    keep, new_scores = pose_nms(kpts, scores, areas, SIGMAS, method="soft-oks", soft_sigma=0.5)
    assert sorted(keep.tolist()) == [0, 1, 2]
    by_index = dict(zip(keep.tolist(), new_scores.tolist()))
    assert by_index[0] == pytest.approx(0.9)
    assert by_index[2] == pytest.approx(0.7, abs=1e-4)  # far away: OKS ~ 0, no decay
    oks_dup = keypoint_oks_matrix(kpts[:1], kpts[1:2], areas[:1], SIGMAS).item()
    assert by_index[1] == pytest.approx(0.8 * math.exp(-(oks_dup**2) / 0.5), rel=1e-5)
    assert by_index[1] < 0.3
    assert new_scores.tolist() == sorted(new_scores.tolist(), reverse=True)


def test_soft_oks_drops_scores_below_floor():
    kpts, scores, areas, _ = person_with_duplicate()
    keep, _ = pose_nms(
        kpts, scores, areas, SIGMAS, method="soft-oks", soft_sigma=0.05, score_floor=0.01
    )
    assert keep.tolist() == [0, 2]


def test_none_is_identity():
    kpts, scores, areas, _ = person_with_duplicate()
    keep, new_scores = pose_nms(kpts, scores, areas, SIGMAS, method="none")
    assert keep.tolist() == [0, 1, 2]
    assert torch.equal(new_scores, scores)


def test_unknown_method_lists_choices():
    kpts, scores, areas, _ = person_with_duplicate()
    with pytest.raises(ValueError, match="none, oks, soft-oks"):
        pose_nms(kpts, scores, areas, SIGMAS, method="nms")


def test_empty_input():
    keep, new_scores = pose_nms(torch.zeros(0, K, 3), torch.zeros(0), torch.zeros(0), SIGMAS)
    assert keep.numel() == 0 and new_scores.numel() == 0


@pytest.mark.parametrize("seed", range(5))
def test_hard_nms_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 25
    # clustered poses so that suppression chains actually happen
    bases = rng.uniform(0, 300, size=(4, 1, 2)) + rng.normal(0, 40, size=(4, K, 2))
    xy = bases[rng.integers(0, 4, n)] + rng.normal(0, 6, (n, 1, 2)) + rng.normal(0, 3, (n, K, 2))
    kpts = np.concatenate([xy, rng.uniform(0, 1, (n, K, 1))], axis=2)
    kpts[rng.random((n, K)) < 0.2, 2] = 0.0
    scores = rng.uniform(0, 1, n)
    areas = rng.uniform(500, 3000, n)
    thr = 0.3

    keep, new_scores = pose_nms(
        torch.from_numpy(kpts),
        torch.from_numpy(scores),
        torch.from_numpy(areas),
        SIGMAS.double(),
        "oks",
        thr,
    )
    expected = hard_nms_loop(kpts, scores, areas, SIGMAS.numpy().astype(np.float64), thr)
    assert keep.tolist() == expected
    assert 3 < len(expected) < n - 5, len(expected)
    np.testing.assert_allclose(new_scores.numpy(), scores[expected])


def make_instances():
    kpts, scores, _, boxes = person_with_duplicate()
    inst = Instances((400, 700))
    # reversed so the wrapper has to re-sort
    order = torch.tensor([2, 1, 0])
    inst.pred_boxes = Boxes(boxes[order])
    inst.scores = scores[order]
    inst.pred_classes = torch.zeros(3, dtype=torch.long)
    inst.pred_keypoints = kpts[order]
    inst.marker = torch.tensor([20, 10, 0])  # original index * 10: follows its instance
    return inst


def test_apply_pose_nms_filters_all_fields():
    out = apply_pose_nms(make_instances(), SIGMAS, method="oks")
    assert len(out) == 2
    assert out.marker.tolist() == [0, 20]
    assert out.scores.tolist() == pytest.approx([0.9, 0.7])
    assert out.pred_boxes.tensor.shape == (2, 4) and out.pred_classes.shape == (2,)
    assert torch.equal(out.pred_keypoints[1], make_instances().pred_keypoints[0])


def test_apply_soft_pose_nms_updates_and_sorts_scores():
    out = apply_pose_nms(make_instances(), SIGMAS, method="soft-oks")
    assert out.marker.tolist() == [0, 20, 10]
    assert out.scores[0].item() == pytest.approx(0.9)
    assert out.scores[2].item() < 0.3
    assert out.scores.tolist() == sorted(out.scores.tolist(), reverse=True)


def test_apply_none_returns_input():
    inst = make_instances()
    assert apply_pose_nms(inst, SIGMAS, method="none") is inst
