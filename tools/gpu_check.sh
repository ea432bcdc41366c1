#!/usr/bin/env bash
# kpext's GPU check: train and time every keypoint head at full size on one CUDA GPU.
#
#   bash tools/gpu_check.sh                # on a GPU machine (under 8 minutes on one H200)
#   bash tools/gpu_check.sh --cpu-smoke    # the same path at toy sizes on the CPU (tests/tools)
#
# Installs .gpu-wheels/ (`make gpu-wheels`) offline into a temporary folder, generates the
# synthetic set, trains through projects/PoseEstimation/train_net.py (fp32 and AMP), times
# inference, and writes report.json and report.md under $OUT when set, else output/gpu/
# (output/gpu-smoke/ with --cpu-smoke). Steps and options: tools/gpu_check.py --help.
#
# Python: $PYTHON when set, else ./.venv/bin/python when present (this machine), else
# python3 (the GPU machine, whose torch is used as it is).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
else
  PY=python3
fi
exec "$PY" tools/gpu_check.py "$@"
