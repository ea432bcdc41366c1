#!/usr/bin/env python
"""Generate kpext's synthetic multi-person keypoint dataset (COCO format).

Examples (from the repository root)::

    python datasets/make_synthetic.py                      # train, val, val_heldout: demo sizes
    python datasets/make_synthetic.py --split val --num-images 20 --out /tmp/synth
    python datasets/make_synthetic.py --max-people 3 --width 320 --height 240 --force
    python datasets/make_synthetic.py --split mine --styles classic,silhouette --out /tmp/synth
    python datasets/make_synthetic.py --preview docs/synthetic_styles.jpg   # one example per style

Splits that already exist with the same settings are left alone unless --force is
given. See datasets/README.md for the layout of the output.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import time
from typing import Dict, List, Optional, Tuple

if importlib.util.find_spec("kpext") is None:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# E402 below is expected: kpext is importable only after the sys.path set-up above. kpext_synth
# (the renderers, not installed) is found beside this script.
from kpext.data.builtin import synthetic_annotation_path  # noqa: E402
from kpext_synth.generation import add_split_arguments, split_configs_from_args  # noqa: E402
from kpext_synth.people import (  # noqa: E402
    DEFAULT_SPLITS,
    STYLES,
    SyntheticConfig,
    generate_split,
    split_is_current,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate the synthetic multi-person keypoint dataset in COCO format.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_split_arguments(parser, DEFAULT_SPLITS, os.path.join("datasets", "synthetic"), "images")
    # each flag sets the SyntheticConfig field of the same name
    add = parser.add_argument
    add("--width", type=int, help="image width in pixels (default 256)")
    add("--height", type=int, help="image height in pixels (default 256)")
    add("--min-people", type=int, help="fewest people per image (default 1)")
    add("--max-people", type=int, help="most people per image (default 6, at most 20)")
    add("--min-person-height", type=float, help="smallest person height, pixels (default 30)")
    add(
        "--max-person-height-frac",
        type=float,
        help="largest person height as a fraction of the image height (default: 0.95 for "
        "the default splits, else 0.9)",
    )
    add(
        "--styles",
        type=style_list,
        metavar="NAME,NAME",
        help=f"styles people are drawn in, comma-separated, among {','.join(STYLES)} "
        "; a name given twice is drawn twice as often (default: train: "
        "classic,classic,silhouette,lowcontrast; val: classic,silhouette,lowcontrast; "
        "val_heldout: outline,textured)",
    )
    add(
        "--shape-variety",
        type=float,
        help="probability of a random head shape and limb thickness per person (default 0.5)",
    )
    add(
        "--large-person-prob",
        type=float,
        help="probability of a close-up image with one person filling most of it (default 0.1)",
    )
    add(
        "--degrade-prob",
        type=float,
        help="probability of strong blur and/or noise over an image (default 0.2)",
    )
    add(
        "--preview",
        metavar="JPG",
        help="write a picture with examples of every style (labels drawn under them) and exit",
    )
    return parser  # fmt: skip


def style_list(text: str) -> Tuple[str, ...]:
    """``"classic,silhouette"`` -> ``("classic", "silhouette")`` (checked by the config)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def split_configs(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> Dict[str, SyntheticConfig]:
    """Each requested split's config: its default with the given flags applied (splits
    without defaults of their own get the val split's settings, seed 0); invalid values exit
    through ``parser.error`` (status 2)."""
    fallback = dataclasses.replace(DEFAULT_SPLITS["val"], seed=0)
    return split_configs_from_args(args, parser, DEFAULT_SPLITS, fallback)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.preview:
        from kpext_synth.preview import write_style_preview

        write_style_preview(args.preview)
        print(f"style examples -> {args.preview}")
        return 0
    configs = split_configs(args, parser)
    for split, cfg in configs.items():
        path = synthetic_annotation_path(args.out, split)
        if not args.force and split_is_current(args.out, split, cfg):
            print(f"{split}: up to date ({cfg.num_images} images) -> {path}  (--force regenerates)")
            continue
        start = time.perf_counter()
        path = generate_split(args.out, split, cfg, show_progress=not args.quiet)
        with open(path, encoding="utf-8") as f:
            people = len(json.load(f)["annotations"])
        print(f"{split}: {cfg.num_images} images, {people} people in "
              f"{time.perf_counter() - start:.1f} s -> {path}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
