"""The venvs `make setup` and `make test-upstream` build are consistent and pinned: `pip check`
is clean, and every package they install is in constraints.txt at the installed version.

Both checks run only in those venvs (their installers leave a stamp in them): kpext installed
into your own Detectron2 environment declares ranges, and what else that environment holds is
yours.
"""

import importlib.metadata as metadata
import os
import re
import shlex
import subprocess
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Written by the Makefile's setup (.venv) and tools/install_upstream_detectron2.sh
STAMPS = (".kpext-setup", ".kpext-upstream")
# Installed from source, not from the registry: not pinned (constraints.txt's header says so)
FROM_SOURCE = {"kpext", "pb1-detectron2", "detectron2"}
# Roots besides the Makefile's lists: detectron2 and kpext themselves, and what
# tools/install_upstream_detectron2.sh installs
OTHER_ROOTS = ("pb1-detectron2", "detectron2", "kpext", "ninja")

pytestmark = pytest.mark.skipif(
    not any(os.path.exists(os.path.join(sys.prefix, stamp)) for stamp in STAMPS),
    reason="not a venv that make setup or make test-upstream built (no stamp in sys.prefix)",
)


def test_pip_check_is_clean():
    done = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"pip check in {sys.prefix}:\n{done.stdout}{done.stderr}"


def makefile_requirements():
    """The requirement strings of the Makefile's TORCH and DEPS lists."""
    text = open(os.path.join(REPO, "Makefile"), encoding="utf-8").read()
    found = []
    for variable in ("TORCH", "DEPS"):
        match = re.search(rf"^{variable} := ((?:.*\\\n)*.*)$", text, re.M)
        assert match, f"Makefile: no {variable} list"
        found += shlex.split(match.group(1).replace("\\\n", " "))
    return found


def constraints():
    """name -> version of constraints.txt."""
    pins = {}
    for line in open(os.path.join(REPO, "constraints.txt"), encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def installed_closure():
    """name -> installed version of every installed package the roots need, directly or not."""
    roots = [Requirement(r) for r in makefile_requirements()] + list(map(Requirement, OTHER_ROOTS))
    seen, done = {}, set()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in roots]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a root of the other venv (ninja, one detectron2), or an unmet need
        seen[name] = dist.version  # pip check reports unmet needs
        # A requirement's extras count: torch pulls CUDA libraries through cuda-toolkit[...].
        for requirement in map(Requirement, dist.requires or ()):
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
                todo.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return seen


def test_every_installed_dependency_is_pinned_at_its_version():
    pins = constraints()
    installed = {k: v for k, v in installed_closure().items() if k not in FROM_SOURCE}
    assert "torch" in installed and "numpy" in installed  # the walk found the tree
    unpinned = sorted(f"{k}=={v}" for k, v in installed.items() if k not in pins)
    assert not unpinned, (
        f"not in constraints.txt: {', '.join(unpinned)}; after the tests pass, "
        f"tools/refresh_constraints.sh --from-venv {sys.prefix} writes them"
    )
    other = sorted(f"{k} {v} (file: {pins[k]})" for k, v in installed.items() if v != pins[k])
    assert not other, f"installed at other versions than constraints.txt's: {', '.join(other)}; " \
        "make setup installs the file's"  # fmt: skip
