"""Benchmark reports: the commit they record, and how they are written."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Tuple

from kpext.io import atomic_open

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def git_commit() -> str:
    """The checkout's short commit, with ``+dirty`` when tracked files differ from it;
    ``unknown`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_report(folder: str, stem: str, report: dict, markdown: str) -> Tuple[str, str]:
    """Write ``<folder>/<stem>.json`` and ``<stem>.md``, each whole or not at all (an
    interrupted run leaves the previous report, not half of a new one); returns both paths."""
    json_path, md_path = (os.path.join(folder, f"{stem}{ext}") for ext in (".json", ".md"))
    with atomic_open(json_path) as f:
        json.dump(report, f, indent=2)
    with atomic_open(md_path) as f:
        f.write(markdown)
    return json_path, md_path
