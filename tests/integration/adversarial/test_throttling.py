"""Issue 11 §5, repeated as the attacker did it: floods of guesses at the unauthenticated enrollment port.

Real controller and agents. 200 wrong activation codes and 200 wrong login-token secrets from one
address are throttled (RESOURCE_EXHAUSTED with ``retry-after``), lock the activation / token after
10 wrong answers, and leave a bounded number of audit events that still account for every attempt;
legitimate registration and login keep working. The controller runs with ``--enroll-rate 0.2`` (one
attempt per 5 s after the burst of 10) so "throttled right after a flood" is not a race, and
``--refusal-audit-interval 2s`` so counted refusals reach the log within the test.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from fleetops.common import pki
from fleetops.v1 import enrollment_pb2, enrollment_pb2_grpc

from harness import Agent, Controller, wait_until

pytestmark = pytest.mark.slow

FLOOD = 200
LOCKOUT = 10
THROTTLE = ["--enroll-rate", "0.2", "--refusal-audit-interval", "2s"]


@pytest.fixture
def controller(make_controller: Callable[..., Controller]) -> Controller:
    c = make_controller("throttled", extra_args=THROTTLE)
    c.start()
    return c


@pytest.fixture
def enroll_stub(controller: Controller) -> Iterator[enrollment_pb2_grpc.EnrollmentServiceStub]:
    ca = (controller.state_dir / "ca" / "ca.pem").read_bytes()
    with grpc.secure_channel(
        f"127.0.0.1:{controller.ports['enroll']}", grpc.ssl_channel_credentials(root_certificates=ca)
    ) as channel:
        yield enrollment_pb2_grpc.EnrollmentServiceStub(channel)


def flood(call: Callable[[], Any]) -> tuple[Counter[grpc.StatusCode], list[str]]:
    """Make FLOOD calls that must all fail; their status codes and the retry-after values seen."""
    codes: Counter[grpc.StatusCode] = Counter()
    retry_after: list[str] = []
    for _ in range(FLOOD):
        with pytest.raises(grpc.RpcError) as info:
            call()
        codes[info.value.code()] += 1
        if info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            trailing = dict(info.value.trailing_metadata() or ())
            retry_after.append(str(trailing.get("retry-after", "")))
            assert "retry in" in (info.value.details() or "")
    return codes, retry_after


def first_unthrottled(call: Callable[[], Any]) -> grpc.RpcError:
    """The first answer to ``call`` that is not RESOURCE_EXHAUSTED (the call must fail)."""

    def attempt() -> grpc.RpcError | None:
        try:
            call()
        except grpc.RpcError as exc:
            return None if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED else exc
        raise AssertionError("the call succeeded")

    return wait_until(attempt, 30, "the address to get an attempt again")


def audit(controller: Controller, action: str) -> list[dict[str, Any]]:
    events = controller.opsctl_json("audit", "list", "--action", action, "--limit", "1000")
    return [e for e in events if e["action"] == action]


def counted(controller: Controller) -> int:
    return sum(json.loads(e["details_json"])["count"] for e in audit(controller, "enrollment.refusals"))


def test_a_flood_of_wrong_activation_codes_is_throttled_locks_the_activation_and_stays_bounded_in_the_audit_log(
    controller: Controller,
    enroll_stub: enrollment_pb2_grpc.EnrollmentServiceStub,
    make_agent: Callable[[str], Agent],
) -> None:
    activation_id, code = controller.create_activation("--limit", "5")
    csr = pki.build_csr(pki.generate_private_key(), "guess")

    def guess(secret: str = "wrong" + code) -> Any:
        request = enrollment_pb2.RegisterRequest(activation_id=activation_id, activation_code=secret, csr_pem=csr)
        return enroll_stub.Register(request, timeout=10)

    codes, retry_after = flood(guess)
    # Only the burst (and what refilled meanwhile) reached the code check; the rest was throttled.
    assert codes[grpc.StatusCode.RESOURCE_EXHAUSTED] >= FLOOD - 15, codes
    assert set(codes) <= {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAUTHENTICATED}, codes
    assert retry_after and all(r.isdigit() and int(r) >= 1 for r in retry_after)

    (listed,) = [a for a in controller.opsctl_json("activation", "list") if a["id"] == activation_id]
    assert listed["locked"] and listed["failed_codes"] == LOCKOUT
    assert "locked (10 wrong codes)" in controller.opsctl("activation", "list").stdout
    locks = audit(controller, "activation.lock")
    assert [e["target"] for e in locks] == [activation_id]  # audited once, when it locked

    # Every attempt is in the audit log, in a bounded number of events: a few one by one, the rest counted.
    individual = [e for e in audit(controller, "host.register") if e["outcome"] == "refused"]
    assert 1 <= len(individual) <= 5
    wait_until(lambda: len(individual) + counted(controller) == FLOOD, 30, "the counted refusals to be audited")
    assert len(audit(controller, "enrollment.refusals")) <= 4

    # Locked: even the right code is refused, saying what the admin does.
    refused = first_unthrottled(lambda: guess(code))
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED and "is locked" in (refused.details() or "")

    # A real agent right after is told clearly to wait; once the address has an attempt again, a fresh
    # activation registers as usual.
    fresh_id, fresh_code = controller.create_activation(tags={"env": "dev"})
    agent = make_agent("legit")
    throttled = agent.register(controller, fresh_id, fresh_code, check=False)
    assert throttled.returncode == 6, throttled.stderr
    assert "too many registration attempts from 127.0.0.1; retry in" in throttled.stderr
    assert "hint:" in throttled.stderr and "Traceback" not in throttled.stderr
    wait_until(
        lambda: agent.register(controller, fresh_id, fresh_code, check=False).returncode == 0, 30, "a registration"
    )
    agent.start()
    assert controller.host_status("legit") == "online"


def test_a_flood_of_login_token_guesses_is_throttled_and_locks_the_token(
    controller: Controller, enroll_stub: enrollment_pb2_grpc.EnrollmentServiceStub, tmp_path: Path
) -> None:
    token = str(controller.opsctl_json("admin", "user", "create", "bob", "--role", "auditor")["token"])
    token_id, secret, _ = token.split(".")
    csr = pki.build_csr(pki.generate_private_key(), "bob")

    def guess(attempt: str = "wrong") -> Any:
        request = enrollment_pb2.OperatorLoginRequest(token_id=token_id, token_secret=attempt, csr_pem=csr)
        return enroll_stub.OperatorLogin(request, timeout=10)

    codes, _ = flood(guess)
    assert codes[grpc.StatusCode.RESOURCE_EXHAUSTED] >= FLOOD - 15, codes
    assert [e["target"] for e in audit(controller, "user.token.lock")] == ["bob"]
    individual = [e for e in audit(controller, "user.login") if e["outcome"] == "refused"]
    assert 1 <= len(individual) <= 5
    wait_until(lambda: len(individual) + counted(controller) == FLOOD, 30, "the counted refusals to be audited")

    # The token is withdrawn: the right secret is refused too.
    refused = first_unthrottled(lambda: guess(secret))
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED and "locked" in (refused.details() or "")

    # opsctl login right after is told clearly to wait; a new token from the admin works.
    login = [
        "login", "--controller", controller.address, "--enroll-port", str(controller.ports["enroll"]),
        "--token",
    ]  # fmt: skip
    throttled = controller.opsctl(*login, token, profile=tmp_path / "bob", check=False)
    assert throttled.returncode == 6 and "too many login attempts from 127.0.0.1; retry in" in throttled.stderr
    assert "Traceback" not in throttled.stderr
    fresh = str(controller.opsctl_json("admin", "user", "token", "bob")["token"])
    wait_until(
        lambda: controller.opsctl(*login, fresh, profile=tmp_path / "bob", check=False).returncode == 0,
        30,
        "a login with the new token",
    )
    assert "bob" in controller.opsctl("whoami", profile=tmp_path / "bob").stdout
