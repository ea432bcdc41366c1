#!/usr/bin/env bash
# Write constraints.txt: the exact version of every package `make setup` installs (it runs
# `pip install -c constraints.txt ...`), direct and indirect, and of what `make test-upstream`
# adds to .venv-upstream (ninja).
#
#   tools/refresh_constraints.sh --from-venv .venv [--upstream-venv .venv-upstream]
#       Freeze what these venvs hold now. After adding a package to the Makefile's DEPS:
#       `make setup` installs it (a package the file does not list is not held back), the
#       tests pass, then this writes its version and those of its new dependencies. Without
#       --upstream-venv the file's .venv-upstream section is kept as it was.
#   tools/refresh_constraints.sh --fresh [--dry-run]
#       The full refresh: install everything unpinned (`make setup CONSTRAINTS=`) into new
#       venvs .venv-refresh and .venv-refresh-upstream, run `make test` and `make test-upstream`
#       there, and write the file from them only if both pass. --dry-run prints the commands.
#
# Not written: pip (each venv brings its own), kpext (this checkout, editable) and detectron2
# (pb1-detectron2 0.6 from its sdist, tools/install_detectron2.sh; upstream from D2_SRC).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$REPO/constraints.txt"
usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

MODE="" VENV="" UPSTREAM="" DRY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --from-venv) MODE=freeze; VENV=${2:?--from-venv needs a venv folder}; shift 2 ;;
    --upstream-venv) UPSTREAM=${2:?--upstream-venv needs a venv folder}; shift 2 ;;
    --fresh) MODE=fresh; shift ;;
    --dry-run) DRY=1; shift ;;
    *) usage ;;
  esac
done
[ -n "$MODE" ] || usage

if [ "$MODE" = fresh ]; then
  FRESH="$REPO/.venv-refresh"
  run() { echo "+ $*"; [ -n "$DRY" ] || "$@"; }
  run rm -rf "$FRESH" "$FRESH-upstream"
  # One make: test-upstream runs only if test passed, and the file is written only after both.
  run make -C "$REPO" setup test test-upstream \
    VENV="$FRESH" UPSTREAM_VENV="$FRESH-upstream" CONSTRAINTS=
  run "${BASH_SOURCE[0]}" --from-venv "$FRESH" --upstream-venv "$FRESH-upstream"
  echo "refresh_constraints: review 'git diff constraints.txt' (and the versions README.md's" \
    "export section names), then 'make setup' rebuilds .venv at the new versions;" \
    "rm -rf $FRESH $FRESH-upstream when done"
  exit 0
fi

[ -x "$VENV/bin/python" ] || { echo "refresh_constraints: no venv at '$VENV'" >&2; exit 2; }
if [ -n "$UPSTREAM" ] && [ ! -x "$UPSTREAM/bin/python" ]; then
  echo "refresh_constraints: no venv at '$UPSTREAM'" >&2; exit 2
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
freeze() {  # pip freeze of a venv, pip and editable installs left out; extra args pass to pip
  "$1/bin/python" -m pip freeze --all --exclude-editable "${@:2}" 2> >(grep -v "is ignored" >&2)
}
freeze "$VENV" > "$TMP/base"
if [ -n "$UPSTREAM" ]; then
  # Only the upstream venv's own site-packages: it reads the rest from the base venv.
  own=$("$UPSTREAM/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  freeze "$UPSTREAM" --path "$own" > "$TMP/upstream"
fi
"$VENV/bin/python" - "$TMP" "$OUT" "$VENV" "$UPSTREAM" <<'PYEOF'
import datetime
import os
import platform
import re
import sys

tmp, out, venv, upstream = sys.argv[1:5]
UPSTREAM_MARK = "# .venv-upstream (make test-upstream) installs, on top of .venv's packages:"
SKIPPED = {"pip", "kpext", "pb1-detectron2", "detectron2"}  # see the script's header


def name_of(line):
    return re.split(r"[=<>!~ @;\[]", line, maxsplit=1)[0].strip().lower().replace("_", "-")


def pins(path):
    """name -> 'name==version' lines of a pip freeze; direct URL installs are refused."""
    found = {}
    for line in open(path, encoding="utf-8").read().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or name_of(line) in SKIPPED:
            continue
        if "==" not in line:
            sys.exit(f"refresh_constraints: {line!r} is not installed from the registry; "
                     "install a released version first")
        found[name_of(line)] = line
    return found


base = pins(os.path.join(tmp, "base"))
if upstream:
    extra = pins(os.path.join(tmp, "upstream"))
    extra = {k: v for k, v in extra.items() if k not in base and k != "setuptools"}
    extra_lines = [extra[k] for k in sorted(extra)]
    upstream_note = f"--upstream-venv {upstream}"
else:  # keep what the previous file said about the upstream venv
    lines = open(out, encoding="utf-8").read().splitlines() if os.path.exists(out) else []
    after = lines[lines.index(UPSTREAM_MARK) + 1:] if UPSTREAM_MARK in lines else []
    extra_lines = [line for line in after if line and not line.startswith("#")]
    upstream_note = "its .venv-upstream section kept from the previous file"
header = f"""\
# The versions `make test` and `make test-upstream` last passed with: every package `make setup`
# installs into .venv, direct or indirect (it runs pip install -c constraints.txt), then what
# tools/install_upstream_detectron2.sh adds to .venv-upstream. Not listed: pip, kpext (editable)
# and detectron2 (pb1-detectron2 0.6 from its sdist; upstream built from D2_SRC).
# kpext's setup.py keeps ranges: this file pins the test environment, not kpext's users.
# Refresh: tools/refresh_constraints.sh --fresh (unpinned install, both test suites, this file);
# after adding a package: tools/refresh_constraints.sh --from-venv .venv.
# Written {datetime.date.today()} by tools/refresh_constraints.sh --from-venv {venv}
# ({upstream_note}) on Python {platform.python_version()}, {sys.platform} {platform.machine()}.
"""
body = [base[k] for k in sorted(base)]
text = header + "\n".join(body) + "\n\n" + UPSTREAM_MARK + "\n" + "".join(
    line + "\n" for line in extra_lines
)
tmp_out = out + ".tmp"
with open(tmp_out, "w", encoding="utf-8") as f:
    f.write(text)
os.replace(tmp_out, out)  # never a half-written file
print(f"wrote {out}: {len(body)} packages of {venv}, {len(extra_lines)} of the upstream venv")
PYEOF
