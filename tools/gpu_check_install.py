"""The GPU check's step 1 (:mod:`gpu_check`): the wheelhouse of ``make gpu-wheels`` installed
offline, without dependencies, into a folder that goes on ``PYTHONPATH``; wheels that do not
fit the running Python are left out and said so."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from typing import Dict, List, Sequence, Tuple


def wheel_tags(filename: str) -> Tuple[str, str, str]:
    """(python, abi, platform) tags of a wheel file name (each may be dotted: several)."""
    parts = os.path.basename(filename)[: -len(".whl")].split("-")
    if len(parts) < 5:
        raise ValueError(f"not a wheel file name: {filename}")
    return parts[-3], parts[-2], parts[-1]


def supported_tags() -> set:
    """The running interpreter's wheel tags, as 'py-abi-platform' strings."""
    try:
        from packaging.tags import sys_tags
    except ImportError:  # pip vendors packaging
        from pip._vendor.packaging.tags import sys_tags
    return {str(t) for t in sys_tags()}


def wheel_fits(filename: str, tags: set) -> bool:
    """True when one of the wheel's tag triples is supported by the running interpreter."""
    py, abi, plat = wheel_tags(filename)
    return any(
        f"{p}-{a}-{pl}" in tags
        for p in py.split(".")
        for a in abi.split(".")
        for pl in plat.split(".")
    )


def split_wheelhouse(wheelhouse: str, tags: set) -> Tuple[List[str], List[str]]:
    """(wheels that install on this interpreter, wheels that do not), sorted paths."""
    wheels = sorted(
        os.path.join(wheelhouse, f) for f in os.listdir(wheelhouse) if f.endswith(".whl")
    )
    fits = [w for w in wheels if wheel_fits(w, tags)]
    return fits, [w for w in wheels if w not in fits]


def has_pip() -> bool:
    return (
        subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode
        == 0
    )


def unzip_wheels(wheels: Sequence[str], target: str) -> None:
    """Install wheels by unpacking them (the way ``pip install --target`` lays them out),
    for a Python without pip. Files under ``*.data/purelib`` or ``platlib`` go to the top."""
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            for member in z.namelist():
                parts = member.split("/")
                if len(parts) > 2 and parts[0].endswith(".data"):
                    if parts[1] not in ("purelib", "platlib"):
                        continue  # scripts, headers: not needed to import
                    dest = os.path.join(target, *parts[2:])
                else:
                    dest = os.path.join(target, *parts)
                if member.endswith("/"):
                    continue
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with z.open(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)


def install_wheelhouse(wheelhouse: str, target: str) -> Dict[str, object]:
    """Install the wheels that fit this interpreter into ``target`` (offline, no deps).

    Returns what happened, for the report: installed and left-out wheel names, or why the
    current environment is used instead.
    """
    if not os.path.isdir(wheelhouse) or not any(f.endswith(".whl") for f in os.listdir(wheelhouse)):
        return {"used": False,
                "reason": f"no wheelhouse at {wheelhouse} (`make gpu-wheels` builds it); "
                "using the current environment's packages"}  # fmt: skip
    fits, left_out = split_wheelhouse(wheelhouse, supported_tags())
    if has_pip():
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index",
               "--find-links", wheelhouse, "--no-deps", "--no-compile",
               "--disable-pip-version-check", "--target", target, *fits]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip install of the wheelhouse failed:\n{done.stdout}{done.stderr}")
        how = "pip install --no-index --no-deps --target"
    else:
        unzip_wheels(fits, target)
        how = "unzipped (no pip)"
    return {
        "used": True,
        "wheelhouse": wheelhouse,
        "how": how,
        "installed": [os.path.basename(w) for w in fits],
        "left_out": [os.path.basename(w) for w in left_out],
    }
