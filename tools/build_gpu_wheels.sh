#!/usr/bin/env bash
# Build the wheelhouse that tools/gpu_check.sh installs, offline, on a GPU machine.
#
# The GPU machine (see docs/gpu.md) has Python 3.12 with its own CUDA torch and
# torchvision, no network, and lacks detectron2 and its pure-Python dependencies. This
# script collects, here, everything it lacks as wheels for CPython 3.12 on x86-64 Linux:
#   * detectron2's Python code: the pb1-detectron2 0.6 sdist patched by
#     tools/install_detectron2.sh (no C++ build, model-zoo configs as package data),
#     built with `pip wheel --no-deps --no-build-isolation`: a pure py3-none-any wheel;
#   * fvcore, iopath, yacs, termcolor, omegaconf, hydra-core, antlr4-python3-runtime,
#     portalocker: pure Python, at the versions installed in this environment (the ones
#     the tests ran with); sdist-only ones (fvcore, antlr4) are built into wheels here;
#   * PyYAML and pycocotools: compiled, downloaded as cp312 manylinux2014 wheels;
#   * kpext itself.
# Torch, torchvision, numpy, opencv... are NOT included: the GPU machine has its own.
# The wheels are installed there with --no-deps, so their requirement lists never pull
# anything else (detectron2 0.6's own pins, e.g. iopath<0.1.10, are not consulted).
#
# Usage: tools/build_gpu_wheels.sh PYTHON WHEELHOUSE CACHE_DIR
#   PYTHON: the environment built by `make setup` (its versions are the ones pinned).
# Fails when the wheelhouse exceeds 64 MiB (what travels with a working tree).
set -euo pipefail
PY=${1:?python of the kpext environment}
WHEELHOUSE=${2:?output folder}
CACHE=${3:?cache folder of tools/install_detectron2.sh}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIMIT_BYTES=$((64 * 1024 * 1024))
TARGET=(--python-version 3.12 --implementation cp --platform manylinux2014_x86_64 --only-binary=:all:)

# Pure-Python packages, then compiled ones, at this environment's versions.
PURE=(fvcore iopath yacs termcolor omegaconf hydra-core antlr4-python3-runtime portalocker)
COMPILED=(PyYAML pycocotools)

version_of() {  # installed version of a distribution in $PY's environment
  "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"
}

quiet_pip() {  # pip without this machine's find-links noise
  "$PY" -m pip "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
OUT_TMP="$WORK/wheels"
mkdir -p "$OUT_TMP"

# 1. detectron2: reuse the source tools/install_detectron2.sh extracted and patched (the
#    same patch the tests ran with); rerun it when that source is missing or unpatched.
SRC="$CACHE/pb1-detectron2-0.6"
if ! grep -q 'ext_modules=\[\],' "$SRC/setup.py" 2>/dev/null; then
  echo "gpu-wheels: patched detectron2 source not in $CACHE; running tools/install_detectron2.sh"
  bash "$REPO/tools/install_detectron2.sh" "$PY" "$CACHE"
fi
cp -r "$SRC" "$WORK/detectron2-src"
rm -rf "$WORK/detectron2-src/build" "$WORK/detectron2-src"/*.egg-info
echo "gpu-wheels: detectron2 (pb1-detectron2 0.6, Python code only)"
quiet_pip wheel -q --no-deps --no-build-isolation -w "$OUT_TMP" "$WORK/detectron2-src"
D2=$(ls "$OUT_TMP"/*detectron2-*.whl)
if [[ "$D2" != *-py3-none-any.whl ]]; then
  # A wheel built without extensions is pure; retag if a setuptools marks it otherwise.
  "$PY" -m wheel tags --remove --python-tag py3 --abi-tag none --platform-tag any "$D2" >/dev/null
  D2=$(ls "$OUT_TMP"/*detectron2-*-py3-none-any.whl)
fi
"$PY" - "$D2" <<'PYEOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
assert any(n.startswith("detectron2/model_zoo/configs/") and n.endswith(".yaml") for n in names), \
    "detectron2 wheel lacks the model-zoo configs"
assert not any(n.endswith((".so", ".pyd")) for n in names), "detectron2 wheel is not pure Python"
PYEOF

# 2. pure-Python dependencies (pip wheel reuses a registry wheel, or builds one from an sdist).
PINNED=()
for name in "${PURE[@]}"; do PINNED+=("$name==$(version_of "$name")"); done
echo "gpu-wheels: ${PINNED[*]}"
quiet_pip wheel -q --no-deps -w "$OUT_TMP" "${PINNED[@]}"

# 3. compiled dependencies for the GPU machine's CPython 3.12.
PINNED=()
for name in "${COMPILED[@]}"; do PINNED+=("$name==$(version_of "$name")"); done
echo "gpu-wheels: ${PINNED[*]} (cp312 manylinux2014_x86_64)"
quiet_pip download -q --no-deps "${TARGET[@]}" -d "$OUT_TMP" "${PINNED[@]}"

# 4. kpext, built from a copy of the package so that no build/ folder lands in the tree.
mkdir -p "$WORK/kpext-src"
cp -r "$REPO/setup.py" "$REPO/README.md" "$REPO/kpext" "$WORK/kpext-src/"
find "$WORK/kpext-src" -name __pycache__ -prune -exec rm -rf {} +
echo "gpu-wheels: kpext"
quiet_pip wheel -q --no-deps --no-build-isolation -w "$OUT_TMP" "$WORK/kpext-src"

# Every wheel must install on CPython 3.12 / x86-64 Linux.
"$PY" - "$OUT_TMP" <<'PYEOF'
import os, sys
bad = []
for name in sorted(os.listdir(sys.argv[1])):
    if not name.endswith(".whl"):
        bad.append(f"{name}: not a wheel")
        continue
    py, abi, plat = name[:-4].split("-")[-3:]
    ok_py = any(t in ("py3", "cp312") or (t.startswith("cp3") and abi == "abi3" and int(t[3:]) <= 12)
                for t in py.split("."))
    ok_plat = any(p == "any" or p.endswith("x86_64") and ("manylinux" in p) for p in plat.split("."))
    if not (ok_py and ok_plat):
        bad.append(f"{name}: not installable on cp312 manylinux x86_64")
if bad:
    sys.exit("gpu-wheels: " + "; ".join(bad))
PYEOF

TOTAL=$(du -cb "$OUT_TMP"/*.whl | tail -1 | cut -f1)
ls -l "$OUT_TMP" | awk 'NR > 1 {printf "  %8.1f KiB  %s\n", $5 / 1024, $9}'
echo "gpu-wheels: $(ls "$OUT_TMP"/*.whl | wc -l) wheels, $(awk -v b="$TOTAL" 'BEGIN {printf "%.1f", b / 1048576}') MiB in all (limit 64 MiB)"
if [ "$TOTAL" -gt "$LIMIT_BYTES" ]; then
  echo "gpu-wheels: over 64 MiB; the wheelhouse cannot travel with the working tree" >&2
  exit 1
fi
rm -rf "$WHEELHOUSE"
mkdir -p "$(dirname "$WHEELHOUSE")"
mv "$OUT_TMP" "$WHEELHOUSE"
echo "gpu-wheels: -> $WHEELHOUSE"
