"""``SOLVER.AMP.ENABLED`` on the CPU: bf16 autocast where the CPU computes bf16 natively.

Detectron2's :class:`~detectron2.engine.AMPTrainer` is CUDA-only (fp16 with a GradScaler).
On the CPU, :class:`CPUAMPTrainer` runs the model's forward under
``torch.autocast("cpu", dtype=torch.bfloat16)`` and hands float32 losses to the rest of
Detectron2's step. bf16 keeps float32's exponent range, so no loss scaling is needed.

bf16 only pays where the CPU has instructions for it (AMX tiles, or AVX-512 BF16's dot
products); elsewhere oneDNN emulates it and the step gets slower. :func:`build_cpu_amp_trainer`
checks :func:`native_bf16_flags` and falls back to float32 with one warning.

Every loss Detectron2 and kpext compute is float32 under CPU autocast (checked on the RPN,
the box head, Detectron2's keypoint head and kpext's heads): ``cross_entropy``,
``binary_cross_entropy_with_logits`` and ``smooth_l1_loss`` are on autocast's float32 list,
and Detectron2's smooth L1 and the heatmap losses mix bf16 predictions with float32 targets,
which promotes to float32. The cast here makes the sum float32 whatever a future head does.
"""

from __future__ import annotations

import logging
from typing import Any, FrozenSet, Tuple

import torch

from detectron2.engine import SimpleTrainer

__all__ = [
    "NATIVE_BF16_FLAGS",
    "CPUAMPTrainer",
    "build_cpu_amp_trainer",
    "cpu_flags",
    "native_bf16_flags",
]

logger = logging.getLogger(__name__)

# The CPU features (Linux /proc/cpuinfo names) that compute bf16 natively.
NATIVE_BF16_FLAGS: Tuple[str, ...] = ("amx_bf16", "avx512_bf16")


def cpu_flags() -> FrozenSet[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is no such file)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16_flags() -> Tuple[str, ...]:
    """Those of :data:`NATIVE_BF16_FLAGS` this machine has; empty: bf16 would be emulated.

    torch's own checks come first: they use the same CPU detection as its kernels, and the AMX
    one also asks the OS for the tile state (Linux hands it out on request only). Every CPU with
    AMX tiles so far has ``amx_bf16``. Without those private helpers, ``/proc/cpuinfo`` decides.
    """
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    if amx is not None and avx512_bf16 is not None:
        present = {"amx_bf16": bool(amx()), "avx512_bf16": bool(avx512_bf16())}
    else:
        flags = cpu_flags()
        present = {name: name in flags for name in NATIVE_BF16_FLAGS}
    return tuple(name for name in NATIVE_BF16_FLAGS if present[name])


def _to_float32(output: Any) -> Any:
    """The model's training output with every floating-point tensor in float32."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, dict):
        return {k: _to_float32(v) for k, v in output.items()}
    return output


class _AutocastForward:
    """Stands in for the model inside :meth:`SimpleTrainer.run_step`, which reads only
    ``model.training`` and calls ``model(data)``: that call runs under bf16 autocast and
    returns float32 losses. Any other attribute is the model's."""

    def __init__(self, model: torch.nn.Module):
        self._model = model

    def __call__(self, data):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output = self._model(data)
        # Outside autocast, so that the losses' sum (and the backward from it) is float32.
        return _to_float32(output)

    def __getattr__(self, name: str):
        return getattr(self._model, name)


class CPUAMPTrainer(SimpleTrainer):
    """:class:`SimpleTrainer` whose forward runs under CPU bf16 autocast, losses in float32.

    Everything else is SimpleTrainer's own ``run_step`` on every Detectron2 (v0.6's, and
    upstream's with ``zero_grad_before_forward``, ``after_backward`` and asynchronous metrics):
    the forward goes through the model wrapper SimpleTrainer's docstring suggests ("if you want
    to do something with the losses, you can wrap the model"), installed for the duration of the
    step only, so hooks, evaluation and checkpoints keep seeing the model itself. The backward
    runs outside autocast; gradients and optimizer state stay float32, so checkpoints are the
    same as SimpleTrainer's and resume either way. Needs no GradScaler: bf16 has float32's range.
    """

    def run_step(self) -> None:
        """SimpleTrainer's step with the forward under bf16 autocast."""
        model = self.model
        self.model = _AutocastForward(model)
        try:
            super().run_step()
        finally:
            self.model = model


def build_cpu_amp_trainer(model: torch.nn.Module, data_loader, optimizer) -> SimpleTrainer:
    """The trainer for ``SOLVER.AMP.ENABLED`` on the CPU: a :class:`CPUAMPTrainer` where the
    CPU has native bf16 (:func:`native_bf16_flags`), else a float32 :class:`SimpleTrainer`
    after one warning (emulated bf16 is slower than float32, and kpext does not use fp16 on
    the CPU)."""
    native = native_bf16_flags()
    if native:
        logger.info(
            "SOLVER.AMP.ENABLED on the CPU: training under bf16 autocast (native: %s)",
            ", ".join(native),
        )
        return CPUAMPTrainer(model, data_loader, optimizer)
    logger.warning(
        "SOLVER.AMP.ENABLED is ignored: this CPU has no native bf16 (neither %s), so bf16 "
        "would be emulated and slower; training in float32.",
        " nor ".join(NATIVE_BF16_FLAGS),
    )
    return SimpleTrainer(model, data_loader, optimizer)
