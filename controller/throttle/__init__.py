"""Throttle room: token buckets and flood-bounded auditing for the unauthenticated enrollment port.

``buckets``   ``Rate``, ``BucketTable``: token buckets keyed by source address, activation or login token
``guard``     ``EnrollmentThrottle``, ``ThrottleSettings``: the limits of Register and OperatorLogin
``refusals``  ``RefusalLog``: refusals audited one by one at first, then counted per source and interval
"""

from __future__ import annotations

from fleetops.controller.throttle.buckets import BucketTable, Rate
from fleetops.controller.throttle.guard import EnrollmentThrottle, ThrottleSettings, source_key
from fleetops.controller.throttle.refusals import RefusalLog

__all__ = ["BucketTable", "EnrollmentThrottle", "Rate", "RefusalLog", "ThrottleSettings", "source_key"]
