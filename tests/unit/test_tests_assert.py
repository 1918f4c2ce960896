"""Every test checks something: a test function with no assert, ``pytest.raises`` or call to an
assert helper passes whatever the code does, so it is refused here.

Assert helpers are recognised by name: a called function or method whose name starts with one of
``HELPER_PREFIXES``, or a function or method of the same module that itself checks something.
A fixture must not be named ``test_*`` (pytest would collect it as a test).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
HELPER_PREFIXES = ("assert_", "expect_", "check_")
# pytest calls that make a test fail or check an outcome by themselves.
PYTEST_CHECKS = {"raises", "fail", "warns", "deprecated_call", "approx"}


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def checks_something(function: ast.AST, local_checkers: frozenset[str] = frozenset()) -> bool:
    """Whether the body asserts, expects an exception or calls an assert helper.

    ``local_checkers``: names of the functions and methods of the same module that check something
    themselves (a local helper such as ``check(...)`` or ``screen.expect(...)``).
    """
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            name = _called_name(node)
            if name.startswith(HELPER_PREFIXES) or name in local_checkers:
                return True
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and name in PYTEST_CHECKS
                and isinstance(func.value, ast.Name)
                and func.value.id == "pytest"
            ):
                return True
    return False


def _is_fixture(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr == "fixture":
            return True
        if isinstance(target, ast.Name) and target.id == "fixture":
            return True
    return False


def collected_tests(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Module-level ``test_*`` functions and ``test_*`` methods of ``Test*`` classes."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            yield node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                    yield item


def local_checkers(tree: ast.Module) -> frozenset[str]:
    """Names of the module's own functions and methods that check something, directly or through
    one another (a fixpoint: a helper calling a checking helper checks too)."""
    helpers = [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("test")
    ]
    found: frozenset[str] = frozenset()
    while True:
        more = frozenset(h.name for h in helpers if checks_something(h, found))
        if more == found:
            return found
        found = more


def offenders_in(source: str, name: str) -> list[str]:
    tree = ast.parse(source, name)
    checkers = local_checkers(tree)
    found = []
    for function in collected_tests(tree):
        if _is_fixture(function):
            found.append(f"{name}:{function.lineno} fixture {function.name} is collected as a test: rename it")
        elif not checks_something(function, checkers):
            found.append(f"{name}:{function.lineno} {function.name} asserts nothing")
    return found


def test_every_test_checks_something() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("test_*.py")):
        offenders += offenders_in(path.read_text(), str(path.relative_to(TESTS)))
    assert offenders == [], "make each test assert what it means, or remove it:\n" + "\n".join(offenders)


def test_the_scan_tells_checks_from_no_checks() -> None:
    source = """
import pytest

@pytest.fixture
def test_user():
    return "alice"

def test_nothing():
    thing = object()
    thing.close()

async def test_asserts():
    assert 1

def test_raises():
    with pytest.raises(ValueError):
        int("x")

def test_helper():
    check_output("x")

def ensure_ok(value):
    assert value == "ok"

def relay(value):
    ensure_ok(value)

def test_local_helper():
    relay("ok")

class TestGroup:
    def test_method_nothing(self):
        pass

    def test_method_expects(self, harness):
        harness.expect_line("ready")
"""
    assert offenders_in(source, "t.py") == [
        "t.py:5 fixture test_user is collected as a test: rename it",
        "t.py:8 test_nothing asserts nothing",
        "t.py:32 test_method_nothing asserts nothing",
    ]
