#!/usr/bin/env python
"""Generate kpext's synthetic face-keypoint set: Kaggle-format CSVs, the 15-point COCO
JSONs converted from them, and 68-point (iBUG) COCO JSONs on the same images.

Examples (from the repository root)::

    python datasets/make_faces.py          # train (2000) + val (200) into datasets/faces
    python datasets/make_faces.py --split val --num-images 20 --out /tmp/faces
    python datasets/make_faces.py --missing-fraction 0.7 --force   # as sparse as Kaggle's labels

Splits that already exist with the same settings are left alone unless --force is
given. See datasets/README.md ("Faces") for the layout of the output.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from typing import Dict, List, Optional

if importlib.util.find_spec("kpext") is None:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# E402 below is expected: kpext is importable only after the sys.path set-up above. kpext_synth
# (the renderers, not installed) is found beside this script.
from kpext_synth.faces import (  # noqa: E402
    DEFAULT_FACE_SPLITS,
    FaceSynthConfig,
    face_split_is_current,
    generate_face_split,
)
from kpext_synth.generation import add_split_arguments, split_configs_from_args  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate the synthetic face-keypoint set "
        "(Kaggle CSV, 15- and 68-point COCO JSON).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_split_arguments(parser, DEFAULT_FACE_SPLITS, os.path.join("datasets", "faces"), "faces")
    # each flag sets the FaceSynthConfig field of the same name
    add = parser.add_argument
    add("--image-size", type=int, help="image width and height in pixels (default 96, Kaggle's)")
    add(
        "--min-face-frac",
        type=float,
        help="smallest face height as a fraction of the image (default 0.5)",
    )
    add(
        "--max-face-frac",
        type=float,
        help="largest face height as a fraction of the image (default 1.0)",
    )
    add("--max-roll", type=float, help="largest in-plane rotation in degrees (default 25)")
    add("--max-yaw", type=float, help="largest head turn in degrees (default 25, at most 35)")
    add(
        "--occluder-prob",
        type=float,
        help="probability of a bar or hand over the face (default 0.3)",
    )
    add("--glasses-prob", type=float, help="probability of glasses (default 0.15)")
    add(
        "--missing-fraction",
        type=float,
        help="share of CSV rows that keep only the 4 core points (default: train 0.3, val 0)",
    )
    add(
        "--noise",
        type=float,
        help="largest sensor noise standard deviation, grey levels (default 5)",
    )
    return parser  # fmt: skip


def split_configs(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> Dict[str, FaceSynthConfig]:
    """Each requested split's config: its default with the given flags applied (splits
    without defaults of their own get the val split's settings); invalid values exit
    through ``parser.error`` (status 2)."""
    return split_configs_from_args(args, parser, DEFAULT_FACE_SPLITS, DEFAULT_FACE_SPLITS["val"])


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for split, cfg in split_configs(args, parser).items():
        if not args.force and face_split_is_current(args.out, split, cfg):
            print(
                f"{split}: up to date ({cfg.num_images} faces) in {args.out}  (--force regenerates)"
            )
            continue
        start = time.perf_counter()
        paths = generate_face_split(args.out, split, cfg, show_progress=not args.quiet)
        print(f"{split}: {cfg.num_images} faces in {time.perf_counter() - start:.1f} s -> "
              f"{paths['csv']}, {paths['faces15']}, {paths['faces68']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
