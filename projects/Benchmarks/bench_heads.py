#!/usr/bin/env python
"""Keypoint heads side by side on one frozen detector, several seeds, intervals.

    make bench                    # full run (see the Makefile for its measured duration)
    BENCH_QUICK=1 make bench      # smoke run (a few minutes): tiny data, few iterations, 2 seeds

1. A shared detector (backbone, RPN, box head of the synthetic CPU config) is trained once
   as a Keypoint R-CNN with stock's head, which is then dropped (``BENCH_DET_OBJECTIVE
   keypoints``: features that carry keypoint information; ``boxes``: without a keypoint
   head, as before 2026-12-03), cached under ``output/bench/`` keyed by config and data;
   its features, proposals and detections are cached (``kpext_bench.shared_detector``).
2. Every head trains on that frozen detector for the same iterations and data order
   per seed (``kpext_bench.head_training``), seeds interleaved across heads.
3. Two OKS keypoint APs per head on ``kpext_synth_classic_val``: on the ground-truth boxes
   (keypoint localisation alone) and on the shared detector's detections; the error
   classes of each (good / jitter / inversion / swap / miss). The regime rows come first:
   stock at 1/4, 1/2 and 2x the head iterations, and a weakened stock head (28 x 28 maps)
   that the instrument must see below stock.
4. Paired bootstrap over val images and seeds: each head's AP minus stock's, with a
   95% interval (``kpext_bench.keypoint_ap``).
5. Timing in this process, heads alternated round by round, median of repeats, as
   ratios to stock: keypoint branch ms per box (pool + head + decode) at the CPU
   config and at full size (R50-FPN, 800 px short side, Detectron2's 8 x 512 stock
   head, 20 and 100 boxes), decoding alone, head training s/iter.

Writes ``output/bench/heads.json`` (``rows``: one per head), ``heads.md`` and ``heads.png``.

Two regimes (BENCH_REGIME): "short" (``make bench``, 200 head iterations in float32) and
"plateau" (``make bench-heads-plateau``: 6400 head iterations, where stock's curve flattens,
stock's curve at 1600 to 12800, 2 seeds, bf16 autocast and channels-last where the CPU computes
bf16 natively, a float32 check row, the plateau's candidate rows, no full-size timing; writes
``heads_plateau.*``; about 2.5 hours a seed on two CPU cores: a GPU's job, or
``BENCH_ITERS=1600`` for the hour-long table of heads trained 8x longer than ``make bench``).

Environment: BENCH_QUICK=1; BENCH_REGIME ("short", default, or "plateau"); BENCH_HEAD_PRECISION
("float32" or "bf16": the regime's choice overridden); BENCH_CHANNELS_LAST (0 or 1);
BENCH_HEADS (comma-separated row names); BENCH_SEEDS (default 3); BENCH_ITERS (head
iterations); BENCH_DET_ITERS (detector iterations); BENCH_OUT (default output/bench);
BENCH_THREADS (torch threads, default all cores);
BENCH_SKIP_FULLSIZE=1 (no full-size timing); BENCH_FLIPS=1 (also train on mirrored images);
BENCH_DET_OBJECTIVE ("keypoints", default, or "boxes": the shared detector's training objective);
BENCH_HEAD_LR (the heads' learning rate; default the configs'); BENCH_DEVICE ("cpu", default, or
"cuda": the shared detector, its caches, head training, evaluation and timing on the GPU, as
tools/gpu_check.sh runs it).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
import torch
from kpext_bench.head_training import HeadPrecision, HeadResult, evaluate_head, train_head
from kpext_bench.heads_report import REFERENCE, markdown_table, mean_shares, plot
from kpext_bench.keypoint_ap import paired_bootstrap
from kpext_bench.machine import cpu_model_name
from kpext_bench.reports import git_commit, write_report
from kpext_bench.shared_detector import (
    cached_images_on_disk,
    detector_cfg,
    load_frozen_model,
    train_shared_detector,
)
from kpext_bench.timing import (
    KeypointBranchTiming,
    count_parameters,
    fixed_boxes,
    interleaved_branch_timing,
)

import kpext
from kpext.data import dataset_oks_sigmas
from kpext.data.builtin import default_datasets_root, register_synthetic_split
from kpext.engine.amp import native_bf16_flags
from kpext.modeling.decoding import training_flip_indices
from kpext_synth.people import SyntheticConfig, ensure_synthetic_dataset

from detectron2.config import get_cfg
from detectron2.data import MetadataCatalog
from detectron2.modeling import build_model
from detectron2.utils.logger import setup_logger

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class Variant:
    """One row of the benchmark.

    ``config``: a file of configs/synthetic; ``coco_config``: its full-size twin in
    configs/coco (timing only); ``overrides``: config options on top. ``weights_from``:
    the row whose trained head this row evaluates instead of training its own (exactly
    paired: same weights, same seeds). ``image_flip``: evaluate with the image-level flip
    test (mirror the image, run the head, un-mirror, average heatmaps).
    """

    name: str
    config: str
    coco_config: str
    overrides: Tuple[str, ...] = ()
    weights_from: Optional[str] = None
    image_flip: bool = False
    # Image-flip rows: the timed row whose branch they run twice.
    timing_from: Optional[str] = None
    # The regime's checks: this row trains for factor x the bench's head iterations
    # (stock's curve), and is not timed (the same branch as the row it repeats).
    iterations_factor: float = 1.0
    regime: bool = False
    # The regimes (:data:`REGIMES`) whose table has this row.
    regimes: Tuple[str, ...] = ("short", "plateau")
    # "float32": this row trains in float32 whatever the regime's precision (the regime
    # check that bf16 autocast does not change stock's AP); None: the regime's.
    precision: Optional[str] = None
    # A regime row compared with this row instead of stock only (paired, same seeds).
    compare_with: Optional[str] = None


VARIANTS = [
    Variant("stock", "keypoint_rcnn_R18_FPN_stock.yaml", "keypoint_rcnn_R50_FPN_stock.yaml"),
    # KpextKRCNNHead has the stock head's network, loss and parameter names (tested bitwise):
    # evaluated on stock's trained weights, its row isolates the decoding.
    Variant(
        "kpext_krcnn",
        "keypoint_rcnn_R18_FPN_kpext.yaml",
        "keypoint_rcnn_R50_FPN_kpext.yaml",
        weights_from="stock",
    ),
    Variant(
        "gaussian", "keypoint_rcnn_R18_FPN_gaussian.yaml", "keypoint_rcnn_R50_FPN_gaussian.yaml"
    ),
    Variant(
        "hourglass", "keypoint_rcnn_R18_FPN_hourglass.yaml", "keypoint_rcnn_R50_FPN_hourglass.yaml"
    ),
    Variant(
        "gaussian_oks",
        "keypoint_rcnn_R18_FPN_gaussian_oks.yaml",
        "keypoint_rcnn_R50_FPN_gaussian_oks.yaml",
        regimes=("short",),
    ),
    Variant(
        "gaussian_softmax",
        "keypoint_rcnn_R18_FPN_gaussian_softmax.yaml",
        "keypoint_rcnn_R50_FPN_gaussian_softmax.yaml",
        regimes=("short",),
    ),
    # Like for like: stock's own network (KRCNNCodecKeypointHead) with another target and
    # decoder; only the codec (and its predictor start) differs from stock.
    Variant(
        "krcnn_gaussian",
        "keypoint_rcnn_R18_FPN_krcnn_gaussian.yaml",
        "keypoint_rcnn_R50_FPN_krcnn_gaussian.yaml",
    ),
    Variant(
        "krcnn_softmax_gaussian",
        "keypoint_rcnn_R18_FPN_krcnn_softmax_gaussian.yaml",
        "keypoint_rcnn_R50_FPN_krcnn_softmax_gaussian.yaml",
    ),
    # Person-level left/right decoding (TEST.KPEXT.LEFT_RIGHT person) on stock's trained
    # weights, and on the like-for-like softmax-Gaussian head's: decoding rows, no training.
    Variant(
        "kpext_krcnn_lr_person",
        "keypoint_rcnn_R18_FPN_kpext.yaml",
        "keypoint_rcnn_R50_FPN_kpext.yaml",
        overrides=("TEST.KPEXT.LEFT_RIGHT", "person"),
        weights_from="stock",
    ),
    Variant(
        "krcnn_softmax_gaussian_lr_person",
        "keypoint_rcnn_R18_FPN_krcnn_softmax_gaussian.yaml",
        "keypoint_rcnn_R50_FPN_krcnn_softmax_gaussian.yaml",
        overrides=("TEST.KPEXT.LEFT_RIGHT", "person"),
        weights_from="krcnn_softmax_gaussian",
    ),
    # The flip tests, on stock's trained weights decoded by KpextKRCNNHead: mirrored RoI
    # features (TEST.KPEXT.FLIP) and mirrored images.
    Variant(
        "kpext_krcnn_flip_roi",
        "keypoint_rcnn_R18_FPN_kpext.yaml",
        "keypoint_rcnn_R50_FPN_kpext.yaml",
        overrides=("TEST.KPEXT.FLIP", "True"),
        weights_from="stock",
        regimes=("short",),
    ),
    Variant(
        "kpext_krcnn_flip_image",
        "keypoint_rcnn_R18_FPN_kpext.yaml",
        "keypoint_rcnn_R50_FPN_kpext.yaml",
        weights_from="stock",
        image_flip=True,
        timing_from="kpext_krcnn",
    ),
]
# The plateau's candidates (issue 32): decoding rows on trained Gaussian heads (DARK against
# argmax on the same weights), a finer map, a global-context block, and the decoding rows on top
# of the like-for-like Gaussian network. Too slow for the short regime's 45 minutes.
_ARGMAX = ("MODEL.KPEXT.TARGET.REFINE", "none")
_PERSON = ("TEST.KPEXT.LEFT_RIGHT", "person")


def image_flip_rows(source: str, config: str, coco_config: str) -> List[Variant]:
    """The plateau's image flip test on ``source``'s trained weights, alone and with person
    left/right decoding; timed as twice the branch of ``source`` and of its ``_lr_person`` row."""
    return [
        Variant(
            f"{source}_flip_image{person}",
            config,
            coco_config,
            overrides=_PERSON if person else (),
            weights_from=source,
            image_flip=True,
            timing_from=f"{source}{person}",
            regimes=("plateau",),
        )
        for person in ("", "_lr_person")
    ]


PLATEAU_VARIANTS = [
    Variant(
        "gaussian_argmax",
        "keypoint_rcnn_R18_FPN_gaussian.yaml",
        "keypoint_rcnn_R50_FPN_gaussian.yaml",
        overrides=_ARGMAX,
        weights_from="gaussian",
        regimes=("plateau",),
    ),
    Variant(
        "krcnn_gaussian_argmax",
        "keypoint_rcnn_R18_FPN_krcnn_gaussian.yaml",
        "keypoint_rcnn_R50_FPN_krcnn_gaussian.yaml",
        overrides=_ARGMAX,
        weights_from="krcnn_gaussian",
        regimes=("plateau",),
    ),
    # 112 x 112 maps (a second 2x bilinear upsampling), the same target width in pixels.
    Variant(
        "krcnn_softmax_gaussian_112",
        "keypoint_rcnn_R18_FPN_krcnn_softmax_gaussian.yaml",
        "keypoint_rcnn_R50_FPN_krcnn_softmax_gaussian.yaml",
        overrides=("MODEL.KPEXT.KRCNN.UP_SCALE", "4", "MODEL.KPEXT.TARGET.SIGMA", "3.0"),
        regimes=("plateau",),
    ),
    # Stock's network and target with a global-context block (MODEL.KPEXT.KRCNN.GLOBAL_CONTEXT):
    # every position sees the RoI's mean feature, which way the person faces included.
    Variant(
        "kpext_krcnn_context",
        "keypoint_rcnn_R18_FPN_kpext.yaml",
        "keypoint_rcnn_R50_FPN_kpext.yaml",
        overrides=("MODEL.KPEXT.KRCNN.GLOBAL_CONTEXT", "True"),
        regimes=("plateau",),
    ),
    # SimCC (RTMPose's head) inside the RoI head: 1-D x and y classification with Gaussian
    # labels (softmax_gaussian on separable logits), stock's convs; and its person decoding.
    Variant(
        "simcc",
        "keypoint_rcnn_R18_FPN_simcc.yaml",
        "keypoint_rcnn_R50_FPN_simcc.yaml",
        regimes=("plateau",),
    ),
    Variant(
        "simcc_lr_person",
        "keypoint_rcnn_R18_FPN_simcc.yaml",
        "keypoint_rcnn_R50_FPN_simcc.yaml",
        overrides=_PERSON,
        weights_from="simcc",
        regimes=("plateau",),
    ),
    # The decoding rows on top of the hourglass, the network that wins at 1600 and 6400
    # iterations.
    Variant(
        "hourglass_lr_person",
        "keypoint_rcnn_R18_FPN_hourglass.yaml",
        "keypoint_rcnn_R50_FPN_hourglass.yaml",
        overrides=_PERSON,
        weights_from="hourglass",
        regimes=("plateau",),
    ),
    *image_flip_rows(
        "hourglass", "keypoint_rcnn_R18_FPN_hourglass.yaml", "keypoint_rcnn_R50_FPN_hourglass.yaml"
    ),
    *image_flip_rows(
        "krcnn_softmax_gaussian",
        "keypoint_rcnn_R18_FPN_krcnn_softmax_gaussian.yaml",
        "keypoint_rcnn_R50_FPN_krcnn_softmax_gaussian.yaml",
    ),
]
VARIANTS = VARIANTS + PLATEAU_VARIANTS
# The regime checks (shown before any head is judged): stock's curve at four lengths, and a
# deliberately weakened stock head the instrument must see below stock. Pooling at 7 x 7
# instead of 14 x 14 gives stock's unchanged network 28 x 28 heatmaps instead of 56 x 56.
CURVE_FACTORS = (0.25, 0.5, 2.0)
REGIME_VARIANTS = [
    Variant(
        f"stock_x{factor:g}",
        "keypoint_rcnn_R18_FPN_stock.yaml",
        "keypoint_rcnn_R50_FPN_stock.yaml",
        iterations_factor=factor,
        regime=True,
    )
    for factor in CURVE_FACTORS
] + [
    Variant(
        "stock_weak_28",
        "keypoint_rcnn_R18_FPN_stock.yaml",
        "keypoint_rcnn_R50_FPN_stock.yaml",
        overrides=("MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION", "7"),
        regime=True,
    ),
    # The plateau trains under bf16 autocast: stock in float32 at a quarter of the length,
    # paired with the bf16 row of that length, must come out within seed noise.
    Variant(
        f"stock_float32_x{CURVE_FACTORS[0]:g}",
        "keypoint_rcnn_R18_FPN_stock.yaml",
        "keypoint_rcnn_R50_FPN_stock.yaml",
        iterations_factor=CURVE_FACTORS[0],
        regime=True,
        regimes=("plateau",),
        precision="float32",
        compare_with=f"stock_x{CURVE_FACTORS[0]:g}",
    ),
]
VARIANTS = VARIANTS + REGIME_VARIANTS
# The benchmark's data: synthetic people in the classic style only (the generator's settings
# before styles existed: the same images as the runs in the README). On the default splits
# (five styles, close-ups, degraded images) every head stayed at 0.0-0.3 keypoint AP after 200
# iterations on the 300-iteration detector (measured 2026-12-01): a floor where the instrument
# cannot tell heads apart.
BENCH_SPLITS = {
    "classic_train": SyntheticConfig(num_images=1200, seed=0),
    "classic_val": SyntheticConfig(num_images=100, seed=1),
}
BENCH_DATA = [
    "DATASETS.TRAIN", '("kpext_synth_classic_train",)',
    "DATASETS.TEST", '("kpext_synth_classic_val",)',
]  # fmt: skip

# Keypoint RoIs per image for the head training (Detectron2's default 512, the synthetic
# config's 128): fewer RoIs per iteration make a head iteration cheap on a CPU.
BENCH_OVERRIDES = ["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32"]
# The shared detector's default objective (BENCH_DET_OBJECTIVE): see kpext_bench.shared_detector.
DET_OBJECTIVE = "keypoints"

logger = logging.getLogger("kpext.bench")


# The regimes (BENCH_REGIME): "short", the table of `make bench` (200 head iterations in
# float32, its history since 2026-12-03), and "plateau" (`make bench-heads-plateau`): heads
# trained until stock's curve is flat, under bf16 autocast and channels-last where the CPU
# computes bf16 natively (kpext.engine.amp), its report heads_plateau.*. Stock's curve on
# gt boxes (seed 0, 2026-12-07): 22.3 / 26.1 / 29.1 / 33.1 / 34.9 / 33.9 AP at 400 / 800 /
# 1600 / 3200 / 6400 / 12800 head iterations: 6400 is the first length whose doubling gains
# under 1 AP (docs/benchmarks.md).
REGIMES = ("short", "plateau")
HEAD_ITERATIONS = {"short": 200, "plateau": 6400}


class Settings:
    """The run's sizes, from the environment (full run or BENCH_QUICK smoke run)."""

    def __init__(self, env=os.environ):
        self.quick = env.get("BENCH_QUICK", "0") not in ("", "0")
        self.regime = env.get("BENCH_REGIME", "short")
        if self.regime not in REGIMES:
            raise SystemExit(f"BENCH_REGIME: {self.regime!r}; expected one of {REGIMES}")
        self.report_name = "heads" if self.regime == "short" else f"heads_{self.regime}"
        self.out = env.get("BENCH_OUT", os.path.join("output", "bench"))
        # The plateau: 2 seeds (its rows cost 32x the short's: about 2.5 hours a seed on two
        # CPU cores).
        seeds = "2" if self.quick or self.regime == "plateau" else "3"
        self.seeds = list(range(int(env.get("BENCH_SEEDS", seeds))))
        default_iters = 8 if self.quick else HEAD_ITERATIONS[self.regime]
        self.head_iters = int(env.get("BENCH_ITERS", str(default_iters)))
        self.det_iters = int(env.get("BENCH_DET_ITERS", "10" if self.quick else "600"))
        self.train_limit = 24 if self.quick else None
        self.val_limit = 12 if self.quick else None
        self.timing_repeats = 2 if self.quick else 7
        self.fullsize_repeats = 1 if self.quick else 3
        self.fullsize_boxes = (4,) if self.quick else (20, 100)
        # Full size: 800 px short side (Detectron2's COCO test size); the smoke run only
        # checks the path, on a small image.
        self.fullsize_image = (256, 384) if self.quick else (800, 1216)
        # The full-size branch times are the untrained networks' (the short regime's table has
        # them): the plateau skips them unless BENCH_SKIP_FULLSIZE=0.
        skip = "1" if self.regime == "plateau" else "0"
        self.skip_fullsize = env.get("BENCH_SKIP_FULLSIZE", skip) not in ("", "0")
        # Mirrored copies of the training images (the config's flip augmentation) double the
        # feature cache's time and memory; off by default, the same for every head either way.
        self.flips = env.get("BENCH_FLIPS", "0") not in ("", "0")
        self.threads = int(env.get("BENCH_THREADS", "0")) or os.cpu_count() or 1
        self.device = bench_device(env)
        self.precision = head_precision(self.regime, self.device, env)
        # The shared detector's objective (kpext_bench.shared_detector): "keypoints" trains
        # it as a Keypoint R-CNN with stock's head (then dropped), "boxes" without one.
        self.det_objective = env.get("BENCH_DET_OBJECTIVE", DET_OBJECTIVE)
        # The heads' learning rate (default: the configs' SOLVER.BASE_LR).
        self.head_lr = float(env["BENCH_HEAD_LR"]) if env.get("BENCH_HEAD_LR") else None
        wanted = [n for n in env.get("BENCH_HEADS", "").split(",") if n]
        known = [v.name for v in VARIANTS if self.regime in v.regimes]
        unknown = sorted(set(wanted) - set(known))
        if unknown:
            raise SystemExit(f"BENCH_HEADS: unknown head(s) {unknown}; known: {known}")
        # The reference and the rows whose weights a wanted row evaluates always run.
        needed = set(wanted) | {REFERENCE}
        for v in VARIANTS:
            if v.name in wanted:
                needed |= {v.weights_from, v.timing_from}
        self.variants = [
            v for v in VARIANTS if self.regime in v.regimes and (not wanted or v.name in needed)
        ]

    def variant_precision(self, variant: Variant) -> HeadPrecision:
        """The regime's head precision, or float32 for a row that asks for it."""
        return HeadPrecision() if variant.precision == "float32" else self.precision


def head_precision(regime: str, device: str, env=os.environ) -> HeadPrecision:
    """How heads train: float32 in the short regime; in the plateau, bf16 autocast where the
    device computes bf16 natively (a CUDA GPU, or a CPU with AMX or AVX-512 BF16) and
    channels-last on the CPU. BENCH_HEAD_PRECISION ("float32" or "bf16") and
    BENCH_CHANNELS_LAST (0 or 1) override either."""
    cpu = torch.device(device).type == "cpu"
    bf16 = regime == "plateau" and (not cpu or bool(native_bf16_flags()))
    channels_last = regime == "plateau" and cpu
    asked = env.get("BENCH_HEAD_PRECISION", "")
    if asked not in ("", "float32", "bf16"):
        raise SystemExit(f"BENCH_HEAD_PRECISION: {asked!r}; expected float32 or bf16")
    if asked:
        bf16 = asked == "bf16"
    if env.get("BENCH_CHANNELS_LAST", ""):
        channels_last = env["BENCH_CHANNELS_LAST"] not in ("0",)
    return HeadPrecision(bf16=bf16, channels_last=channels_last)


def load_cfg(path: str, overrides=()):
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(path)
    cfg.merge_from_list(list(overrides))
    return cfg


def bench_device(env=os.environ) -> str:
    """BENCH_DEVICE: where the bench runs ("cpu", the synthetic configs' own, or "cuda")."""
    return env.get("BENCH_DEVICE", "") or "cpu"


def synthetic_cfg(config: str, overrides=BENCH_OVERRIDES):
    """A synthetic config on the bench's data and device (BENCH_DEVICE; the CPU gives the
    configs' own MODEL.DEVICE, so the detector's cache key is unchanged), with the bench's
    head-training overrides (none for the detector)."""
    data = BENCH_DATA + ["MODEL.DEVICE", bench_device()]
    cfg = load_cfg(os.path.join(REPO, "configs", "synthetic", config), data + list(overrides))
    cfg.freeze()
    return cfg


def coco_subset(json_file: str, image_ids) -> "object":
    """A pycocotools COCO of the given images only: a subset is scored against itself."""
    from pycocotools.coco import COCO

    with open(json_file) as f:
        data = json.load(f)
    keep = set(image_ids)
    data["images"] = [im for im in data["images"] if im["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    return coco


def prepare_bench_data(root: str) -> None:
    """Generate (if missing or stale) and register the bench's classic-style splits."""
    ensure_synthetic_dataset(os.path.join(root, "synthetic"), BENCH_SPLITS)
    for split in BENCH_SPLITS:
        register_synthetic_split(split, root)


def variant_cfg(variant: Variant, head_lr: Optional[float] = None):
    lr = ["SOLVER.BASE_LR", str(head_lr)] if head_lr else []
    return synthetic_cfg(variant.config, BENCH_OVERRIDES + lr + list(variant.overrides))


def variant_iterations(settings: Settings, variant: Variant) -> int:
    return max(1, round(settings.head_iters * variant.iterations_factor))


def run_heads(settings: Settings, detector_weights: str, caches, coco_gt, sigmas):
    """Train and evaluate every head for every seed (heads alternate within a seed)."""
    results: Dict[str, List[HeadResult]] = {v.name: [] for v in settings.variants}
    models = {}
    for seed in settings.seeds:
        trained_heads = {}
        for variant in settings.variants:
            name = variant.name
            cfg = variant_cfg(variant, settings.head_lr)
            torch.manual_seed(seed)
            model = load_frozen_model(cfg, detector_weights)
            start = time.perf_counter()
            if variant.weights_from:
                head = trained_heads[variant.weights_from]
                model.roi_heads.keypoint_head.load_state_dict(head.state_dict())
                times = results[variant.weights_from][-1].iteration_s
            else:
                iterations = variant_iterations(settings, variant)
                precision = settings.variant_precision(variant)
                times = train_head(model, cfg, caches.train, iterations, seed, precision).seconds
                trained_heads[name] = model.roi_heads.keypoint_head
            flip = {}
            if variant.image_flip:
                flip = {"mirrored_cache": caches.val_mirrored, "flip_indices": flip_indices(cfg)}
            result = evaluate_head(
                model,
                caches.val,
                cfg.DATASETS.TEST[0],
                coco_gt,
                sigmas,
                counterparts=flip_indices(cfg),
                **flip,
            )
            result.iteration_s = times
            results[name].append(result)
            logger.info(
                "bench: %s seed %d: AP(gt boxes) %.1f, AP(detections) %.1f, %.3f s/iter, %.0f s",
                name,
                seed,
                result.ap_gt,
                result.ap_det,
                result.train_s_per_iter,
                time.perf_counter() - start,
            )
            if seed == settings.seeds[0]:
                models[name] = model
    return results, models


def flip_indices(cfg) -> List[int]:
    return training_flip_indices(cfg, "the bench's image flip test")


def timed_variants(settings: Settings) -> List[Variant]:
    """Rows whose keypoint branch is timed: image-flip rows run their source's branch twice,
    stock's curve rows run stock's."""
    return [v for v in settings.variants if not v.image_flip and v.iterations_factor == 1.0]


def cpu_config_timing(settings: Settings, models, val_cache):
    """Branch and decode ms/box of the trained seed-0 heads on one val image, alternated."""
    image = val_cache[0]
    features = {f: t.float() for f, t in image.features.items()}
    boxes = fixed_boxes(image.targets.image_size, 20)
    timing = interleaved_branch_timing(
        {v.name: (models[v.name], features) for v in timed_variants(settings)},
        boxes,
        settings.timing_repeats,
        trained=True,
    )
    return with_image_flip_timing(settings, timing)


def with_image_flip_timing(settings: Settings, timing):
    """Image-flip rows: twice their source's branch (and, outside the branch, a second
    backbone pass over the mirrored image, not counted here); curve rows: stock's."""
    for v in settings.variants:
        if v.image_flip:
            t = timing[v.timing_from]
            timing[v.name] = KeypointBranchTiming(2 * t.pool_ms, 2 * t.head_ms, 2 * t.decode_ms)
        elif v.iterations_factor != 1.0:
            timing[v.name] = timing[REFERENCE]
    return timing


def fullsize_timing(settings: Settings):
    """Branch ms/box of the full-size R50-FPN configs (untrained), 800 x 1216 image."""
    rows = {}
    models = {}
    for v in timed_variants(settings):
        cfg = load_cfg(
            os.path.join(REPO, "configs", "coco", v.coco_config),
            ["MODEL.WEIGHTS", "", "MODEL.DEVICE", settings.device, *v.overrides],
        )
        torch.manual_seed(0)
        models[v.name] = build_model(cfg).eval()
    first = next(iter(models.values()))
    with torch.no_grad():
        image = torch.rand(3, *settings.fullsize_image) * 255
        images = first.preprocess_image([{"image": image}])
        features = first.backbone(images.tensor)
    for num_boxes in settings.fullsize_boxes:
        boxes = fixed_boxes(settings.fullsize_image, num_boxes)
        timing = interleaved_branch_timing(
            {name: (m, features) for name, m in models.items()},
            boxes,
            settings.fullsize_repeats,
            trained=False,
        )
        for name, t in with_image_flip_timing(settings, timing).items():
            rows.setdefault(name, {})[f"branch_ms_per_box_{num_boxes}"] = t.branch_ms
            rows[name][f"decode_ms_per_box_{num_boxes}"] = t.decode_ms
            source = (
                name
                if name in models
                else next(v.weights_from for v in settings.variants if v.name == name) or REFERENCE
            )
            rows[name]["params"] = count_parameters(models[source].roi_heads.keypoint_head)
    return rows


def paired_with_own_reference(settings: Settings, results) -> dict:
    """Rows with ``compare_with``: their AP on gt boxes minus that row's (paired bootstrap)."""
    pairs = {}
    for v in settings.variants:
        if v.compare_with:
            matches = {n: [r.matches_gt for r in results[n]] for n in (v.name, v.compare_with)}
            pairs[v.name] = paired_bootstrap(matches, v.compare_with)[v.name]
    return pairs


def build_rows(settings, results, models, diffs_gt, diffs_det, timing, fullsize):
    stock_t = timing[REFERENCE]
    pairs = paired_with_own_reference(settings, results)
    rows = []
    for variant in settings.variants:
        name = variant.name
        runs = results[name]
        ap_gt = [r.ap_gt for r in runs]
        ap_det = [r.ap_det for r in runs]
        t = timing[name]
        row = {
            "name": name,
            "config": f"configs/synthetic/{variant.config}",
            "overrides": list(variant.overrides),
            "weights_from": variant.weights_from,
            "image_flip": variant.image_flip,
            "head": variant_cfg(variant).MODEL.ROI_KEYPOINT_HEAD.NAME,
            "regime": variant.regime,
            "iterations": variant_iterations(settings, variant),
            "precision": settings.variant_precision(variant).label,
            "errors_gt": mean_shares([r.errors_gt for r in runs]),
            "errors_det": mean_shares([r.errors_det for r in runs]),
            "ap_gt": float(np.mean(ap_gt)),
            "ap_gt_std": float(np.std(ap_gt, ddof=1)) if len(ap_gt) > 1 else 0.0,
            "ap_gt_runs": ap_gt,
            "ap_det": float(np.mean(ap_det)),
            "ap_det_std": float(np.std(ap_det, ddof=1)) if len(ap_det) > 1 else 0.0,
            "ap_det_runs": ap_det,
            "diff_gt_vs_stock": diffs_gt[name].mean,
            "diff_gt_ci95": [diffs_gt[name].low, diffs_gt[name].high],
            "diff_det_vs_stock": diffs_det[name].mean,
            "diff_det_ci95": [diffs_det[name].low, diffs_det[name].high],
            "branch_ms_per_box": t.branch_ms,
            "branch_vs_stock": t.branch_ms / stock_t.branch_ms,
            "decode_ms_per_box": t.decode_ms,
            "decode_speedup": stock_t.decode_ms / t.decode_ms,
            "train_s_per_iter": float(np.median([r.train_s_per_iter for r in runs])),
            "train_vs_stock": float(np.median([r.train_s_per_iter for r in runs]))
            / float(np.median([r.train_s_per_iter for r in results[REFERENCE]])),
            "params_cpu_config": count_parameters(models[name].roi_heads.keypoint_head),
        }
        if variant.compare_with:
            pair = pairs[name]
            row["compare_with"] = variant.compare_with
            row["diff_gt_vs_pair"] = pair.mean
            row["diff_gt_vs_pair_ci95"] = [pair.low, pair.high]
            row["train_vs_pair"] = row["train_s_per_iter"] / float(
                np.median([r.train_s_per_iter for r in results[variant.compare_with]])
            )
        if fullsize:
            full = fullsize[name]
            row["fullsize"] = full
            row["params_fullsize"] = full["params"]
            for n in settings.fullsize_boxes:
                row[f"fullsize_branch_vs_stock_{n}"] = (
                    full[f"branch_ms_per_box_{n}"] / fullsize[REFERENCE][f"branch_ms_per_box_{n}"]
                )
        rows.append(row)
    return rows


class Caches(NamedTuple):
    """The frozen detector's cached outputs: training items, val images, mirrored val images."""

    train: list
    val: list
    val_mirrored: Optional[list]


def build_caches(settings: Settings, cfg, detector_weights: str) -> Caches:
    """Features, proposals and detections of the shared detector, kept beside its checkpoint."""
    box_model = load_frozen_model(detector_cfg(cfg, settings.det_iters, ""), detector_weights)
    folder = os.path.dirname(detector_weights)

    def cache(file_name: str, dataset: str, train: bool, flips: bool, limit):
        path = os.path.join(folder, file_name)
        return cached_images_on_disk(
            path, box_model, cfg, dataset, train=train, flips=flips, limit=limit
        )

    flips = settings.flips and cfg.INPUT.RANDOM_FLIP == "horizontal"
    train_name, val_name = cfg.DATASETS.TRAIN[0], cfg.DATASETS.TEST[0]
    train_file = f"train_cache{'_flips' if flips else ''}.pt"
    train = cache(train_file, train_name, True, flips, settings.train_limit)
    val = cache("val_cache.pt", val_name, False, False, settings.val_limit)
    mirrored = None
    if any(v.image_flip for v in settings.variants):
        both = cache("val_cache_flips.pt", val_name, False, True, settings.val_limit)
        mirrored = both[1::2]  # plain, mirrored, plain, mirrored, ...
    return Caches(train, val, mirrored)


def machine(settings: Settings) -> str:
    """The report's machine: the CPU's model, cores and native bf16 instructions, torch's
    threads and version, and the GPU when the bench ran on one."""
    bf16 = ", ".join(native_bf16_flags()) or "none"
    where = f"{cpu_model_name()}, {os.cpu_count()} CPU cores (native bf16: {bf16})"
    where += f", {settings.threads} torch threads"
    where += f", torch {torch.__version__}"
    if torch.device(settings.device).type == "cuda":
        where = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}), {where}"
    return where


def main() -> int:
    settings = Settings()
    setup_logger(name="fvcore")
    setup_logger()
    setup_logger(name="kpext")
    torch.set_num_threads(settings.threads)
    start = time.perf_counter()
    os.makedirs(settings.out, exist_ok=True)
    prepare_bench_data(default_datasets_root())

    # The detector trains with the synthetic config as it is (its RoI batch included).
    stock_cfg = synthetic_cfg(settings.variants[0].config, ())
    detector_weights = train_shared_detector(
        stock_cfg,
        settings.det_iters,
        os.path.join(settings.out, "quick" if settings.quick else ""),
        objective=settings.det_objective,
    )
    caches = build_caches(settings, stock_cfg, detector_weights)
    val_name = stock_cfg.DATASETS.TEST[0]
    coco_gt = coco_subset(MetadataCatalog.get(val_name).json_file, [c.image_id for c in caches.val])
    sigmas = dataset_oks_sigmas(val_name, stock_cfg.TEST.KEYPOINT_OKS_SIGMAS)

    results, models = run_heads(settings, detector_weights, caches, coco_gt, sigmas)
    diffs_gt = paired_bootstrap(
        {n: [r.matches_gt for r in rs] for n, rs in results.items()}, REFERENCE
    )
    diffs_det = paired_bootstrap(
        {n: [r.matches_det for r in rs] for n, rs in results.items()}, REFERENCE
    )
    logger.info("bench: timing the keypoint branch (CPU config)")
    timing = cpu_config_timing(settings, models, caches.val)
    fullsize = None
    if not settings.skip_fullsize:
        logger.info("bench: timing the keypoint branch at full size")
        fullsize = fullsize_timing(settings)

    report = {
        "commit": git_commit(),
        "machine": machine(settings),
        "quick": settings.quick,
        "regime": settings.regime,
        "seeds": settings.seeds,
        "settings": {
            "head_precision": settings.precision.label,
            "head_iterations": settings.head_iters,
            "detector_iterations": settings.det_iters,
            "detector_objective": settings.det_objective,
            "head_lr": settings.head_lr or stock_cfg.SOLVER.BASE_LR,
            "train_items": len(caches.train),
            "val_images": len(caches.val),
            "val_set": val_name,
            "detector_weights": detector_weights,
        },
        "rows": build_rows(settings, results, models, diffs_gt, diffs_det, timing, fullsize),
    }
    report["wall_s"] = time.perf_counter() - start
    markdown = markdown_table(report)
    name = settings.report_name
    write_report(settings.out, name, report, markdown)
    plot(report, os.path.join(settings.out, f"{name}.png"))
    print("\n" + markdown)
    print(f"Wrote {settings.out}/{name}.json, {name}.md and {name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
