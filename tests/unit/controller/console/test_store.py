"""One-time console links and the sessions they become, over a real (SQLite) store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from fleetops.common import pki
from fleetops.common.errors import Unauthenticated
from fleetops.controller.console.store import LINK_SECONDS, ConsoleStore
from fleetops.controller.store import database
from fleetops.controller.store.models import ConsoleLinkRow, ConsoleSessionRow


@pytest.fixture
async def links(tmp_path: Path) -> AsyncIterator[ConsoleStore]:
    engine = database.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    await database.ensure_schema(engine, migrate=True)
    yield ConsoleStore(database.session_factory(engine))
    await engine.dispose()


def certificate(lifetime: timedelta = timedelta(hours=1)) -> tuple[str, datetime]:
    authority = pki.CertificateAuthority.create()
    csr = pki.load_csr(pki.build_csr(pki.generate_private_key(), "ann"))
    cert = authority.issue_operator_certificate(csr, "ann", lifetime)
    return pki.cert_pem(cert).decode(), cert.not_valid_after_utc


async def test_a_link_signs_in_once_into_a_session_that_lasts_as_long_as_the_certificate(links: ConsoleStore) -> None:
    pem, not_after = certificate(timedelta(hours=3))
    token, expires = await links.create_link("operator:ann", pem, not_after)
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=LINK_SECONDS)

    cookie, session = await links.redeem(token)
    assert (session.operator, session.certificate_pem, session.expires_at) == ("operator:ann", pem, not_after)
    assert session.csrf_ok(session.csrf_token) and not session.csrf_ok("") and not session.csrf_ok("x")
    assert await links.session(cookie) == session
    with pytest.raises(Unauthenticated, match="used already"):
        await links.redeem(token)

    await links.end(cookie)
    assert await links.session(cookie) is None


async def test_a_link_is_refused_once_expired_or_unknown_and_never_outlives_the_certificate(
    links: ConsoleStore,
) -> None:
    pem, not_after = certificate(timedelta(seconds=30))
    token, expires = await links.create_link("operator:ann", pem, not_after)
    assert expires == not_after  # the certificate ends before the link would
    async with links._db.begin() as db:
        await db.execute(update(ConsoleLinkRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    with pytest.raises(Unauthenticated, match="expired") as refused:
        await links.redeem(token)
    assert refused.value.hint == "ask for a new link: opsctl console"
    with pytest.raises(Unauthenticated, match="not valid"):
        await links.redeem("made-up")


async def test_a_session_past_its_certificate_is_gone(links: ConsoleStore) -> None:
    pem, not_after = certificate()
    cookie, _ = await links.redeem((await links.create_link("operator:ann", pem, not_after))[0])
    async with links._db.begin() as db:
        await db.execute(update(ConsoleSessionRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert await links.session(cookie) is None
    assert await links.session("") is None
