"""Flags shared by the commands that act on many hosts at a rate: ``patch scan|install`` and ``window task add``.

The target (``--target``/``--host``/``--all``, from :func:`fleetops.opsctl.hosts.add_target_arguments`)
and the rate limits (``--max-concurrency``/``--max-errors``). The rate limits are checked with the
one rate parser, :mod:`fleetops.common.rates`, which ``opsctl run`` and the controller use too, so a
value is accepted or refused with the same words whichever command it is given to.
"""

from __future__ import annotations

import argparse

from fleetops.common import limits, rates
from fleetops.common.errors import InvalidInput


def add_rate_arguments(p: argparse.ArgumentParser) -> None:
    """``--max-concurrency`` and ``--max-errors``; left out (``""``), the controller's defaults apply."""
    p.add_argument(
        "--max-concurrency",
        default="",
        help=f"hosts at a time: a count (1-{limits.RATE_COUNT_MAX}) or a percentage (1%%-100%%) "
        f"(default {rates.DEFAULT_MAX_CONCURRENCY})",
    )
    p.add_argument(
        "--max-errors",
        default="",
        help=f"stop after this many failed hosts: a count (0-{limits.RATE_COUNT_MAX}) or 0%%-100%% "
        f"(default {rates.DEFAULT_MAX_ERRORS}: stop at the first error)",
    )


def rate_limits(args: argparse.Namespace) -> tuple[str, str]:
    """``(max_concurrency, max_errors)`` as sent: checked, stripped, ``""`` for the controller's default.

    Raises:
        InvalidInput: a value :func:`fleetops.common.rates.max_concurrency` or
            :func:`~fleetops.common.rates.max_errors` refuses (``0`` concurrency, ``101%``, ``abc``).
    """
    concurrency, errors = args.max_concurrency.strip(), args.max_errors.strip()
    rates.max_concurrency(concurrency)
    rates.max_errors(errors)
    return concurrency, errors


def check_target(args: argparse.Namespace) -> None:
    """Exactly one of --target, --host or --all: an operation never means "every host" by omission.

    Raises:
        InvalidInput: none of them, or more than one.
    """
    given = sum(bool(x) for x in (args.target, args.host, args.all))
    if given == 0:
        raise InvalidInput(
            "no target given", "give --target SELECTOR, --host NAME (repeatable) or --all to target every host"
        )
    if given > 1:
        raise InvalidInput(
            "give only one of --target, --host or --all",
            "combine conditions inside the selector instead, e.g. env=prod,role=web",
        )
