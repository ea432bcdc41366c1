#!/usr/bin/env python
"""Alias of ``export_model.py --format torchscript`` (kept for old commands).

    .venv/bin/python projects/PoseEstimation/export_torchscript.py \\
        --config-file output/demo/config.yaml --output output/export/model.ts \\
        MODEL.WEIGHTS output/demo/model_final.pth
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from export_model import main  # noqa: E402

if __name__ == "__main__":
    main(["--format", "torchscript", *sys.argv[1:]])
