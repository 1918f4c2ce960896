"""Agent releases in the object store, and rolling them out.

Keys in the object store (shared by every replica)::

    agent-releases/FILE          the package (fleetops-agent_0.1.1-1_amd64.deb)
    agent-releases/FILE.json     its manifest: version, kind, arch, sha256, size, signature, key id, added_at

No database table: a release is immutable once added, the object store already holds large
files for the controller, and the manifest carries its own proof (the signature).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from fleetops.common import rates
from fleetops.common.errors import Conflict, InvalidInput, NotFound
from fleetops.common.release_signature import MAX_PACKAGE_BYTES, ReleaseManifest, check_file_name, signed_message
from fleetops.controller.commands.models import Command, CommandSpec
from fleetops.controller.commands.service import CommandService
from fleetops.controller.fleet.models import Host, Target
from fleetops.controller.objects.interfaces import ObjectStore
from fleetops.controller.releases.package import read_deb, version_key
from fleetops.controller.releases.signing import ReleaseSigner

PREFIX = "agent-releases/"
#: The agent task that installs a release (agent/update/task.py).
UPDATE_TASK = "agent.update"
DEFAULT_UPDATE_TIMEOUT = 15 * 60
DEFAULT_RECONNECT_TIMEOUT = 120


@dataclass(frozen=True)
class StoredRelease:
    manifest: ReleaseManifest
    added_at: datetime

    def to_json(self) -> bytes:
        doc: dict[str, Any] = asdict(self.manifest)
        doc["signature"] = base64.b64encode(self.manifest.signature).decode()
        doc["added_at"] = self.added_at.isoformat()
        return json.dumps(doc, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StoredRelease:
        doc = json.loads(data)
        added_at = datetime.fromisoformat(doc.pop("added_at"))
        doc["signature"] = base64.b64decode(doc["signature"])
        return cls(ReleaseManifest(**doc), added_at)


@dataclass(frozen=True)
class UpdateOptions:
    version: str = ""  # "" = the newest
    max_concurrency: str = rates.DEFAULT_MAX_CONCURRENCY
    max_errors: str = rates.DEFAULT_MAX_ERRORS
    timeout_seconds: int = DEFAULT_UPDATE_TIMEOUT
    reconnect_timeout_seconds: int = DEFAULT_RECONNECT_TIMEOUT
    comment: str = ""


class AgentReleases:
    """Add, list, serve and roll out agent releases.

    Args:
        objects: the controller's object store.
        signer: the release key (``ca/release-signing.key``).
        commands: run command, through which updates fan out with its rate control.
    """

    def __init__(self, objects: ObjectStore, signer: ReleaseSigner, commands: CommandService | None = None) -> None:
        self._objects = objects
        self._signer = signer
        self._commands = commands

    @property
    def public_key(self) -> bytes:
        return self._signer.public_raw

    @property
    def key_id(self) -> str:
        return self._signer.key_id

    async def add(self, data: bytes, *, replace: bool = False) -> StoredRelease:
        """Sign and store a package.

        Raises:
            InvalidInput: not a fleetops-agent Debian package, or too large.
            Conflict: a release with that file name exists with other contents (unless ``replace``).
        """
        if len(data) > MAX_PACKAGE_BYTES:
            raise InvalidInput(f"the package is over {MAX_PACKAGE_BYTES} bytes", "is this the agent's .deb?")
        info = read_deb(data)
        digest = hashlib.sha256(data).hexdigest()
        name = check_file_name(info.file_name)
        existing = await self._find(name)
        if existing is not None and not replace:
            if existing.manifest.sha256 == digest and existing.manifest.key_id == self.key_id:
                return existing  # adding the same package again changes nothing
            raise Conflict(
                f"release {name} exists with other contents (sha256 {existing.manifest.sha256})",
                "build it with another --revision or version; releases are immutable",
            )
        manifest = ReleaseManifest(
            file_name=name,
            version=info.version,
            kind=info.kind,
            arch=info.arch,
            sha256=digest,
            size=len(data),
            signature=self._signer.sign(signed_message(name, info.version, info.kind, info.arch, digest)),
            key_id=self.key_id,
        )
        stored = StoredRelease(manifest, datetime.now(UTC))
        await self._objects.put(PREFIX + name, data)
        await self._objects.put(PREFIX + name + ".json", stored.to_json())  # last: the release exists from here
        return stored

    async def list_releases(self) -> list[StoredRelease]:
        """Every release, newest version first."""
        keys = [k for k in await self._objects.list(PREFIX) if k.endswith(".json")]
        releases = []
        for key in keys:
            found = await self._find(key.removeprefix(PREFIX).removesuffix(".json"))
            if found is not None:
                releases.append(found)
        releases.sort(key=lambda r: (version_key(r.manifest.version), r.manifest.file_name), reverse=True)
        return releases

    async def get(self, file_name: str) -> StoredRelease:
        """Raises: NotFound (no such release), InvalidInput (not a release file name)."""
        try:
            name = check_file_name(file_name)
        except ValueError as exc:
            raise InvalidInput(str(exc), "see opsctl agent releases") from None
        found = await self._find(name)
        if found is None:
            raise NotFound(f"no agent release {name}", "add it on the controller: fleetops-controller release add PKG")
        return found

    def read(self, file_name: str) -> AsyncIterator[bytes]:
        """The package's bytes (``get`` it first)."""
        return self._objects.read(PREFIX + check_file_name(file_name))

    async def choose(self, version: str = "") -> list[StoredRelease]:
        """The releases of ``version`` (every architecture), or of the newest version when empty.

        Raises:
            NotFound: no release, or none of that version.
        """
        releases = await self.list_releases()
        if not releases:
            raise NotFound("no agent release has been added", "fleetops-controller release add PKG on the controller")
        wanted = version or releases[0].manifest.version
        chosen = [r for r in releases if r.manifest.version == wanted]
        if not chosen:
            known = ", ".join(dict.fromkeys(r.manifest.version for r in releases))
            raise NotFound(f"no agent release of version {wanted}", f"known versions: {known}")
        return chosen

    async def update(
        self,
        actor: str,
        target: Target,
        options: UpdateOptions,
        *,
        authorize: Callable[[list[Host]], None] | None = None,
    ) -> tuple[Command, list[Host]]:
        """Run the agent task ``agent.update`` on the target's hosts with run command's rate control.

        Each host gets the manifests of the version for every architecture, picks its own, fetches
        the package over its mTLS link, verifies the signature and switches (agent/update/).

        Raises:
            NotFound: no such release, or no host matches.
            InvalidInput: bad limits.
        """
        assert self._commands is not None, "updates need the command service"
        chosen = await self.choose(options.version)
        if options.reconnect_timeout_seconds < 10:
            raise InvalidInput("--reconnect-timeout must be at least 10s", "give the new agent time to start")
        request = {
            "version": chosen[0].manifest.version,
            "reconnect_timeout_seconds": options.reconnect_timeout_seconds,
            "releases": {r.manifest.arch: r.manifest.file_name for r in chosen},
        }
        spec = CommandSpec(
            agent_task=UPDATE_TASK,
            task_input=json.dumps(request, sort_keys=True).encode(),
            max_concurrency=options.max_concurrency,
            max_errors=options.max_errors,
            timeout_seconds=options.timeout_seconds,
            comment=options.comment or f"agent update to {request['version']}",
        )
        return await self._commands.create(actor, target, spec, authorize=authorize)

    async def _find(self, name: str) -> StoredRelease | None:
        try:
            return StoredRelease.from_json(await self._objects.get(PREFIX + name + ".json"))
        except NotFound:
            return None
