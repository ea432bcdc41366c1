"""bench_heads.py's report: the table's rows as cells, the regime checks (does the bench
measure heads near convergence?) and the figure of AP against branch time."""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from kpext.io import atomic_path

# The row every other row is compared with.
REFERENCE = "stock"


def mean_shares(per_seed: List[Dict[str, float]]) -> Dict[str, float]:
    """Error-class shares averaged over seeds."""
    names = per_seed[0].keys() if per_seed and per_seed[0] else ()
    return {n: float(np.mean([shares[n] for shares in per_seed])) for n in names}


def fmt_ci(ci) -> str:
    return f"[{ci[0]:+.1f}, {ci[1]:+.1f}]"


def fullsize_ratios(row) -> str:
    keys = sorted((k for k in row if k.startswith("fullsize_branch_vs_stock_")), key=len)
    return ", ".join(f"{row[k]:.2f}x" for k in keys) or "n/a"


# (column header, cell of a row)
TABLE_COLUMNS = [
    ("head", lambda r: r["name"]),
    ("AP (gt boxes)", lambda r: f"{r['ap_gt']:.1f} ± {r['ap_gt_std']:.1f}"),
    (
        "diff vs stock [95% CI]",
        lambda r: f"{r['diff_gt_vs_stock']:+.1f} {fmt_ci(r['diff_gt_ci95'])}",
    ),
    ("AP (detections)", lambda r: f"{r['ap_det']:.1f} ± {r['ap_det_std']:.1f}"),
    (
        "diff vs stock [95% CI]",
        lambda r: f"{r['diff_det_vs_stock']:+.1f} {fmt_ci(r['diff_det_ci95'])}",
    ),
    ("branch ms/box", lambda r: f"{r['branch_ms_per_box']:.2f}"),
    ("branch / stock", lambda r: f"{r['branch_vs_stock']:.2f}x"),
    ("decode speed-up", lambda r: f"{r['decode_speedup']:.1f}x"),
    ("train s/iter (head)", lambda r: f"{r['train_s_per_iter']:.3f} ({r['train_vs_stock']:.2f}x)"),
    ("full size branch / stock (20, 100 boxes)", fullsize_ratios),
    (
        "gt boxes: good / jitter / inversion (L/R) / swap / miss",
        lambda r: error_cells(r["errors_gt"]),
    ),
]


def error_cells(shares: Dict[str, float]) -> str:
    if not shares:
        return "n/a"
    return (
        f"{shares['good']:.0%} / {shares['jitter']:.0%} / {shares['inversion']:.0%} "
        f"({shares['inversion_left_right']:.0%}) / {shares['swap']:.0%} / {shares['miss']:.0%}"
    )


# The regime's targets (issue 22): a stock head near convergence, on features where heads differ.
REGIME_MIN_STOCK_AP = 40.0
REGIME_MAX_DOUBLING_GAIN = 1.0


def stock_curve_rows(rows: Sequence[dict]) -> List[dict]:
    """Stock's curve: the regime rows of stock's own config and precision (stock at other
    lengths; not the weakened head, not a paired precision check), by head iterations; stock's
    own row is not among them. Empty without a stock row."""
    stock = next((r for r in rows if r["name"] == REFERENCE), None)
    if stock is None:
        return []
    return sorted(
        (
            r
            for r in rows
            if r["regime"]
            and r["overrides"] == []
            and r.get("precision") == stock.get("precision")
            and not r.get("compare_with")
        ),
        key=lambda r: r["iterations"],
    )


def regime_checks(report) -> List[dict]:
    """The checks that say whether the bench measures heads near convergence, each with its
    value, target and verdict; rows missing from the run are left out."""
    rows = {r["name"]: r for r in report["rows"]}
    stock = rows[REFERENCE]
    checks = [
        {
            "check": "stock AP on gt boxes",
            "value": f"{stock['ap_gt']:.1f}",
            "target": f">= {REGIME_MIN_STOCK_AP:g}",
            "ok": stock["ap_gt"] >= REGIME_MIN_STOCK_AP,
        }
    ]
    curve = stock_curve_rows(report["rows"])
    if curve:
        points = sorted([*curve, stock], key=lambda r: r["iterations"])
        checks.append(
            {
                "check": "stock's curve (head iterations: AP on gt boxes)",
                "value": ", ".join(f"{r['iterations']}: {r['ap_gt']:.1f}" for r in points),
                "target": "flat at the end",
                "ok": None,
            }
        )
    doubled = next((r for r in curve if r["iterations"] == 2 * stock["iterations"]), None)
    if doubled:
        low, high = doubled["diff_gt_ci95"]
        checks.append(
            {
                "check": "doubling stock's iterations: AP change [95% CI]",
                "value": f"{doubled['diff_gt_vs_stock']:+.1f} {fmt_ci(doubled['diff_gt_ci95'])}",
                "target": f"< {REGIME_MAX_DOUBLING_GAIN:g}",
                "ok": abs(doubled["diff_gt_vs_stock"]) < REGIME_MAX_DOUBLING_GAIN,
            }
        )
    for row in rows.values():
        if row.get("compare_with"):
            checks.append(precision_check(row, rows[row["compare_with"]]))
    weak = rows.get("stock_weak_28")
    if weak:
        checks.append(
            {
                "check": "weakened stock (28 x 28 maps) vs stock [95% CI]",
                "value": f"{weak['diff_gt_vs_stock']:+.1f} {fmt_ci(weak['diff_gt_ci95'])}",
                "target": "interval below 0",
                "ok": weak["diff_gt_ci95"][1] < 0,
            }
        )
    return checks


def precision_check(row: dict, pair: dict) -> dict:
    """A row trained in another precision than its pair, at the same length: its AP on gt
    boxes minus the pair's must be within seed noise (the interval holds 0)."""
    low, high = row["diff_gt_vs_pair_ci95"]
    return {
        "check": (
            f"{row['precision']} minus {pair['precision']}, stock at {row['iterations']} "
            "iterations: AP on gt boxes [95% CI] (training time ratio)"
        ),
        "value": (
            f"{row['diff_gt_vs_pair']:+.1f} {fmt_ci(row['diff_gt_vs_pair_ci95'])} "
            f"({row['train_vs_pair']:.2f}x)"
        ),
        "target": "interval holds 0",
        "ok": low <= 0 <= high,
    }


def regime_markdown(report) -> str:
    verdict = {True: "met", False: "**missed**", None: "(shown)"}
    lines = ["| regime check | value | target | |", "|---|---|---|---|"]
    for c in regime_checks(report):
        lines.append(f"| {c['check']} | {c['value']} | {c['target']} | {verdict[c['ok']]} |")
    return "\n".join(lines) + "\n"


REGIME_LABELS = {
    "short": "`make bench`: heads early in training",
    "plateau": "`make bench-heads-plateau`: heads trained to stock's plateau",
}


def markdown_table(report) -> str:
    s = report["settings"]
    regime = report.get("regime", "short")
    caption = (
        f"**{regime.capitalize()} regime** ({REGIME_LABELS.get(regime, regime)}; heads trained in "
        f"{s.get('head_precision', 'float32')}). "
        f"Keypoint heads on one frozen shared detector ({s.get('detector_objective', 'boxes')} "
        f"objective, {s['detector_iterations']} iterations): {s['head_iterations']} head "
        "iterations x "
        f"{len(report['seeds'])} seed{'' if len(report['seeds']) == 1 else 's'}, "
        f"{s.get('val_set', 'kpext_synth_val')} "
        f"({s['val_images']} images); AP = OKS "
        "keypoint AP (mean over seeds ± std); diff = paired difference to stock with a 95% "
        "bootstrap interval over val images and seeds. "
        f"Machine: {report['machine']}. Commit {report['commit']}, {report['wall_s'] / 60:.1f} min."
        + (" QUICK smoke run: not a result." if report["quick"] else "")
    )
    lines = [
        caption,
        "",
        regime_markdown(report),
        "| " + " | ".join(h for h, _ in TABLE_COLUMNS) + " |",
        "|" + "---|" * len(TABLE_COLUMNS),
    ]
    for r in report["rows"]:
        lines.append("| " + " | ".join(cell(r) for _, cell in TABLE_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def spread_label_heights(ys: Sequence[float], min_gap: float) -> List[float]:
    """Heights for the labels of points at heights ``ys``: in the points' order, each at least
    ``min_gap`` from the next. Labels that would crowd form a group centred on its points'
    mean height (so a crowded column spreads both ways); a label with room stays at its point."""
    groups = [[i] for i in sorted(range(len(ys)), key=lambda i: ys[i])]

    def bottom(group: List[int]) -> float:
        return sum(ys[i] for i in group) / len(group) - (len(group) - 1) * min_gap / 2

    merged = True
    while merged:  # merge neighbouring groups until none overlap
        merged = False
        for k in range(len(groups) - 1):
            lower, upper = groups[k], groups[k + 1]
            if bottom(lower) + len(lower) * min_gap > bottom(upper):
                groups[k : k + 2] = [lower + upper]
                merged = True
                break
    heights = [0.0] * len(ys)
    for group in groups:
        start = bottom(group)
        for rank, i in enumerate(group):
            heights[i] = start + rank * min_gap
    return heights


def label_columns(xs: Sequence[float], width: float) -> List[List[int]]:
    """Indices of ``xs`` grouped into columns: points closer than ``width`` in x share one,
    so their labels (drawn to the right) would collide."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    columns: List[List[int]] = []
    for i in order:
        if columns and xs[i] - xs[columns[-1][-1]] < width:
            columns[-1].append(i)
        else:
            columns.append([i])
    return columns


def plot(report, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    stock = next(r for r in report["rows"] if r["name"] == REFERENCE)
    xs = [r["branch_vs_stock"] for r in report["rows"]]
    ys = [stock["ap_gt"] + r["diff_gt_vs_stock"] for r in report["rows"]]
    colors = []
    for r, x, y in zip(report["rows"], xs, ys):
        low, high = r["diff_gt_ci95"]
        bars = ax.errorbar(
            x,
            y,
            yerr=[[r["diff_gt_vs_stock"] - low], [high - r["diff_gt_vs_stock"]]],
            fmt="o",
            capsize=4,
        )
        colors.append(bars[0].get_color())
    y_span = max(max(ys) - min(ys), 1.0)
    x_span = max(max(xs) - min(xs), 0.1)
    label_y = list(ys)
    for column in label_columns(xs, width=0.2 * x_span):
        heights = spread_label_heights([ys[i] for i in column], min_gap=0.055 * y_span)
        for i, h in zip(column, heights):
            label_y[i] = h
    for r, x, y, h, color in zip(report["rows"], xs, ys, label_y, colors):
        ax.annotate(
            r["name"],
            (x, y),
            xytext=(x + 0.03 * x_span, h),
            va="center",
            fontsize=8,
            color=color,
            bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8),
            arrowprops=dict(arrowstyle="-", color=color, lw=0.6, shrinkA=0, shrinkB=3),
        )
    ax.set_xlim(min(xs) - 0.05 * x_span, max(xs) + 0.35 * x_span)
    ax.axhline(stock["ap_gt"], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("keypoint branch time per box / stock (CPU config)")
    ax.set_ylabel("OKS keypoint AP on ground-truth boxes")
    regime = report.get("regime", "short")
    iterations = report.get("settings", {}).get("head_iterations", "?")
    ax.set_title(
        f"Heads on one frozen detector, {regime} regime ({iterations} head iterations)\n"
        "bars: 95% CI of the difference to stock",
        fontsize=10,
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:  # the format from the extension, which tmp keeps
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
