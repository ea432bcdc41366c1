"""The GPU check's report (:mod:`gpu_check`, step 5): one row per run with its inference
timing and its ratios to the stock head at the same precision, as ``report.json`` and
``report.md``."""

from __future__ import annotations

import json
import os
from typing import Dict, List, Sequence

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
