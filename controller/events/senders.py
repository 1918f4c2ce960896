"""Sending one event to one subscription: a signed webhook POST, or an email through SMTP.

A sender answers with a :class:`~fleetops.controller.events.models.SendResult`; it never raises
for the receiver's or the network's trouble (that is a failed try, retried by the deliverer).
"""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import httpx
import jinja2

from fleetops.common.webhooks import SIGNATURE_HEADER, signature
from fleetops.controller.events.catalog import EVENT_TYPES, PREFIX, cloud_event
from fleetops.controller.events.models import Delivery, SendResult, Subscription

#: Statuses a webhook receiver answers that will not change on a retry: the delivery is
#: dead-lettered at once (410 Gone: the receiver says it is gone for good).
FINAL_STATUSES = frozenset({410})


class Sender(Protocol):
    async def send(self, subscription: Subscription, delivery: Delivery) -> SendResult: ...


def body_of(delivery: Delivery) -> bytes:
    e = delivery.event
    envelope = cloud_event(
        event_id=e.event_id, type=e.type, subject=e.subject, time=e.time, data=e.data, position=e.position
    )
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


class WebhookSender:
    """POSTs the CloudEvent (structured JSON), signed with the subscription's secret.

    Redirects are not followed (a 3xx is a failed try): the receiver is the URL subscribed.
    """

    def __init__(self, timeout: float) -> None:
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, subscription: Subscription, delivery: Delivery) -> SendResult:
        body = body_of(delivery)
        headers = {
            "Content-Type": "application/cloudevents+json; charset=utf-8",
            "User-Agent": "fleetops-controller",
            SIGNATURE_HEADER: signature(subscription.secret, int(time.time()), body),
            "Idempotency-Key": delivery.event.event_id,
            "Fleetops-Event-Id": delivery.event.event_id,
            "Fleetops-Event-Type": delivery.event.type,
            "Fleetops-Delivery": str(delivery.id),
            "Fleetops-Attempt": str(delivery.attempts + 1),
        }
        try:
            response = await self._client.post(subscription.endpoint, content=body, headers=headers)
        except httpx.TimeoutException:
            return SendResult(False, "timed out waiting for the receiver")
        except httpx.HTTPError as exc:
            return SendResult(False, _network_error(exc))
        if 200 <= response.status_code < 300:
            return SendResult(True, f"HTTP {response.status_code}")
        text = response.text.strip().replace("\n", " ")[:200]
        result = f"HTTP {response.status_code}" + (f": {text}" if text else "")
        return SendResult(False, result, final=response.status_code in FINAL_STATUSES)


def _network_error(exc: httpx.HTTPError) -> str:
    cause = exc.__cause__ or exc.__context__ or exc
    text = str(cause) or type(cause).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {text}"[:1024]
    return f"{type(exc).__name__}: {text}"[:1024]


@dataclass(frozen=True)
class SmtpSettings:
    """Where email goes (``--smtp-*`` of fleetops-controller serve; docs/events.md#email)."""

    server: str = ""  # HOST:PORT; "": no email subscriptions
    sender: str = ""  # the From address
    security: str = "starttls"  # starttls | tls | none
    username: str = ""
    password_file: Path | None = None
    ca_file: Path | None = None  # verify the server against this CA bundle (default: the system's)
    timeout: float = 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.server)


_templates = jinja2.Environment(
    loader=jinja2.FunctionLoader(
        lambda name: resources.files("fleetops.controller.events").joinpath("templates", name).read_text()
    ),
    autoescape=False,  # plain text mail
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


def summary(delivery: Delivery) -> str:
    """One line saying what happened, for a subject line."""
    e = delivery.event
    short = e.type.removeprefix(PREFIX)
    about = e.host or e.subject
    return f"[fleetops] {short}: {about}"


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def render_email(subscription: Subscription, delivery: Delivery, sender: str) -> EmailMessage:
    e = delivery.event
    text = _templates.get_template("email.txt").render(
        summary=EVENT_TYPES.get(e.type, e.type).capitalize() + ".",
        event={"type": e.type, "subject": e.subject, "host": e.host, "time": e.time.isoformat(), "id": e.event_id},
        fields=[(k, _scalar(v)) for k, v in sorted(e.data.items())],
        subscription=subscription.name,
    )
    message = EmailMessage()
    message["From"] = sender
    message["To"] = subscription.endpoint
    message["Subject"] = summary(delivery)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=e.event_id.replace("-", ""), domain="fleetops")
    message["X-Fleetops-Event-Id"] = e.event_id
    message["X-Fleetops-Event-Type"] = e.type
    message.set_content(text)
    return message


class EmailSender:
    """Sends through the configured SMTP server (STARTTLS or TLS, authenticated when configured)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, subscription: Subscription, delivery: Delivery) -> SendResult:
        if not self._settings.enabled:
            return SendResult(False, "no SMTP server is configured (fleetops-controller serve --smtp-server)")
        message = render_email(subscription, delivery, self._settings.sender)
        try:
            await asyncio.to_thread(self._send, message)
        except smtplib.SMTPRecipientsRefused as exc:
            return SendResult(False, f"SMTP refused the address: {exc.recipients}"[:1024], final=True)
        except smtplib.SMTPResponseException as exc:
            final = 500 <= exc.smtp_code < 600
            return SendResult(False, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:1024], final=final)
        except (OSError, smtplib.SMTPException) as exc:
            return SendResult(False, f"SMTP: {type(exc).__name__}: {exc}"[:1024])
        return SendResult(True, f"SMTP accepted by {self._settings.server}")

    def _context(self) -> ssl.SSLContext:
        ca = self._settings.ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _send(self, message: EmailMessage) -> None:
        s = self._settings
        host, _, port = s.server.rpartition(":")
        host = host.strip("[]")
        client: smtplib.SMTP
        if s.security == "tls":
            client = smtplib.SMTP_SSL(host, int(port), timeout=s.timeout, context=self._context())
        else:
            client = smtplib.SMTP(host, int(port), timeout=s.timeout)
        with client:
            if s.security == "starttls":
                client.starttls(context=self._context())
            if s.username:
                password = s.password_file.read_text().strip() if s.password_file else ""
                client.login(s.username, password)
            client.send_message(message)
