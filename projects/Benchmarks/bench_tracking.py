#!/usr/bin/env python
"""Trackers side by side on synthetic multi-person sequences with identities: HOTA, IDF1,
MOTA, ID switches, keypoint MOTA, and the jitter One-Euro smoothing removes.

    .venv/bin/python projects/Benchmarks/bench_tracking.py      # part of `make bench`
    BENCH_QUICK=1 .venv/bin/python projects/Benchmarks/bench_tracking.py   # smoke run

Scenes (kpext_bench/tracking_scenes.py): people crossing, hidden behind a nearer
person, leaving the frame and coming back, moving fast, a group; 320 x 240 at
30 fps, each drawn with seeds 1..3. Two detection sources
(kpext_bench/tracking_detections.py): ground truth with jitter, misses, false
positives and noisy scores (association apart from detection), and the error
rates ``make demo``'s model measured (its keypoint error classes, loose boxes,
more misses and false positives), drawn statistically: no video is rendered.

Every tracker of kpext.video.tracker_choice (``--tracker`` of demo.py and
count_reps.py) runs through kpext's VideoPoseRunner exactly as the demo runs it
(people start tracks at score 0.5, the demo's --confidence-threshold; the
two-stage trackers also see detections down to 0.1), once without and once with
One-Euro smoothing (the demo's settings). Metrics: kpext_bench/tracking_metrics.py
(motrics; HOTA on OKS, MOTA/IDF1/switches on boxes at IoU 0.5, keypoint MOTA at
OKS 0.5). Writes output/bench/tracking.json and .md (BENCH_TRACKING_OUT to change)
and prints the tables.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
from kpext_bench.machine import cpu_model
from kpext_bench.reports import git_commit, write_report
from kpext_bench.tracking_detections import SOURCES, detect_scene
from kpext_bench.tracking_metrics import (
    KEYPOINT_SHOWN,
    SIGMAS,
    TrackedFrame,
    keypoint_jitter,
    tracking_metrics,
)
from kpext_bench.tracking_scenes import FPS, SCENES, build_scene, scene_summary

from kpext.video.pipeline import VideoPoseRunner
from kpext.video.tracker_choice import (
    DEFAULT_TRACKER,
    TRACKERS,
    build_tracker,
    min_detection_score,
)
from kpext.video.tracking import KeypointSmoother

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.environ.get("BENCH_TRACKING_OUT", os.path.join(REPO, "output", "bench"))
QUICK = os.environ.get("BENCH_QUICK", "0") not in ("", "0")
SEEDS = (1, 2, 3)
CONFIDENCE = 0.5  # demo.py's and count_reps.py's --confidence-threshold
COMMAND = "make bench (.venv/bin/python projects/Benchmarks/bench_tracking.py)"
LABELS = {
    "greedy": "greedy (kpext before: greedy OKS, last pose)",
    "bytetrack": "bytetrack (Roboflow trackers 2.1, box IoU)",
    "kalman-oks": "kalman-oks (kpext: Kalman + two-stage + OKS)",
}


def run_tracker(name: str, detections, smooth: bool) -> tuple:
    """(one TrackedFrame per frame, seconds spent tracking) of tracker ``name`` through
    VideoPoseRunner, with the demo's One-Euro smoothing when ``smooth``."""
    tracker = build_tracker(name, score_threshold=CONFIDENCE, sigmas=SIGMAS, fps=FPS)
    smoother = KeypointSmoother(freq=FPS, score_threshold=KEYPOINT_SHOWN) if smooth else None
    runner = VideoPoseRunner(
        None,  # the detections are given: no predictor runs
        fps=FPS,
        tracker=tracker,
        smoother=smoother,
        score_threshold=min_detection_score(name, CONFIDENCE),
    )
    runner.reset()
    frames, spent = [], 0.0
    for index, det in enumerate(detections):
        start = time.perf_counter()
        persons = runner.track_detections(det.boxes, det.scores, det.keypoints, index / FPS)
        spent += time.perf_counter() - start
        frames.append(
            TrackedFrame(
                np.array([p.track_id for p in persons], dtype=int),
                np.array([p.keypoints for p in persons]).reshape(-1, 17, 3),
                np.array([p.box for p in persons]).reshape(-1, 4),
            )
        )
    return frames, spent


def measure(seeds: Sequence[int], scenes: Sequence[str], trackers: Sequence[str]) -> Dict:
    """Every tracker on every source, scene and seed, with and without smoothing."""
    rows: List[Dict] = []
    sequences: Dict[tuple, list] = {}  # (source, tracker, smooth, scene) -> [(gt, out), ...]
    spent: Dict[tuple, List[float]] = {}
    scene_facts = {}
    for scene_name in scenes:
        for seed in seeds:
            scene = build_scene(scene_name, seed)
            scene_facts.setdefault(scene_name, scene_summary(scene))
            for source in SOURCES:
                detections = detect_scene(scene, source, seed=1000 * seed + SOURCES.index(source))
                for tracker in trackers:
                    for smooth in (False, True):
                        out, seconds = run_tracker(tracker, detections, smooth)
                        key = (source, tracker, smooth, scene_name)
                        sequences.setdefault(key, []).append((scene.frames, out))
                        spent.setdefault((source, tracker), []).append(seconds / len(out))
    for source in SOURCES:
        for tracker in trackers:
            for smooth in (False, True):
                everything = [s for sc in scenes for s in sequences[(source, tracker, smooth, sc)]]
                row = dict(source=source, tracker=tracker, smooth=smooth, scene="all")
                row.update(tracking_metrics(everything))
                row.update(keypoint_jitter(everything))
                if not smooth:
                    row["ms_per_frame"] = 1000 * float(np.median(spent[(source, tracker)]))
                rows.append(row)
                for sc in scenes:
                    row = dict(source=source, tracker=tracker, smooth=smooth, scene=sc)
                    row.update(tracking_metrics(sequences[(source, tracker, smooth, sc)]))
                    rows.append(row)
    return {"rows": rows, "scenes": scene_facts}


def _row(rows, **where) -> Optional[Dict]:
    found = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    return found[0] if found else None


def best_tracker(rows, trackers: Sequence[str]) -> Dict[str, str]:
    """Per source, the tracker with the highest overall HOTA (no smoothing)."""
    best = {}
    for source in SOURCES:
        scored = [
            (_row(rows, source=source, tracker=t, smooth=False, scene="all"), t) for t in trackers
        ]
        best[source] = max(scored, key=lambda rt: rt[0]["hota"])[1]
    return best


def markdown(report: Dict) -> str:
    rows, trackers, scenes = (
        report["rows"],
        report["settings"]["trackers"],
        report["settings"]["scenes"],
    )
    lines = [
        f"Tracking benchmark, {report['date']}, {report['machine']} (shared), commit "
        f"{report['commit']}; `{report['command']}`; {len(report['settings']['seeds'])} seeds x "
        f"{len(scenes)} scenes; {report['duration_s']:.0f} s.",
        "",
        "| source | tracker | HOTA | DetA | AssA | IDF1 | MOTA | ID sw. | kp MOTA | kp IDF1 "
        "| kp ID sw. | box HOTA | ms/frame |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for source in SOURCES:
        for t in trackers:
            r = _row(rows, source=source, tracker=t, smooth=False, scene="all")
            mark = "**" if t == report["best"][source] else ""
            lines.append(
                f"| {source} | {mark}{LABELS.get(t, t)}{mark} | {mark}{r['hota']:.1f}{mark} | "
                f"{r['deta']:.1f} | {r['assa']:.1f} | {r['idf1']:.1f} | {r['mota']:.1f} | "
                f"{r['idsw']} | {r['kp_mota']:.1f} | {r['kp_idf1']:.1f} | {r['kp_idsw']} | "
                f"{r['box_hota']:.1f} | {r['ms_per_frame']:.2f} |"
            )
    lines += ["", "HOTA / ID switches (box IoU 0.5) per scene:", ""]
    lines.append("| source | scene | " + " | ".join(trackers) + " |")
    lines.append("|---|---|" + "---|" * len(trackers))
    for source in SOURCES:
        for sc in scenes:
            cells = []
            for t in trackers:
                r = _row(rows, source=source, tracker=t, smooth=False, scene=sc)
                cells.append(f"{r['hota']:.1f} / {r['idsw']}")
            lines.append(f"| {source} | {sc} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "One-Euro smoothing (demo.py's: min_cutoff 1 Hz, beta 0.02 per px/s): jitter = mean "
        "|output acceleration - true acceleration| (px/frame^2), error = mean keypoint distance "
        "(px), of visible keypoints matched at OKS >= 0.5:",
        "",
        "| source | tracker | jitter raw | jitter smoothed | error raw | error smoothed | "
        "HOTA raw | HOTA smoothed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for source in SOURCES:
        for t in trackers:
            raw = _row(rows, source=source, tracker=t, smooth=False, scene="all")
            smooth = _row(rows, source=source, tracker=t, smooth=True, scene="all")
            lines.append(
                f"| {source} | {t} | {raw['jitter']:.2f} | {smooth['jitter']:.2f} | "
                f"{raw['error']:.2f} | {smooth['error']:.2f} | {raw['hota']:.1f} | "
                f"{smooth['hota']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (also BENCH_QUICK=1)")
    parser.add_argument("--out", default=OUT, help="folder of tracking.json and tracking.md")
    parser.add_argument(
        "--trackers", default=",".join(TRACKERS), help=f"comma-separated, of {', '.join(TRACKERS)}"
    )
    return parser.parse_args(argv)


def main(argv=None) -> Dict:
    args = parse_args(argv)
    quick = args.quick or QUICK
    trackers = [t for t in args.trackers.split(",") if t]
    seeds, scenes = (SEEDS[:1], SCENES[:2]) if quick else (SEEDS, SCENES)
    start = time.perf_counter()
    measured = measure(seeds, scenes, trackers)
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": cpu_model(),
        "python": platform.python_version(),
        "commit": git_commit(),
        "command": COMMAND if not quick else "BENCH_QUICK=1 " + COMMAND,
        "settings": {
            "quick": quick,
            "seeds": list(seeds),
            "scenes": list(scenes),
            "trackers": trackers,
            "confidence": CONFIDENCE,
            "default_tracker": DEFAULT_TRACKER,
        },
        "scenes": measured["scenes"],
        "rows": measured["rows"],
    }
    report["best"] = best_tracker(report["rows"], trackers)
    report["duration_s"] = time.perf_counter() - start
    text = markdown(report)
    stem = "tracking_quick" if quick else "tracking"
    os.makedirs(args.out, exist_ok=True)
    json_path, md_path = write_report(args.out, stem, report, text)
    print(text)
    print(f"wrote {json_path} and {md_path}")
    return report


if __name__ == "__main__":
    sys.exit(main() and 0)
