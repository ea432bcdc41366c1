"""Bridges for running the Python-only detectron2 v0.6 sdist on current libraries.

This is the only module of kpext that knows about old detectron2. The registry's
``pb1-detectron2==0.6`` sdist carries detectron2's Python code without its C++
sources, so ``detectron2._C`` does not exist, and v0.6 predates numpy 1.24,
Pillow 10 and torch's CPU-only distributed launch. :func:`apply` patches exactly
what Keypoint R-CNN needs and nothing else:

* a stand-in ``detectron2._C`` module so that ``import detectron2.layers`` works
  (Keypoint R-CNN uses torchvision's RoIAlign and NMS, never the compiled ops;
  touching any other attribute of the stand-in raises a clear error);
* ``PIL.Image.LINEAR`` (removed in Pillow 10, equal to ``BILINEAR``), evaluated
  by v0.6 as a default argument at import time;
* numpy's removed aliases ``np.int``, ``np.float``, ``np.object`` and ``np.bool``
  (v0.6 uses them when building the training-data histogram and in the Visualizer);
* ``MapDataset``'s retry after a mapper returns None (a skipped image) calls
  ``random.sample`` on a set, which Python 3.11 refuses: its random generator is
  given a ``sample`` that accepts sets;
* ``detectron2.export`` imports caffe2 in its ``__init__`` (upstream made it
  optional): without caffe2 the package is assembled from its TorchScript parts
  (``TracingAdapter``, ``scripting_with_instances``, ``dump_torchscript_IR``);
* :func:`launch_cpu_processes`: v0.6's ``launch`` asserts CUDA and hard-codes NCCL,
  so several processes on a CPU-only machine are started here over GLOO, with the
  same local process group Detectron2's ``launch`` sets up
  (:mod:`kpext.engine.launch` uses it only when Detectron2's cannot do it).

When a detectron2 with compiled ops is installed (upstream main built from
source), :func:`apply` does nothing and :data:`HAS_COMPILED_OPS` is True.
Everything else in kpext uses Detectron2's public API only.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import types

__all__ = [
    "apply",
    "HAS_COMPILED_OPS",
    "is_python_only_detectron2",
    "launch_supports_cpu",
    "launch_cpu_processes",
]


def is_python_only_detectron2() -> bool:
    """True when detectron2 is installed without its compiled ``_C`` extension."""
    if "detectron2._C" in sys.modules:
        return getattr(sys.modules["detectron2._C"], "_KPEXT_STUB", False)
    return importlib.util.find_spec("detectron2._C") is None


def _missing_op(name: str):
    raise AttributeError(
        f"detectron2._C.{name} is not available: this detectron2 was installed from its "
        "Python code only (no C++ ops). Keypoint R-CNN does not need it; install "
        "detectron2 from source for rotated boxes, deformable convs or the fast COCOeval."
    )


def _install_c_stub() -> None:
    stub = types.ModuleType("detectron2._C")
    stub._KPEXT_STUB = True
    # collect_env() (called by default_setup) queries these three.
    stub.get_compiler_version = lambda: "none (Python-only detectron2, kpext.compat)"
    stub.get_cuda_version = lambda: "none"
    stub.has_cuda = lambda: False
    stub.__getattr__ = _missing_op
    sys.modules["detectron2._C"] = stub
    import detectron2

    detectron2._C = stub


class _SetTolerantRandom(random.Random):
    """random.Random whose ``sample`` also takes a set (sorted first, so results stay seeded)."""

    def sample(self, population, k, **kwargs):
        if isinstance(population, (set, frozenset)):
            population = sorted(population)
        return super().sample(population, k, **kwargs)


def _let_map_dataset_retry() -> None:
    from detectron2.data import common

    original_init = common.MapDataset.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._rng = _SetTolerantRandom(42)  # v0.6's seed

    common.MapDataset.__init__ = init


def _allow_export_without_caffe2() -> None:
    if importlib.util.find_spec("caffe2") is not None or "detectron2.export" in sys.modules:
        return
    spec = importlib.util.find_spec("detectron2.export")
    package = types.ModuleType("detectron2.export")
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    package.__package__ = "detectron2.export"
    sys.modules["detectron2.export"] = package
    from detectron2.export.flatten import TracingAdapter
    from detectron2.export.torchscript import dump_torchscript_IR, scripting_with_instances

    package.TracingAdapter = TracingAdapter
    package.dump_torchscript_IR = dump_torchscript_IR
    package.scripting_with_instances = scripting_with_instances
    package.__all__ = ["TracingAdapter", "dump_torchscript_IR", "scripting_with_instances"]


def _restore_pillow_linear() -> None:
    from PIL import Image

    if not hasattr(Image, "LINEAR"):
        Image.LINEAR = Image.BILINEAR


def _restore_numpy_aliases() -> None:
    import numpy as np

    for name, value in (("int", int), ("float", float), ("object", object), ("bool", bool)):
        if name not in np.__dict__:
            setattr(np, name, value)


HAS_COMPILED_OPS: bool = not is_python_only_detectron2()
_applied = False


def apply() -> None:
    """Install the bridges once; a no-op on a detectron2 with compiled ops."""
    global _applied
    if _applied or HAS_COMPILED_OPS:
        return
    _install_c_stub()
    _restore_pillow_linear()
    _restore_numpy_aliases()
    _let_map_dataset_retry()
    _allow_export_without_caffe2()
    _applied = True


def launch_supports_cpu() -> bool:
    """True when Detectron2's own ``launch`` can start processes without CUDA (it uses GLOO)."""
    import inspect

    from detectron2.engine import launch as launch_module

    try:
        source = inspect.getsource(launch_module._distributed_worker)
    except (AttributeError, OSError, TypeError):
        return False
    return "GLOO" in source.upper() and "assert torch.cuda.is_available()" not in source


def launch_cpu_processes(
    main_func, num_processes, num_machines, machine_rank, dist_url, args, timeout
):
    """Start ``num_processes`` CPU workers per machine over GLOO and run ``main_func(*args)``."""
    import torch.multiprocessing as mp

    if dist_url == "auto" or dist_url is None:
        if num_machines != 1:
            raise ValueError(
                "dist_url=auto only works on one machine; pass --dist-url tcp://HOST:PORT"
            )
        dist_url = f"tcp://127.0.0.1:{_free_port()}"
    world_size = num_machines * num_processes
    mp.spawn(
        _cpu_worker,
        nprocs=num_processes,
        args=(main_func, world_size, num_processes, machine_rank, dist_url, args, timeout),
        daemon=False,
    )


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_worker(
    local_rank, main_func, world_size, num_per_machine, machine_rank, dist_url, args, timeout
):
    import torch.distributed as dist

    from detectron2.utils import comm

    apply()  # spawned workers start a fresh interpreter
    rank = machine_rank * num_per_machine + local_rank
    dist.init_process_group(
        backend="GLOO", init_method=dist_url, world_size=world_size, rank=rank, timeout=timeout
    )
    # Detectron2's comm helpers (get_local_rank, ...) need the per-machine group launch() creates.
    for machine in range(world_size // num_per_machine):
        ranks = list(range(machine * num_per_machine, (machine + 1) * num_per_machine))
        group = dist.new_group(ranks)
        if machine == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group
    comm.synchronize()
    try:
        main_func(*args)
    finally:
        dist.destroy_process_group()
