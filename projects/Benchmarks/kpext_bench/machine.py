"""The machine a benchmark ran on, as its report records it."""

from __future__ import annotations

import os
import platform
import subprocess


def cpu_model_name() -> str:
    """The CPU's model name as ``lscpu`` prints it, else /proc/cpuinfo's, else the
    platform module's ("unknown CPU" where none says)."""
    name = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        name = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if
                     ln.startswith("Model name")), "")  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        pass
    if not name and os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            name = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    return name or platform.processor() or platform.machine() or "unknown CPU"


def cpu_model() -> str:
    """:func:`cpu_model_name` with the number of CPUs this process may use."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_model_name()}, {cpus} CPUs"
