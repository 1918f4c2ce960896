"""The agent's SSH host key: made once, kept private, read back on the next start."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from fleetops.agent.ssh import HOST_KEY_FILE_NAME, host_public_key_line, load_or_create_host_key
from fleetops.common.errors import InternalError
from fleetops.common.ssh import asyncssh


def test_the_key_is_made_once_private_and_in_openssh_format(tmp_path: Path) -> None:
    key = load_or_create_host_key(tmp_path)
    path = tmp_path / HOST_KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert [p.name for p in tmp_path.iterdir()] == [HOST_KEY_FILE_NAME]  # no temporary file left
    again = load_or_create_host_key(tmp_path)
    assert again.public_data == key.public_data
    assert key.algorithm == b"ssh-ed25519"


def test_public_key_line_is_one_openssh_line(tmp_path: Path) -> None:
    key = load_or_create_host_key(tmp_path)
    line = host_public_key_line(key)
    assert line.startswith("ssh-ed25519 AAAA")
    assert len(line.split()) == 2
    assert asyncssh.import_public_key(line).public_data == key.public_data


def test_an_unreadable_key_file_is_reported_not_replaced(tmp_path: Path) -> None:
    (tmp_path / HOST_KEY_FILE_NAME).write_text("not a key")
    with pytest.raises(InternalError, match="cannot be read"):
        load_or_create_host_key(tmp_path)
    assert (tmp_path / HOST_KEY_FILE_NAME).read_text() == "not a key"
