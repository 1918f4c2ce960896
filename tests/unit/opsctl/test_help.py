"""Every `opsctl ... --help` renders (a stray '%' in a help text makes argparse crash)."""

from __future__ import annotations

import argparse

from fleetops.opsctl.cli import build_parser


def all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):  # `opsctl session` checks no choices: read the map
            for sub in dict.fromkeys(action._name_parser_map.values()):
                found += all_parsers(sub)
    return found


def test_every_help_screen_renders() -> None:
    parsers = all_parsers(build_parser())
    assert len(parsers) > 30
    for parser in parsers:
        assert parser.format_help().startswith("usage:"), parser.prog
