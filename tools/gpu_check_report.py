"""The GPU check's report (:mod:`gpu_check`): part a's plateau table (the head benchmark's own),
then part b's rows: one per run with its inference timing and its ratios to the stock head at
the same precision, and one per graph variant of a run (its weights timed with other
test-time options). Written as ``report.json`` and ``report.md``, with every log in
``logs.tar.gz``, after each step: a check stopped part-way leaves what it had."""

from __future__ import annotations

import json
import os
import tarfile
from typing import Dict, List, Optional, Sequence

from gpu_check_plateau import plateau_markdown
from gpu_check_runs import Run

# Numbers of a row that are compared with the stock head's row of the same precision.
RATIO_FIELDS = ("train_s_per_iter", "infer_img_s_b1", "infer_img_s_b8")


def build_rows(
    runs: Sequence[Run], timings: Dict[str, Dict[str, object]]
) -> List[Dict[str, object]]:
    """One row per run with its inference timing and ratios to the stock head's row of the
    same precision (None where either number is missing)."""
    rows = []
    for run in runs:
        row = {
            "head": run.head, "head_class": run.head_class, "precision": run.precision,
            "test_options": None, "weights_from": None,
            "status": run.status, "error": run.error, "config_file": run.config_file,
            "processes": run.processes, "trainer": run.trainer, "amp_mode": run.amp_mode,
            "cpu_roi_align_poolers": run.cpu_roi_align_poolers,
            "train_wall_s": run.train_wall_s, "train_s_per_iter": run.train_s_per_iter,
            "train_max_mem_mb": run.train_max_mem_mb, "box_ap": run.box_ap, "kp_ap": run.kp_ap,
            "infer_img_s_b1": None, "infer_img_s_b8": None, "detections_per_image": None,
        }  # fmt: skip
        timing = timings.get(run.name)
        if timing is not None:
            add_timing(row, timing)
        elif row["status"] == "trained" and timings:
            row["status"], row["error"] = "failed", "inference timing did not run"
        rows.append(row)
        rows += variant_rows(row, run.name, timings)
    add_ratios(rows)
    return rows


def add_timing(row: Dict[str, object], timing: Dict[str, object]) -> None:
    """The inference numbers (or error) of one model into its row."""
    row["test_options"] = timing.get("test_options")
    if timing.get("error"):
        row["status"], row["error"] = "failed", f"inference timing: {timing['error']}"
        return
    for name in ("infer_img_s_b1", "infer_img_s_b8", "detections_per_image"):
        row[name] = timing.get(name)
    if row["status"] == "trained":
        row["status"] = "ok"


def variant_rows(
    source: Dict[str, object], name: str, timings: Dict[str, Dict[str, object]]
) -> List[Dict[str, object]]:
    """Rows of the graph variants timed on run ``name``'s weights: its head and precision,
    no training numbers of their own."""
    rows = []
    for timing in (t for t in timings.values() if t.get("source") == name):
        row = {k: None for k in source}
        row.update(
            head=source["head"], head_class=source["head_class"], precision=source["precision"],
            config_file=source["config_file"], weights_from=name, status="trained", error="",
        )  # fmt: skip
        add_timing(row, timing)
        rows.append(row)
    return rows


def add_ratios(rows: List[Dict[str, object]]) -> None:
    """``<field>_vs_stock``: the row's value over the stock row's at the same precision."""
    stock = {r["precision"]: r for r in rows if r["head"] == "stock" and not r["weights_from"]}
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


def options_cell(row: Dict[str, object]) -> str:
    options = row.get("test_options")
    if not options:
        return "-"
    return ", ".join(f"{k} {v}" for k, v in options.items())


def step_cell(row: Dict[str, object]) -> str:
    """The training step that ran, what AMP meant, the CPU RoIAlign's level poolers."""
    if not row.get("trainer"):
        return f"(weights of {row['weights_from']})" if row.get("weights_from") else "-"
    mode = f" ({row['amp_mode']})" if row.get("amp_mode") else ""
    return f"{row['trainer']}{mode}, {fmt(row.get('cpu_roi_align_poolers'))} CPU RoIAlign"


def rows_markdown(rows: Sequence[Dict[str, object]]) -> List[str]:
    """Part b's table: one line per row."""
    lines = [
        "| head | precision | test options | procs | training step | train s/iter | x stock "
        "| infer img/s b1 | x stock | infer img/s b8 | x stock | det/img | train max mem MB "
        "| box AP | kp AP | status |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        status = r["status"] if not r["error"] else f"{r['status']}: {r['error']}"
        lines.append(
            f"| {r['head']} ({r['head_class']}) | {r['precision']} | {options_cell(r)} "
            f"| {fmt(r['processes'])} | {step_cell(r)} "
            f"| {fmt(r['train_s_per_iter'], 4)} | {fmt(r['train_s_per_iter_vs_stock'], 2)} "
            f"| {fmt(r['infer_img_s_b1'], 2)} | {fmt(r['infer_img_s_b1_vs_stock'], 2)} "
            f"| {fmt(r['infer_img_s_b8'], 2)} | {fmt(r['infer_img_s_b8_vs_stock'], 2)} "
            f"| {fmt(r['detections_per_image'], 1)} | {fmt(r['train_max_mem_mb'], 0)} "
            f"| {fmt(r['box_ap'], 2)} | {fmt(r['kp_ap'], 2)} | {status.replace('|', '/')} |"
        )  # fmt: skip
    return lines


def markdown_report(report: Dict[str, object]) -> str:
    """The report as Markdown: environment, part a (the bench's table), part b (one row per
    run and graph variant), the steps' times."""
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
        f"- commit: {report.get('commit', '-')}; total: {report['total_s']:.1f} s "
        f"of a {settings['budget_s']:.0f} s budget",
        "",
        *plateau_markdown(report.get("plateau")),
        "## b) Training and inference at full size (projects/PoseEstimation/train_net.py)",
        "",
        *rows_markdown(report["rows"]),
    ]  # fmt: skip
    lines += ["", "x stock: the row's number over the stock head's at the same precision "
              "(s/iter: lower is faster; images/s: higher is faster).",
              "", "| step | seconds | note |", "|---|---:|---|"]  # fmt: skip
    lines += [f"| {s['step']} | {s['seconds']:.1f} | {s['note']} |" for s in report["steps"]]
    if report.get("notes"):
        lines += [""] + [f"- {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"


def write_report(out: str, report: Dict[str, object], log_dir: Optional[str] = None) -> None:
    """report.json, report.md and (with ``log_dir``) logs.tar.gz, each replaced whole: a
    reader (or a check stopped part-way) never sees half a file."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "report.json.tmp"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(out, "report.md.tmp"), "w") as f:
        f.write(markdown_report(report))
    names = ["report.json", "report.md"]
    if log_dir and os.path.isdir(log_dir):
        with tarfile.open(os.path.join(out, "logs.tar.gz.tmp"), "w:gz") as tar:
            tar.add(log_dir, arcname="logs")
        names.append("logs.tar.gz")
    for name in names:
        os.replace(os.path.join(out, name + ".tmp"), os.path.join(out, name))
