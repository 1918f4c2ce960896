"""``opsctl console``: a one-time link into the web console (docs/console.md)."""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from typing import Any

from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient


def register(sub: Any) -> None:
    p = sub.add_parser(
        "console",
        help="open the web console (prints a one-time sign-in link)",
        description="Print a one-time link into the controller's web console and open it in a browser. "
        "The link signs in once, within two minutes; the browser session has your rights and ends "
        "when your certificate expires or you sign out.",
    )
    p.add_argument("--no-browser", action="store_true", help="only print the link")
    output.add_output_argument(p)
    p.set_defaults(func=console)


def can_open_browser() -> bool:
    """Whether a graphical browser can be opened here (never a text browser in this terminal)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def console(client: OperatorClient, args: argparse.Namespace) -> int:
    link = client.create_console_link()
    ca = client.profile.directory / "ca.pem"

    def text() -> None:
        print(link.url)
        print(
            f"(signs in once, until {output.when(link.expires_at)}; the session lasts until "
            f"{output.when(link.session_expires_at)}; your browser must trust the fleet CA in {ca})",
            file=sys.stderr,
        )

    output.emit(args, lambda: output.message_dict(link), text)
    if not args.no_browser and args.output != "json" and can_open_browser():
        webbrowser.open(link.url)
    return 0
