#!/bin/sh
# Install (or remove) the fleetops agent on macOS as the LaunchDaemon com.fleetops.agent.
#
#   sudo ./install-agent.sh --wheel fleetops-VERSION-py3-none-any.whl [--python PYTHON] [--find-links DIR]
#       [--controller HOST:PORT --activation-id ID --activation-code CODE --ca-fingerprint SHA256]
#   sudo ./install-agent.sh --uninstall [--purge]
#
# Run it from deploy/macos in a fleetops checkout or release (it reads com.fleetops.agent.plist
# beside it and ../agent-requirements.txt). It makes the virtualenv /opt/fleetops-agent with
# PYTHON (default python3; 3.11 or newer, from python.org or Homebrew), installs the wheel without
# its dependencies and then the agent's own (deploy/agent-requirements.txt: the controller's stay
# off the host) from PyPI, or only from DIR with --find-links (offline), creates the state
# directory (root, 0700), installs the plist and, once the host is registered (here, with the four
# registration options, or before), loads it with `launchctl bootstrap system`.
#
# --uninstall unloads the daemon and removes the plist and the virtualenv; --purge also removes the
# state directory (the host's key and identity: register again afterwards). Logs stay in
# /Library/Logs/fleetops-agent.log. See docs/install.md.
set -eu

LABEL=com.fleetops.agent
VENV=/opt/fleetops-agent
STATE="/Library/Application Support/fleetops-agent"
PLIST=/Library/LaunchDaemons/$LABEL.plist
HERE=$(cd "$(dirname "$0")" && pwd)

die() { echo "error: $1" >&2; [ $# -gt 1 ] && echo "hint: $2" >&2; exit 2; }

wheel="" python=python3 find_links="" uninstall=0 purge=0
controller="" activation_id="" activation_code="" ca_fingerprint=""
while [ $# -gt 0 ]; do
    case "$1" in
        --wheel) wheel=$2; shift 2 ;;
        --python) python=$2; shift 2 ;;
        --find-links) find_links=$2; shift 2 ;;
        --controller) controller=$2; shift 2 ;;
        --activation-id) activation_id=$2; shift 2 ;;
        --activation-code) activation_code=$2; shift 2 ;;
        --ca-fingerprint) ca_fingerprint=$2; shift 2 ;;
        --uninstall) uninstall=1; shift ;;
        --purge) purge=1; shift ;;
        *) die "unknown option $1" "see the usage at the top of $0" ;;
    esac
done
[ "$(id -u)" = 0 ] || die "run as root" "sudo $0 ..."

if [ "$uninstall" = 1 ]; then
    launchctl bootout "system/$LABEL" 2>/dev/null || true
    rm -f "$PLIST"
    rm -rf "$VENV"
    [ "$purge" = 1 ] && rm -rf "$STATE"
    echo "removed the fleetops agent$([ "$purge" = 1 ] && echo " and its state in $STATE")"
    exit 0
fi

[ -n "$wheel" ] && [ -f "$wheel" ] || die "give the fleetops wheel with --wheel FILE" \
    "build it: python3 -m pip wheel --no-deps -w dist ."
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$python is not Python 3.11 or newer" "install one (python.org or brew install python@3.12) and pass --python"

# A fresh virtualenv each time: upgrades and Python changes start clean.
launchctl bootout "system/$LABEL" 2>/dev/null || true
rm -rf "$VENV"
"$python" -m venv "$VENV"
index=""
[ -n "$find_links" ] && index="--no-index --find-links $find_links"
# --no-warn-conflicts: pip would call each controller dependency left out "missing".
# shellcheck disable=SC2086  # $index is a list of words
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-warn-conflicts $index --no-deps "$wheel"
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-warn-conflicts $index \
    -r "$HERE/../agent-requirements.txt"

install -d -o root -g wheel -m 0700 "$STATE"
install -o root -g wheel -m 0644 "$HERE/$LABEL.plist" "$PLIST"

if [ -n "$controller" ]; then
    "$VENV/bin/fleetops-agent" --state-dir "$STATE" register --controller "$controller" \
        --activation-id "$activation_id" --activation-code "$activation_code" --ca-fingerprint "$ca_fingerprint"
fi
if [ ! -f "$STATE/agent.json" ]; then
    echo "installed; this host is not registered yet. Register it, then load the daemon:"
    echo "  sudo $VENV/bin/fleetops-agent --state-dir \"$STATE\" register --controller HOST:PORT \\"
    echo "      --activation-id ID --activation-code CODE --ca-fingerprint SHA256"
    echo "  sudo launchctl bootstrap system $PLIST"
    exit 0
fi
launchctl bootstrap system "$PLIST"
launchctl enable "system/$LABEL"
echo "fleetops agent running: launchctl print system/$LABEL; log in /Library/Logs/fleetops-agent.log"
