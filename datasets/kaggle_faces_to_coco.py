#!/usr/bin/env python
"""Convert Kaggle's facial-keypoints training.csv (or any CSV in that format) to COCO
keypoint JSON plus grey PNG images, ready for projects/FaceLandmarks.

Examples (from the repository root)::

    python datasets/kaggle_faces_to_coco.py --csv training.csv --out datasets/kaggle_faces
    python datasets/kaggle_faces_to_coco.py --csv training.csv --out DIR \
        --box keypoints --box-margin 0.3
    python datasets/kaggle_faces_to_coco.py --csv training.csv --out DIR --on-invalid skip

Writes ``DIR/images/{train,val}/<row>.png`` and ``DIR/annotations/faces15_{train,val}.json``
(``--val-fraction`` of the rows, a fixed draw for ``--seed``, go to val; Kaggle's
test.csv has no labels). Train on it with
``projects/FaceLandmarks/train_net.py --faces-root DIR``. A malformed row stops the
conversion with the file, row and line in the message (exit status 1), unless
``--on-invalid skip``, which leaves such rows out and lists them.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import List, Optional

if importlib.util.find_spec("kpext") is None:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# E402 below is expected: kpext is importable only after the sys.path set-up above. kpext_synth
# (the converter, not installed) is found beside this script.
from kpext.data import KeypointDataError  # noqa: E402
from kpext_synth.kaggle import BOX_MODES, KAGGLE_IMAGE_SIZE, convert_kaggle_csv  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Convert a Kaggle facial-keypoints CSV to COCO keypoint JSON and PNG images.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--csv", required=True, help="the CSV (Kaggle's training.csv format)")
    add("--out", required=True, help="output folder (images/ and annotations/ are created in it)")
    add(
        "--val-fraction",
        type=float,
        default=0.1,
        help="share of rows for the val split (0: train only)",
    )
    add("--seed", type=int, default=0, help="seed of the train/val draw")
    add(
        "--box",
        choices=BOX_MODES,
        default="image",
        help="face box: the whole image (Kaggle's images are face crops) or the labelled "
        "keypoints' box enlarged by --box-margin",
    )
    add(
        "--box-margin",
        type=float,
        default=0.25,
        help="with --box keypoints: margin on every side, as a fraction of the keypoints' box",
    )
    add("--image-size", type=int, default=KAGGLE_IMAGE_SIZE, help="width = height of the images")
    add(
        "--on-invalid",
        choices=("error", "skip"),
        default="error",
        help="stop at the first malformed row, or leave malformed rows out and list them",
    )
    add("--quiet", action="store_true", help="no progress bar")
    return parser  # fmt: skip


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not os.path.isfile(args.csv):
        parser.error(f"--csv: {args.csv} does not exist")
    try:
        report = convert_kaggle_csv(
            args.csv, args.out, val_fraction=args.val_fraction, seed=args.seed,
            image_size=args.image_size, box=args.box, box_margin=args.box_margin,
            on_invalid=args.on_invalid, show_progress=not args.quiet,
        )  # fmt: skip
    except ValueError as e:  # KeypointDataError is a ValueError: bad file, bad row or bad flag
        kind = "invalid input" if isinstance(e, KeypointDataError) else "invalid argument"
        print(f"error ({kind}): {e}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
