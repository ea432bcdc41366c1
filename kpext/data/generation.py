"""What kpext's dataset writers share: settings errors that name their CLI flag,
per-split settings from command-line overrides, and output files that appear
whole or not at all.

Used by the synthetic person generator (:mod:`kpext.data.synthetic`), the face
generator (:mod:`kpext.data.synthetic_faces`), the Kaggle converter
(:mod:`kpext.data.faces`) and their scripts in ``datasets/``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import replace
from typing import IO, Any, Dict, Iterable, Iterator, Mapping, Optional, Sequence, TypeVar

import numpy as np

__all__ = [
    "setting_error",
    "check_integer_settings",
    "configs_for_splits",
    "atomic_output",
    "write_json_atomically",
]

Config = TypeVar("Config")

_SPLIT_NAME = re.compile(r"[A-Za-z0-9_\-]+")


def setting_error(name: str, requirement: str, value: Any) -> ValueError:
    """``ValueError`` naming a generator setting and the CLI flag that sets it
    (``num_images`` is ``--num-images``)."""
    flag = "--" + name.replace("_", "-")
    return ValueError(f"{name} ({flag}) {requirement}, got {value!r}")


def check_integer_settings(config: Any, names: Iterable[str]) -> None:
    """Raise :func:`setting_error` for the first of ``names`` that is not an integer
    (``bool`` is refused too: ``True`` images is a typo, not 1)."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise setting_error(name, "must be an integer", value)


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
            raise ValueError(f"--split: split names may only use letters, digits, '_' and '-', got {name!r}")
        config = replace(defaults.get(name, fallback), **overrides)
        config.validate()
        configs[name] = config
    return configs


@contextlib.contextmanager
def atomic_output(path: str, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it to ``path``.

    An interrupted or failing writer leaves no partial file (and an existing
    ``path`` untouched). The folder is created if needed. A plain ``open`` (unlike
    ``mkstemp``) gives the file the usual umask permissions.
    """
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json_atomically(path: str, data: Any) -> None:
    """Write compact JSON to ``path`` through :func:`atomic_output`."""
    with atomic_output(path, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
