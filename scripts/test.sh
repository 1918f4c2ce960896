#!/usr/bin/env bash
# Run the whole test suite (unit + integration with real processes). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
