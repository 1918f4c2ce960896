"""``opsctl completion bash|zsh|fish``: a shell completion script generated from opsctl's own parser.

The script is made by shtab from the same argparse tree that parses commands, so a new command or
flag completes as soon as it exists. Values complete too: the choices of a flag (``-o text|json``),
files where a flag takes a file, and host names wherever a host is asked for (``--host``, ``opsctl
session connect HOST``, ``opsctl run output ID HOST``).

Host names are the one completion that asks the controller: the shell runs
``opsctl completion --host-names``, one ListHosts call with a 2 s deadline under the default profile
(or ``$OPSCTL_PROFILE``). It prints nothing when the controller cannot be reached, so a slow or
absent controller costs at most that wait and never an error on the prompt. Host names come from
hosts, which may be compromised: only names made of letters, digits, ``.``, ``_`` and ``-`` are
offered, and the scripts never evaluate them (no ``eval``, no ``compgen -W`` over them).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from fleetops.common.errors import FleetopsError
from fleetops.common.profile import load_profile
from fleetops.opsctl.client import OperatorClient

SHELLS = ("bash", "zsh", "fish")
#: The deadline of the one call host-name completion makes: a prompt must not hang on a far controller.
HOST_NAMES_TIMEOUT = 2.0
#: What a completed host name may be; anything else a host reported is left out, never typed for the user.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")

_HOST_COMPLETER: dict[str, Any] = {
    "bash": "_opsctl_host_names",
    "zsh": "_opsctl_host_names",
    "fish": "(opsctl completion --host-names 2>/dev/null)",
    "preamble": {
        # $1: the word being completed. Names are compared, never expanded.
        "bash": """
_opsctl_host_names() {
  local name
  while IFS= read -r name; do
    [[ $name == "$1"* ]] && printf '%s\\n' "$name"
  done < <(opsctl completion --host-names 2>/dev/null)
}
""",
        "zsh": """
_opsctl_host_names() {
  local -a names
  names=(${(f)"$(opsctl completion --host-names 2>/dev/null)"})
  compadd -a names
}
""",
    },
}

INSTALL = """\
Install the script where your shell loads completions, then open a new shell:
  bash: opsctl completion bash > ~/.local/share/bash-completion/completions/opsctl
  zsh:  opsctl completion zsh > ~/.zfunc/_opsctl   (a directory on $fpath: fpath+=~/.zfunc in ~/.zshrc)
  fish: opsctl completion fish > ~/.config/fish/completions/opsctl.fish"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="Print a completion script for SHELL, generated from opsctl's commands and flags; host "
        "names complete from the controller (one call, 2 s at most).",
        epilog=INSTALL,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("shell", nargs="?", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    # What the scripts run to complete a host name (not for people: they have `opsctl hosts list`).
    p.add_argument("--host-names", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=completion, needs_client=False)


def completion(client: OperatorClient | None, args: argparse.Namespace) -> int:
    if args.host_names:
        return print_host_names(args.profile)
    if args.shell is None:
        print("error: name the shell: opsctl completion bash|zsh|fish", file=sys.stderr)
        print(INSTALL.replace("Install", "hint: install", 1), file=sys.stderr)
        return 2
    sys.stdout.write(script(args.shell))
    return 0


def script(shell: str) -> str:
    """The completion script of opsctl for ``shell`` (one of :data:`SHELLS`)."""
    import shtab

    from fleetops.opsctl.cli import build_parser  # the entry module imports this one

    parser = build_parser()
    _prepare(parser)
    return str(shtab.complete(parser, shell=shell))


def _prepare(parser: argparse.ArgumentParser) -> None:
    """Mark host arguments for host-name completion, and show shtab every subcommand.

    The parser is a fresh one, built only to be described, so changing it here touches nothing else.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            if action.choices is None:  # `opsctl session`: any word is a host, so argparse checks no choices
                action.choices = action._name_parser_map
            for child in action._name_parser_map.values():
                _prepare(child)
        elif action.dest == "host":
            action.complete = _HOST_COMPLETER  # type: ignore[attr-defined]  # shtab reads this attribute


def host_names(client: OperatorClient) -> list[str]:
    """The names of the hosts the caller may see, those safe to offer to a shell, sorted."""
    return sorted({h.name for h in client.list_hosts() if SAFE_NAME.fullmatch(h.name)})


def print_host_names(profile: str | None) -> int:
    try:
        with OperatorClient(load_profile(profile), timeout=HOST_NAMES_TIMEOUT) as client:
            names = host_names(client)
    except FleetopsError:
        return 1  # nothing to offer: the shell completes nothing rather than showing an error
    for name in names:
        print(name)
    return 0
