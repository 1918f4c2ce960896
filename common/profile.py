"""An operator profile on disk: where the controller is and the operator's key and certificate.

Layout (``$FLEETOPS_CONFIG_DIR/profiles/NAME/``, default ``~/.config/fleetops``)::

    profile.json   {"controller": "host:port", "operator": "alice"}
    operator.key   the operator's private key (0600; generated locally, never sent)
    operator.pem   the short-lived certificate the controller issued
    ca.pem         the controller's CA, used to verify the controller
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from fleetops.common.errors import InvalidInput, NotFound
from fleetops.common.files import write_public_file, write_secret_file

DEFAULT_PROFILE = "default"


def config_dir() -> Path:
    override = os.environ.get("FLEETOPS_CONFIG_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "fleetops"


def profile_dir(name: str = DEFAULT_PROFILE) -> Path:
    return config_dir() / "profiles" / name


@dataclass(frozen=True)
class Profile:
    directory: Path
    controller: str
    operator: str

    @property
    def key_pem(self) -> bytes:
        return (self.directory / "operator.key").read_bytes()

    @property
    def cert_pem(self) -> bytes:
        return (self.directory / "operator.pem").read_bytes()

    @property
    def ca_pem(self) -> bytes:
        return (self.directory / "ca.pem").read_bytes()


def write_profile(
    directory: Path, *, controller: str, operator: str, key_pem: bytes, cert_pem: bytes, ca_pem: bytes
) -> Profile:
    write_secret_file(directory / "operator.key", key_pem)
    write_public_file(directory / "operator.pem", cert_pem)
    write_public_file(directory / "ca.pem", ca_pem)
    write_public_file(
        directory / "profile.json",
        (json.dumps({"controller": controller, "operator": operator}, indent=2) + "\n").encode(),
    )
    return Profile(directory, controller, operator)


def load_profile(name_or_path: str | None = None) -> Profile:
    """Load a profile by name or directory (``$OPSCTL_PROFILE`` or ``default`` when not given).

    Raises:
        NotFound: there is no such profile.
        InvalidInput: the profile is damaged.
    """
    chosen = name_or_path or os.environ.get("OPSCTL_PROFILE") or DEFAULT_PROFILE
    path = Path(chosen)
    directory = path if (path.is_absolute() or os.sep in chosen) else profile_dir(chosen)
    meta = directory / "profile.json"
    if not meta.exists():
        raise NotFound(
            f"no opsctl profile at {directory}",
            "start a local system with scripts/dev.sh (it writes the default profile), "
            "or point --profile / OPSCTL_PROFILE at a profile directory",
        )
    try:
        doc = json.loads(meta.read_text())
        return Profile(directory, str(doc["controller"]), str(doc.get("operator", "")))
    except (ValueError, KeyError) as exc:
        raise InvalidInput(f"profile {meta} is damaged: {exc}", "recreate the profile") from exc
