"""The GPU check's plan and runs (:mod:`gpu_check`, steps 2 and 3): the profiles (the GPU's
full size, the CPU smoke run's toy size), one training run per head and precision, the
synthetic data generated through ``datasets/make_synthetic.py``, each run trained and
evaluated through ``projects/PoseEstimation/train_net.py`` and its log read back; the step
clock."""

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
from typing import Dict, List, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_NET = os.path.join("projects", "PoseEstimation", "train_net.py")

# (row name, head class, config file name pattern: {depth} is R50 or R18)
HEADS: List[Tuple[str, str, str]] = [
    ("stock", "KRCNNConvDeconvUpsampleHead", "keypoint_rcnn_{depth}_FPN_stock.yaml"),
    ("kpext_krcnn", "KpextKRCNNHead", "keypoint_rcnn_{depth}_FPN_kpext.yaml"),
    ("gaussian", "GaussianKeypointHead", "keypoint_rcnn_{depth}_FPN_gaussian.yaml"),
    ("hourglass", "HourglassKeypointHead", "keypoint_rcnn_{depth}_FPN_hourglass.yaml"),
    ("krcnn_gaussian", "KRCNNCodecKeypointHead", "keypoint_rcnn_{depth}_FPN_krcnn_gaussian.yaml"),
    (
        "krcnn_softmax_gaussian",
        "KRCNNCodecKeypointHead",
        "keypoint_rcnn_{depth}_FPN_krcnn_softmax_gaussian.yaml",
    ),
]
PRECISIONS = ("fp32", "amp")


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


def gpu_profile() -> Profile:
    """R50-FPN at COCO's 800 px short side on one GPU, sized to finish within 8 minutes."""
    return Profile(
        name="gpu", device="cuda", config_dir="configs/coco", depth="R50",
        width=1066, height=800, train_images=48, val_images=16,
        iters=30, ims_per_batch=8, num_procs=1, num_workers=8, budget_s=450.0,
        infer_images=16, infer_rounds=2,
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
        iters=4, ims_per_batch=2, num_procs=1, num_workers=0, budget_s=600.0,
        infer_images=2, infer_rounds=1, first_run_procs=2,
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
    status: str = "pending"
    error: str = ""
    train_wall_s: Optional[float] = None
    train_s_per_iter: Optional[float] = None
    train_max_mem_mb: Optional[float] = None
    box_ap: Optional[float] = None
    kp_ap: Optional[float] = None

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


def generate_data(profile: Profile, data_root: str, env: Dict[str, str], log_dir: str) -> None:
    """Both synthetic splits through the generator's CLI: one process when they have the same
    size (the smoke run: one import of torch less), else one per split, side by side."""
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
    for splits, proc, log in procs:
        rc = proc.wait()
        log.close()
        if rc != 0:
            with open(log.name) as f:
                raise RuntimeError(f"generating the {splits} split(s) failed:\n{f.read()[-3000:]}")


TRAIN_SPEED = re.compile(r"Overall training speed: (\d+) iterations in \S+ \(([\d.]+) s / it\)")
MAX_MEM = re.compile(r"max_mem: (\d+)M")


def parse_training(output_dir: str) -> Dict[str, Optional[float]]:
    """s/iter, peak training memory and the final box/keypoint AP of a finished run.

    s/iter: Detectron2's "Overall training speed" line (iterations after the third),
    else the median of the per-iteration times in metrics.json.
    """
    found: Dict[str, Optional[float]] = {
        "train_s_per_iter": None,
        "train_max_mem_mb": None,
        "box_ap": None,
        "kp_ap": None,
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
    for head, head_class, pattern in HEADS:
        if head not in heads:
            continue
        for precision in PRECISIONS:
            config = os.path.join(profile.config_dir, pattern.format(depth=profile.depth))
            out = os.path.join(work, "runs", f"{head}_{precision}")
            overrides = profile.overrides + common_overrides(profile) + [
                "SOLVER.AMP.ENABLED", str(precision == "amp"), "OUTPUT_DIR", out,
            ]  # fmt: skip
            runs.append(Run(head, head_class, precision, config, overrides, out, profile.num_procs))
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


def last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["no output"])[-1][:300]
