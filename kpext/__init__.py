"""kpext: keypoint heads, data and tools for Detectron2.

Importing kpext registers its ROI keypoint heads and the synthetic datasets.
Import it before building a model from a config that names a kpext head.
"""

from . import compat

compat.apply()  # must run before the first import of detectron2.layers

from . import data, modeling  # noqa: E402,F401  (registration side effects)
from .config import add_kpext_config  # noqa: E402

__version__ = "0.1.0"
__all__ = ["add_kpext_config", "data", "modeling", "compat"]
