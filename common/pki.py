"""Keys, CSRs and certificates of the fleetops mutual-TLS world (EC P-256 + SHA-256).

The controller's CA signs one server certificate for the controller, one client certificate per
host (``fleetops://host/<host_id>``) and per operator (``fleetops://operator/<name>``). Peers are
identified by that single URI SAN, never by CN. Agents learn the CA kubeadm-style: they fetch the
chain the controller presents, unverified, and keep the certificate whose SHA-256 fingerprint
matches the one an operator copied from ``fleetops-controller init``.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleetops.common.errors import CertificateRequestError, InvalidInput, NotFound, Unauthenticated, Unavailable
from fleetops.common.files import write_public_file, write_secret_file

HOST_URI_PREFIX = "fleetops://host/"
OPERATOR_URI_PREFIX = "fleetops://operator/"
# A controller replica calling another over the peer service (docs/architecture.md "Replicas").
REPLICA_URI_PREFIX = "fleetops://replica/"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

#: issued certificates start this long before "now" so peers with a slow clock accept them
CLOCK_SKEW = timedelta(minutes=5)
_CSR_HINT = "generate a new key and CSR with fleetops-agent register"
_MAX_PEM = 64 * 1024
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
_PEM_TYPE_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
IdentityKind = Literal["host", "operator", "replica"]
_URI_KINDS: dict[str, IdentityKind] = {
    HOST_URI_PREFIX: "host",
    OPERATOR_URI_PREFIX: "operator",
    REPLICA_URI_PREFIX: "replica",
}


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


# --- keys and files ---------------------------------------------------------------------------


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    """Generate a fresh EC P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: PrivateKey) -> bytes:
    """Serialize ``key`` as unencrypted PKCS#8 PEM (store it with :func:`write_secret_file`)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key(pem: bytes) -> PrivateKey:
    """Parse an unencrypted PEM private key.

    Raises:
        InvalidInput: the data is not an unencrypted EC or RSA private key in PEM.
    """
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InvalidInput(
            f"not a usable PEM private key: {exc}", "the key file may be corrupt or encrypted; re-register"
        ) from exc
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise InvalidInput(f"unsupported private key type {type(key).__name__}", "use an EC P-256 key")
    return key


# --- CSRs -------------------------------------------------------------------------------------


def check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid {what} {value!r}",
            "use 1-64 characters: letters, digits and . _ @ + - (starting with a letter or digit)",
        )
    return value


def _describe_key(key: object) -> str | None:
    """Return why ``key`` is not acceptable, or None when it is."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, (ec.SECP256R1, ec.SECP384R1)):
            return None
        return f"EC curve {key.curve.name} is not supported (use P-256 or P-384)"
    if isinstance(key, rsa.RSAPublicKey):
        return None if key.key_size >= 2048 else f"RSA key of {key.key_size} bits is too small (need 2048+)"
    return f"key type {type(key).__name__} is not supported (use EC P-256)"


def build_csr(key: PrivateKey, common_name: str) -> bytes:
    """Build a PEM PKCS#10 request for ``key`` (the CA ignores its names; CN is informative).

    Raises:
        InvalidInput: ``common_name`` is empty or longer than 64 characters.
    """
    if not common_name or len(common_name) > 64:
        raise InvalidInput(f"CSR common name must be 1-64 characters, got {len(common_name)}")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def load_csr(pem: bytes) -> x509.CertificateSigningRequest:
    """Parse and check a PEM certificate signing request.

    Raises:
        CertificateRequestError: the data is not a PEM CSR, its self-signature is invalid, or its
            key is not EC P-256/P-384 or RSA with at least 2048 bits.
    """
    if isinstance(pem, str):
        pem = pem.encode()
    if not isinstance(pem, bytes) or len(pem) > _MAX_PEM:
        raise CertificateRequestError("CSR is missing or larger than 64 KiB", _CSR_HINT)
    match = _PEM_TYPE_RE.search(pem)
    if match is None:
        raise CertificateRequestError("CSR is not PEM (no -----BEGIN CERTIFICATE REQUEST----- line)", _CSR_HINT)
    if match.group(1) not in (b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"):
        raise CertificateRequestError(
            f"expected a PEM CERTIFICATE REQUEST, got a PEM {match.group(1).decode()}", _CSR_HINT
        )
    try:
        csr = x509.load_pem_x509_csr(pem)
        public_key = csr.public_key()
        signature_ok = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CertificateRequestError(f"CSR cannot be parsed: {exc}", _CSR_HINT) from exc
    if not signature_ok:
        raise CertificateRequestError("CSR signature is invalid (the request was altered or corrupted)", _CSR_HINT)
    problem = _describe_key(public_key)
    if problem is not None:
        raise CertificateRequestError(f"CSR key unusable: {problem}", _CSR_HINT)
    return csr


# --- certificates -----------------------------------------------------------------------------


def cert_pem(cert: x509.Certificate) -> bytes:
    """Serialize ``cert`` as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(pem: bytes) -> x509.Certificate:
    """Parse the first PEM certificate in ``pem``.

    Raises:
        InvalidInput: the data holds no parseable PEM certificate.
    """
    return load_cert_chain(pem)[0]


def load_cert_chain(pem: bytes) -> list[x509.Certificate]:
    """Parse every PEM certificate in ``pem``, in order (leaf first for a TLS chain).

    Raises:
        InvalidInput: the data holds no parseable PEM certificate.
    """
    if isinstance(pem, str):
        pem = pem.encode()
    try:
        return x509.load_pem_x509_certificates(pem)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not a PEM certificate: {exc}", "the certificate file may be corrupt") from exc


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """Lowercase hex SHA-256 of the certificate's DER encoding, without separators."""
    return cert.fingerprint(hashes.SHA256()).hex()


def normalize_fingerprint(text: str) -> str:
    """Normalize a fingerprint: drop a ``sha256:`` prefix, colons and spaces; lowercase.

    Raises:
        InvalidInput: what remains is not 64 hex characters.
    """
    value = text.strip().lower()
    value = value.removeprefix("sha256:")
    value = re.sub(r"[\s:]", "", value)
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise InvalidInput(
            f"{text!r} is not a SHA-256 fingerprint (need 64 hex digits)",
            "copy it from `fleetops-controller ca fingerprint`",
        )
    return value


@dataclass(frozen=True)
class PeerIdentity:
    """Who is at the other end of a mutual-TLS connection."""

    kind: IdentityKind
    name: str  # host id, operator name or replica id

    def uri(self) -> str:
        """The URI SAN carrying this identity, e.g. ``fleetops://host/h-0123``."""
        prefix = next(p for p, kind in _URI_KINDS.items() if kind == self.kind)
        return prefix + self.name


def identity_from_cert(cert: x509.Certificate) -> PeerIdentity:
    """Read the peer identity from the certificate's single ``fleetops://`` URI SAN.

    Raises:
        Unauthenticated: no, several, or an unknown kind of fleetops URI SAN.
    """
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = [u for u in sans.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith("fleetops://")]
    except x509.ExtensionNotFound:
        uris = []
    hint = "use a certificate issued by the controller (fleetops-agent register, or an operator profile)"
    if len(uris) != 1:
        raise Unauthenticated(f"certificate carries {len(uris)} fleetops:// URI SANs, need exactly one", hint)
    for prefix, kind in _URI_KINDS.items():
        name = uris[0].removeprefix(prefix)
        if uris[0].startswith(prefix) and _NAME_RE.fullmatch(name):
            return PeerIdentity(kind, name)
    raise Unauthenticated(f"certificate identity {uris[0]!r} is not a fleetops host, operator or replica", hint)


# --- certificate authority --------------------------------------------------------------------


class CertificateAuthority:
    """The controller's CA: signs the server certificate and every client certificate.

    Args:
        key: the CA private key.
        cert: the self-signed CA certificate matching ``key``.
    """

    def __init__(self, key: PrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def create(
        cls, common_name: str = "fleetops CA", lifetime: timedelta = timedelta(days=3650)
    ) -> CertificateAuthority:
        """Create a new self-signed CA with a fresh P-256 key (path length 0).

        Raises:
            InvalidInput: ``common_name`` is not 1-64 characters or ``lifetime`` is not positive.
        """
        if not 1 <= len(common_name) <= 64 or lifetime <= timedelta(0):
            raise InvalidInput(f"bad CA parameters: common name {common_name!r}, lifetime {lifetime}")
        key = generate_private_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _utc(None)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """Load ``ca.key`` and ``ca.pem`` from ``directory``.

        Raises:
            NotFound: either file is missing.
            InvalidInput: a file is corrupt or the key does not match the certificate.
        """
        directory = Path(directory)
        key_path, cert_path = directory / "ca.key", directory / "ca.pem"
        for p in (key_path, cert_path):
            if not p.is_file():
                raise NotFound(f"CA file {p} does not exist", "run fleetops-controller init")
        key, cert = load_private_key(key_path.read_bytes()), load_cert(cert_path.read_bytes())
        if not _certifies(cert, key):
            raise InvalidInput(f"{key_path} does not match {cert_path}", "restore both files from the same backup")
        return cls(key, cert)

    def save(self, directory: Path) -> None:
        """Write ``ca.key`` (0600) and ``ca.pem`` (0644) into ``directory`` (created 0700).

        Raises:
            OSError: the files cannot be written.
        """
        directory = Path(directory)
        write_secret_file(directory / "ca.key", private_key_pem(self.key))
        write_public_file(directory / "ca.pem", cert_pem(self.cert))

    def issue_server_certificate(
        self, public_key: PublicKey, dns_names: Sequence[str], ip_addresses: Sequence[str], lifetime: timedelta
    ) -> x509.Certificate:
        """Sign a TLS server certificate (serverAuth) for the given DNS names and IP addresses.

        Raises:
            InvalidInput: no names at all, an IP address does not parse, or the key is unusable.
        """
        try:
            ips = [ipaddress.ip_address(ip) for ip in ip_addresses]
        except ValueError as exc:
            raise InvalidInput(f"bad IP address for the server certificate: {exc}") from exc
        if not dns_names and not ips:
            raise InvalidInput("a server certificate needs at least one DNS name or IP address")
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        sans += [x509.IPAddress(ip) for ip in ips]
        cn = dns_names[0] if dns_names else str(ips[0])
        return self._issue(public_key, cn, sans, ExtendedKeyUsageOID.SERVER_AUTH, lifetime)

    def issue_host_certificate(
        self, csr: x509.CertificateSigningRequest, host_id: str, lifetime: timedelta
    ) -> x509.Certificate:
        """Sign a client certificate for ``host_id``; only the CSR's public key is used.

        Raises:
            InvalidInput: ``host_id`` is not a valid name.
            CertificateRequestError: the CSR's key is unusable.
        """
        check_name(host_id, "host id")
        san = x509.UniformResourceIdentifier(HOST_URI_PREFIX + host_id)
        return self._issue(_csr_key(csr), host_id, [san], ExtendedKeyUsageOID.CLIENT_AUTH, lifetime)

    def issue_operator_certificate(
        self, csr: x509.CertificateSigningRequest, operator: str, lifetime: timedelta
    ) -> x509.Certificate:
        """Sign a client certificate for operator ``operator``; only the CSR's public key is used.

        Raises:
            InvalidInput: ``operator`` is not a valid name.
            CertificateRequestError: the CSR's key is unusable.
        """
        check_name(operator, "operator name")
        san = x509.UniformResourceIdentifier(OPERATOR_URI_PREFIX + operator)
        return self._issue(_csr_key(csr), operator, [san], ExtendedKeyUsageOID.CLIENT_AUTH, lifetime)

    def issue_replica_certificate(
        self, public_key: PublicKey, replica_id: str, lifetime: timedelta
    ) -> x509.Certificate:
        """Sign the client certificate a controller replica presents to the other replicas.

        Only a holder of the CA key (a replica) can make one; host and operator certificates never
        pass for it (the peer service checks the kind).

        Raises:
            InvalidInput: ``replica_id`` is not a valid name.
        """
        check_name(replica_id, "replica id")
        san = x509.UniformResourceIdentifier(REPLICA_URI_PREFIX + replica_id)
        return self._issue(public_key, replica_id, [san], ExtendedKeyUsageOID.CLIENT_AUTH, lifetime)

    def verify_issued(self, cert: x509.Certificate, now: datetime | None = None) -> None:
        """Check that this CA signed ``cert`` and that it is valid at ``now`` (default: now).

        Raises:
            Unauthenticated: foreign issuer, bad signature, expired or not yet valid.
        """
        try:
            cert.verify_directly_issued_by(self.cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise Unauthenticated(
                "certificate was not issued by this controller's CA",
                "register again against this controller: fleetops-agent register",
            ) from exc
        at = _utc(now)
        if at > cert.not_valid_after_utc:
            raise Unauthenticated(
                f"certificate expired at {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z; the agent renews "
                "automatically at two thirds of its lifetime — check that it is running",
                "if it stayed down too long, register the host again: fleetops-agent register",
            )
        if at < cert.not_valid_before_utc:
            raise Unauthenticated(
                f"certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S}Z",
                "check the clocks of this machine and the controller (NTP)",
            )

    def _issue(
        self,
        public_key: PublicKey,
        common_name: str,
        sans: list[x509.GeneralName],
        usage: x509.ObjectIdentifier,
        lifetime: timedelta,
    ) -> x509.Certificate:
        problem = _describe_key(public_key)
        if problem is not None:
            raise InvalidInput(f"cannot certify this key: {problem}")
        if lifetime <= timedelta(0):
            raise InvalidInput(f"certificate lifetime must be positive, got {lifetime}")
        now = _utc(None)
        # A leaf never outlives its CA: peers would reject it after the CA expires anyway.
        not_after = min(now + lifetime, self.cert.not_valid_after_utc)
        try:
            aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            )
        except x509.ExtensionNotFound:
            aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key())
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - backdate(not_after - now))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(key_agreement=isinstance(public_key, ec.EllipticCurvePublicKey)), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(aki, critical=False)
            .sign(self.key, hashes.SHA256())
        )


def _key_usage(cert_sign: bool = False, key_agreement: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=key_agreement, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _csr_key(csr: x509.CertificateSigningRequest) -> PublicKey:
    key = csr.public_key()
    problem = _describe_key(key)
    if problem is None and isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return key
    raise CertificateRequestError(f"CSR key unusable: {problem}", _CSR_HINT)


def _certifies(cert: x509.Certificate, key: PrivateKey) -> bool:
    """Whether ``cert`` holds ``key``'s public key (compared as SubjectPublicKeyInfo DER)."""
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(der, spki) == cert.public_key().public_bytes(der, spki)


def check_key_matches(key: PrivateKey, cert: x509.Certificate) -> None:
    """Raise ``InvalidInput`` unless ``cert`` certifies ``key``'s public key."""
    if not _certifies(cert, key):
        raise InvalidInput(
            "the certificate the controller returned is not for this host's key",
            "retry; if it persists, the controller is misbehaving: check its log",
        )


# --- renewal ----------------------------------------------------------------------------------


def backdate(lifetime: timedelta) -> timedelta:
    """How far before "now" a leaf certificate starts, to tolerate clock skew between machines.

    Bounded by a tenth of the lifetime so short-lived certificates (seconds, in tests) still renew
    at two thirds of their real life rather than at once.
    """
    return min(CLOCK_SKEW, lifetime / 10)


def renewal_time(cert: x509.Certificate) -> datetime:
    """The moment (UTC) two thirds into the certificate's validity window."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * 2 / 3


def renewal_due(cert: x509.Certificate, now: datetime | None = None) -> bool:
    """Whether ``cert`` should be renewed at ``now`` (default: now), i.e. at or after :func:`renewal_time`."""
    return _utc(now) >= renewal_time(cert)


# --- CA discovery -----------------------------------------------------------------------------


def fetch_unverified_chain(host: str, port: int, timeout: float = 10.0) -> list[x509.Certificate]:
    """Return the certificates a TLS server presents, leaf first, WITHOUT verifying them.

    Only useful together with an out-of-band check such as the fingerprint pin of :func:`discover_ca`.

    Raises:
        Unavailable: the server cannot be reached or the TLS handshake fails.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                getter = getattr(tls, "get_unverified_chain", None)  # public since Python 3.13
                if getter is None:
                    getter = tls._sslobj.get_unverified_chain  # type: ignore[attr-defined]  # private before 3.13
                raw_chain = getter() or []
    except (OSError, ssl.SSLError) as exc:
        raise Unavailable(
            f"cannot fetch the TLS certificate chain of {host}:{port}: {exc}",
            "check the controller address and port, that it is running, and firewalls in between",
        ) from exc
    ders = [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER) for c in raw_chain]  # type: ignore[attr-defined]  # private: DER before 3.13
    if not ders:
        raise Unavailable(f"{host}:{port} presented no TLS certificate", "is this a fleetops controller?")
    return [x509.load_der_x509_certificate(der) for der in ders]


def discover_ca(host: str, port: int, fingerprint: str, timeout: float = 10.0) -> x509.Certificate:
    """Fetch the controller's CA certificate, trusting it only if it matches ``fingerprint``.

    The CA must be in the chain the controller presents, be a CA (BasicConstraints ca=True) and
    have signed the chain's leaf.

    Raises:
        InvalidInput: ``fingerprint`` is not a SHA-256 fingerprint.
        Unavailable: the controller cannot be reached.
        Unauthenticated: no certificate in the chain matches the pin, or it is not the leaf's CA.
    """
    pin = normalize_fingerprint(fingerprint)
    chain = fetch_unverified_chain(host, port, timeout)
    hint = "check the fingerprint printed by `fleetops-controller init` / `fleetops-controller ca fingerprint`"
    for candidate in chain:
        if not secrets.compare_digest(fingerprint_sha256(candidate), pin):
            continue
        try:
            is_ca = candidate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise Unauthenticated(
                f"the certificate with fingerprint {pin} presented by {host}:{port} is not a CA certificate", hint
            )
        try:
            chain[0].verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise Unauthenticated(
                f"the CA with fingerprint {pin} did not sign the server certificate of {host}:{port}", hint
            ) from exc
        return candidate
    raise Unauthenticated(f"the controller at {host}:{port} presented no CA certificate with fingerprint {pin}", hint)


def ed25519_key_pair(key_path: Path, public_path: Path, *, create: bool, what: str) -> tuple[Ed25519PrivateKey, bool]:
    """The Ed25519 private key in ``key_path`` (0600) and whether it was made just now.

    Without a key file it is made when ``create`` (the controller's first start), else refused. The
    public key is (re)written to ``public_path`` whenever it does not match. ``what`` names the key
    in errors ("release signing key").

    Raises:
        NotFound: there is no key and ``create`` is false.
        InvalidInput: the key file is not an unencrypted Ed25519 private key in PEM.
        OSError: the files cannot be written.
    """
    made = False
    if key_path.is_file():
        try:
            private = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                f"{key_path} is not an unencrypted PEM private key ({exc})", "restore it from a backup of ca/"
            ) from None
        if not isinstance(private, Ed25519PrivateKey):
            raise InvalidInput(f"{key_path} is not an Ed25519 private key", "restore it from a backup of ca/")
    elif create:
        private, made = Ed25519PrivateKey.generate(), True
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_secret_file(key_path, pem)
    else:
        raise NotFound(
            f"no {what} {key_path}",
            "the controller makes it at its first start; on a replica, copy it from another replica's ca/",
        )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if not public_path.is_file() or public_path.read_bytes() != public_pem:
        write_public_file(public_path, public_pem)
    return private, made
