"""The patching room exports what it names (tests/unit/test_layering.py keeps it free of gRPC)."""

from __future__ import annotations


def test_the_package_exports_what_it_names() -> None:
    import fleetops.controller.patching as patching

    assert all(hasattr(patching, name) for name in patching.__all__)
