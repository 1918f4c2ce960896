#!/usr/bin/env bash
# Start a whole fleetops on this machine: controller + one local agent + an admin opsctl profile.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/fleetops-controller dev "$@"
