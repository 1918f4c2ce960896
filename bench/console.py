"""Console benchmark: the fleet page over HTTPS against the gRPC call it is made of.

Run from the repository root::

    .venv/bin/python bench/console.py [--hosts 1000] [--reps 20]

One controller (``fleetops-controller serve`` on SQLite) with N hosts registered straight in its
database; the admin operator's profile. In one run, so both share the machine's state:

1. baseline: ``ListHosts`` for every host, over mutual-TLS gRPC with opsctl's client (what
   ``opsctl hosts list`` costs without printing), median of --reps calls;
2. console: ``GET /fleet`` over HTTPS with a signed-in session (one kept-alive connection, as a
   browser keeps it), the page rendered from the same ListHosts call in the controller, median of
   --reps; and ``GET /fleet?selector=...`` that matches no host (the page's fixed cost).

It prints both medians and their ratio (the console's cost over the call: authorization, audit
and the call are the same; the rest is rendering N rows of HTML and the HTTP layer) and the
page's size. The exit code is 0 either way: this is a measurement.
"""

from __future__ import annotations

import argparse
import http.client
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from connect_support import Children, run, run_bench
from controller_support import start_controller

from fleetops.opsctl.client import OperatorClient


def median_seconds(action: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def signed_in(url: str, ca: Path) -> tuple[http.client.HTTPSConnection, str]:
    """A connection to the console and its session cookie, from a one-time link."""
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(ca))
    connection = http.client.HTTPSConnection(parts.hostname or "localhost", parts.port, context=context)
    connection.request("GET", f"{parts.path}?{parts.query}")
    response = connection.getresponse()
    response.read()
    cookie = response.getheader("set-cookie", "").split(";")[0]
    if response.status != 303 or not cookie:
        raise RuntimeError(f"the link did not sign in: {response.status}")
    return connection, cookie


def get(connection: http.client.HTTPSConnection, cookie: str, path: str) -> bytes:
    connection.request("GET", path, headers={"Cookie": cookie})
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status}")
    return body


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="fleetops-bench-console-") as tmp:
        children = Children(Path(tmp))
        try:
            controller = await start_controller(
                children,
                Path(tmp) / "c",
                hosts=args.hosts,
                creds=Path(tmp) / "creds.json",
                serve_args=("--console-listen", "127.0.0.1:0"),
            )
            url = (await run(*controller.opsctl, "console", "--no-browser")).strip()
            with OperatorClient.from_profile(str(controller.profile)) as client:
                assert len(client.list_hosts()) == args.hosts
                grpc_s = median_seconds(lambda: client.list_hosts(), args.reps)
            connection, cookie = signed_in(url, controller.profile / "ca.pem")
            page = get(connection, cookie, "/fleet")
            if page.count(b"data-host=") != args.hosts:
                raise RuntimeError("the fleet page does not list every host")
            page_s = median_seconds(lambda: get(connection, cookie, "/fleet"), args.reps)
            none = "/fleet?selector=bench%3Dsim%2Cinv.hostname%3Dnone"
            filtered_s = median_seconds(lambda: get(connection, cookie, none), args.reps)
            connection.close()
        finally:
            await children.cleanup()
    print(f"hosts: {args.hosts}, reps: {args.reps}")
    print(f"ListHosts over gRPC (baseline): {grpc_s * 1000:.1f} ms median")
    print(f"GET /fleet (console):           {page_s * 1000:.1f} ms median, {len(page) / 1024:.0f} KiB")
    print(f"GET /fleet?selector (no match): {filtered_s * 1000:.1f} ms median")
    print(f"ratio console/baseline: {page_s / grpc_s:.2f}x")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=20)
    sys.exit(run_bench(main(parser.parse_args())))
