"""Which object store a URL names: the one place that turns configuration into a backend.

::

    ""                                   LocalDirectoryStore(<state_dir>/objects)   the embedded default
    file:///var/lib/fleetops/objects     LocalDirectoryStore(/var/lib/fleetops/objects)
    s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION&path_style=true|false]
                                         S3Store; http endpoints are allowed because they are named

Credentials are never part of the URL (URLs end up in logs and ``ps``): S3 credentials come from
the standard AWS chain, see :mod:`fleetops.controller.objects.aws_credentials`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit
from urllib.request import url2pathname

from fleetops.common.errors import InvalidInput
from fleetops.controller.objects.interfaces import ObjectStore
from fleetops.controller.objects.local import LocalDirectoryStore
from fleetops.controller.objects.s3 import S3Store

URL_HINT = (
    "object store URLs look like file:///var/lib/fleetops/objects or "
    "s3://BUCKET[/PREFIX][?endpoint=https://HOST:PORT&region=us-east-1&path_style=true]; "
    "leave it empty for <state-dir>/objects"
)
_S3_PARAMETERS = frozenset({"endpoint", "region", "path_style"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def store_from_url(url: str, state_dir: Path) -> ObjectStore:
    """The object store ``url`` names (see the module docstring for the forms).

    Args:
        url: the configured object store URL; ``""`` for the default.
        state_dir: the controller's state directory, home of the default local store.

    Raises:
        InvalidInput: the URL is malformed, has an unknown scheme or parameter, or carries
            credentials.
    """
    url = url.strip()
    if not url:
        return LocalDirectoryStore(Path(state_dir) / "objects")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidInput(f"invalid object store URL {url!r}: {exc}", URL_HINT) from exc
    shown = _without_userinfo(url, parts.netloc)
    if "@" in parts.netloc:
        raise InvalidInput(
            f"object store URL {shown!r} must not contain credentials",
            "give S3 credentials through AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a credentials file or an "
            "instance role; " + URL_HINT,
        )
    scheme = parts.scheme.lower()
    if scheme == "file":
        return _local(shown, parts)
    if scheme == "s3":
        return _s3(shown, parts)
    raise InvalidInput(f"unsupported object store URL {shown!r}: scheme must be file or s3", URL_HINT)


def _local(url: str, parts: SplitResult) -> LocalDirectoryStore:
    if parts.netloc not in ("", "localhost"):
        raise InvalidInput(f"object store URL {url!r} names a remote host {parts.netloc!r}", URL_HINT)
    if parts.query or parts.fragment:
        raise InvalidInput(f"object store URL {url!r}: file URLs take no query or fragment", URL_HINT)
    path = Path(url2pathname(parts.path))
    if not parts.path or not path.is_absolute():
        raise InvalidInput(f"object store URL {url!r} needs an absolute path, as in file:///PATH", URL_HINT)
    return LocalDirectoryStore(path)


def _s3(url: str, parts: SplitResult) -> S3Store:
    if not parts.netloc or ":" in parts.netloc or parts.fragment:
        raise InvalidInput(f"invalid object store URL {url!r}: expected s3://BUCKET[/PREFIX]", URL_HINT)
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError as exc:
        raise InvalidInput(f"invalid query in object store URL {url!r}: {exc}", URL_HINT) from exc
    unknown = sorted(set(query) - _S3_PARAMETERS)
    if unknown:
        raise InvalidInput(f"object store URL {url!r} has unknown parameter(s): {', '.join(unknown)}", URL_HINT)
    params: dict[str, str] = {}
    for name, values in query.items():
        if len(values) != 1 or not values[0]:
            raise InvalidInput(f"object store URL {url!r}: give {name} exactly once, with a value", URL_HINT)
        params[name] = values[0]
    endpoint = params.get("endpoint")
    try:
        return S3Store(
            # The hostname is lowercased by urlsplit; take the bucket as written.
            parts.netloc,
            prefix=unquote(parts.path.lstrip("/")),
            endpoint_url=endpoint,
            region=params.get("region", "us-east-1"),
            path_style=_flag(url, "path_style", params.get("path_style", "false")),
            allow_http=bool(endpoint and endpoint.lower().startswith("http://")),
        )
    except InvalidInput as exc:
        raise InvalidInput(f"object store URL {url!r}: {exc.message}", exc.hint or URL_HINT) from exc


def _flag(url: str, name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidInput(f"object store URL {url!r}: {name}={value!r} is not true or false", URL_HINT)


def _without_userinfo(url: str, netloc: str) -> str:
    # Never echo a secret back into an error message (and from there into logs).
    if "@" not in netloc:
        return url
    return url.replace(netloc, "***@" + netloc.rsplit("@", 1)[1], 1)
