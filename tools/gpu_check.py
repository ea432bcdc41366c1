#!/usr/bin/env python
"""The GPU check: kpext's heads trained and timed at full size on one CUDA GPU.

Run it through ``tools/gpu_check.sh`` (which picks the Python); see docs/gpu.md.

    bash tools/gpu_check.sh                 # on a GPU machine: R50-FPN, 800 px, fp32 and AMP
    bash tools/gpu_check.sh --cpu-smoke     # here: the same path at toy sizes on the CPU

Steps, each printed with its elapsed time:

1. install: the wheelhouse of ``make gpu-wheels`` (``.gpu-wheels/``) is installed offline
   with ``--no-deps`` into a temporary folder put on ``PYTHONPATH``, so the machine's own
   torch, torchvision and numpy are never touched. Wheels that do not fit the running
   Python (the cp312 ones on another Python) are left out and said so; without a
   wheelhouse the current environment is used. The working tree comes first on
   ``PYTHONPATH``: the kpext that runs is the tree's (fixes made after ``make gpu-wheels``
   count); the kpext wheel only proves that it installs.
2. data: the synthetic person set (``datasets/make_synthetic.py``), train and val at once.
3. train: ``projects/PoseEstimation/train_net.py`` (Detectron2's ``launch`` through
   ``kpext.engine.launch``) for the stock head and each kpext head, fp32 then AMP, a short
   fixed schedule from scratch (the machine has no network, so no ImageNet weights: BN
   backbone, low learning rate), each followed by its evaluation (box and keypoint AP,
   meaningless after so few iterations: the numbers show that evaluation ran). s/iter is
   Detectron2's "Overall training speed" (iterations after the third).
4. infer: one process loads every trained model and times inference, models alternated
   batch by batch, at batch 1 and batch 8 (images/s, AMP rows under fp16 autocast), with a
   score threshold of 0 so that every model decodes the same number of detections.
5. report: ``report.json`` and ``report.md`` under ``--out`` (``$OUT`` when set, else
   ``output/gpu/``; ``output/gpu-smoke/`` with ``--cpu-smoke``), with the per-run logs in
   ``runs/``. Checkpoints stay in a temporary folder.

A time budget (``--budget-s``, 450 s on a GPU: the check must finish within 8 minutes)
skips the training runs that would not fit; they are listed as skipped in the report.
The exit status is 0 only when every run that was not skipped by design (AMP needs CUDA)
trained, evaluated and was timed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_NET = os.path.join("projects", "PoseEstimation", "train_net.py")
INFER_SCRIPT = os.path.join("tools", "gpu_check_infer.py")

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
# Numbers of a row that are compared with the stock head's row of the same precision.
RATIO_FIELDS = ("train_s_per_iter", "infer_img_s_b1", "infer_img_s_b8")


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


# ---------------------------------------------------------------------------------------
# 1. wheelhouse


def wheel_tags(filename: str) -> Tuple[str, str, str]:
    """(python, abi, platform) tags of a wheel file name (each may be dotted: several)."""
    parts = os.path.basename(filename)[: -len(".whl")].split("-")
    if len(parts) < 5:
        raise ValueError(f"not a wheel file name: {filename}")
    return parts[-3], parts[-2], parts[-1]


def supported_tags() -> set:
    """The running interpreter's wheel tags, as 'py-abi-platform' strings."""
    try:
        from packaging.tags import sys_tags
    except ImportError:  # pip vendors packaging
        from pip._vendor.packaging.tags import sys_tags
    return {str(t) for t in sys_tags()}


def wheel_fits(filename: str, tags: set) -> bool:
    """True when one of the wheel's tag triples is supported by the running interpreter."""
    py, abi, plat = wheel_tags(filename)
    return any(
        f"{p}-{a}-{pl}" in tags
        for p in py.split(".")
        for a in abi.split(".")
        for pl in plat.split(".")
    )


def split_wheelhouse(wheelhouse: str, tags: set) -> Tuple[List[str], List[str]]:
    """(wheels that install on this interpreter, wheels that do not), sorted paths."""
    wheels = sorted(
        os.path.join(wheelhouse, f) for f in os.listdir(wheelhouse) if f.endswith(".whl")
    )
    fits = [w for w in wheels if wheel_fits(w, tags)]
    return fits, [w for w in wheels if w not in fits]


def has_pip() -> bool:
    return (
        subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode
        == 0
    )


def unzip_wheels(wheels: Sequence[str], target: str) -> None:
    """Install wheels by unpacking them (the way ``pip install --target`` lays them out),
    for a Python without pip. Files under ``*.data/purelib`` or ``platlib`` go to the top."""
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            for member in z.namelist():
                parts = member.split("/")
                if len(parts) > 2 and parts[0].endswith(".data"):
                    if parts[1] not in ("purelib", "platlib"):
                        continue  # scripts, headers: not needed to import
                    dest = os.path.join(target, *parts[2:])
                else:
                    dest = os.path.join(target, *parts)
                if member.endswith("/"):
                    continue
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with z.open(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)


def install_wheelhouse(wheelhouse: str, target: str) -> Dict[str, object]:
    """Install the wheels that fit this interpreter into ``target`` (offline, no deps).

    Returns what happened, for the report: installed and left-out wheel names, or why the
    current environment is used instead.
    """
    if not os.path.isdir(wheelhouse) or not any(f.endswith(".whl") for f in os.listdir(wheelhouse)):
        return {"used": False,
                "reason": f"no wheelhouse at {wheelhouse} (`make gpu-wheels` builds it); "
                "using the current environment's packages"}  # fmt: skip
    fits, left_out = split_wheelhouse(wheelhouse, supported_tags())
    if has_pip():
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index",
               "--find-links", wheelhouse, "--no-deps", "--no-compile",
               "--disable-pip-version-check", "--target", target, *fits]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip install of the wheelhouse failed:\n{done.stdout}{done.stderr}")
        how = "pip install --no-index --no-deps --target"
    else:
        unzip_wheels(fits, target)
        how = "unzipped (no pip)"
    return {
        "used": True,
        "wheelhouse": wheelhouse,
        "how": how,
        "installed": [os.path.basename(w) for w in fits],
        "left_out": [os.path.basename(w) for w in left_out],
    }


# ---------------------------------------------------------------------------------------
# 2-3. data and training


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


# ---------------------------------------------------------------------------------------
# 5. report


def build_rows(
    runs: Sequence[Run], timings: Dict[str, Dict[str, object]]
) -> List[Dict[str, object]]:
    """One row per run with its inference timing and ratios to the stock head's row of the
    same precision (None where either number is missing)."""
    rows = []
    for run in runs:
        row = {
            "head": run.head, "head_class": run.head_class, "precision": run.precision,
            "status": run.status, "error": run.error, "config_file": run.config_file,
            "processes": run.processes,
            "train_wall_s": run.train_wall_s, "train_s_per_iter": run.train_s_per_iter,
            "train_max_mem_mb": run.train_max_mem_mb, "box_ap": run.box_ap, "kp_ap": run.kp_ap,
            "infer_img_s_b1": None, "infer_img_s_b8": None, "detections_per_image": None,
        }  # fmt: skip
        timing = timings.get(run.name)
        if timing is not None:
            if timing.get("error"):
                row["status"], row["error"] = "failed", f"inference timing: {timing['error']}"
            else:
                row.update(
                    {
                        k: timing.get(k)
                        for k in ("infer_img_s_b1", "infer_img_s_b8", "detections_per_image")
                    }
                )
                if row["status"] == "trained":
                    row["status"] = "ok"
        elif row["status"] == "trained":
            row["status"], row["error"] = "failed", "inference timing did not run"
        rows.append(row)
    add_ratios(rows)
    return rows


def add_ratios(rows: List[Dict[str, object]]) -> None:
    """``<field>_vs_stock``: the row's value over the stock row's at the same precision."""
    stock = {r["precision"]: r for r in rows if r["head"] == "stock"}
    for row in rows:
        ref = stock.get(row["precision"])
        for name in RATIO_FIELDS:
            value, base = row.get(name), ref.get(name) if ref else None
            row[f"{name}_vs_stock"] = round(value / base, 3) if value is not None and base else None


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown_report(report: Dict[str, object]) -> str:
    """The report as Markdown: environment, one table row per run, the steps' times."""
    env = report["environment"]
    settings = report["settings"]
    first_run_procs = (
        f" ({settings['first_run_procs']} in the first)" if settings.get("first_run_procs") else ""
    )
    lines = [
        f"# kpext GPU check ({report['profile']})",
        "",
        f"- date: {report['date']}",
        f"- command: `{report['command']}`",
        f"- device: {env.get('device_name', '-')}; torch {env.get('torch', '-')} "
        f"(CUDA {env.get('cuda', '-')}), torchvision {env.get('torchvision', '-')}, "
        f"detectron2 {env.get('detectron2', '-')}, Python {env.get('python', '-')}",
        f"- model: {settings['depth']}-FPN from scratch, "
        f"{settings['width']}x{settings['height']} "
        f"synthetic images ({settings['train_images']} train, {settings['val_images']} val), "
        f"{settings['iters']} iterations of {settings['ims_per_batch']} images, "
        f"{settings['num_procs']} process(es) per run through launch{first_run_procs}, "
        f"{settings['num_workers']} loader workers",
        f"- total: {report['total_s']:.1f} s",
        "",
        "| head | precision | procs | train s/iter | x stock | infer img/s b1 | x stock "
        "| infer img/s b8 | x stock | det/img | train max mem MB | box AP | kp AP | status |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for r in report["rows"]:
        status = r["status"] if not r["error"] else f"{r['status']}: {r['error']}"
        lines.append(
            f"| {r['head']} ({r['head_class']}) | {r['precision']} | {r['processes']} "
            f"| {fmt(r['train_s_per_iter'], 4)} | {fmt(r['train_s_per_iter_vs_stock'], 2)} "
            f"| {fmt(r['infer_img_s_b1'], 2)} | {fmt(r['infer_img_s_b1_vs_stock'], 2)} "
            f"| {fmt(r['infer_img_s_b8'], 2)} | {fmt(r['infer_img_s_b8_vs_stock'], 2)} "
            f"| {fmt(r['detections_per_image'], 1)} | {fmt(r['train_max_mem_mb'], 0)} "
            f"| {fmt(r['box_ap'], 2)} | {fmt(r['kp_ap'], 2)} | {status.replace('|', '/')} |"
        )  # fmt: skip
    lines += ["", "x stock: the row's number over the stock head's at the same precision "
              "(s/iter: lower is faster; images/s: higher is faster).",
              "", "| step | seconds | note |", "|---|---:|---|"]  # fmt: skip
    lines += [f"| {s['step']} | {s['seconds']:.1f} | {s['note']} |" for s in report["steps"]]
    if report.get("notes"):
        lines += [""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def write_report(out: str, report: Dict[str, object]) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(markdown_report(report))


# ---------------------------------------------------------------------------------------


def default_out(cpu_smoke: bool) -> str:
    if os.environ.get("OUT"):
        return os.environ["OUT"]
    return os.path.join(REPO, "output", "gpu-smoke" if cpu_smoke else "gpu")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--cpu-smoke",
        action="store_true",
        help="toy sizes on the CPU (tests the path, not the speed)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="report folder (default: $OUT, else output/gpu or output/gpu-smoke)",
    )
    p.add_argument(
        "--wheelhouse", default=os.environ.get("GPU_WHEELHOUSE", os.path.join(REPO, ".gpu-wheels"))
    )
    p.add_argument(
        "--heads",
        default=",".join(h[0] for h in HEADS),
        help="comma-separated: " + ", ".join(h[0] for h in HEADS),
    )
    p.add_argument("--iters", type=int, default=None, help="training iterations per run")
    p.add_argument(
        "--budget-s", type=float, default=None, help="skip training runs that would end past this"
    )
    p.add_argument(
        "--keep-work", action="store_true", help="keep the temporary folder (checkpoints, data)"
    )
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    clock = Clock()
    profile = smoke_profile() if args.cpu_smoke else gpu_profile()
    if args.iters:
        profile.iters = args.iters
    if args.budget_s:
        profile.budget_s = args.budget_s
    heads = [h.strip() for h in args.heads.split(",") if h.strip()]
    unknown = sorted(set(heads) - {h[0] for h in HEADS})
    if unknown:
        raise SystemExit(f"unknown head(s): {', '.join(unknown)}")
    out = os.path.abspath(args.out or default_out(args.cpu_smoke))
    log_dir = os.path.join(out, "runs")
    shutil.rmtree(log_dir, ignore_errors=True)
    os.makedirs(log_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="kpext-gpu-check-")
    notes: List[str] = []
    runs: List[Run] = []
    install: Dict[str, object] = {}
    environment: Dict[str, object] = {}
    print(
        f"[gpu_check] {profile.name}: out {out}, work {work}, "
        f"Python {sys.version.split()[0]} ({sys.executable})",
        flush=True,
    )
    try:
        # 1. install
        began = time.perf_counter()
        prefix = os.path.join(work, "prefix")
        install = install_wheelhouse(args.wheelhouse, prefix)
        env = dict(os.environ)
        env.pop("OUT", None)  # the runs' outputs go to their own folders
        path = (
            [REPO]
            + ([prefix] if install["used"] else [])
            + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        )
        env["PYTHONPATH"] = os.pathsep.join(path)
        env["KPEXT_DATASETS"] = os.path.join(work, "data")
        env.setdefault("PYTHONUNBUFFERED", "1")
        if not install["used"]:
            print(f"[gpu_check] {install['reason']}", flush=True)
            notes.append(install["reason"])
        elif install["left_out"]:
            note = (f"wheels for another Python left out (the current environment's are used): "
                    f"{', '.join(install['left_out'])}")  # fmt: skip
            print(f"[gpu_check] {note}", flush=True)
            notes.append(note)
        clock.step(
            "install",
            began,
            f"({len(install.get('installed', []))} wheels)"
            if install["used"]
            else "(current environment)",
        )

        # 2. data
        began = time.perf_counter()
        generate_data(profile, env["KPEXT_DATASETS"], env, log_dir)
        clock.step(
            "data",
            began,
            f"({profile.train_images}+{profile.val_images} images, "
            f"{profile.width}x{profile.height})",
        )

        # 3. train + evaluate
        runs = plan_runs(profile, work, heads)
        longest = 0.0
        for run in runs:
            if run.precision == "amp" and profile.device != "cuda":
                run.status, run.error = "skipped", "AMP needs CUDA"
                continue
            reserve = 20.0 + 8.0 * sum(
                r.status == "trained" for r in runs
            )  # inference timing after the runs
            estimate = longest or 60.0
            remaining = profile.budget_s - clock.elapsed() - reserve
            if estimate > remaining:
                run.status, run.error = "skipped", f"time budget ({profile.budget_s:.0f} s)"
                print(
                    f"[gpu_check] {run.name}: skipped, {remaining:.0f} s left of the budget",
                    flush=True,
                )
                continue
            began = time.perf_counter()
            train(run, profile, env, log_dir, timeout=max(remaining, 60.0))
            longest = max(longest, run.train_wall_s or 0.0)
            clock.step(
                f"train {run.name}",
                began,
                f"{run.status} {fmt(run.train_s_per_iter, 4)} s/iter {run.error}",
            )

        # 4. inference timing, every trained model in one process
        began = time.perf_counter()
        spec_path = os.path.join(work, "infer_spec.json")
        result_path = os.path.join(work, "infer_result.json")
        spec = {
            "device": profile.device,
            "infer_images": profile.infer_images,
            "rounds": profile.infer_rounds,
            "batch_sizes": [1, 8],
            "runs": [
                {
                    "name": r.name,
                    "config_file": r.config_file,
                    "overrides": r.overrides,
                    "precision": r.precision,
                    "weights": os.path.join(r.output_dir, "model_final.pth"),
                }  # fmt: skip
                for r in runs
                if r.status == "trained"
            ],
        }
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        rc, tail = run_logged(
            [sys.executable, INFER_SCRIPT, spec_path, result_path],
            env,
            os.path.join(log_dir, "infer.log"),
            timeout=max(profile.budget_s - clock.elapsed() + 60, 120),
        )
        result = json.load(open(result_path)) if os.path.exists(result_path) else {}
        if rc != 0:
            print(
                f"--- inference timing failed (exit {rc}); end of its output:\n{tail[-2500:]}\n---",
                flush=True,
            )
            notes.append(f"inference timing process failed (exit {rc}): {last_error_line(tail)}")
        clock.step("infer", began, f"({len(spec['runs'])} models)")
        environment = result.get("environment", {})
        torch_path = str(environment.get("torch_path", ""))
        if install.get("used") and torch_path.startswith(prefix):
            raise RuntimeError(
                f"torch was imported from the wheelhouse folder ({torch_path}): "
                "it must be the machine's"
            )
        notes += result.get("notes", [])
        rows = build_rows(runs, result.get("timings", {}))
    except Exception as e:  # the report still says how far the check came
        print(f"[gpu_check] error: {e}", flush=True)
        notes.append(f"error: {e}")
        rows = build_rows(runs, {})
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    if profile.device == "cuda":
        if all(r.processes == 1 for r in runs):
            notes.append("one process: Detectron2's launch runs training in-process at world "
                         "size 1, so DDP and NCCL are not exercised (two ranks on one GPU are "
                         "not possible with NCCL)")  # fmt: skip
        notes.append("AMP rows: trained with Detectron2's AMPTrainer, evaluated in fp32 (its "
                     "evaluation has no autocast), timed under fp16 autocast")  # fmt: skip
        notes.append(f"DATALOADER.NUM_WORKERS {profile.num_workers}; training batches in pinned "
                     "memory (KpextTrainer sets pin_memory on Detectron2's loader), copied to the "
                     "GPU by the model (a blocking copy)")  # fmt: skip
    report = {
        "profile": profile.name,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": "bash tools/gpu_check.sh" + (" --cpu-smoke" if args.cpu_smoke else ""),
        "environment": environment,
        "install": install,
        "settings": {k: v for k, v in asdict(profile).items() if k != "overrides"},
        "rows": rows,
        "steps": clock.steps,
        "total_s": round(clock.elapsed(), 1),
        "notes": notes,
    }
    write_report(out, report)
    print(markdown_report(report), flush=True)
    print(
        f"[gpu_check] total {clock.elapsed():.1f} s; report: {out}/report.md, report.json",
        flush=True,
    )
    expected = [
        r for r in rows if not (r["status"] == "skipped" and r["error"] == "AMP needs CUDA")
    ]
    return 0 if expected and all(r["status"] == "ok" for r in expected) else 1


if __name__ == "__main__":
    sys.exit(main())
