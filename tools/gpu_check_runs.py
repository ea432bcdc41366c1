"""The GPU check's plan and runs (:mod:`gpu_check`, part b): the profiles (the GPU's full
size, the CPU smoke run's toy size; each with its part a, :class:`PlateauProfile`), one
training run per head and precision, the synthetic data generated through
``datasets/make_synthetic.py``, each run trained and evaluated through
``projects/PoseEstimation/train_net.py`` and its log read back (s/iter, memory, APs, the
training step and RoIAlign kernel that ran); the step clock."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_NET = os.path.join("projects", "PoseEstimation", "train_net.py")


class Head(NamedTuple):
    """A row of part b: a head, its config (``{depth}``: R50 on the GPU, R18 in the smoke run)
    and options on top of it."""

    name: str
    head_class: str
    config: str
    overrides: Tuple[str, ...] = ()


# In the order they train (part b is cut short from the end when time runs out): stock, the
# demo recipe's head (KpextKRCNNHead with the facing branch, whose probabilities the COCO
# configs' person-level left/right decoding uses), then each other head once.
HEADS: List[Head] = [
    Head("stock", "KRCNNConvDeconvUpsampleHead", "keypoint_rcnn_{depth}_FPN_stock.yaml"),
    Head(
        "kpext_krcnn_facing",
        "KpextKRCNNHead",
        "keypoint_rcnn_{depth}_FPN_kpext.yaml",
        ("MODEL.KPEXT.FACING.LOSS_WEIGHT", "1.0"),
    ),
    Head("gaussian", "GaussianKeypointHead", "keypoint_rcnn_{depth}_FPN_gaussian.yaml"),
    Head("hourglass", "HourglassKeypointHead", "keypoint_rcnn_{depth}_FPN_hourglass.yaml"),
    Head(
        "krcnn_softmax_gaussian",
        "KRCNNCodecKeypointHead",
        "keypoint_rcnn_{depth}_FPN_krcnn_softmax_gaussian.yaml",
    ),
    Head(
        "krcnn_gaussian", "KRCNNCodecKeypointHead", "keypoint_rcnn_{depth}_FPN_krcnn_gaussian.yaml"
    ),
    Head("kpext_krcnn", "KpextKRCNNHead", "keypoint_rcnn_{depth}_FPN_kpext.yaml"),
]
PRECISIONS = ("fp32", "amp")
# Heads whose trained models are also timed with every combination of the test-time options
# that change the graph (kpext.config.GRAPH_TEST_OPTIONS: FLIP, LEFT_RIGHT; the inference
# process expands them, so the rows follow that constant).
GRAPH_VARIANT_HEADS = ("kpext_krcnn_facing",)


@dataclass
class PlateauProfile:
    """Part a: ``projects/Benchmarks/bench_heads.py`` on the check's device, sized to
    ``budget_s`` (see :mod:`gpu_check_plateau`)."""

    quick: bool  # BENCH_QUICK: the bench's smoke sizes (a few training and val images)
    heads: str  # BENCH_HEADS: the rows ("" = every row of the bench, regime checks included)
    probe_iters: int  # head iterations of the probe (every row, one seed)
    # (head iterations, seeds) of the table, preferred first: the first that fits runs
    ladder: Tuple[Tuple[int, int], ...]
    budget_s: float  # probe and table together
    overhead_s: float  # a bench process's start, cache loading, timing and report
    margin: float = 1.25  # on the probe's per-row times
    grace_s: float = 60.0  # the table may run this far past the budget before it is stopped
    det_iters: Optional[int] = None  # BENCH_DET_ITERS (None: the bench's own, 600)


@dataclass
class Profile:
    """Sizes of one kind of check run."""

    name: str
    device: str
    config_dir: str
    depth: str
    width: int
    height: int
    train_images: int
    val_images: int
    iters: int
    ims_per_batch: int
    num_procs: int  # processes of each training run (launch's --num-gpus)
    num_workers: int
    budget_s: float
    infer_images: int
    infer_rounds: int
    overrides: List[str] = field(default_factory=list)
    first_run_procs: Optional[int] = None  # processes of the first run, when not num_procs
    plateau: Optional[PlateauProfile] = None  # part a


# The GPU's ladder: the longest head schedule first (stock's curve then reaches 2x of it);
# for the plateau, length before seeds (the paired bootstrap over val images gives
# intervals from one seed).
GPU_LADDER = (
    (6400, 2), (6400, 1), (3200, 2), (3200, 1), (1600, 2), (1600, 1), (800, 2), (800, 1),
    (400, 1), (200, 1),
)  # fmt: skip


def gpu_profile() -> Profile:
    """Part a within 360 s, then R50-FPN at COCO's 800 px short side on one GPU; the whole
    check within 9 minutes (540 s, one device command of at most 10 minutes)."""
    return Profile(
        name="gpu", device="cuda", config_dir="configs/coco", depth="R50",
        width=1066, height=800, train_images=48, val_images=16,
        iters=30, ims_per_batch=8, num_procs=1, num_workers=8, budget_s=540.0,
        infer_images=16, infer_rounds=2,
        plateau=PlateauProfile(
            quick=False, heads="", probe_iters=20, ladder=GPU_LADDER,
            budget_s=360.0, overhead_s=45.0,
        ),
        overrides=[
            # No network on the GPU machine: no ImageNet weights. From scratch, FrozenBN
            # diverges (see shared notes): trainable BN, all stages, low lr, clipped grads.
            "MODEL.WEIGHTS", "", "MODEL.RESNETS.NORM", "BN", "MODEL.BACKBONE.FREEZE_AT", "0",
            "INPUT.MIN_SIZE_TRAIN", "(800,)", "INPUT.MAX_SIZE_TRAIN", "1333",
            "INPUT.MIN_SIZE_TEST", "800", "INPUT.MAX_SIZE_TEST", "1333",
        ],
    )  # fmt: skip


def smoke_profile() -> Profile:
    """The same path on the CPU at toy sizes: the synthetic R18 configs, 128 px, a few
    iterations. The first run trains in two processes over GLOO (kpext.engine.launch's
    CPU path), the others in one (each process costs an import of torch and detectron2)."""
    return Profile(
        name="cpu-smoke", device="cpu", config_dir="configs/synthetic", depth="R18",
        width=128, height=128, train_images=4, val_images=4,
        iters=4, ims_per_batch=2, num_procs=1, num_workers=0, budget_s=900.0,
        infer_images=2, infer_rounds=1, first_run_procs=2,
        # Part a at the bench's smoke sizes: a regime row (stock's curve) and a decoding row.
        plateau=PlateauProfile(
            quick=True, heads="stock,stock_x2,kpext_krcnn_lr_person", probe_iters=2,
            ladder=((8, 2), (4, 1)), budget_s=400.0, overhead_s=30.0, det_iters=2,
        ),
        overrides=[
            "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "128",
            "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "128",
            "MODEL.RPN.POST_NMS_TOPK_TRAIN", "100", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
        ],
    )  # fmt: skip


def common_overrides(profile: Profile) -> List[str]:
    """Overrides of every run: data, schedule, loader."""
    return [
        "MODEL.DEVICE", profile.device,
        "DATASETS.TRAIN", '("kpext_synth_train",)', "DATASETS.TEST", '("kpext_synth_val",)',
        "SOLVER.IMS_PER_BATCH", str(profile.ims_per_batch), "SOLVER.MAX_ITER", str(profile.iters),
        "SOLVER.BASE_LR", "0.01", "SOLVER.WARMUP_ITERS", "100", "SOLVER.STEPS", "()",
        "SOLVER.CHECKPOINT_PERIOD", "1000000",
        "SOLVER.CLIP_GRADIENTS.ENABLED", "True", "SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "norm",
        "SOLVER.CLIP_GRADIENTS.CLIP_VALUE", "5.0",
        # 16 cores on the GPU machine: 8 loader workers keep up with 8 images per iteration
        # at 800 px. KpextTrainer pins their batches on CUDA (kpext.engine.data.
        # pin_memory_for_device: Detectron2's train loader has no pin_memory setting).
        "DATALOADER.NUM_WORKERS", str(profile.num_workers),
        "TEST.EVAL_PERIOD", "0", "TEST.DETECTIONS_PER_IMAGE", "20", "TEST.KPEXT.NUM_VIS", "0",
        "SEED", "0",
    ]  # fmt: skip


@dataclass
class Run:
    """One training run: a head at a precision."""

    head: str
    head_class: str
    precision: str
    config_file: str
    overrides: List[str]
    output_dir: str
    processes: int = 1
    graph_variants: bool = False  # also timed with every GRAPH_TEST_OPTIONS combination
    status: str = "pending"
    error: str = ""
    train_wall_s: Optional[float] = None
    train_s_per_iter: Optional[float] = None
    train_max_mem_mb: Optional[float] = None
    box_ap: Optional[float] = None
    kp_ap: Optional[float] = None
    trainer: Optional[str] = None  # the training step KpextTrainer logged
    cpu_roi_align_poolers: Optional[int] = None  # level poolers on kpext's CPU RoIAlign
    amp_mode: str = ""  # what the precision meant on this device

    @property
    def name(self) -> str:
        return f"{self.head}_{self.precision}"


class Clock:
    """Elapsed time of the whole check and of each step, printed as they end."""

    def __init__(self):
        self.start = time.perf_counter()
        self.steps: List[Dict[str, object]] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def step(self, name: str, began: float, note: str = "") -> None:
        seconds = time.perf_counter() - began
        self.steps.append({"step": name, "seconds": round(seconds, 2), "note": note})
        print(
            f"[gpu_check {self.elapsed():6.1f} s] {name}: {seconds:.1f} s {note}".rstrip(),
            flush=True,
        )


def run_logged(
    cmd: List[str], env: Dict[str, str], log_path: str, timeout: float
) -> Tuple[int, str]:
    """Run ``cmd`` in its own process group, output to ``log_path``; on timeout the whole
    group (data-loader workers, launched ranks) is killed. Returns (exit code, log tail)."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=max(timeout, 1.0))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = 124
    with open(log_path, errors="replace") as log:
        tail = log.read()[-4000:]
    return rc, tail


class DataJobs(NamedTuple):
    """The generator processes of :func:`start_data`: (splits, process, log file) each."""

    jobs: List[Tuple[str, subprocess.Popen, object]]


def start_data(profile: Profile, data_root: str, env: Dict[str, str], log_dir: str) -> DataJobs:
    """Start generating part b's synthetic splits through the generator's CLI (it runs while
    part a measures the heads): one process when they have the same size (the smoke run:
    one import of torch less), else one per split, side by side."""
    if profile.train_images == profile.val_images:
        jobs = [("train val", profile.train_images)]
    else:
        jobs = [("train", profile.train_images), ("val", profile.val_images)]
    procs = []
    for splits, count in jobs:
        cmd = [sys.executable, os.path.join("datasets", "make_synthetic.py"),
               "--out", os.path.join(data_root, "synthetic"),
               "--split", *splits.split(), "--num-images", str(count),
               "--width", str(profile.width), "--height", str(profile.height),
               "--quiet"]  # fmt: skip
        log = open(os.path.join(log_dir, f"data_{splits.replace(' ', '_')}.log"), "w")
        procs.append(
            (
                splits,
                subprocess.Popen(cmd, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT),
                log,
            )
        )
    return DataJobs(procs)


def stop_data(data: Optional[DataJobs]) -> None:
    """Kill what is left of :func:`start_data`'s processes (a check that stopped early)."""
    for _, proc, log in data.jobs if data else []:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def wait_data(data: DataJobs) -> None:
    """Wait for :func:`start_data`'s processes; a failed split raises with its output."""
    for splits, proc, log in data.jobs:
        rc = proc.wait()
        log.close()
        if rc != 0:
            with open(log.name) as f:
                raise RuntimeError(f"generating the {splits} split(s) failed:\n{f.read()[-3000:]}")


TRAIN_SPEED = re.compile(r"Overall training speed: (\d+) iterations in \S+ \(([\d.]+) s / it\)")
MAX_MEM = re.compile(r"max_mem: (\d+)M")
# KpextTrainer's lines: the training step, and the level poolers on kpext's CPU RoIAlign.
TRAINER = re.compile(r"Training step: (\w+)")
CPU_ROI_ALIGN = re.compile(r"RoIAlign: (\d+) level poolers use kpext's CPU kernel")
NO_NATIVE_BF16 = "SOLVER.AMP.ENABLED is ignored"


def parse_training(output_dir: str) -> Dict[str, Optional[float]]:
    """s/iter, peak training memory and the final box/keypoint AP of a finished run.

    s/iter: Detectron2's "Overall training speed" line (iterations after the third),
    else the median of the per-iteration times in metrics.json.
    """
    found: Dict[str, object] = {
        "train_s_per_iter": None,
        "train_max_mem_mb": None,
        "box_ap": None,
        "kp_ap": None,
        "trainer": None,
        "cpu_roi_align_poolers": None,
    }
    log_txt = os.path.join(output_dir, "log.txt")
    if os.path.exists(log_txt):
        text = open(log_txt, errors="replace").read()
        speed = TRAIN_SPEED.findall(text)
        if speed:
            found["train_s_per_iter"] = float(speed[-1][1])
        mem = MAX_MEM.findall(text)
        if mem:
            found["train_max_mem_mb"] = float(mem[-1])
        trainer, poolers = TRAINER.findall(text), CPU_ROI_ALIGN.findall(text)
        if trainer:
            found["trainer"] = trainer[-1]
        if poolers:
            found["cpu_roi_align_poolers"] = int(poolers[-1])
    metrics = os.path.join(output_dir, "metrics.json")
    times = []
    if os.path.exists(metrics):
        for line in open(metrics):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if "time" in entry:
                times.append(float(entry["time"]))
            for key, name in (("bbox/AP", "box_ap"), ("keypoints/AP", "kp_ap")):
                if key in entry:
                    found[name] = float(entry[key])
    if found["train_s_per_iter"] is None and times:
        found["train_s_per_iter"] = sorted(times)[len(times) // 2]
    return found


def plan_runs(profile: Profile, work: str, heads: Sequence[str]) -> List[Run]:
    """Every head at every precision, each head's fp32 and AMP runs one after the other."""
    runs = []
    for head in HEADS:
        if head.name not in heads:
            continue
        for precision in PRECISIONS:
            config = os.path.join(profile.config_dir, head.config.format(depth=profile.depth))
            out = os.path.join(work, "runs", f"{head.name}_{precision}")
            overrides = profile.overrides + common_overrides(profile) + list(head.overrides) + [
                "SOLVER.AMP.ENABLED", str(precision == "amp"), "OUTPUT_DIR", out,
            ]  # fmt: skip
            run = Run(head.name, head.head_class, precision, config, overrides, out)
            run.processes = profile.num_procs
            run.graph_variants = head.name in GRAPH_VARIANT_HEADS
            runs.append(run)
    if runs and profile.first_run_procs:
        runs[0].processes = profile.first_run_procs
    return runs


def train(run: Run, profile: Profile, env: Dict[str, str], log_dir: str, timeout: float) -> None:
    """Train and evaluate one run through train_net.py; fills the run's numbers and status."""
    cmd = [
        sys.executable,
        TRAIN_NET,
        "--num-gpus",
        str(run.processes),
        "--config-file",
        run.config_file,
        *run.overrides,
    ]
    began = time.perf_counter()
    rc, tail = run_logged(cmd, env, os.path.join(log_dir, f"{run.name}.log"), timeout)
    run.train_wall_s = round(time.perf_counter() - began, 2)
    run.__dict__.update(parse_training(run.output_dir))
    for name in ("log.txt", "metrics.json"):
        src = os.path.join(run.output_dir, name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(log_dir, f"{run.name}.{name}"))
    if rc != 0:
        run.status = "failed"
        run.error = "timed out" if rc == 124 else last_error_line(tail)
        print(
            f"--- {run.name} failed (exit {rc}); end of its output:\n{tail[-2500:]}\n---",
            flush=True,
        )
    elif not os.path.exists(os.path.join(run.output_dir, "model_final.pth")):
        run.status, run.error = "failed", "no model_final.pth"
    elif run.kp_ap is None:
        run.status, run.error = "failed", "no keypoint AP in metrics.json (evaluation did not run)"
    else:
        run.status = "trained"
        run.error = check_training_path(run, profile.device, read_log(run.output_dir))


def read_log(output_dir: str) -> str:
    """The run's log.txt ("" when it wrote none)."""
    log_txt = os.path.join(output_dir, "log.txt")
    return open(log_txt, errors="replace").read() if os.path.exists(log_txt) else ""


def check_training_path(run: Run, device: str, log_text: str) -> str:
    """What the run's precision meant (``run.amp_mode``), and "" when the training step and
    RoIAlign kernel are the ones kpext promises, else what differs (the run then fails).

    CUDA: torchvision's RoIAlign (MODEL.KPEXT.ROI_ALIGN auto keeps kpext's kernel to the CPU);
    fp32 trains with SimpleTrainer, AMP with Detectron2's AMPTrainer (float16, GradScaler).
    CPU: kpext's RoIAlign in the poolers; AMP is CPUAMPTrainer's bf16 autocast where the CPU
    has native bf16, else float32 after KpextTrainer's warning."""
    amp = run.precision == "amp"
    if device == "cuda":
        expected, run.amp_mode = ("AMPTrainer", "fp16 autocast") if amp else ("SimpleTrainer", "")
        if run.cpu_roi_align_poolers:
            run.status = "failed"
            return f"{run.cpu_roi_align_poolers} level poolers on kpext's CPU RoIAlign on CUDA"
    elif amp and NO_NATIVE_BF16 in log_text:
        expected, run.amp_mode = "SimpleTrainer", "fp32 (this CPU has no native bf16)"
    elif amp:
        expected, run.amp_mode = "CPUAMPTrainer", "bf16 autocast"
    else:
        expected, run.amp_mode = "SimpleTrainer", ""
    if run.trainer != expected:
        run.status = "failed"
        return f"trained with {run.trainer or 'an unlogged step'}, expected {expected}"
    return ""


def last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["no output"])[-1][:300]
