#!/usr/bin/env python3
"""Regenerate the checked-in Python for proto/fleetops/v1/*.proto.

Usage: python scripts/gen_protos.py [--check]

protoc writes into a temporary directory; the generated files then replace the old ones as a
whole, so a removed .proto leaves no stale module behind. With --check nothing is written and
the exit code is 1 when the checked-in code differs from what the sources generate (CI and
tests/unit/test_generated_protos.py use this).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = PROTO_ROOT / "fleetops" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi")
# The generated code embeds version checks against these: regenerate only with the pinned tool.
PINNED_GRPCIO_TOOLS = "1.85.1"


def generate(out_dir: Path) -> list[Path]:
    from grpc_tools import protoc  # imported late: only the generator needs grpcio-tools

    sources = sorted(PACKAGE_DIR.glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *[str(s.relative_to(PROTO_ROOT)) for s in sources],
    ]
    # protoc resolves relative source names against -I; run from the proto root.
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    return sorted((out_dir / "fleetops" / "v1").iterdir())


def existing_generated() -> dict[str, Path]:
    return {p.name: p for p in PACKAGE_DIR.iterdir() if p.name.endswith(GENERATED_SUFFIXES)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on drift")
    args = parser.parse_args()
    version = metadata.version("grpcio-tools")
    if version != PINNED_GRPCIO_TOOLS:
        print(
            f"error: grpcio-tools {version} is installed, the generated code is pinned to "
            f"{PINNED_GRPCIO_TOOLS}\nhint: pip install 'grpcio-tools=={PINNED_GRPCIO_TOOLS}'",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(PROTO_ROOT)
        try:
            fresh = {p.name: p for p in generate(Path(tmp))}
        finally:
            os.chdir(cwd)
        old = existing_generated()
        drift = sorted(set(fresh) ^ set(old)) + sorted(
            name for name in set(fresh) & set(old) if not filecmp.cmp(fresh[name], old[name], shallow=False)
        )
        if args.check:
            if drift:
                print("generated code differs from proto sources: " + ", ".join(drift), file=sys.stderr)
                print("hint: run python scripts/gen_protos.py and commit the result", file=sys.stderr)
                return 1
            return 0
        for path in old.values():
            path.unlink()
        for name, path in fresh.items():
            shutil.copyfile(path, PACKAGE_DIR / name)
    init = PACKAGE_DIR / "__init__.py"
    if not init.exists():
        init.write_text('"""Generated protobuf and gRPC modules for the fleetops.v1 wire contract."""\n')
    print(f"regenerated {len(fresh)} files in {PACKAGE_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
