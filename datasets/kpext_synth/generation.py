"""What kpext's dataset writers share: settings errors that name their CLI flag,
per-split settings from command-line overrides, and output files that appear
whole or not at all.

Used by the synthetic person generator (:mod:`kpext_synth.people`), the face
generator (:mod:`kpext_synth.faces`), the Kaggle converter
(:mod:`kpext_synth.kaggle`) and their scripts in ``datasets/``.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import fields, replace
from typing import Any, Dict, Iterable, Mapping, NoReturn, Optional, Sequence, TypeVar

import numpy as np

from kpext.io import atomic_open

__all__ = [
    "reject_setting",
    "check_integer_settings",
    "check_count_and_seed",
    "configs_for_splits",
    "add_split_arguments",
    "split_configs_from_args",
    "write_json_atomically",
]

Config = TypeVar("Config")

_SPLIT_NAME = re.compile(r"[A-Za-z0-9_\-]+")


def reject_setting(name: str, requirement: str, value: Any) -> NoReturn:
    """Raise ``ValueError`` naming a generator setting and the CLI flag that sets it
    (``num_images`` is ``--num-images``)."""
    flag = "--" + name.replace("_", "-")
    raise ValueError(f"{name} ({flag}) {requirement}, got {value!r}")


def check_integer_settings(config: Any, names: Iterable[str]) -> None:
    """:func:`reject_setting` the first of ``names`` that is not an integer
    (``bool`` is refused too: ``True`` images is a typo, not 1)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            reject_setting(name, "must be an integer", value)


def check_count_and_seed(config: Any, integer_names: Iterable[str]) -> None:
    """The checks every generator's settings share: ``num_images``, ``seed`` and the other
    ``integer_names`` are integers, at least one image, a non-negative seed."""
    check_integer_settings(config, ("num_images", "seed", *integer_names))
    if config.num_images < 1:
        reject_setting("num_images", "must be at least 1", config.num_images)
    if config.seed < 0:
        reject_setting("seed", "must be >= 0", config.seed)


def configs_for_splits(
    names: Optional[Sequence[str]],
    defaults: Mapping[str, Config],
    fallback: Config,
    overrides: Mapping[str, Any],
) -> Dict[str, Config]:
    """The settings of each split: its default (``fallback`` for a split without
    one) with ``overrides`` applied, validated. ``names=None`` means all defaults.

    Raises ``ValueError`` for a split name that is not a plain file-name part
    (letters, digits, ``_``, ``-``) or settings that fail their ``validate()``.
    """
    configs: Dict[str, Config] = {}
    for name in names or list(defaults):
        if not _SPLIT_NAME.fullmatch(name):
            raise ValueError(
                f"--split: split names may only use letters, digits, '_' and '-', got {name!r}"
            )
        config = replace(defaults.get(name, fallback), **overrides)
        config.validate()
        configs[name] = config
    return configs


def add_split_arguments(
    parser: argparse.ArgumentParser, defaults: Mapping[str, Any], out_default: str, item: str
) -> None:
    """The flags every generator CLI has: ``--out``, ``--split``, ``--num-images``, ``--seed``,
    ``--force`` and ``--quiet`` (``item`` names what is counted: "images", "faces")."""
    listed = " and ".join(
        f"{name} ({cfg.num_images} {item}, seed {cfg.seed})" for name, cfg in defaults.items()
    )
    add = parser.add_argument
    add(
        "--out",
        default=out_default,
        help="output root (relative paths are relative to the current directory)",
    )
    add(
        "--split",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"split(s) to generate; default: {listed}",
    )
    add("--num-images", type=int, help=f"{item} per split (default: the split's own)")
    add("--seed", type=int, help="base random seed (default: the split's own)")
    add("--force", action="store_true", help="regenerate even if the split is up to date")
    add("--quiet", action="store_true", help="no progress bar")


def split_configs_from_args(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    defaults: Mapping[str, Config],
    fallback: Config,
) -> Dict[str, Config]:
    """:func:`configs_for_splits` with every settings field that has a flag given on the
    command line (``--num-images`` sets ``num_images``) as an override; exits through
    ``parser.error`` (status 2) on invalid values."""
    overrides = {
        f.name: getattr(args, f.name)
        for f in fields(fallback)
        if getattr(args, f.name, None) is not None
    }
    try:
        return configs_for_splits(args.split, defaults, fallback, overrides)
    except ValueError as e:
        parser.error(str(e))


def write_json_atomically(path: str, data: Any) -> None:
    """Write compact JSON to ``path`` through :func:`kpext.io.atomic_open`."""
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
