#!/usr/bin/env python
"""Compare trained face models side by side: a table of their metrics and one picture.

    python projects/FaceLandmarks/compare_heads.py output/faces15_stock output/faces15_kpext \
        output/faces15_gaussian output/faces15_hourglass --picture output/faces15_heads.jpg

Each argument is the OUTPUT_DIR of a ``train_net.py`` run; it must hold
``face_metrics.json`` and, for the picture, ``predictions/*.jpg``. The first run is
the reference of the ratio columns (the stock head in the command above). The
table (Markdown) goes to stdout; the picture has one row per run, labelled with its
head and mean error, and the same validation faces in its columns. Runs on different datasets (the
15- and the 68-point faces, which share their images) may be mixed: the table
and the labels then name each run's dataset.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

COLUMNS = [
    # (title, key in face_metrics.json, format)
    ("mean px error", "mean_px_error", "{:.2f}"),
    ("RMSE px", "rmse_px", "{:.2f}"),
    ("NME % IOD", "nme_iod_percent", "{:.1f}"),
    ("kp AP", "keypoint_AP", "{:.1f}"),
    ("AP50", "keypoint_AP50", "{:.1f}"),
    ("AP75", "keypoint_AP75", "{:.1f}"),
    ("box AP", "box_AP", "{:.1f}"),
]


class CompareError(Exception):
    pass


def load_run(run_dir: str, dataset: Optional[str] = None) -> Dict:
    """The metrics of one run: ``{"dir", "head", "train_seconds", "dataset", **metrics}``."""
    path = os.path.join(run_dir, "face_metrics.json")
    try:
        with open(path, encoding="utf-8") as f:
            summary = json.load(f)
    except FileNotFoundError:
        raise CompareError(
            f"{path} does not exist: train or evaluate that run with train_net.py first"
        ) from None
    except json.JSONDecodeError as e:
        raise CompareError(f"{path} is not valid JSON ({e})") from None
    datasets = summary.get("datasets") or {}
    if not datasets:
        raise CompareError(f"{path} has no evaluated dataset")
    name = dataset or next(iter(datasets))
    if name not in datasets:
        raise CompareError(f"{path} has no results for {name!r} (it has {sorted(datasets)})")
    return {
        "dir": run_dir,
        "head": summary.get("config", "?"),
        "train_seconds": summary.get("train_seconds"),
        "dataset": name,
        **datasets[name],
    }


def _mixes_datasets(runs: Sequence[Dict]) -> bool:
    return len({run["dataset"] for run in runs}) > 1


def _cell(value, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def markdown_table(runs: Sequence[Dict]) -> str:
    """One row per run; the last two columns compare with the first run."""
    ref = runs[0]
    mixed = _mixes_datasets(runs)
    header = ["run", "head"] + ["dataset"] * mixed + [c[0] for c in COLUMNS]
    header += ["train s", "error / first", "AP - first"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in runs:
        ratio = delta = None
        if run.get("mean_px_error") is not None and ref.get("mean_px_error"):
            ratio = run["mean_px_error"] / ref["mean_px_error"]
        if run.get("keypoint_AP") is not None and ref.get("keypoint_AP") is not None:
            delta = run["keypoint_AP"] - ref["keypoint_AP"]
        cells = [os.path.basename(os.path.normpath(run["dir"])), run["head"]] + [
            run["dataset"]
        ] * mixed
        cells += [_cell(run.get(key), fmt) for _, key, fmt in COLUMNS]
        cells += [
            _cell(run.get("train_seconds"), "{:.0f}"),
            _cell(ratio, "{:.2f}x"),
            _cell(delta, "{:+.1f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((28, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, tile], axis=0)


def comparison_picture(runs: Sequence[Dict], num_images: int, tile: int) -> np.ndarray:
    """Rows: runs; columns: their first ``num_images`` prediction pictures (same names in
    each run)."""
    names = None
    for run in runs:
        found = sorted(
            os.path.basename(p) for p in glob.glob(os.path.join(run["dir"], "predictions", "*.jpg"))
        )
        names = found if names is None else [n for n in names if n in set(found)]
    names = (names or [])[:num_images]
    if not names:
        raise CompareError(
            "the runs have no prediction pictures in common "
            "(train_net.py writes them to predictions/)"
        )
    rows = []
    mixed = _mixes_datasets(runs)
    for run in runs:
        tiles = []
        for name in names:
            path = os.path.join(run["dir"], "predictions", name)
            image = cv2.imread(path)
            if image is None:
                raise CompareError(f"cannot read {path}")
            tiles.append(cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA))
        row = np.concatenate(tiles, axis=1)
        name = f"{run['head']} on {run['dataset']}" if mixed else run["head"]
        rows.append(
            _label(row, f"{name}: mean error {_cell(run.get('mean_px_error'), '{:.2f}')} px")
        )
    return np.concatenate(rows, axis=0)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "runs", nargs="+", help="OUTPUT_DIRs of train_net.py runs; the first is the reference"
    )
    parser.add_argument(
        "--dataset", help="evaluated dataset to compare (default: each run's first)"
    )
    parser.add_argument("--picture", help="write the side-by-side picture here (.jpg or .png)")
    parser.add_argument(
        "--num-images", type=int, default=4, help="validation faces per row of the picture"
    )
    parser.add_argument(
        "--tile", type=int, default=224, help="size of each face in the picture, pixels"
    )
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    try:
        runs = [load_run(d, args.dataset) for d in args.runs]
        datasets = ", ".join(sorted({run["dataset"] for run in runs}))
        print(f"Face keypoints on {datasets} (errors in pixels at 96x96)\n")
        print(markdown_table(runs))
        if args.picture:
            picture = comparison_picture(runs, args.num_images, args.tile)
            os.makedirs(os.path.dirname(os.path.abspath(args.picture)), exist_ok=True)
            if not cv2.imwrite(args.picture, picture):
                raise CompareError(f"cannot write {args.picture}")
            print(f"\nWrote {args.picture}")
    except CompareError as e:
        raise SystemExit(f"compare_heads.py: error: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
