"""Writing events: in the caller's transaction, so an event exists exactly when its change does.

A service that changes state calls :func:`record_event` with the session it writes the change
with, before it commits: a rollback takes the event with it, a commit makes both durable. A crash
after the commit loses nothing: the dispatcher places and delivers what it finds
(:mod:`fleetops.controller.events.service`).
"""

from __future__ import annotations

from fleetops.controller.events.store import on_record, record_event

__all__ = ["on_record", "record_event"]
