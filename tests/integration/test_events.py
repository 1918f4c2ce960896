"""Events out, end to end: a real controller and agent, a real HTTP receiver and a real SMTP server
(STARTTLS required, authenticated) (docs/events.md).

A failed command gives exactly one email and one signed webhook (checked with the verifier
docs/events.md shows), and nothing to a subscription whose filter leaves it out; a receiver that
fails twice gets the event on the third try; a controller killed with the request in flight
delivers it after its restart, with the same idempotency key; ``events watch -o json`` prints the
event as it happens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import PYTHON, Controller, Process, create_user, login, start_fleet, wait_until
from smtp_server import SmtpServer
from webhooks import WebhookReceiver

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def docs_verifier() -> Callable[[str, str, bytes], bool]:
    """The ``verify`` function docs/events.md tells receivers to use, as written there."""
    page = (ROOT / "docs" / "events.md").read_text()
    block = re.search(r"^```python\n(.*?)^```\n", page, re.S | re.M)
    assert block, "docs/events.md shows no python verifier"
    namespace: dict[str, Any] = {}
    exec(compile(block.group(1), "docs/events.md", "exec"), namespace)
    return namespace["verify"]  # type: ignore[no-any-return]


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver()
    yield r
    r.close()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    s = SmtpServer(tmp_path / "smtp")
    yield s
    s.close()


def mail_args(smtp: SmtpServer) -> list[str]:
    return [
        "--smtp-server", smtp.address, "--smtp-from", "fleetops@example.com", "--smtp-user", "fleetops",
        "--smtp-password-file", str(smtp.password_file), "--smtp-ca-file", str(smtp.ca_file),
    ]  # fmt: skip


def subscription(controller: Controller, name: str) -> dict[str, Any]:
    return controller.opsctl_json("subscription", "show", name)  # type: ignore[no-any-return]


def deliveries(controller: Controller, name: str) -> list[dict[str, Any]]:
    return list(subscription(controller, name).get("deliveries", []))


def settled(controller: Controller, name: str) -> bool:
    """Every delivery of *name* has ended (delivered or dead) and there is at least one."""
    found = deliveries(controller, name)
    return bool(found) and all(d["status"] != "pending" for d in found)


def test_a_failed_command_sends_one_email_and_one_signed_webhook(
    make_controller: Callable[..., Controller], tmp_path: Path, receiver: WebhookReceiver, smtp: SmtpServer
) -> None:
    controller = make_controller(extra_args=mail_args(smtp))
    controller.start()
    agents = start_fleet(controller, tmp_path, {"web-1": {"role": "web"}})
    created = controller.opsctl_json(
        "subscription", "create", "chat", "--webhook", receiver.url, "--type", "command.failed"
    )
    secret = created["secret"]
    controller.opsctl("subscription", "create", "mail", "--email", "oncall@example.com", "--type", "command.*")
    controller.opsctl("subscription", "create", "sessions-only", "--webhook", receiver.url, "--type", "session.*")
    watch = Process("events watch", [
        PYTHON, "-m", "fleetops.opsctl", "--profile", str(controller.profile),
        "events", "watch", "-o", "json", "--type", "command.failed", "--count", "1",
    ])  # fmt: skip
    watch.wait_for_line(r"watching events after position \d+")

    failed = controller.opsctl("run", "--host", "web-1", "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode != 0

    (request,) = receiver.wait_for(1)
    (mail,) = smtp.wait_for(1)
    wait_until(lambda: settled(controller, "chat") and settled(controller, "mail"), 30, "deliveries to settle")
    assert len(receiver.requests) == 1 and len(smtp.messages) == 1  # exactly one of each
    assert deliveries(controller, "sessions-only") == []  # its filter leaves command events out

    verify = docs_verifier()
    assert verify(secret, request.headers["Fleetops-Signature"], request.body)
    assert not verify(secret, request.headers["Fleetops-Signature"], request.body.replace(b"exit", b"EXIT"))
    event = json.loads(request.body)
    assert event["type"] == "fleetops.command.failed" and event["specversion"] == "1.0"
    assert request.headers["Idempotency-Key"] == event["id"] == mail["X-Fleetops-Event-Id"]
    assert mail["To"] == "oncall@example.com" and "command.failed" in mail["Subject"]
    assert event["data"]["command_id"] in mail.get_payload()
    assert smtp.refused_logins == 0

    watch.wait_for_line(r'"type": "fleetops.command.failed"')
    streamed = json.loads(next(line for line in watch.lines if line.startswith("{")))
    assert streamed["id"] == event["id"]
    assert watch.proc.wait(10) == 0  # --count 1
    watch.stop()
    for agent in agents.values():
        agent.stop()


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_try(
    make_controller: Callable[..., Controller], receiver: WebhookReceiver
) -> None:
    controller = make_controller(extra_args=["--event-retry-base", "200ms"])
    controller.start()
    receiver.statuses = [500, 503]
    controller.opsctl("subscription", "create", "flaky", "--webhook", receiver.url)
    tested = controller.opsctl("subscription", "test", "flaky", check=False)
    assert tested.returncode == 1 and "not delivered: HTTP 500" in tested.stdout, tested.stdout

    requests = receiver.wait_for(3)
    wait_until(lambda: settled(controller, "flaky"), 30, "the delivery to end")
    (delivery,) = deliveries(controller, "flaky")
    assert delivery["status"] == "delivered"
    assert [a["result"] for a in delivery["attempt_log"]] == ["HTTP 500", "HTTP 503", "HTTP 200"]
    assert len({r.headers["Idempotency-Key"] for r in requests}) == 1
    assert [r.headers["Fleetops-Attempt"] for r in requests] == ["1", "2", "3"]
    shown = controller.opsctl("subscription", "show", "flaky").stdout
    assert "try 1" in shown and "failed: HTTP 500" in shown and "ok: HTTP 200" in shown


def test_a_delivery_in_flight_when_the_controller_is_killed_is_sent_after_its_restart(
    make_controller: Callable[..., Controller], receiver: WebhookReceiver
) -> None:
    controller = make_controller(extra_args=["--event-delivery-timeout", "2s"])
    controller.start()
    controller.opsctl("subscription", "create", "hook", "--webhook", receiver.url)
    receiver.hold.set()  # takes the request, answers nothing
    controller.opsctl("subscription", "test", "hook", "--wait", "1s", check=False)
    (first,) = receiver.wait_for(1)
    controller.kill()  # kill -9 while the request is in flight: committed, not delivered
    receiver.hold.clear()
    receiver.release()
    controller.start()

    requests = receiver.wait_for(2)
    wait_until(lambda: settled(controller, "hook"), 30, "the delivery to end")
    (delivery,) = deliveries(controller, "hook")
    assert delivery["status"] == "delivered"
    assert requests[1].headers["Idempotency-Key"] == first.headers["Idempotency-Key"]  # at least once, same key
    assert requests[1].answered == 200


def test_dead_letters_are_kept_and_sent_again_on_request(
    make_controller: Callable[..., Controller], receiver: WebhookReceiver
) -> None:
    controller = make_controller()
    controller.start()
    receiver.statuses = [410]  # gone: no retry helps
    controller.opsctl("subscription", "create", "gone", "--webhook", receiver.url)
    controller.opsctl("subscription", "test", "gone", check=False)
    wait_until(lambda: settled(controller, "gone"), 30, "the delivery to end")
    listed = {s["name"]: s for s in controller.opsctl_json("subscription", "list")}
    assert listed["gone"].get("dead") == "1"
    assert "1 delivery of gone will be sent again" in controller.opsctl("subscription", "redeliver", "gone").stdout
    receiver.wait_for(2)
    wait_until(lambda: settled(controller, "gone"), 30, "the redelivery to end")
    (delivery,) = deliveries(controller, "gone")
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2


def test_what_subscriptions_refuse_is_said_clearly(controller: Controller) -> None:
    no_mail = controller.opsctl("subscription", "create", "m", "--email", "ops@example.com", check=False)
    assert no_mail.returncode == 2 and "no SMTP server" in no_mail.stderr and "--smtp-server" in no_mail.stderr
    typo = controller.opsctl(
        "subscription", "create", "t", "--webhook", "http://x/", "--type", "comand.failed", check=False
    )
    assert typo.returncode == 2 and "did you mean command.failed" in typo.stderr
    assert "Traceback" not in no_mail.stderr + typo.stderr
    assert controller.opsctl_json("subscription", "list") == []
    types = {t["type"] for t in controller.opsctl_json("events", "types")}
    assert {"fleetops.command.failed", "fleetops.host.offline", "fleetops.window.execution.failed"} <= types


def test_subscriptions_need_their_right(controller: Controller, tmp_path: Path) -> None:
    (tmp_path / "reader.yaml").write_text("name: reader\nallow: [{actions: [hosts.read]}]\n")
    controller.opsctl("admin", "role", "create", "reader", "--file", str(tmp_path / "reader.yaml"))
    token = create_user(controller, "rita", "reader")
    profile = tmp_path / "rita"
    login(controller, profile, token)
    refused = controller.opsctl("subscription", "create", "x", "--webhook", "http://x/", profile=profile, check=False)
    assert refused.returncode != 0 and "may not" in refused.stderr and "subscription.manage" in refused.stderr
    watch = controller.opsctl("events", "watch", "--count", "1", profile=profile, check=False)
    assert watch.returncode != 0 and "events.read" in watch.stderr
    denied = controller.opsctl_json("audit", "list", "--outcome", "denied", "--action", "subscription.create")
    assert denied and denied[-1]["actor"] == "operator:rita"
