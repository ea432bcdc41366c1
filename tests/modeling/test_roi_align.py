"""kpext's CPU RoIAlign (kpext.modeling.roi_align) against torchvision's: outputs and input
gradients, gradcheck, autocast, and the swap into a real model's poolers."""

import copy
import logging

import pytest
import torch
from engine_helpers import BASE_CONFIG, TINY_OVERRIDES
from script_loading import load_script
from torchvision.ops import roi_align

from kpext import add_kpext_config
from kpext.engine import KpextTrainer
from kpext.modeling.roi_align import (
    FastROIAlign,
    configure_roi_align,
    roi_align_cpu,
    use_fast_cpu_roi_align,
)

from detectron2.config import get_cfg
from detectron2.layers import ROIAlign, ROIAlignRotated
from detectron2.modeling import build_model
from detectron2.modeling.poolers import ROIPooler
from detectron2.structures import Boxes, Instances, Keypoints
from detectron2.utils.events import EventStorage

# Features of 3 images, 16 x 20 pixels at scale 1/4 (64 x 80 px images); sizes that are not
# powers of two, so that a transposed index would show.
N, C, H, W, SCALE = 3, 5, 16, 20, 0.25


def random_rois(num: int, generator: torch.Generator, inverted: bool = False) -> torch.Tensor:
    """num x 5 RoIs over the N images: boxes of every size from none to larger than the image,
    inside, across the border and outside it; ``inverted``: some with x1 < x0 or y1 < y0."""
    g = generator
    size = torch.tensor([W / SCALE, H / SCALE])
    xy0 = (torch.rand(num, 2, generator=g) * 1.6 - 0.3) * size  # from 30% before to 30% past
    wh = torch.rand(num, 2, generator=g) ** 3 * size * 1.2
    wh[: num // 8] = torch.rand(num // 8, 2, generator=g) * 2  # tiny: under 2 px (half a cell)
    wh[num // 8 : num // 6] = 0  # empty boxes
    if inverted:
        wh[num // 6 : num // 4] *= -1
    batch = torch.randint(0, N, (num, 1), generator=g).float()
    return torch.cat([batch, xy0, xy0 + wh], dim=1)


def assert_same_as_torchvision(x, rois, output_size, sampling_ratio, aligned, atol=2e-5):
    """Outputs and input gradients (for a random output gradient) of both kernels."""
    x = x.detach().requires_grad_()
    ours = roi_align_cpu(x, rois, output_size, SCALE, sampling_ratio, aligned)
    theirs = roi_align(x, rois, output_size, SCALE, sampling_ratio, aligned)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=atol)
    grad_output = torch.randn_like(theirs)
    (ours_grad,) = torch.autograd.grad(ours, x, grad_output)
    (theirs_grad,) = torch.autograd.grad(theirs, x, grad_output)
    torch.testing.assert_close(ours_grad, theirs_grad, rtol=1e-5, atol=atol)


@pytest.mark.parametrize("output_size", [7, 14, (3, 5)])
@pytest.mark.parametrize("sampling_ratio", [0, -1, 1, 2])
@pytest.mark.parametrize("aligned", [True, False])
def test_outputs_and_gradients_equal_torchvisions(output_size, sampling_ratio, aligned):
    g = torch.Generator().manual_seed(hash((output_size, sampling_ratio, aligned)) % 2**31)
    x = torch.randn(N, C, H, W, generator=g)
    # torchvision's CPU kernel fails on inverted boxes with aligned and adaptive sampling.
    inverted = not (aligned and sampling_ratio <= 0)
    assert_same_as_torchvision(
        x, random_rois(120, g, inverted), output_size, sampling_ratio, aligned
    )


def test_samples_on_the_border_rules():
    """Boxes whose samples fall exactly on -1, 0, H - 1 and H (torchvision's limits)."""
    x = torch.randn(1, 2, 8, 8)
    edges = [-1.5, -1.0, -0.5, 0.0, 6.5, 7.0, 7.5, 8.0, 8.5]
    rois = torch.tensor([[0.0, a, b, a + 1, b + 1] for a in edges for b in edges])
    for aligned in (True, False):
        for ratio in (1, 2):
            ours = roi_align_cpu(x, rois, 1, 1.0, ratio, aligned)
            torch.testing.assert_close(ours, roi_align(x, rois, 1, 1.0, ratio, aligned))


def test_features_in_any_memory_layout():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(N, C, H, W, generator=g)
    rois = random_rois(40, g)
    assert_same_as_torchvision(x.contiguous(memory_format=torch.channels_last), rois, 7, 0, True)
    assert_same_as_torchvision(torch.randn(N, H, W, C).permute(0, 3, 1, 2), rois, 7, 2, False)


def test_empty_rois_give_an_empty_output_and_a_zero_gradient():
    x = torch.randn(N, C, H, W, requires_grad=True)
    ours = roi_align_cpu(x, torch.zeros(0, 5), 7, SCALE, 0, True)
    assert ours.shape == (0, C, 7, 7)
    (grad,) = torch.autograd.grad(ours.sum(), x)
    assert grad.shape == x.shape and not grad.any()


def test_boxes_of_negative_size_with_aligned_and_adaptive_sampling_give_zeros():
    """torchvision's CUDA kernel gives zeros there; its CPU kernel fails on most of them."""
    x = torch.randn(1, C, H, W)
    rois = torch.tensor([[0.0, 40, 30, 20, 10], [0.0, 10, 10, 5, 30]])
    assert not roi_align_cpu(x, rois, 7, SCALE, 0, True).any()


def test_boxes_get_no_gradient_and_a_list_of_boxes_is_accepted():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(N, C, H, W, generator=g)
    rois = random_rois(30, g)
    as_list = [rois[rois[:, 0] == i, 1:] for i in range(N)]
    in_order = torch.cat([rois[rois[:, 0] == i] for i in range(N)])
    torch.testing.assert_close(
        roi_align_cpu(x, as_list, 7, SCALE, 0, True), roi_align_cpu(x, in_order, 7, SCALE, 0, True)
    )
    boxes = rois.clone().requires_grad_()
    roi_align_cpu(x.requires_grad_(), boxes, 7, SCALE, 0, True).sum().backward()
    assert boxes.grad is None and x.grad is not None


def test_gradcheck_and_double_backward_in_float64():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 1, 6, 7, dtype=torch.float64, generator=g, requires_grad=True)
    rois = torch.tensor(
        [[0, -3.0, 1, 10, 20], [1, 2.5, 3.5, 14, 9], [1, 20, 18, 30, 26], [0, 4, 4, 4.5, 5]],
        dtype=torch.float64,
    )
    for aligned, ratio in ((True, 0), (False, 2)):

        def pool(features):
            return roi_align_cpu(features, rois, (3, 2), 0.5, ratio, aligned)

        assert pool(x).dtype == torch.float64
        assert torch.autograd.gradcheck(pool, (x,))
        # fast_mode: a random projection instead of one call per element (84 here).
        assert torch.autograd.gradgradcheck(pool, (x,), fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_under_bfloat16_autocast_dtypes_and_values_are_torchvisions(dtype):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(N, C, H, W, generator=g).to(dtype)
    rois = random_rois(50, g)
    xs = [x.clone().requires_grad_() for _ in range(2)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = roi_align_cpu(xs[0], rois, 7, SCALE, 0, True)
        theirs = roi_align(xs[1], rois, 7, SCALE, 0, True)
    assert ours.dtype == theirs.dtype == dtype
    # Both compute in float32 from the same values; the bf16 results may round apart by a unit.
    tol = 1e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(ours.float(), theirs.float(), rtol=tol, atol=tol)
    grad_output = torch.randn(ours.shape, generator=g).to(dtype)
    ours.backward(grad_output)
    theirs.backward(grad_output)
    assert xs[0].grad.dtype == xs[1].grad.dtype == dtype
    torch.testing.assert_close(xs[0].grad.float(), xs[1].grad.float(), rtol=tol, atol=tol)


def test_bad_boxes_are_errors_not_memory_faults():
    x = torch.randn(2, C, H, W)
    with pytest.raises(ValueError, match="batch indices"):
        roi_align_cpu(x, torch.tensor([[2.0, 0, 0, 4, 4]]), 7, SCALE, 0, True)
    with pytest.raises(ValueError, match="finite"):
        roi_align_cpu(x, torch.tensor([[0.0, 0, 0, float("inf"), 4]]), 7, SCALE, 0, True)


@pytest.mark.parametrize("aligned", [True, False])
def test_fast_roi_align_is_detectron2s_roi_align_on_the_cpu(aligned):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(N, C, H, W, generator=g)
    rois = random_rois(40, g)
    stock = ROIAlign((7, 7), SCALE, 0, aligned)
    fast = FastROIAlign.from_roi_align(stock)
    assert repr(fast).endswith(repr(stock)[len("ROIAlign") :])
    out = fast(x.requires_grad_(), rois)
    assert "_RoIAlign" in type(out.grad_fn).__name__  # kpext's kernel, not torchvision's op
    torch.testing.assert_close(out, stock(x, rois), rtol=1e-5, atol=2e-5)


@pytest.mark.filterwarnings("ignore:.*torch.jit.trace.*:DeprecationWarning")
def test_a_traced_fast_roi_align_keeps_torchvisions_op():
    rois = torch.tensor([[0.0, 4, 4, 40, 30]])
    traced = torch.jit.trace(FastROIAlign((7, 7), SCALE, 0, True), (torch.randn(1, C, H, W), rois))
    assert "torchvision::roi_align" in str(traced.graph)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors_keep_torchvisions_kernel():
    g = torch.Generator().manual_seed(8)
    x, rois = torch.randn(N, C, H, W, generator=g).cuda(), random_rois(40, g).cuda()
    fast, stock = FastROIAlign((7, 7), SCALE, 0, True), ROIAlign((7, 7), SCALE, 0, True)
    assert torch.equal(fast(x, rois), stock(x, rois))


@pytest.mark.parametrize(
    "pooler_type, replaced",
    [("ROIAlignV2", 2), ("ROIAlign", 2), ("ROIPool", 0), ("ROIAlignRotated", 0)],
)
def test_the_swap_replaces_roi_align_poolers_only(pooler_type, replaced):
    pooler = ROIPooler(7, (1 / 4, 1 / 8), 0, pooler_type)
    before = list(pooler.level_poolers)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), pooler)
    assert use_fast_cpu_roi_align(model) == replaced
    assert use_fast_cpu_roi_align(model) == 0  # already swapped
    for old, new in zip(before, pooler.level_poolers):
        if replaced:
            assert type(new) is FastROIAlign
            assert (new.output_size, new.spatial_scale, new.sampling_ratio, new.aligned) == (
                old.output_size,
                old.spatial_scale,
                old.sampling_ratio,
                old.aligned,
            )
        else:
            assert new is old and (pooler_type != "ROIAlignRotated" or type(new) is ROIAlignRotated)


def tiny_cfg(setting: str = "auto"):
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(BASE_CONFIG)
    cfg.merge_from_list(TINY_OVERRIDES)
    cfg.MODEL.KPEXT.ROI_ALIGN = setting
    return cfg


def people_batch():
    """Two 128 x 128 images with two labelled people each (no dataset on disk needed)."""
    g = torch.Generator().manual_seed(9)
    batch = []
    for i in range(2):
        boxes = torch.tensor([[10.0, 12, 60, 110], [66, 20, 122, 100]]) + 3 * i
        kp = torch.zeros(2, 17, 3)
        kp[..., :2] = boxes[:, None, :2] + torch.rand(2, 17, 2, generator=g) * (
            boxes[:, None, 2:] - boxes[:, None, :2]
        )
        kp[..., 2] = 2
        inst = Instances((128, 128))
        inst.gt_boxes = Boxes(boxes)
        inst.gt_classes = torch.zeros(2, dtype=torch.int64)
        inst.gt_keypoints = Keypoints(kp)
        image = torch.randint(0, 256, (3, 128, 128), generator=g, dtype=torch.uint8)
        batch.append({"image": image, "instances": inst, "height": 128, "width": 128})
    return batch


def losses_and_gradients(model, batch):
    """The training losses of one forward and every parameter's gradient."""
    torch.manual_seed(0)  # the same RPN and RoI sampling for both kernels
    model.train()
    with EventStorage():
        losses = model(batch)
    model.zero_grad()
    sum(losses.values()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


@pytest.fixture
def trainer_log(caplog):
    """caplog that sees kpext.engine.trainer's INFO records even where a logger setup stops
    propagation."""
    log = logging.getLogger("kpext")
    old_level, old_propagate = log.level, log.propagate
    log.addHandler(caplog.handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield caplog
    log.removeHandler(caplog.handler)
    log.setLevel(old_level)
    log.propagate = old_propagate


def test_a_trained_model_computes_the_same_with_kpexts_kernel(trainer_log):
    torch.manual_seed(0)
    fast = KpextTrainer.build_model(tiny_cfg("auto"))
    assert "RoIAlign: 8 level poolers use kpext's CPU kernel" in trainer_log.text
    stock = build_model(tiny_cfg("torchvision"))
    stock.load_state_dict(fast.state_dict())
    poolers = [m for m in fast.modules() if isinstance(m, ROIPooler)]
    assert len(poolers) == 2 and all(
        type(p) is FastROIAlign for pooler in poolers for p in pooler.level_poolers
    )
    batch = people_batch()
    fast_losses, fast_grads = losses_and_gradients(fast, copy.deepcopy(batch))
    stock_losses, stock_grads = losses_and_gradients(stock, batch)
    torch.testing.assert_close(fast_losses, stock_losses, rtol=1e-5, atol=1e-6)
    assert fast_grads.keys() == stock_grads.keys()
    for name, grad in fast_grads.items():
        torch.testing.assert_close(grad, stock_grads[name], rtol=1e-4, atol=1e-5, msg=name)


def test_the_torchvision_setting_and_cuda_leave_the_poolers_alone(trainer_log):
    model = KpextTrainer.build_model(tiny_cfg("torchvision"))
    assert "0 level poolers use kpext's CPU kernel" in trainer_log.text
    levels = [p for m in model.modules() if isinstance(m, ROIPooler) for p in m.level_poolers]
    assert len(levels) == 8 and all(type(p) is ROIAlign for p in levels)
    on_cuda = tiny_cfg("auto")
    on_cuda.MODEL.DEVICE = "cuda"
    assert configure_roi_align(model, on_cuda) == 0
    assert all(type(p) is ROIAlign for p in levels)
    with pytest.raises(ValueError, match="MODEL.KPEXT.ROI_ALIGN"):
        configure_roi_align(model, tiny_cfg("fast"))


def test_the_benchmark_prints_ratios_with_intervals(capsys):
    bench = load_script("kpext_bench_roi_align", "projects", "Benchmarks", "bench_roi_align.py")
    tiny = ["--images", "2", "--image-size", "64", "--channels", "8", "--box-rois", "16"]
    assert bench.main(["--quick", *tiny, "--keypoint-rois", "4"]) == 0
    out = capsys.readouterr().out
    assert "CPU: " in out and "avx512_bf16" in out and "amx_bf16" in out
    rows = [line for line in out.splitlines() if line.startswith(("box pooler", "keypoint pooler"))]
    assert len(rows) == 4  # each workload described, then timed at one thread count
    assert all(line.rstrip().endswith("]") for line in rows[2:])
    low, high = bench.bootstrap_ratio([2.0, 2.2, 1.8, 2.1], [1.0, 1.1, 0.9, 1.0], 200)
    assert 1.5 < low <= 2.0 <= high < 2.5
