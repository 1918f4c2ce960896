"""Every command line the docs show parses with the real argument parsers.

The README and docs/*.md are read the way a newcomer reads them: each `opsctl`, `fleetops-controller` and
`fleetops-agent` line in a fenced shell block is split as a shell would split it and handed to the program's
own ``main``, stopped right after argument parsing. An unknown flag, a missing argument or a subcommand
that does not exist fails here, naming the file and line. Placeholders (ID, HOST, FILE) are ordinary words
to a parser, so they pass.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleetops.agent import cli as agent_cli
from fleetops.controller import cli as controller_cli
from fleetops.opsctl import cli as opsctl_cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "deploy" / "README.md"]
PROGRAMS: dict[str, Callable[[list[str]], Any]] = {
    "opsctl": opsctl_cli.main,
    "fleetops-controller": controller_cli.main,
    "fleetops-agent": agent_cli.main,
}
# Placeholders whose flag has a type: a parser rejects the word itself, so the check reads an example.
TYPED_PLACEHOLDERS = {"N": "10", "D": "1h", "DURATION": "24h", "LEVEL": "info", "PORT": "7444", "SIZE": "4G"}
SHELL_FENCES = {"", "sh", "shell", "bash", "console", "zsh"}


@dataclass(frozen=True)
class DocCommand:
    path: Path
    line: int
    argv: list[str]

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {shlex.join(self.argv)}"


def _logical_lines(block: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """Join backslash continuations and a synopsis's indented continuation lines; yield (line number, text)."""
    joined: list[tuple[int, str]] = []
    open_continuation = False
    for number, text in block:
        continues_synopsis = (
            joined and text[:1].isspace() and text.strip() and joined[-1][1].split(None, 1)[0] in PROGRAMS
        )
        if open_continuation or continues_synopsis:
            joined[-1] = (joined[-1][0], joined[-1][1] + " " + text.strip())
        else:
            joined.append((number, text))
        open_continuation = text.rstrip().endswith("\\")
        if open_continuation:
            joined[-1] = (joined[-1][0], joined[-1][1].rstrip()[:-1])
    yield from joined


_REDIRECTION = re.compile(r"\d*(>>?|<)(&\d+)?")  # `>`, `2>`, `>>`, `<`, `2>&1`: a target follows unless &N


def _commands_in(words: list[str]) -> Iterator[list[str]]:
    """Split a shell word list at ;, &&, || and | and yield each simple command, without its redirections."""
    current: list[str] = []
    target_next = False
    for word in words:
        if target_next:
            target_next = False
            continue
        # `> FILE` drops the next word too; `>FILE` and `2>&1` are one word; <NAME> is a placeholder.
        placeholder = re.fullmatch(r"<[A-Za-z][^<>]*>", word)
        if re.match(r"\d*(>>?|<)", word) and not placeholder:
            target_next = _REDIRECTION.fullmatch(word) is not None and "&" not in word
            continue
        if word in {";", "&&", "||", "|", "&"}:
            if current:
                yield current
            current = []
        else:
            current.append(word)
    if current:
        yield current


def doc_commands() -> list[DocCommand]:
    found: list[DocCommand] = []
    for path in DOCS:
        if not path.exists():
            continue
        fence: str | None = None
        block: list[tuple[int, str]] = []
        for number, raw in enumerate(path.read_text().splitlines(), start=1):
            marker = re.match(r"^\s*(```+|~~~+)\s*(\S*)", raw)
            if marker:
                if fence is None:
                    fence = marker.group(2).lower()
                    block = []
                    continue
                if fence in SHELL_FENCES:
                    found += _parse_block(path, block, fence)
                fence = None
                continue
            if fence is not None:
                block.append((number, raw))
    return found


def _first_alternative(group: str) -> str:
    """`text|json` -> `text`; `{a,b}` stays as written (argparse shows choices that way in prose only)."""
    return group.split("|", 1)[0]


def _synopsis_variants(text: str) -> list[str]:
    """A synopsis line (`[--limit N]`, `[-o text|json]`, `KEY=VALUE...`) as the two commands it stands for.

    One variant leaves every optional part out, the other puts each in (first alternative of `a|b`).
    """
    text = re.sub(r"(?<=[\]A-Z])\.\.\.", "", text)  # repetition: [--tag K=V]... or KEY...
    text = re.sub(r"(?<!\S)\.\.\.(?!\S)", "X", text)  # an elided value: --controller ...
    text = re.sub(r"\((--[^()|]*)\|[^()]*\)", r"\1", text)  # (--ca-fingerprint SHA256 | --ca-cert FILE)
    for placeholder, example in TYPED_PLACEHOLDERS.items():
        text = re.sub(rf"(?<=\s){placeholder}(?=[\s\]]|$)", example, text)
    if "[" not in text:
        return [text]
    bare, full = text, text
    bracket = re.compile(r"\[([^\[\]]*)\]")
    while bracket.search(bare):
        bare = bracket.sub("", bare)
    while bracket.search(full):
        full = bracket.sub(lambda m: _first_alternative(m.group(1)), full)
    return [bare, full]


def _parse_block(path: Path, block: list[tuple[int, str]], fence: str) -> list[DocCommand]:
    found = []
    for number, line in _logical_lines(block):
        line = re.sub(r"^\s*\$\s+", "", line)
        first = line.split(None, 1)[0] if line.strip() else ""
        if first not in PROGRAMS:
            if fence:
                found += _commands_of(path, number, line)
            continue
        for variant in _synopsis_variants(line):
            found += _commands_of(path, number, variant, strict_first=not fence)
    return found


def _commands_of(path: Path, number: int, text: str, strict_first: bool = False) -> list[DocCommand]:
    found = []
    if strict_first:
        # An unlabeled block may be a diagram or a file tree: a command has a word or a flag after the name.
        words = text.split()
        if len(words) < 2 or not re.fullmatch(r"-{0,2}[a-z][a-z0-9-]*", words[1]):
            return []
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
    except ValueError:
        return []  # not shell (output shown in a block, an unbalanced quote in prose)
    for command in _commands_in(words):
        while command and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", command[0]):
            command = command[1:]  # VAR=value prefixes
        for skip in ("sudo", "exec", "time"):
            if command and command[0] == skip:
                command = command[1:]
        if command and Path(command[0]).name in PROGRAMS and not command[0].endswith("/"):
            found.append(DocCommand(path, number, [Path(command[0]).name, *command[1:]]))
    return found


class _Parsed(Exception):
    """Raised in place of running the command once its arguments parsed."""


@contextlib.contextmanager
def _stop_after_parsing() -> Iterator[None]:
    original = argparse.ArgumentParser.parse_args

    def parse_args(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        original(self, *args, **kwargs)
        raise _Parsed

    argparse.ArgumentParser.parse_args = parse_args  # type: ignore[method-assign]  # test-only interception
    try:
        yield
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]  # restore


COMMANDS = doc_commands()


def test_the_docs_show_commands() -> None:
    programs = {c.argv[0] for c in COMMANDS}
    assert programs == set(PROGRAMS), f"expected command lines for each program, found {sorted(programs)}"
    assert len(COMMANDS) > 40


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_doc_command_parses(command: DocCommand) -> None:
    main = PROGRAMS[command.argv[0]]
    stderr = io.StringIO()
    with _stop_after_parsing(), contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(command.argv[1:])
        except _Parsed:
            return
        except SystemExit as exc:
            if exc.code == 0:
                return  # --help / --version
            pytest.fail(f"{command}\ndoes not parse: {stderr.getvalue().strip()}")
    pytest.fail(f"{command}\nran without reaching argument parsing")
