#!/usr/bin/env bash
# Install detectron2's Python code from the registry's sdist (pb1-detectron2==0.6).
#
# The registry has no detectron2 package with compiled ops: pb1-detectron2 0.6 is
# upstream v0.6's Python code without the C++ sources, and its setup.py always
# tries to build detectron2._C. We install it with the extension list emptied and
# the model-zoo configs listed as package data (its own globbing finds none in an
# sdist). kpext.compat bridges the missing _C at run time.
#
# Usage: tools/install_detectron2.sh PYTHON CACHE_DIR
set -euo pipefail
PY=${1:?python of the target environment}
CACHE=${2:?cache folder}
VERSION=0.6
mkdir -p "$CACHE"
SDIST="$CACHE/pb1-detectron2-$VERSION.tar.gz"
if [ ! -f "$SDIST" ]; then
  # --no-build-isolation: its setup.py imports torch even to read metadata.
  "$PY" -m pip download -q --no-deps --no-build-isolation "pb1-detectron2==$VERSION" -d "$CACHE"
fi
SRC="$CACHE/pb1-detectron2-$VERSION"
rm -rf "$SRC"
tar -xzf "$SDIST" -C "$CACHE"
sed -i \
  -e 's/ext_modules=get_extensions(),/ext_modules=[],/' \
  -e 's/package_data={"detectron2.model_zoo": get_model_zoo_configs()},/package_data={"detectron2.model_zoo": ["configs\/**\/*.yaml", "configs\/**\/*.py"]},/' \
  "$SRC/setup.py"
grep -q 'ext_modules=\[\],' "$SRC/setup.py" || { echo "install_detectron2: setup.py layout changed, cannot disable the C++ build" >&2; exit 1; }
# Three of its install_requires serve code that no kpext path runs, so they are dropped from the
# installed metadata rather than installed (then `pip check` is clean without them):
#   black==21.4b2  only LazyConfig.to_py (pretty-printing a Python config) imports it; kpext's
#                  configs are YAML. That 2021 beta also breaks on current click.
#   future, pydot  "used by caffe2": caffe2 export, which is not installed (kpext.compat
#                  assembles detectron2.export without caffe2); no detectron2 module imports them.
sed -i \
  -e '/^ *"black==21.4b2",$/d' \
  -e '/^ *"future",  # used by caffe2$/d' \
  -e '/^ *"pydot",  # used to save caffe2 SVGs$/d' \
  "$SRC/setup.py"
if grep -q -E '"(black|future|pydot)[=",]' "$SRC/setup.py"; then
  echo "install_detectron2: setup.py layout changed, cannot drop black/future/pydot" >&2; exit 1
fi
# --no-deps: its remaining requirements are installed by the Makefile at the constraints file's
# versions (`pip check` then finds them all).
"$PY" -m pip install -q --no-deps --no-build-isolation "$SRC"
"$PY" - <<'PYEOF'
import importlib.util, os
import detectron2
zoo = os.path.join(os.path.dirname(detectron2.__file__), "model_zoo", "configs")
assert os.path.isdir(zoo), "detectron2 model zoo configs were not installed"
print("detectron2", detectron2.__version__, "installed (Python code only)")
PYEOF
