"""JSON logs: one parseable object per line, with the fields a log pipeline indexes."""

from __future__ import annotations

import json
import logging

from fleetops.common.logsetup import JsonFormatter


def test_json_formatter_writes_one_object_per_record_with_extras_and_exceptions() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("fleetops.test", logging.WARNING, __file__, 1, "host %s refused", ("h-1",), None)
    record.audit = {"actor": "operator:alice"}
    doc = json.loads(formatter.format(record))
    assert doc["level"] == "warning" and doc["logger"] == "fleetops.test"
    assert doc["message"] == "host h-1 refused" and doc["audit"] == {"actor": "operator:alice"}
    assert doc["time"].endswith("+00:00")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = formatter.format(failed)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]
