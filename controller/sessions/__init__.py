"""Session transcripts room: every session recorded as asciicast v2, kept even when the store is down.

Modules, from the bottom up:

``asciicast``   ``AsciicastEncoder``: session events -> asciicast v2 lines (deterministic, UTF-8 safe)
``spool``       the local spool directory's layout and markers; ``TranscriptInfo``
``transcript``  ``TranscriptSink``: one session's lines -> spool file + one streamed upload
``uploader``    ``TranscriptUploader``: stores what the sinks had to leave in the spool
``live``        ``LiveSession``: one running session's flow control each way and its recording
``broker``      ``SessionBroker``: the room's service (start, resume, supervise, end; records in ``store``)

A session handler builds one encoder and one sink per session and appends
``encoder.header()``, then ``encoder.output(...)``/``resize(...)``/``input(...)`` lines as they come;
``sink.finish()`` gives the SHA-256 and size for the session record and the audit event.
"""

from __future__ import annotations

from fleetops.controller.sessions.asciicast import AsciicastEncoder
from fleetops.controller.sessions.spool import DEFAULT_PART_SIZE, TranscriptInfo, validate_session_id
from fleetops.controller.sessions.transcript import TranscriptSink
from fleetops.controller.sessions.uploader import TranscriptUploader

__all__ = [
    "DEFAULT_PART_SIZE",
    "AsciicastEncoder",
    "TranscriptInfo",
    "TranscriptSink",
    "TranscriptUploader",
    "validate_session_id",
]
