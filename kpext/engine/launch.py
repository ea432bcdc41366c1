"""``launch`` with Detectron2's interface that also runs several processes without CUDA.

With CUDA, or with a detectron2 whose own ``launch`` supports CPU (upstream main
picks GLOO there), this is Detectron2's ``launch``. Otherwise (detectron2 v0.6,
which asserts CUDA and NCCL) the processes are started by :mod:`kpext.compat`.
"""

from __future__ import annotations

from datetime import timedelta

import torch

from detectron2.engine import launch as d2_launch

from .. import compat

DEFAULT_TIMEOUT = timedelta(minutes=30)


def launch(
    main_func,
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url=None,
    args=(),
    timeout=DEFAULT_TIMEOUT,
) -> None:
    """Run ``main_func(*args)`` in ``num_gpus_per_machine`` processes per machine.

    Without CUDA, ``num_gpus_per_machine`` is the number of CPU processes; they
    train together over GLOO (gradients all-reduced, one data shard each).
    """
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1 or torch.cuda.is_available() or compat.launch_supports_cpu():
        return d2_launch(
            main_func, num_gpus_per_machine, num_machines, machine_rank, dist_url, args, timeout
        )
    return compat.launch_cpu_processes(
        main_func, num_gpus_per_machine, num_machines, machine_rank, dist_url, args, timeout
    )
