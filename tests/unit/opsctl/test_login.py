"""``opsctl login``: token parsing, first login, renewal, and the profile swapped in whole.

The network parts are fakes here (CA discovery, OperatorLogin, RenewOperatorCertificate), except
the last tests, which run both calls against real grpc servers in this process.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509

from fleetops.common import pki
from fleetops.common import profile as profile_module
from fleetops.common.errors import (
    FleetopsError,
    InternalError,
    InvalidInput,
    PermissionDenied,
    Unauthenticated,
)
from fleetops.common.profile import Profile, load_profile, write_profile
from fleetops.opsctl import cli, login
from fleetops.v1 import enrollment_pb2, enrollment_pb2_grpc, operator_pb2_grpc

LIFETIME = timedelta(hours=12)


@pytest.fixture(scope="module")
def ca() -> pki.CertificateAuthority:
    return pki.CertificateAuthority.create()


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "config"
    monkeypatch.setenv("FLEETOPS_CONFIG_DIR", str(directory))
    monkeypatch.delenv("OPSCTL_PROFILE", raising=False)
    return directory


def fingerprint(ca: pki.CertificateAuthority) -> str:
    return pki.fingerprint_sha256(ca.cert)


def token(ca: pki.CertificateAuthority, token_id: str = "a1b2c3", secret: str = "s3cret-Value_x") -> str:
    return f"{token_id}.{secret}.{fingerprint(ca)}"


def issue(ca: pki.CertificateAuthority, csr_pem: bytes, operator: str, lifetime: timedelta = LIFETIME) -> bytes:
    return pki.cert_pem(ca.issue_operator_certificate(pki.load_csr(csr_pem), operator, lifetime))


def key_matches(profile: Profile) -> bool:
    key = pki.load_private_key(profile.key_pem)
    try:
        pki.check_key_matches(key, pki.load_cert(profile.cert_pem))
    except InvalidInput:
        return False
    return True


def existing_profile(ca: pki.CertificateAuthority, directory: Path, operator: str = "alice") -> Profile:
    key = pki.generate_private_key()
    cert = issue(ca, pki.build_csr(key, operator), operator)
    return write_profile(
        directory,
        controller="fleet.example.com:7443",
        operator=operator,
        key_pem=pki.private_key_pem(key),
        cert_pem=cert,
        ca_pem=pki.cert_pem(ca.cert),
    )


@dataclass
class FakeEnrollment:
    """Stands in for discover_ca and OperatorLogin; records what opsctl sent."""

    ca: pki.CertificateAuthority
    operator: str = "alice"
    other_key: bool = False
    discovered: tuple[str, int, str] | None = None
    sent: tuple[str, bytes, enrollment_pb2.OperatorLoginRequest] | None = None

    def discover(self, host: str, port: int, pin: str) -> x509.Certificate:
        self.discovered = (host, port, pin)
        if pin != fingerprint(self.ca):
            raise Unauthenticated(f"the controller at {host}:{port} presented no CA certificate with fingerprint {pin}")
        return self.ca.cert

    def exchange(
        self, enroll: str, ca_pem: bytes, request: enrollment_pb2.OperatorLoginRequest
    ) -> enrollment_pb2.OperatorCertificate:
        self.sent = (enroll, ca_pem, request)
        csr = request.csr_pem
        if self.other_key:
            csr = pki.build_csr(pki.generate_private_key(), "x")
        return enrollment_pb2.OperatorCertificate(
            operator=self.operator,
            certificate_pem=issue(self.ca, csr, self.operator),
            ca_pem=pki.cert_pem(self.ca.cert),
        )


# ---- tokens --------------------------------------------------------------------------------------


def test_a_token_has_three_parts_the_last_the_ca_fingerprint(ca: pki.CertificateAuthority) -> None:
    parsed = login.parse_token(f"  {token(ca)}\n")
    assert parsed == login.LoginToken("a1b2c3", "s3cret-Value_x", fingerprint(ca))
    # as fingerprints are sometimes written: upper case, with a prefix
    assert login.parse_token(f"a.b.sha256:{fingerprint(ca).upper()}").ca_fingerprint == fingerprint(ca)


@pytest.mark.parametrize(
    "text, found",
    [
        ("", "1 part"),
        ("a1b2c3", "1 part"),
        ("a1b2c3.secret", "2 parts"),
        ("a1b2c3.sec.ret.{fp}", "4 parts"),
        ("a1b2c3..{fp}", "an empty part"),
        (".secret.{fp}", "an empty part"),
    ],
)
def test_malformed_tokens_are_invalid_input(ca: pki.CertificateAuthority, text: str, found: str) -> None:
    with pytest.raises(InvalidInput) as err:
        login.parse_token(text.format(fp=fingerprint(ca)))
    assert found in err.value.message
    assert err.value.hint == "copy the whole token `opsctl admin user create` printed"


def test_a_token_whose_last_part_is_no_fingerprint_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as err:
        login.parse_token("a1b2c3.secret.deadbeef")
    assert "fingerprint" in err.value.message
    assert err.value.hint == login.TOKEN_HINT


# ---- first login ---------------------------------------------------------------------------------


def test_login_with_a_token_writes_a_profile_whose_key_matches_its_certificate(
    ca: pki.CertificateAuthority, config_dir: Path
) -> None:
    fake = FakeEnrollment(ca)
    directory = config_dir / "profiles" / "default"
    profile, cert = login.login_with_token(
        controller="fleet.example.com:7443",
        token=token(ca),
        directory=directory,
        discover=fake.discover,
        exchange=fake.exchange,
    )
    assert fake.discovered == ("fleet.example.com", 7444, fingerprint(ca))  # the enrollment port: PORT + 1
    assert fake.sent is not None
    enroll, pinned, request = fake.sent
    assert (enroll, pinned) == ("fleet.example.com:7444", pki.cert_pem(ca.cert))
    assert (request.token_id, request.token_secret) == ("a1b2c3", "s3cret-Value_x")

    loaded = load_profile()
    assert (loaded.directory, loaded.controller, loaded.operator) == (directory, "fleet.example.com:7443", "alice")
    assert key_matches(loaded)
    assert loaded.cert_pem == pki.cert_pem(cert)
    assert loaded.ca_pem == pki.cert_pem(ca.cert)
    # the key was generated here: the CSR that went out is for the key on disk
    csr_key = pki.load_csr(request.csr_pem).public_key()
    assert csr_key.public_numbers() == pki.load_private_key(loaded.key_pem).public_key().public_numbers()  # type: ignore[union-attr]
    assert stat.S_IMODE((directory / "operator.key").stat().st_mode) == 0o600
    assert [p.name for p in directory.parent.iterdir()] == ["default"]  # no staging directory left behind


def test_an_explicit_enrollment_port(ca: pki.CertificateAuthority, config_dir: Path) -> None:
    fake = FakeEnrollment(ca)
    login.login_with_token(
        controller="[::1]:7443",
        token=token(ca),
        directory=config_dir / "p",
        enroll_port=9000,
        discover=fake.discover,
        exchange=fake.exchange,
    )
    assert fake.discovered == ("::1", 9000, fingerprint(ca))
    assert fake.sent is not None and fake.sent[0] == "[::1]:9000"


@pytest.mark.parametrize(
    "controller, port, message",
    [
        ("fleet.example.com", None, "bad controller address"),
        ("h:7443", 70000, "not a port"),
        ("h:65535", None, r"PORT \+ 1"),
    ],
)
def test_bad_addresses_are_refused_before_any_connection(
    ca: pki.CertificateAuthority, config_dir: Path, controller: str, port: int | None, message: str
) -> None:
    fake = FakeEnrollment(ca)
    with pytest.raises(InvalidInput, match=message):
        login.login_with_token(
            controller=controller,
            token=token(ca),
            directory=config_dir / "p",
            enroll_port=port,
            discover=fake.discover,
            exchange=fake.exchange,
        )
    assert fake.discovered is None


def test_a_ca_that_does_not_match_the_token_is_refused(ca: pki.CertificateAuthority, config_dir: Path) -> None:
    fake = FakeEnrollment(pki.CertificateAuthority.create())  # the controller presents another CA
    with pytest.raises(Unauthenticated) as err:
        login.login_with_token(
            controller="h:7443",
            token=token(ca),
            directory=config_dir / "p",
            discover=fake.discover,
            exchange=fake.exchange,
        )
    assert "--enroll-port" in err.value.hint and login.TOKEN_HINT in err.value.hint
    assert fake.sent is None  # the token secret never went to an unverified server
    assert not (config_dir / "p").exists()


def test_a_certificate_for_another_key_is_not_saved(ca: pki.CertificateAuthority, config_dir: Path) -> None:
    directory = config_dir / "profiles" / "default"
    before = existing_profile(ca, directory, "bob")
    files = {p.name: p.read_bytes() for p in directory.iterdir()}
    fake = FakeEnrollment(ca, other_key=True)
    with pytest.raises(InternalError, match="not for the key generated here"):
        login.login_with_token(
            controller="h:7443", token=token(ca), directory=directory, discover=fake.discover, exchange=fake.exchange
        )
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == files
    assert key_matches(before)


def test_a_certificate_for_another_operator_is_not_saved(ca: pki.CertificateAuthority, config_dir: Path) -> None:
    fake = FakeEnrollment(ca)

    def lying_exchange(enroll: str, ca_pem: bytes, request: Any) -> enrollment_pb2.OperatorCertificate:
        response = fake.exchange(enroll, ca_pem, request)
        response.operator = "mallory"
        return response

    with pytest.raises(InternalError, match="not operator 'mallory'"):
        login.login_with_token(
            controller="h:7443",
            token=token(ca),
            directory=config_dir / "p",
            discover=fake.discover,
            exchange=lying_exchange,
        )
    assert not (config_dir / "p").exists()


def test_login_cli_needs_no_profile(
    ca: pki.CertificateAuthority, config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeEnrollment(ca)
    monkeypatch.setattr(pki, "discover_ca", fake.discover)
    monkeypatch.setattr(login, "operator_login", fake.exchange)

    def no_client(*a: Any, **k: Any) -> None:
        raise AssertionError("login must not build an OperatorClient from a profile")

    monkeypatch.setattr(cli.OperatorClient, "from_profile", classmethod(no_client))
    assert cli.main(["login", "--controller", "fleet.example.com:7443", "--token", token(ca)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("logged in to fleet.example.com:7443 as alice until ")
    assert key_matches(load_profile("default"))

    # --profile (of login, or the global one) chooses another profile
    assert cli.main(["login", "--controller", "fleet.example.com:7443", "--token", token(ca), "--profile", "work"]) == 0
    assert "(profile work:" in capsys.readouterr().out
    assert cli.main(["--profile", "lab", "login", "--controller", "lab:7443", "--token", token(ca)]) == 0
    assert load_profile("work").controller == "fleet.example.com:7443"
    assert load_profile("lab").controller == "lab:7443"


def test_login_json_says_who_where_and_until_when(
    ca: pki.CertificateAuthority, config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeEnrollment(ca)
    monkeypatch.setattr(pki, "discover_ca", fake.discover)
    monkeypatch.setattr(login, "operator_login", fake.exchange)
    argv = ["login", "--controller", "fleet.example.com:7443", "--token", token(ca), "-o", "json"]
    assert cli.main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    profile = load_profile("default")
    expires = x509.load_pem_x509_certificate(profile.cert_pem).not_valid_after_utc
    assert doc == {
        "controller": "fleet.example.com:7443",
        "operator": "alice",
        "profile": str(profile.directory),
        "certificate_expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "renewed": False,
    }


def test_login_cli_errors_are_messages_with_hints(
    config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["login", "--controller", "h:7443", "--token", "not-a-token"]) == 2
    err = capsys.readouterr().err
    assert "error: that is not a fleetops login token" in err
    assert "hint: copy the whole token `opsctl admin user create` printed" in err
    assert "Traceback" not in err

    assert cli.main(["login", "--token", "a.b.c"]) == 2
    assert "--token needs --controller" in capsys.readouterr().err

    assert cli.main(["login"]) == 3  # nothing to renew
    err = capsys.readouterr().err
    assert "no opsctl profile" in err and "opsctl login --controller HOST:PORT --token TOKEN" in err


# ---- renewal -------------------------------------------------------------------------------------


class FakeRenewal:
    def __init__(self, ca: pki.CertificateAuthority, error: FleetopsError | None = None, other_key: bool = False):
        self.ca = ca
        self.error = error
        self.other_key = other_key
        self.calls: list[tuple[Profile, bytes]] = []
        self.profile: Profile | None = None

    def __call__(self, profile: Profile) -> FakeRenewal:
        self.profile = profile
        return self

    def __enter__(self) -> FakeRenewal:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def renew_operator_certificate(self, csr_pem: bytes) -> enrollment_pb2.OperatorCertificate:
        assert self.profile is not None
        # the call authenticates with the profile's current pair
        self.calls.append((self.profile, self.profile.cert_pem))
        if self.error is not None:
            raise self.error
        if self.other_key:
            csr_pem = pki.build_csr(pki.generate_private_key(), "x")
        return enrollment_pb2.OperatorCertificate(
            operator=self.profile.operator, certificate_pem=issue(self.ca, csr_pem, self.profile.operator)
        )


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_renewal_replaces_key_and_certificate_and_keeps_the_controller(
    ca: pki.CertificateAuthority, config_dir: Path
) -> None:
    directory = config_dir / "profiles" / "default"
    old = existing_profile(ca, directory)
    old_key, old_cert = old.key_pem, old.cert_pem
    (directory / "notes.txt").write_text("mine")  # not a profile file: carried over
    fake = FakeRenewal(ca)
    profile, cert = login.renew(connect=fake)
    assert fake.calls == [(old, old_cert)]
    loaded = load_profile()
    assert (loaded.controller, loaded.operator) == ("fleet.example.com:7443", "alice")
    assert loaded.key_pem != old_key and loaded.cert_pem != old_cert
    assert loaded.cert_pem == pki.cert_pem(cert)
    assert key_matches(loaded)
    assert loaded.ca_pem == pki.cert_pem(ca.cert)  # the response had none: the profile's CA stays
    assert (directory / "notes.txt").read_text() == "mine"
    assert json.loads((directory / "profile.json").read_text())["controller"] == "fleet.example.com:7443"
    assert sorted(p.name for p in directory.parent.iterdir()) == ["default"]


def test_renewal_without_an_atomic_exchange_swaps_by_renaming(
    ca: pki.CertificateAuthority, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = config_dir / "profiles" / "work"
    existing_profile(ca, directory)
    monkeypatch.setattr(login, "exchange_paths", lambda a, b: False)
    login.renew("work", connect=FakeRenewal(ca))
    assert key_matches(load_profile("work"))
    assert sorted(p.name for p in directory.parent.iterdir()) == ["work"]


def test_a_symlinked_profile_directory_stays_a_symlink(ca: pki.CertificateAuthority, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere" / "prof"
    existing_profile(ca, real)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    login.renew(str(link), connect=FakeRenewal(ca))
    assert link.is_symlink()
    assert key_matches(load_profile(str(link)))


def test_a_failed_write_leaves_the_old_profile(
    ca: pki.CertificateAuthority, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = config_dir / "profiles" / "default"
    existing_profile(ca, directory)
    before = snapshot(directory)

    def disk_full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(profile_module, "write_public_file", disk_full)  # the key is written, the certificate is not
    with pytest.raises(FleetopsError, match="cannot write profile .*No space left"):
        login.renew(connect=FakeRenewal(ca))
    assert snapshot(directory) == before
    assert sorted(p.name for p in directory.parent.iterdir()) == ["default"]


def test_an_expired_certificate_cannot_be_renewed(ca: pki.CertificateAuthority, config_dir: Path) -> None:
    directory = config_dir / "profiles" / "default"
    existing_profile(ca, directory)
    before = snapshot(directory)
    fake = FakeRenewal(ca)
    with pytest.raises(Unauthenticated) as err:
        login.renew(connect=fake, now=datetime.now(UTC) + LIFETIME + timedelta(minutes=1))
    assert "expired" in err.value.message
    assert "opsctl admin user token alice" in err.value.hint
    assert "opsctl login --controller fleet.example.com:7443 --token TOKEN" in err.value.hint
    assert fake.calls == []
    assert snapshot(directory) == before


@pytest.mark.parametrize(
    "error",
    [
        Unauthenticated("this certificate of 'alice' was issued before the user was (re)created or re-enabled"),
        PermissionDenied("user 'alice' is disabled", "ask an admin to enable you, then opsctl login again"),
    ],
)
def test_a_refused_renewal_says_how_to_log_in_again(
    ca: pki.CertificateAuthority, config_dir: Path, error: FleetopsError
) -> None:
    directory = config_dir / "profiles" / "default"
    existing_profile(ca, directory)
    before = snapshot(directory)
    with pytest.raises(type(error)) as err:
        login.renew(connect=FakeRenewal(ca, error=error))
    assert err.value.message == f"the controller refused to renew: {error.message}"
    assert "opsctl admin user token alice" in err.value.hint
    assert snapshot(directory) == before


def test_a_renewed_certificate_for_another_key_is_not_saved(ca: pki.CertificateAuthority, config_dir: Path) -> None:
    directory = config_dir / "profiles" / "default"
    existing_profile(ca, directory)
    before = snapshot(directory)
    with pytest.raises(InternalError):
        login.renew(connect=FakeRenewal(ca, other_key=True))
    assert snapshot(directory) == before


def test_renewal_is_for_the_profiles_controller(ca: pki.CertificateAuthority, config_dir: Path) -> None:
    existing_profile(ca, config_dir / "profiles" / "default")
    with pytest.raises(InvalidInput, match="not other:7443"):
        login.renew(controller="other:7443", connect=FakeRenewal(ca))
    login.renew(controller="fleet.example.com:7443", connect=FakeRenewal(ca))


def test_renewal_cli(
    ca: pki.CertificateAuthority, config_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    existing_profile(ca, config_dir / "profiles" / "default")
    monkeypatch.setattr(login, "OperatorClient", FakeRenewal(ca))
    assert cli.main(["login"]) == 0
    assert capsys.readouterr().out.startswith("renewed: logged in to fleet.example.com:7443 as alice until ")
    assert cli.main(["login", "--enroll-port", "7444"]) == 2
    assert "only used with --token" in capsys.readouterr().err


# ---- against real grpc servers -------------------------------------------------------------------


class Controller(enrollment_pb2_grpc.EnrollmentServiceServicer, operator_pb2_grpc.OperatorServiceServicer):
    """OperatorLogin on a server-TLS port, RenewOperatorCertificate on a mutual-TLS port."""

    def __init__(self, ca: pki.CertificateAuthority) -> None:
        self.ca = ca
        self.renewed_for: list[str] = []

    def OperatorLogin(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if (request.token_id, request.token_secret) != ("a1b2c3", "s3cret-Value_x"):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "the login token is unknown, used or expired")
        return enrollment_pb2.OperatorCertificate(
            operator="alice",
            certificate_pem=issue(self.ca, request.csr_pem, "alice"),
            ca_pem=pki.cert_pem(self.ca.cert),
        )

    def RenewOperatorCertificate(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        caller = pki.identity_from_cert(pki.load_cert(context.auth_context()["x509_pem_cert"][0]))
        self.renewed_for.append(caller.name)
        return enrollment_pb2.OperatorCertificate(
            operator=caller.name,
            certificate_pem=issue(self.ca, request.csr_pem, caller.name),
            ca_pem=pki.cert_pem(self.ca.cert),
        )


@dataclass
class Running:
    controller: Controller
    operator_port: int
    enroll_port: int


@pytest.fixture
def grpc_controller(ca: pki.CertificateAuthority) -> Iterator[Running]:
    key = pki.generate_private_key()
    cert = ca.issue_server_certificate(key.public_key(), ["localhost"], ["127.0.0.1"], timedelta(hours=1))
    ca_pem = pki.cert_pem(ca.cert)
    pair = [(pki.private_key_pem(key), pki.cert_pem(cert) + ca_pem)]  # leaf + CA, as the controller presents it
    controller = Controller(ca)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    enrollment_pb2_grpc.add_EnrollmentServiceServicer_to_server(controller, server)
    operator_pb2_grpc.add_OperatorServiceServicer_to_server(controller, server)
    operator_port = server.add_secure_port(
        "127.0.0.1:0", grpc.ssl_server_credentials(pair, root_certificates=ca_pem, require_client_auth=True)
    )
    enroll_port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(pair))
    server.start()
    try:
        yield Running(controller, operator_port, enroll_port)
    finally:
        server.stop(None)


def test_login_and_renewal_over_grpc(
    ca: pki.CertificateAuthority, grpc_controller: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    address = f"127.0.0.1:{grpc_controller.operator_port}"
    argv = ["login", "--controller", address, "--enroll-port", str(grpc_controller.enroll_port)]
    assert cli.main([*argv, "--token", token(ca)]) == 0
    assert capsys.readouterr().out.startswith(f"logged in to {address} as alice until ")
    first = load_profile()
    assert key_matches(first) and first.controller == address
    first_cert = first.cert_pem

    assert cli.main(["login"]) == 0
    assert capsys.readouterr().out.startswith(f"renewed: logged in to {address} as alice until ")
    assert grpc_controller.controller.renewed_for == ["alice"]
    renewed = load_profile()
    assert key_matches(renewed) and renewed.cert_pem != first_cert and renewed.controller == address

    # a spent or wrong token is the controller's refusal, as a message
    assert cli.main([*argv, "--token", token(ca, secret="wrong"), "--profile", "other"]) == 5
    assert "the login token is unknown, used or expired" in capsys.readouterr().err
    assert not (Path(os.environ["FLEETOPS_CONFIG_DIR"]) / "profiles" / "other").exists()


def test_a_damaged_profile_is_an_error_not_a_traceback(ca: pki.CertificateAuthority, config_dir: Path) -> None:
    directory = config_dir / "profiles" / "default"
    existing_profile(ca, directory)
    (directory / "operator.key").write_bytes(pki.private_key_pem(pki.generate_private_key()))  # another key
    fake = FakeRenewal(ca)
    with pytest.raises(Unauthenticated, match="is unusable") as err:
        login.renew(connect=fake)
    assert "opsctl admin user token alice" in err.value.hint
    (directory / "operator.key").unlink()
    with pytest.raises(Unauthenticated, match="is unusable"):
        login.renew(connect=fake)
    assert fake.calls == []
