#!/usr/bin/env bash
# Type-check the whole package with mypy (settings: [tool.mypy] in pyproject.toml).
# The source directories are mapped onto the fleetops.* package by setuptools' package-dir, which
# mypy cannot follow, so this builds the package layout from symlinks under build/typecheck and
# checks that. Extra arguments go to mypy (e.g. a file: build/typecheck/fleetops/common/limits.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/mypy ]; then
  echo "error: mypy is not installed in .venv" >&2
  echo "hint: run scripts/bootstrap.sh (it installs the dev extra: ruff, mypy and the stubs)" >&2
  exit 2
fi
root=build/typecheck
mkdir -p "$root/fleetops"
for part in common agent controller opsctl migrations; do
  ln -sfn "../../../$part" "$root/fleetops/$part"
done
ln -sfn ../../../proto/fleetops/v1 "$root/fleetops/v1"
: >"$root/fleetops/__init__.py"
cd "$root"
if [ $# -gt 0 ]; then
  exec ../../.venv/bin/mypy --config-file ../../pyproject.toml "$@"
fi
exec ../../.venv/bin/mypy --config-file ../../pyproject.toml -p fleetops
