#!/usr/bin/env python
"""Micro-benchmark of RoIAlign forward + backward on the CPU: kpext's sparse-matrix kernel
(kpext.modeling.roi_align) against torchvision's, at the sizes of `make demo`'s training step.

    .venv/bin/python projects/Benchmarks/bench_roi_align.py            # 1 and 2 threads
    .venv/bin/python projects/Benchmarks/bench_roi_align.py --quick    # a smoke run

Not part of `make bench`. The workload is the demo's (configs/synthetic/
keypoint_rcnn_R18_FPN_demo.yaml): 4 images of 256 px, FPN maps p2..p5 of 64 channels
(64 x 64 down to 8 x 8), Detectron2's ROIPooler with ROIAlignV2 (aligned, adaptive sampling)
on
- the box head: 7 x 7 bins, 128 RoIs per image (512);
- the keypoint head: 14 x 14 bins, 25 RoIs per image (100).
Box sizes follow the demo's proposals (sqrt(area) log-normal around 38 px, aspect 1.6: about
95% of the RoIs land on p2, as in a recorded training step). Each pooler runs whole
(level assignment, one kernel call per level, gradients back to every level), as in training.

The two kernels alternate within one process (the order flips every repeat); it prints median
times, the ratio torchvision / kpext with a bootstrap interval over the repeats, the thread
count, and the CPU's model name and flags. On a shared machine, compare ratios, not times.
"""

import argparse
import copy
import random
import statistics
import sys
import time
from typing import Callable, Dict, List, Sequence, Tuple

import torch
from kpext_bench.machine import cpu_model_name

import kpext  # noqa: F401  (kpext.compat first)
from kpext.engine.amp import cpu_flags
from kpext.modeling.roi_align import use_fast_cpu_roi_align

from detectron2.modeling.poolers import ROIPooler, assign_boxes_to_levels
from detectron2.structures import Boxes

# The demo's FPN levels p2..p5 and their strides.
STRIDES = (4, 8, 16, 32)
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def demo_boxes(per_image: int, image_size: int, generator: torch.Generator) -> Boxes:
    """``per_image`` x 4 boxes like the demo's proposals: sqrt(area) log-normal (median 38 px),
    taller than wide (height / width 1.6), clipped to the image."""
    g = generator
    side = 38.0 * torch.exp(0.6 * torch.randn(per_image, generator=g))
    aspect = 1.6 * torch.exp(0.25 * torch.randn(per_image, generator=g))
    wh = torch.stack([side / aspect.sqrt(), side * aspect.sqrt()], dim=1).clamp(2, image_size)
    xy = torch.rand(per_image, 2, generator=g) * (image_size - wh)
    return Boxes(torch.cat([xy, xy + wh], dim=1))


class Workload:
    """One pooler and its inputs: FPN features (N x C x H_l x W_l per level) and boxes."""

    def __init__(self, name: str, resolution: int, per_image: int, args, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.name = f"{name} {resolution}x{resolution}, {per_image * args.images} RoIs"
        size, n, c = args.image_size, args.images, args.channels
        self.features = [torch.randn(n, c, size // s, size // s, generator=g) for s in STRIDES]
        self.boxes = [demo_boxes(per_image, size, g) for _ in range(n)]
        self.stock = ROIPooler(
            (resolution, resolution), tuple(1.0 / s for s in STRIDES), 0, "ROIAlignV2"
        )
        self.fast = copy.deepcopy(self.stock)
        assert use_fast_cpu_roi_align(self.fast) == len(STRIDES)
        num_rois = per_image * n
        self.grad = torch.randn(num_rois, c, resolution, resolution, generator=g)

    def run(self, pooler: ROIPooler) -> Tuple[float, float, List[torch.Tensor]]:
        """One forward + backward: (forward seconds, backward seconds, feature gradients)."""
        features = [f.detach().requires_grad_() for f in self.features]
        start = time.perf_counter()
        out = pooler(features, self.boxes)
        middle = time.perf_counter()
        out.backward(self.grad)
        end = time.perf_counter()
        return middle - start, end - middle, [f.grad for f in features]

    def level_counts(self) -> List[int]:
        """How many RoIs each level's pooler gets (p2..p5), as ROIPooler assigns them."""
        levels = assign_boxes_to_levels(self.boxes, 2, 5, 224, 4)
        return [int((levels == i).sum()) for i in range(len(STRIDES))]

    def max_difference(self) -> float:
        """Largest difference of the two kernels' outputs and gradients."""
        _, _, fast_grads = self.run(self.fast)
        _, _, stock_grads = self.run(self.stock)
        out = (self.fast(self.features, self.boxes) - self.stock(self.features, self.boxes)).abs()
        grads = max(float((a - b).abs().max()) for a, b in zip(fast_grads, stock_grads))
        return max(float(out.max()), grads)


def bootstrap_ratio(
    numerator: Sequence[float], denominator: Sequence[float], resamples: int, seed: int = 0
) -> Tuple[float, float]:
    """95% interval of median(numerator) / median(denominator), repeats resampled in pairs."""
    rng = random.Random(seed)
    n = len(numerator)
    ratios = []
    for _ in range(resamples):
        pick = [rng.randrange(n) for _ in range(n)]
        ratios.append(
            statistics.median(numerator[i] for i in pick)
            / statistics.median(denominator[i] for i in pick)
        )
    ratios.sort()
    return ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]


def measure(workload: Workload, repeats: int, warmup: int) -> Dict[str, Dict[str, List[float]]]:
    """Times of both kernels, alternated (the order flips every repeat)."""
    variants: Dict[str, Callable] = {"torchvision": workload.stock, "kpext": workload.fast}
    times = {k: {"forward": [], "backward": [], "total": []} for k in variants}
    for rep in range(warmup + repeats):
        order = list(variants) if rep % 2 == 0 else list(reversed(variants))
        for name in order:
            forward, backward, _ = workload.run(variants[name])
            if rep >= warmup:
                times[name]["forward"].append(forward)
                times[name]["backward"].append(backward)
                times[name]["total"].append(forward + backward)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repeats, one thread count")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--box-rois", type=int, default=128, help="box head RoIs per image")
    parser.add_argument("--keypoint-rois", type=int, default=25, help="keypoint RoIs per image")
    args = parser.parse_args(argv)
    repeats, warmup, resamples = (5, 1, 500) if args.quick else (args.repeats, 2, 2000)
    threads = [int(t) for t in args.threads.split(",")]
    if args.quick:
        threads = threads[:1]

    flags = ", ".join(f"{f} {'yes' if f in cpu_flags() else 'no'}" for f in FLAGS)
    print(f"CPU: {cpu_model_name()}; flags: {flags}")
    print(
        f"torch {torch.__version__}; {repeats} repeats after {warmup} warm-up, kernels alternated"
    )
    workloads = [
        Workload("box pooler", 7, args.box_rois, args, seed=0),
        Workload("keypoint pooler", 14, args.keypoint_rois, args, seed=1),
    ]
    for w in workloads:
        print(
            f"{w.name}: RoIs per level p2..p5 {w.level_counts()}; "
            f"largest difference kpext - torchvision {w.max_difference():.2g}"
        )
    print()
    columns = ("workload", "threads", "torchvision ms", "kpext ms", "fwd x", "bwd x", "fwd+bwd x")
    print(f"{columns[0]:<34}" + "".join(f"{c:>15}" for c in columns[1:]) + "  [95% interval]")
    for t in threads:
        torch.set_num_threads(t)
        for w in workloads:
            times = measure(w, repeats, warmup)
            tv, kp = times["torchvision"], times["kpext"]
            med = {
                k: {part: statistics.median(v) for part, v in d.items()} for k, d in times.items()
            }
            tv_med, kp_med = med["torchvision"], med["kpext"]
            low, high = bootstrap_ratio(tv["total"], kp["total"], resamples)
            cells = (
                f"{t}",
                f"{tv_med['total'] * 1e3:.1f}",
                f"{kp_med['total'] * 1e3:.1f}",
                f"{tv_med['forward'] / kp_med['forward']:.2f}",
                f"{tv_med['backward'] / kp_med['backward']:.2f}",
                f"{tv_med['total'] / kp_med['total']:.2f}",
            )
            print(
                f"{w.name:<34}" + "".join(f"{c:>15}" for c in cells) + f"  [{low:.2f}, {high:.2f}]"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
