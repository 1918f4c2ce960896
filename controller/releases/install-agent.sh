#!/bin/sh
# fleetops agent one-line installer (docs/install.md#one-line-install), served by the controller at
# https://CONTROLLER:CONSOLE_PORT/agent/install.sh with the values below filled in. Fetch it only
# with the controller's CA pinned (opsctl activation create --print-install prints how).
#   sh install.sh --activation-id ID --activation-code CODE --ca-fingerprint SHA256 [--name NAME] [--tag K=V]
# Idempotent: a host that has this version installed and is registered is left as it is.
set -eu

CONTROLLER='@CONTROLLER@'
ENROLL_PORT='@ENROLL_PORT@'
BASE_URL='@BASE_URL@'
# "ARCH FILE SHA256" per line: the newest release for each architecture.
RELEASES='@RELEASES@'

STATE=/var/lib/fleetops-agent
AGENT=/opt/fleetops-agent/bin/fleetops-agent
KEEP="$STATE/releases"

die() { echo "fleetops install: $*" >&2; exit 1; }
say() { echo "fleetops install: $*"; }

activation_id= activation_code= fingerprint= name=
tags=
while [ $# -gt 0 ]; do
    case "$1" in
        --activation-id) activation_id=$2; shift 2 ;;
        --activation-code) activation_code=$2; shift 2 ;;
        --ca-fingerprint) fingerprint=$2; shift 2 ;;
        --name) name=$2; shift 2 ;;
        --tag) tags="$tags --tag $2"; shift 2 ;;
        *) die "unknown option $1" ;;
    esac
done
[ -n "$activation_id" ] && [ -n "$activation_code" ] && [ -n "$fingerprint" ] ||
    die "give --activation-id, --activation-code and --ca-fingerprint (opsctl activation create --print-install)"
[ "$(id -u)" = 0 ] || die "run as root (sudo sh -s -- ...)"
command -v dpkg >/dev/null 2>&1 ||
    die "this installer is for Debian and Ubuntu; see docs/install.md for macOS and Windows"
command -v curl >/dev/null 2>&1 || die "curl is missing (apt-get install curl)"
[ -s "${FLEETOPS_CA_FILE:-}" ] || die "FLEETOPS_CA_FILE must name the controller's CA, checked against its fingerprint"

arch=$(dpkg --print-architecture)
line=$(printf '%s\n' "$RELEASES" | awk -v a="$arch" '$1 == a { print; exit }')
[ -n "$line" ] || die "the controller has no agent release for $arch (fleetops-controller release add PKG)"
file=$(echo "$line" | awk '{ print $2 }')
sha=$(echo "$line" | awk '{ print $3 }')
version=$(echo "$file" | sed 's/^fleetops-agent_\([^_]*\)_.*/\1/')

installed=$(dpkg-query -W -f='${db:Status-Status} ${Version}' fleetops-agent 2>/dev/null || true)
if [ "$installed" = "installed $version" ]; then
    say "fleetops-agent $version is installed already"
else
    umask 077
    install -d -m 0700 "$STATE" "$KEEP"
    tmp="$KEEP/.$file.part"
    # The CA that signed the console's certificate is pinned by the command that fetched this script.
    curl -fsS --cacert "$FLEETOPS_CA_FILE" -o "$tmp" "$BASE_URL/releases/$file" ||
        die "could not download $BASE_URL/releases/$file"
    echo "$sha  $tmp" | sha256sum -c --status || { rm -f "$tmp"; die "$file does not have the sha256 the controller announced"; }
    mv "$tmp" "$KEEP/$file"  # kept: the version an update rolls back to
    export DEBIAN_FRONTEND=noninteractive
    if command -v apt-get >/dev/null 2>&1; then
        apt-get install -y -q "$KEEP/$file" >/dev/null || die "apt-get install $KEEP/$file failed"
    else
        dpkg -i "$KEEP/$file" >/dev/null || die "dpkg -i $KEEP/$file failed"
    fi
    say "installed fleetops-agent $version"
fi

if [ -f "$STATE/agent.json" ]; then
    say "this host is registered already ($($AGENT --state-dir "$STATE" status | sed -n 's/.*"name": "\(.*\)".*/\1/p')); nothing to do"
else
    # shellcheck disable=SC2086  # $tags is a list of --tag K=V words
    "$AGENT" --state-dir "$STATE" register --controller "$CONTROLLER" --enroll-port "$ENROLL_PORT" \
        --activation-id "$activation_id" --activation-code "$activation_code" \
        --ca-fingerprint "$fingerprint" ${name:+--name "$name"} $tags
fi

if [ -d /run/systemd/system ]; then
    systemctl enable --now fleetops-agent.service >/dev/null 2>&1 || die "systemctl enable --now fleetops-agent failed"
    say "fleetops-agent.service is running"
else
    say "systemd is not running here: start the agent with $AGENT --state-dir $STATE run"
fi
