#!/usr/bin/env bash
# kpext's GPU check on one CUDA GPU: a) the heads at their plateau (the head benchmark),
# b) every keypoint head trained and timed at full size, fp32 and AMP.
#
#   bash tools/gpu_check.sh                # on a GPU machine (a 540 s budget: within 9 minutes)
#   bash tools/gpu_check.sh --cpu-smoke    # the same path at toy sizes on the CPU (tests/tools)
#
# Installs .gpu-wheels/ (`make gpu-wheels`) offline into a temporary folder, runs
# projects/Benchmarks/bench_heads.py on the device, generates the synthetic set, trains through
# projects/PoseEstimation/train_net.py (fp32 and AMP), times inference, and writes report.json,
# report.md, logs.tar.gz and plateau_heads.* under $OUT when set, else output/gpu/
# (output/gpu-smoke/ with --cpu-smoke), after every step. Steps and options: tools/gpu_check.py
# --help; docs/gpu.md.
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
