"""``opsctl login``: a one-time token -> a short-lived operator certificate, and its renewal.

First login (no profile needed)::

    opsctl login --controller fleet.example.com:7443 --token <id>.<secret>.<ca-sha256>

The token is what ``opsctl admin user create`` / ``opsctl admin user token`` printed. Its third
part is the SHA-256 fingerprint of the controller's CA: opsctl fetches the CA from the enrollment
port (``PORT + 1`` unless ``--enroll-port``) and trusts it only if it matches, the way
``fleetops-agent register --ca-fingerprint`` does. The key is generated here and never sent; the
controller signs a CSR for it (EnrollmentService.OperatorLogin, server-authenticated TLS).

``opsctl login`` without ``--token`` renews: a new key and CSR, signed over mutual TLS with the
profile's current certificate (OperatorService.RenewOperatorCertificate).

Either way the profile is replaced as a whole (written to a sibling directory, then swapped in), so
a profile on disk never pairs a key with another key's certificate.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from fleetops.common import pki
from fleetops.common.errors import (
    AuthError,
    FleetopsError,
    InternalError,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from fleetops.common.profile import DEFAULT_PROFILE, Profile, load_profile, profile_dir, write_profile
from fleetops.common.rpc_client import error_from_rpc, split_host_port
from fleetops.opsctl import output
from fleetops.opsctl.client import OperatorClient
from fleetops.v1 import enrollment_pb2, enrollment_pb2_grpc

LOGIN_TIMEOUT = 30.0
TOKEN_SEPARATOR = "."
TOKEN_HINT = "copy the whole token `opsctl admin user create` printed"
#: The files a profile consists of (common/profile.py); anything else in the directory is carried over.
PROFILE_FILES = frozenset({"profile.json", "operator.key", "operator.pem", "ca.pem"})

#: (host, port, fingerprint) -> the CA certificate, pinned (pki.discover_ca)
Discover = Callable[[str, int, str], x509.Certificate]
#: (enrollment address, CA PEM, request) -> the controller's answer
Exchange = Callable[[str, bytes, enrollment_pb2.OperatorLoginRequest], enrollment_pb2.OperatorCertificate]


@dataclass(frozen=True)
class LoginToken:
    token_id: str
    secret: str
    ca_fingerprint: str  # normalized: 64 lowercase hex digits


def parse_token(text: str) -> LoginToken:
    """``<token_id>.<secret>.<ca_sha256_hex>`` as printed by ``opsctl admin user create``.

    Raises:
        InvalidInput: not three non-empty parts, or the third is not a SHA-256 fingerprint.
    """
    text = text.strip().strip("'\"")
    parts = text.split(TOKEN_SEPARATOR)
    if not text or len(parts) != 3 or not all(p.strip() for p in parts):
        found = "an empty part" if len(parts) == 3 else f"{len(parts)} part{'s' * (len(parts) != 1)}"
        raise InvalidInput(
            f"that is not a fleetops login token (expected <id>.<secret>.<ca-fingerprint>, found {found})",
            TOKEN_HINT,
        )
    try:
        fingerprint = pki.normalize_fingerprint(parts[2])
    except InvalidInput:
        raise InvalidInput(
            "that is not a fleetops login token: its last part is not the controller's CA fingerprint (64 hex digits)",
            TOKEN_HINT,
        ) from None
    return LoginToken(parts[0].strip(), parts[1].strip(), fingerprint)


# ---- command line ------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "login",
        help="log in with a one-time token, or renew this profile's certificate",
        description="With --token (and --controller): first login. The key is generated on this machine; the "
        "controller signs a short-lived certificate for it, and the profile is written. Without --token: renew "
        "the current profile's certificate with a new key (run it before the certificate expires).",
    )
    p.add_argument("--controller", metavar="HOST:PORT", help="the controller's operator address (with --token)")
    p.add_argument("--token", help="the one-time login token from `opsctl admin user create` or `... user token`")
    p.add_argument(
        "--enroll-port", type=int, default=None, metavar="PORT", help="the enrollment port (default: PORT + 1)"
    )
    p.add_argument(
        "--profile",
        dest="login_profile",
        default=None,
        metavar="NAME",
        help="the profile to write or renew (default: $OPSCTL_PROFILE or 'default')",
    )
    output.add_output_argument(p)
    # No OperatorClient is built before this command: a first login has no profile yet (opsctl/cli.py).
    p.set_defaults(func=login, needs_client=False)


def login(client: OperatorClient | None, args: argparse.Namespace) -> int:
    chosen = args.login_profile or args.profile
    if args.token is None:
        if args.enroll_port is not None:
            raise InvalidInput("--enroll-port is only used with --token", "renewal goes to the controller's own port")
        profile, cert = renew(chosen, controller=args.controller)
        output.emit(
            args,
            login_doc(profile, cert, renewed=True),
            lambda: print(f"renewed: logged in to {profile.controller} as {profile.operator} until {local_time(cert)}"),
        )
        return 0
    if not args.controller:
        raise InvalidInput(
            "--token needs --controller HOST:PORT",
            "run the whole login command `opsctl admin user create` printed",
        )
    name = chosen or os.environ.get("OPSCTL_PROFILE") or DEFAULT_PROFILE
    directory = profile_directory(name)
    previous = _existing(directory)
    profile, cert = login_with_token(
        controller=args.controller, token=args.token, directory=directory, enroll_port=args.enroll_port
    )
    if previous is not None and (previous.controller, previous.operator) != (profile.controller, profile.operator):
        print(
            f"note: replaced profile {name} (was {previous.operator or '?'} at {previous.controller})", file=sys.stderr
        )
    suffix = "" if name == DEFAULT_PROFILE else f" (profile {name}: use opsctl --profile {name} or OPSCTL_PROFILE)"
    output.emit(
        args,
        login_doc(profile, cert, renewed=False),
        lambda: print(f"logged in to {profile.controller} as {profile.operator} until {local_time(cert)}{suffix}"),
    )
    return 0


def login_doc(profile: Profile, cert: x509.Certificate, *, renewed: bool) -> dict[str, Any]:
    """``login -o json``: the profile written and until when its certificate is valid."""
    return {
        "controller": profile.controller,
        "operator": profile.operator,
        "profile": str(profile.directory),
        "certificate_expires_at": output.json_time(cert.not_valid_after_utc),
        "renewed": renewed,
    }


def local_time(cert: x509.Certificate) -> str:
    return cert.not_valid_after_utc.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def profile_directory(name_or_path: str) -> Path:
    """Where profile *name_or_path* lives: a directory when it looks like a path (as load_profile reads it)."""
    path = Path(name_or_path)
    return path if (path.is_absolute() or os.sep in name_or_path) else profile_dir(name_or_path)


def _existing(directory: Path) -> Profile | None:
    try:
        return load_profile(str(directory.absolute()))
    except FleetopsError:
        return None


# ---- first login -------------------------------------------------------------------------------


def operator_login(
    enroll: str, ca_pem: bytes, request: enrollment_pb2.OperatorLoginRequest
) -> enrollment_pb2.OperatorCertificate:
    """EnrollmentService.OperatorLogin over server-authenticated TLS, the server verified against *ca_pem*."""
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    with grpc.secure_channel(enroll, credentials) as channel:
        stub = enrollment_pb2_grpc.EnrollmentServiceStub(channel)
        try:
            return stub.OperatorLogin(request, timeout=LOGIN_TIMEOUT)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc, f"the controller's enrollment port {enroll}") from exc


def login_with_token(
    *,
    controller: str,
    token: str,
    directory: Path,
    enroll_port: int | None = None,
    discover: Discover | None = None,
    exchange: Exchange | None = None,
) -> tuple[Profile, x509.Certificate]:
    """Log in with a one-time token and write the profile at *directory*; returns it and the new certificate.

    Raises:
        InvalidInput: a malformed token, address or port.
        Unavailable: the enrollment port cannot be reached.
        Unauthenticated: the CA does not match the token's fingerprint, or the token was refused.
    """
    parsed = parse_token(token)
    controller = controller.strip()
    host, port = split_host_port(controller)
    if enroll_port is not None and not 0 < enroll_port < 65536:
        raise InvalidInput(f"--enroll-port {enroll_port} is not a port", "give 1-65535; the default is PORT + 1")
    enroll_port = enroll_port or port + 1
    if enroll_port > 65535:
        raise InvalidInput(f"the enrollment port {enroll_port} (PORT + 1) is not a port", "give --enroll-port")
    enroll = f"[{host}]:{enroll_port}" if ":" in host else f"{host}:{enroll_port}"
    try:
        ca = (discover or pki.discover_ca)(host, enroll_port, parsed.ca_fingerprint)
    except Unauthenticated as exc:
        raise Unauthenticated(
            exc.message,
            f"the token pins another CA than the one {enroll} presents: check --controller and --enroll-port, "
            "and " + TOKEN_HINT,
        ) from None
    pinned_pem = pki.cert_pem(ca)
    key = pki.generate_private_key()
    request = enrollment_pb2.OperatorLoginRequest(
        token_id=parsed.token_id, token_secret=parsed.secret, csr_pem=pki.build_csr(key, "opsctl")
    )
    response = (exchange or operator_login)(enroll, pinned_pem, request)
    if not response.operator:
        raise InternalError(f"the controller at {enroll} answered the login without an operator name")
    ca_pem = _ca_bundle(bytes(response.ca_pem), parsed.ca_fingerprint) or pinned_pem
    cert = check_certificate(key, bytes(response.certificate_pem), ca_pem, response.operator)
    profile = save_profile(
        directory,
        controller=controller,
        operator=response.operator,
        key_pem=pki.private_key_pem(key),
        cert_pem=bytes(response.certificate_pem),
        ca_pem=ca_pem,
    )
    return profile, cert


def _ca_bundle(ca_pem: bytes, fingerprint: str) -> bytes | None:
    """The controller's CA bundle when it holds the pinned CA, else None (keep the pinned certificate)."""
    if not ca_pem:
        return None
    try:
        chain = pki.load_cert_chain(ca_pem)
    except InvalidInput:
        return None
    return ca_pem if any(pki.fingerprint_sha256(c) == fingerprint for c in chain) else None


# ---- renewal -----------------------------------------------------------------------------------


def renew(
    name_or_path: str | None = None,
    *,
    controller: str | None = None,
    connect: Callable[[Profile], Any] | None = None,
    now: datetime | None = None,
) -> tuple[Profile, x509.Certificate]:
    """Replace the profile's key and certificate with new ones, over mutual TLS with the current pair.

    Raises:
        NotFound: there is no such profile (log in with a token first).
        InvalidInput: *controller* is not the profile's controller.
        Unauthenticated / PermissionDenied: the certificate expired, or the controller refused it.
        Unavailable: the controller cannot be reached.
    """
    try:
        profile = load_profile(name_or_path)
    except NotFound as exc:
        raise NotFound(
            exc.message,
            "log in first: opsctl login --controller HOST:PORT --token TOKEN "
            "(an admin creates the token: opsctl admin user create NAME --role ROLE)",
        ) from None
    relogin = (
        f"ask an admin for a new token: opsctl admin user token {profile.operator or 'NAME'}, then "
        f"opsctl login --controller {profile.controller} --token TOKEN"
    )
    if controller and controller.strip() != profile.controller:
        raise InvalidInput(
            f"profile {profile.directory} is for the controller at {profile.controller}, not {controller.strip()}",
            "to log in to another controller give --token (and --profile NAME to keep this profile)",
        )
    try:
        current = pki.load_cert(profile.cert_pem)
        pki.check_key_matches(pki.load_private_key(profile.key_pem), current)
        pki.load_cert_chain(profile.ca_pem)
    except (OSError, InvalidInput) as exc:
        raise Unauthenticated(f"profile {profile.directory} is unusable: {exc}", relogin) from None
    expires = current.not_valid_after_utc
    if (now or datetime.now(UTC)) >= expires:
        raise Unauthenticated(
            f"the certificate of {profile.operator or 'this profile'} expired at {local_time(current)}: "
            "it can no longer be renewed",
            relogin,
        )
    key = pki.generate_private_key()
    csr = pki.build_csr(key, profile.operator or "opsctl")
    try:
        with (connect or OperatorClient)(profile) as client:
            response = client.renew_operator_certificate(csr)
    except AuthError as exc:
        raise type(exc)(f"the controller refused to renew: {exc.message}", relogin) from None
    ca_pem = bytes(response.ca_pem) or profile.ca_pem
    operator = response.operator or profile.operator
    if profile.operator and operator != profile.operator:
        raise InternalError(
            f"the controller renewed the certificate for {operator!r}, not {profile.operator!r}",
            "the profile was kept as it was; check the controller",
        )
    cert = check_certificate(key, bytes(response.certificate_pem), ca_pem, operator)
    saved = save_profile(
        profile.directory,
        controller=profile.controller,
        operator=operator,
        key_pem=pki.private_key_pem(key),
        cert_pem=bytes(response.certificate_pem),
        ca_pem=ca_pem,
    )
    return saved, cert


# ---- checks and the profile on disk ------------------------------------------------------------


def _spki(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_certificate(key: pki.PrivateKey, cert_pem: bytes, ca_pem: bytes, operator: str) -> x509.Certificate:
    """The controller's certificate, checked: for *key*, for *operator*, signed by a CA of *ca_pem*.

    Raises:
        InternalError: it is not (nothing is saved).
    """
    hint = "nothing was saved; retry, and if it persists check the controller's log"
    try:
        cert = pki.load_cert(cert_pem)
        authorities = pki.load_cert_chain(ca_pem)
    except InvalidInput as exc:
        raise InternalError(f"the controller sent an unusable certificate: {exc.message}", hint) from None
    if _spki(cert.public_key()) != _spki(key.public_key()):
        raise InternalError("the certificate the controller returned is not for the key generated here", hint)
    try:
        identity = pki.identity_from_cert(cert)
    except Unauthenticated as exc:
        raise InternalError(f"the controller's certificate names no operator: {exc.message}", hint) from None
    if identity.kind != "operator" or identity.name != operator:
        raise InternalError(f"the controller's certificate is for {identity.uri()}, not operator {operator!r}", hint)
    for authority in authorities:
        with contextlib.suppress(ValueError, TypeError, InvalidSignature):
            cert.verify_directly_issued_by(authority)
            return cert
    raise InternalError("the controller's certificate is not signed by its CA", hint)


def save_profile(
    directory: Path, *, controller: str, operator: str, key_pem: bytes, cert_pem: bytes, ca_pem: bytes
) -> Profile:
    """Write the profile at *directory* as a whole: into a sibling directory, then swapped in.

    A reader sees the old profile or the new one, never a key of one with the certificate of the other.
    Files other than the profile's own in an existing directory are carried over.

    Raises:
        FleetopsError: the profile cannot be written (the old one, if any, is left as it was).
    """
    target = Path(os.path.realpath(directory))  # a symlinked profile directory stays a symlink
    staging = target.parent / f".{target.name}.new-{secrets.token_hex(4)}"
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_profile(
            staging, controller=controller, operator=operator, key_pem=key_pem, cert_pem=cert_pem, ca_pem=ca_pem
        )
        if target.is_dir():
            for entry in target.iterdir():
                if entry.name not in PROFILE_FILES and not (staging / entry.name).exists():
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.copytree(entry, staging / entry.name, symlinks=True)
                    else:
                        shutil.copy2(entry, staging / entry.name, follow_symlinks=False)
            _swap_in(staging, target)  # staging now holds the old profile
        else:
            os.rename(staging, target)
        _sync_dir(target.parent)
    except OSError as exc:
        raise FleetopsError(
            f"cannot write profile {directory}: {exc.strerror or exc}",
            f"check the permissions of {target.parent}",
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Profile(Path(directory), controller, operator)


def _swap_in(new: Path, target: Path) -> None:
    """Put directory *new* at *target*; the old *target* ends up at *new* (for the caller to remove)."""
    if exchange_paths(new, target):
        return
    # No atomic exchange here: two renames. In between there is no profile at all (never a mixed one).
    old = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
    os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError:
        os.rename(old, target)
        raise
    os.rename(old, new)


def exchange_paths(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _sync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
