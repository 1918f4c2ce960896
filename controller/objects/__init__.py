"""Object store room: command output and session transcripts, on local disk or in S3.

Pick a backend with :func:`store_from_url` (the composition root does); everything else sees only
the :class:`ObjectStore` Protocol.
"""

from __future__ import annotations

from fleetops.controller.objects.factory import store_from_url
from fleetops.controller.objects.interfaces import ObjectInfo, ObjectStore, ObjectWriter
from fleetops.controller.objects.keys import validate_key
from fleetops.controller.objects.local import LocalDirectoryStore
from fleetops.controller.objects.s3 import S3Store

__all__ = [
    "LocalDirectoryStore",
    "ObjectInfo",
    "ObjectStore",
    "ObjectWriter",
    "S3Store",
    "store_from_url",
    "validate_key",
]
