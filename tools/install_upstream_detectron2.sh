#!/usr/bin/env bash
# Build upstream Detectron2 (with its C++ operators) from a source tree into its own venv, layered
# on the base venv's packages, with kpext itself (editable): what `make test-upstream` runs in.
#
# Usage: tools/install_upstream_detectron2.sh BASE_VENV VENV D2_SRC [CONSTRAINTS]
#   BASE_VENV: a venv that already holds kpext's dependencies (the Makefile's .venv, from
#   `make setup`). VENV sees BASE_VENV's site-packages after its own (a .pth file), so torch and
#   its CUDA libraries (about 5 GB) are installed once, not twice: a second copy filled the CI
#   machine's disk. Only ninja, upstream detectron2 and kpext go into VENV, and they shadow
#   BASE_VENV's detectron2 v0.6 (VENV's own site-packages come first on sys.path).
#   D2_SRC: a folder holding upstream's setup.py (or one level above it: `git archive` writes
#   detectron2/), or a .tar.gz of one. The tree is copied or unpacked into a temporary folder
#   first: the source may be read-only (shared/ is), and the build writes next to it.
#   CONSTRAINTS: the pip constraints file that `make setup` installed BASE_VENV with (the
#   Makefile passes constraints.txt): ninja is installed at its version. Empty: unpinned
#   (tools/refresh_constraints.sh, which writes the file anew).
# Environment: MAX_JOBS (default 2).
# A second run with the same source and base is a no-op (stamp: VENV/.kpext-upstream).
set -euo pipefail
BASE=${1:?base venv holding kpext dependencies (make setup builds .venv)}
VENV=${2:?venv folder}
SRC=${3:-}
CONSTRAINTS=${4:-}
if [ -z "$SRC" ] || [ ! -e "$SRC" ]; then
  echo "install_upstream_detectron2: no Detectron2 source at '${SRC}'." >&2
  echo "  Pass D2_SRC=<folder or .tar.gz of upstream detectron2>, e.g." >&2
  echo "  make test-upstream D2_SRC=~/src/detectron2" >&2
  exit 2
fi
if [ ! -x "$BASE/bin/python" ]; then
  echo "install_upstream_detectron2: no base venv at '$BASE' (run 'make setup' first)." >&2
  exit 2
fi
PIN=()
if [ -n "$CONSTRAINTS" ]; then
  [ -f "$CONSTRAINTS" ] || { echo "install_upstream_detectron2: no constraints file '$CONSTRAINTS'" >&2; exit 2; }
  PIN=(-c "$CONSTRAINTS")
fi
SRC=$(cd "$(dirname "$SRC")" && pwd)/$(basename "$SRC")
BASE=$(cd "$BASE" && pwd)
if [ -d "$SRC" ]; then
  key=$(find "$SRC" -type f -printf '%T@ %s %p\n' | sort | sha1sum | cut -c1-12)  # sizes, times
else
  key=$(sha1sum "$SRC" | cut -c1-12)
fi
# The recipe too (this script and the constraints file): a venv built by an older recipe is
# rebuilt, not reused; say, one that kept black in detectron2's requirements, or one whose C++
# operators were compiled against the torch of an older constraints file.
recipe=$(cat "${BASH_SOURCE[0]}" ${CONSTRAINTS:+"$CONSTRAINTS"} | sha1sum | cut -c1-12)
STAMP="$VENV/.kpext-upstream"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$SRC $key $BASE $recipe" ]; then
  echo "upstream detectron2 from $SRC already built in $VENV (on $BASE)"
  exit 0
fi
site_dirs() {  # the purelib and platlib folders of a venv's python, one per line
  "$1" -c 'import sysconfig; p = sysconfig.get_paths(); print(p["purelib"]); print(p["platlib"]) if p["platlib"] != p["purelib"] else None'
}
# The upstream venv is created from the same interpreter as the base, so compiled wheels match.
BASE_PY=$("$BASE/bin/python" -c 'import sys; print(sys._base_executable)')
test -x "$VENV/bin/python" || "$BASE_PY" -m venv "$VENV"
VPY="$VENV/bin/python"
VSITE=$(site_dirs "$VPY" | head -n 1)
site_dirs "$BASE/bin/python" > "$VSITE/kpext_base_venv.pth"
quiet() { set -o pipefail; "$@" 2>&1 | { grep -v -E "is ignored|outside environment" || true; }; }
quiet "$VPY" -m pip install -q ${PIN[@]+"${PIN[@]}"} ninja
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
# Upstream requires black for LazyConfig.to_py alone (pretty-printing a Python config; kpext's
# configs are YAML): dropped from the installed metadata, as tools/install_detectron2.sh does for
# v0.6, so that `pip check` is clean here too without a formatter installed for nothing.
sed -i -e '/^ *"black",$/d' "$TREE/setup.py"
echo "building upstream detectron2 from $SRC (C++ operators; about 75 s on 2 cores)"
# Not editable: the temporary tree is removed after the build.
MAX_JOBS=${MAX_JOBS:-2} quiet "$VPY" -m pip install -q --no-build-isolation --no-deps "$TREE"
quiet "$VPY" -m pip install -q --no-deps --no-build-isolation -e .
VENV_ABS=$(cd "$VENV" && pwd)
KPEXT_UPSTREAM_VENV="$VENV_ABS" "$VPY" - <<'PYEOF'
import os
import detectron2, kpext, kpext.compat as compat
venv = os.environ["KPEXT_UPSTREAM_VENV"]
# Guards the layering: the upstream build must shadow the base venv's v0.6.
assert os.path.realpath(detectron2.__file__).startswith(os.path.realpath(venv)), (
    f"detectron2 loads from {detectron2.__file__}, not from {venv}")
assert compat.HAS_COMPILED_OPS, "upstream detectron2 was built without its C++ operators"
print("upstream detectron2", detectron2.__version__, "with compiled ops; kpext", kpext.__version__)
PYEOF
echo "$SRC $key $BASE $recipe" > "$STAMP"
