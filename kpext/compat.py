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
  (v0.6 uses them when building the training-data histogram and in the Visualizer).

When a detectron2 with compiled ops is installed (upstream main built from
source), :func:`apply` does nothing and :data:`HAS_COMPILED_OPS` is True.
Everything else in kpext uses Detectron2's public API only.
"""
from __future__ import annotations

import importlib.util
import sys
import types

__all__ = ["apply", "HAS_COMPILED_OPS", "is_python_only_detectron2"]


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
    _applied = True
