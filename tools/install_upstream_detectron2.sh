#!/usr/bin/env bash
# Build upstream Detectron2 (with its C++ operators) from a source tree into its own venv,
# with kpext's other dependencies and kpext itself (editable): what `make test-upstream` runs in.
#
# Usage: tools/install_upstream_detectron2.sh PYTHON VENV D2_SRC
#   D2_SRC: a folder holding upstream's setup.py (or one level above it: `git archive` writes
#   detectron2/), or a .tar.gz of one. The tree is copied or unpacked into a temporary folder
#   first: the source may be read-only (shared/ is), and the build writes next to it.
# Environment: TORCH and DEPS (the Makefile passes its own lists), MAX_JOBS (default 2).
# A second run with the same source is a no-op (stamp: VENV/.kpext-upstream).
set -euo pipefail
PY=${1:?python to create the venv with}
VENV=${2:?venv folder}
SRC=${3:-}
: "${TORCH:?the torch/torchvision pins (set by the Makefile)}"
: "${DEPS:?the other dependencies of kpext (set by the Makefile)}"
if [ -z "$SRC" ] || [ ! -e "$SRC" ]; then
  echo "install_upstream_detectron2: no Detectron2 source at '${SRC}'." >&2
  echo "  Pass D2_SRC=<folder or .tar.gz of upstream detectron2>, e.g." >&2
  echo "  make test-upstream D2_SRC=~/src/detectron2" >&2
  exit 2
fi
SRC=$(cd "$(dirname "$SRC")" && pwd)/$(basename "$SRC")
if [ -d "$SRC" ]; then
  key=$(find "$SRC" -type f -printf '%T@ %s %p\n' | sort | sha1sum | cut -c1-12)  # sizes, times
else
  key=$(sha1sum "$SRC" | cut -c1-12)
fi
STAMP="$VENV/.kpext-upstream"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$SRC $key" ]; then
  echo "upstream detectron2 from $SRC already built in $VENV"
  exit 0
fi
test -x "$VENV/bin/python" || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
quiet() { set -o pipefail; "$@" 2>&1 | { grep -v "is ignored" || true; }; }
# shellcheck disable=SC2086  # the lists are word-split on purpose
quiet "$VPY" -m pip install -q $TORCH
# shellcheck disable=SC2086
eval quiet "\"$VPY\"" -m pip install -q $DEPS ninja
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -d "$SRC" ]; then
  cp -r "$SRC" "$WORK/src"
else
  mkdir "$WORK/src" && tar -xzf "$SRC" -C "$WORK/src"
fi
TREE="$WORK/src"
[ -f "$TREE/setup.py" ] || TREE=$(dirname "$(find "$WORK/src" -maxdepth 2 -name setup.py | head -n 1)")
[ -f "$TREE/setup.py" ] || { echo "install_upstream_detectron2: no setup.py in $SRC" >&2; exit 2; }
echo "building upstream detectron2 from $SRC (C++ operators; about 75 s on 2 cores)"
# Not editable: the temporary tree is removed after the build.
MAX_JOBS=${MAX_JOBS:-2} quiet "$VPY" -m pip install -q --no-build-isolation --no-deps "$TREE"
quiet "$VPY" -m pip install -q --no-deps --no-build-isolation -e .
"$VPY" - <<'PYEOF'
import detectron2, kpext, kpext.compat as compat
assert compat.HAS_COMPILED_OPS, "upstream detectron2 was built without its C++ operators"
print("upstream detectron2", detectron2.__version__, "with compiled ops; kpext", kpext.__version__)
PYEOF
echo "$SRC $key" > "$STAMP"
