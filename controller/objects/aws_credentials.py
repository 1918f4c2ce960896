"""Where :class:`~fleetops.controller.objects.s3.S3Store` gets credentials it was not given.

The standard AWS chain, in this order (the first that applies wins):

1. ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``) — read by obstore.
2. ``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN`` (EKS IRSA) — obstore calls STS itself.
3. Static keys of the profile ``AWS_PROFILE`` (default ``default``) in the shared credentials file
   (``AWS_SHARED_CREDENTIALS_FILE``, default ``~/.aws/credentials``) or the config file
   (``AWS_CONFIG_FILE``, default ``~/.aws/config``) — read here, because obstore (the Rust
   ``object_store`` crate) does not read these files.
4. ECS/EKS container credentials (``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` / ``_FULL_URI``),
   then the EC2 instance metadata service (IMDSv2) — obstore.

Profiles that assume a role, use SSO or a ``credential_process`` are not followed: export the
resulting keys, or give them explicitly.
"""

from __future__ import annotations

import configparser
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fleetops.common.errors import InvalidInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StaticCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        # Keeps the secret out of logs and tracebacks.
        return f"StaticCredentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


def resolve_credentials(
    access_key_id: str | None,
    secret_access_key: str | None,
    session_token: str | None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> StaticCredentials | None:
    """The credentials to sign with, or ``None`` to let obstore's own chain decide (steps 1, 2, 4).

    Args:
        access_key_id: explicitly configured key id, or ``None``.
        secret_access_key: explicitly configured secret, or ``None``.
        session_token: explicitly configured session token, or ``None``.
        environ: the environment to read (default ``os.environ``).
        home: the home directory for ``~/.aws`` (default ``Path.home()``).

    Raises:
        InvalidInput: only one of ``access_key_id`` and ``secret_access_key`` is given, or a shared
            credentials/config file cannot be parsed.
    """
    if (access_key_id is None) != (secret_access_key is None):
        raise InvalidInput(
            "S3 credentials need both an access key id and a secret access key, got only one",
            "give both, or neither to use the standard AWS credential chain",
        )
    if access_key_id is not None and secret_access_key is not None:
        return StaticCredentials(access_key_id, secret_access_key, session_token or None)
    env = os.environ if environ is None else environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return None
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        return None
    return shared_file_credentials(env, home)


def shared_file_credentials(environ: Mapping[str, str], home: Path | None = None) -> StaticCredentials | None:
    """Static keys of the selected profile in the shared credentials or config file, if any.

    Raises:
        InvalidInput: a file exists but is not valid INI.
    """
    home = Path.home() if home is None else home
    profile = environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"
    credentials_file = Path(environ.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials").expanduser()
    config_file = Path(environ.get("AWS_CONFIG_FILE") or home / ".aws" / "config").expanduser()
    # The config file names sections "profile NAME", except the default one.
    config_section = profile if profile == "default" else f"profile {profile}"
    for path, section in ((credentials_file, profile), (config_file, config_section)):
        values = _read_section(path, section)
        key_id, secret = values.get("aws_access_key_id"), values.get("aws_secret_access_key")
        if key_id and secret:
            return StaticCredentials(key_id, secret, values.get("aws_session_token") or None)
    if environ.get("AWS_PROFILE"):
        log.warning(
            "AWS_PROFILE=%s has no static keys in %s or %s; falling back to container or instance credentials",
            profile,
            credentials_file,
            config_file,
        )
    return None


def _read_section(path: Path, section: str) -> dict[str, str]:
    parser = configparser.RawConfigParser()  # raw: secrets may contain '%'
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        return {}
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"cannot parse the AWS credentials file {path}: {exc}".splitlines()[0],
            "fix the file, or point AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE elsewhere",
        ) from exc
    except OSError as exc:
        log.warning("cannot read AWS credentials file %s: %s", path, exc)
        return {}
    if not parser.has_section(section):
        return {}
    return {k: v.strip() for k, v in parser.items(section)}
