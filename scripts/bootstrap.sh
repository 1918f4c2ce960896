#!/usr/bin/env bash
# Create (or refresh) .venv with fleetops installed in editable mode, test and dev extras included.
# Used by scripts/dev.sh and scripts/test.sh; safe to run again (pip skips what is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
if ! command -v "$PY" >/dev/null 2>&1; then
  PY=python3
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: fleetops needs Python 3.11 or newer (found: $("$PY" --version 2>&1))" >&2
  echo "hint: sudo apt-get install -y python3.11 python3.11-venv, or set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      apt-get update -qq && apt-get install -y -qq "python${ver}-venv" >/dev/null
      "$PY" -m venv .venv
    else
      echo "error: cannot create a virtualenv with $PY (Debian/Ubuntu ship venv separately)" >&2
      echo "hint: sudo apt-get install -y python3.11-venv" >&2
      exit 2
    fi
  fi
fi
stamp=.venv/.fleetops-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # setuptools prints an "Editable installation" notice on every editable install of a package
  # mapped with package-dir (ours: fleetops.agent <- agent/, ...); it asks nothing of the user.
  PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install -q -e '.[test,dev]'
  touch "$stamp"
fi
