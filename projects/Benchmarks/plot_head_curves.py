#!/usr/bin/env python
"""Heads' keypoint AP against head iterations, from several ``bench_heads.py`` reports.

Each report is one length of the head benchmark (``heads*.json``); this draws, for one seed,
every trained network's AP on ground-truth boxes at each length it ran, stock's curve with
its regime rows (stock at 1/4, 1/2 and 2x the report's length) folded in. Decoding rows
(trained weights of another row) and the regime's other checks (weakened head, float32) are
left out: they are not a network's own point. Reports should share the shared detector and
the val set (the script warns otherwise).

    python projects/Benchmarks/plot_head_curves.py docs/bench_heads_plateau.json \\
        docs/bench_heads_plateau_6400.json --seed 0 --out docs/bench_heads_curves.png
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

from kpext_bench.heads_report import REFERENCE, stock_curve_rows

Curves = Dict[str, Dict[int, float]]


def network_points(report: dict, seed: int) -> List[Tuple[str, int, float]]:
    """(network, head iterations, AP on gt boxes at ``seed``) of each trained network row of
    ``report``; stock's regime rows of stock's own config and precision count as stock."""
    seeds = list(report["seeds"])
    if seed not in seeds:
        return []
    at = seeds.index(seed)
    curve = {r["name"] for r in stock_curve_rows(report["rows"])}
    points = []
    for r in report["rows"]:
        if r["name"] in curve:
            name = REFERENCE
        elif r["regime"] or r.get("weights_from") or r.get("compare_with"):
            continue  # the weakened head, the float32 check, decoding rows
        else:
            name = r["name"]
        points.append((name, int(r["iterations"]), float(r["ap_gt_runs"][at])))
    return points


def collect_curves(reports: Sequence[dict], seed: int) -> Curves:
    """network -> {head iterations: AP on gt boxes}; a later report's point replaces an
    earlier one at the same length (deterministic runs give the same value)."""
    curves: Curves = defaultdict(dict)
    for report in reports:
        for name, iterations, ap in network_points(report, seed):
            curves[name][iterations] = ap
    return dict(curves)


def _lengths(curves: Curves) -> List[int]:
    return sorted({n for points in curves.values() for n in points})


def _networks(curves: Curves) -> List[str]:
    """Stock first, then the others by name."""
    return sorted(curves, key=lambda k: (k != REFERENCE, k))


def markdown(curves: Curves) -> str:
    lengths = _lengths(curves)
    lines = [
        "| network | " + " | ".join(str(n) for n in lengths) + " |",
        "|---|" + "---|" * len(lengths),
    ]
    for name in _networks(curves):
        cells = [f"{curves[name][n]:.1f}" if n in curves[name] else "" for n in lengths]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(curves: Curves, seed: int, path: str) -> None:
    """The networks with points at two lengths or more (a lone point is not a curve)."""
    curves = {k: v for k, v in curves.items() if len(v) >= 2}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name in _networks(curves):
        xs = sorted(curves[name])
        ax.plot(
            xs,
            [curves[name][x] for x in xs],
            "o-",
            label=name,
            linewidth=2.5 if name == REFERENCE else 1.5,
            color="black" if name == REFERENCE else None,
        )
    ax.set_xscale("log", base=2)
    lengths = _lengths(curves)
    ax.set_xticks(lengths)
    ax.set_xticklabels([str(n) for n in lengths])
    ax.set_xlabel("head iterations (4 images each)")
    ax.set_ylabel("keypoint AP on gt boxes")
    ax.set_title(f"Heads on the frozen shared detector, seed {seed}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def warn_if_mixed(reports: Sequence[dict], paths: Sequence[str]) -> None:
    for key in ("val_set", "detector_iterations", "detector_objective"):
        values = {str(r["settings"].get(key)) for r in reports}
        if len(values) > 1:
            print(f"warning: the reports differ in {key}: {sorted(values)} ({list(paths)})")


def load_report(path: str) -> dict:
    """A bench_heads.py JSON report; a file that is not one stops the script, naming it."""
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"{path}: cannot read a JSON report ({e})")
    missing = [k for k in ("seeds", "settings", "rows") if k not in report]
    if missing:
        raise SystemExit(
            f"{path}: not a bench_heads.py report (no {', '.join(missing)}); pass the "
            "heads*.json that bench_heads.py writes"
        )
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", help="bench_heads.py JSON reports")
    parser.add_argument("--seed", type=int, default=0, help="the seed whose APs are drawn")
    parser.add_argument("--out", default=os.path.join("output", "bench", "heads_curves.png"))
    args = parser.parse_args(argv)
    reports = [load_report(path) for path in args.reports]
    warn_if_mixed(reports, args.reports)
    curves = collect_curves(reports, args.seed)
    if not curves:
        print(f"no report has seed {args.seed}")
        return 1
    print(markdown(curves))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    plot(curves, args.seed, args.out)
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
