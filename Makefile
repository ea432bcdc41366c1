# kpext: `make demo` trains and evaluates on the synthetic set; `make test` runs the tests.
# Both install everything first into ./.venv (`make setup`, idempotent: a second run is a no-op).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CACHE := .cache
STAMP := $(VENV)/.kpext-setup
# Every package below, and everything they pull in, is installed at the version in the constraints
# file: the versions `make test` and `make test-upstream` last passed with (torch 2.12.1 and
# torchvision 0.27.1, a matched pair that loads on a CPU-only machine, among them). Refresh it with
# tools/refresh_constraints.sh, which installs with CONSTRAINTS= (empty: unpinned), runs both test
# suites and writes the file anew; the lists here keep ranges only. (When refreshing, check that
# torch and torchvision still came as a matched pair: this machine's pip also sees a local torch
# 2.13.0+cpu that has no torchvision.)
CONSTRAINTS := constraints.txt
PIN := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
TORCH := torch torchvision
DEPS := "numpy>=1.24" "fvcore>=0.1.5,<0.1.6" "iopath>=0.1.7,<0.1.10" pycocotools \
        opencv-python-headless Pillow matplotlib termcolor yacs tabulate cloudpickle tqdm \
        tensorboard "omegaconf>=2.1" "hydra-core>=1.1" scipy pytest "setuptools<81" wheel \
        onnx onnxruntime "trackers>=2.1,<2.2" "supervision>=0.31" "motrics>=0.3"

.PHONY: setup demo test test-upstream gpu-smoke lint bench bench-end-to-end bench-plateau bench-heads-plateau clean-venv gpu-wheels

setup: $(STAMP)

$(STAMP): Makefile setup.py tools/install_detectron2.sh $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	set -o pipefail; $(PIP) install -q $(PIN) $(TORCH) 2>&1 | { grep -v "is ignored" || true; }
	set -o pipefail; $(PIP) install -q $(PIN) $(DEPS) 2>&1 | { grep -v "is ignored" || true; }
	bash tools/install_detectron2.sh $(PY) $(CACHE)
	set -o pipefail; $(PIP) install -q --no-deps --no-build-isolation -e . 2>&1 | { grep -v "is ignored" || true; }
	$(PY) -c "import kpext, torchvision; print('kpext', kpext.__version__, 'ready; torch', __import__('torch').__version__, 'torchvision', torchvision.__version__)"
	touch $@

DEMO_CONFIG ?= configs/synthetic/keypoint_rcnn_R18_FPN_demo.yaml
DEMO_OUT ?= output/demo
# Extra config options for the demo run, e.g. DEMO_OPTS="SOLVER.MAX_ITER 2000 SOLVER.STEPS '(1600,1850)'".
DEMO_OPTS ?=

# Generate the synthetic set if missing (or out of date), train on CPU, evaluate on the training
# styles and the held-out styles (keypoint AP of both, where the keypoint errors go, tall-people
# recall), draw predictions.
demo: setup
	$(PY) datasets/make_synthetic.py --out datasets/synthetic
	$(PY) projects/PoseEstimation/train_net.py --config-file $(DEMO_CONFIG) \
		OUTPUT_DIR $(DEMO_OUT) TEST.KPEXT.NUM_VIS 8 $(DEMO_OPTS)

test: setup
	$(PY) -m pytest tests -q

# The whole suite on upstream Detectron2 built from source with its C++ operators, in its own
# venv (.venv-upstream) layered on .venv's packages (torch is installed once). D2_SRC: a source
# folder or .tar.gz; by default the snapshot in ../shared/deps (read-only there: the script
# builds from a temporary copy).
UPSTREAM_VENV := .venv-upstream
D2_SRC ?= $(firstword $(wildcard ../shared/deps/detectron2-main-*.tar.gz))
test-upstream: setup
	bash tools/install_upstream_detectron2.sh $(VENV) $(UPSTREAM_VENV) "$(D2_SRC)" "$(CONSTRAINTS)"
	$(UPSTREAM_VENV)/bin/python -m pytest tests -q

# The GPU check's whole CPU smoke run (tools/gpu_check.sh --cpu-smoke: both parts at toy sizes,
# 5-10 minutes on 2 cores): a test of its own, skipped by make test, run by CI (.ci/run).
gpu-smoke: setup
	KPEXT_GPU_SMOKE=1 $(PY) -m pytest tests/tools/test_gpu_check.py -q -k cpu_smoke_run

# Lint with ruff (ruff.toml); not part of CI. Installs ruff into .venv if it is missing.
lint: setup
	$(PY) -m ruff --version >/dev/null 2>&1 || $(PIP) install -q $(PIN) ruff
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Head comparison on one frozen detector (3 seeds, bootstrap intervals, alternated timing), the
# data-path load test and the export speed table: 49 min on a fresh clone on a 2-core CPU, of
# which the frozen detector's training is about 17 (then cached under output/bench);
# docs/benchmarks.md has each part's measured duration; then trackers side by side on synthetic
# sequences with identities (about 1 min; docs/tracking.md). BENCH_QUICK=1 for a smoke run.
bench: setup
	$(PY) projects/Benchmarks/bench_heads.py
	$(PY) projects/Benchmarks/bench_data.py
	$(PY) projects/Benchmarks/bench_export.py
	$(PY) projects/Benchmarks/bench_tracking.py

# End to end: the demo recipe and the same recipe with Detectron2's stock head, each trained
# with 3 seeds (53 min on the 2-core CPU; not part of `make bench`). BENCH_QUICK=1: smoke run.
bench-end-to-end: setup
	$(PY) projects/Benchmarks/bench_end_to_end.py

# The demo recipe's plateau: keypoint AP at 1x, 2x, 4x, 8x (16x while 8x still gains) 700
# iterations, one warmup-stable-decay run, the error classes by view, style and keypoint (not
# part of `make bench`; docs/benchmarks.md has its duration). BENCH_SEEDS=2 for two seeds,
# BENCH_QUICK=1: smoke run.
bench-plateau: setup
	$(PY) projects/Benchmarks/bench_plateau.py

# The head benchmark at its plateau (issue 32): heads trained 32x longer than `make bench`
# (6400 head iterations, where stock's curve flattens; 2 seeds; its regime checks say whether
# the curve is flat), under bf16 autocast and channels-last where the CPU computes bf16
# natively; the same shared detector as `make bench` (its cache is reused). Writes
# output/bench/heads_plateau.{json,md,png}; about 2.5 hours a seed on the 2-core CPU
# (docs/benchmarks.md): a GPU's job (tools/gpu_check.sh). BENCH_ITERS=1600: the hour-long
# table of heads trained 8x longer; BENCH_SEEDS=1: one seed; BENCH_QUICK=1: smoke run.
bench-heads-plateau: setup
	BENCH_REGIME=plateau $(PY) projects/Benchmarks/bench_heads.py

# Wheels a GPU machine without network needs for tools/gpu_check.sh (detectron2's Python code,
# its pure-Python dependencies, cp312 pycocotools/PyYAML, kpext); fails over 64 MiB. See docs/gpu.md.
GPU_WHEELS ?= .gpu-wheels
gpu-wheels: setup
	bash tools/build_gpu_wheels.sh $(PY) $(GPU_WHEELS) $(CACHE)

clean-venv:
	rm -rf $(VENV) $(UPSTREAM_VENV) $(CACHE)
