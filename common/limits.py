"""The one table of limits for everything that crosses the wire.

Every input has a size limit checked where it enters (the controller's domain services for what
operators send, the agent service for what hosts send, ``opsctl`` before it sends), and every
gRPC channel's receive limit is derived from what its peer may legally send, so no legal message
can be refused by the transport (which would end the stream and make the peer reconnect forever).

Sizes of text are counted in UTF-8 bytes (what travels and what is stored); counts of items in
items. ``docs/run-command.md`` prints this table; ``tests/unit/common/test_limits.py`` checks the
derivations below.

Each :class:`Limit` checks a size and raises :class:`~fleetops.common.errors.InvalidInput` naming
the limit and the actual size, never echoing the (possibly huge) input itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fleetops.common.errors import InvalidInput

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Limit:
    """One row of the table: ``what`` may be at most ``maximum`` ``unit``.

    Args:
        what: the thing limited, as an operator knows it ("argv", "script", "selector").
        maximum: the largest accepted size.
        unit: "bytes", "items" or "characters".
        hint: what to do when the limit is hit.
    """

    what: str
    maximum: int
    unit: str
    hint: str

    def check(self, size: int, what: str = "") -> None:
        """Raise InvalidInput when ``size`` is over the limit.

        Raises:
            InvalidInput: "<what> is N <unit>, the limit is M <unit>", with the hint.
        """
        if size > self.maximum:
            raise InvalidInput(
                f"{what or self.what} is {size} {self.unit}, the limit is {self.maximum} {self.unit}", self.hint
            )

    def check_text(self, text: str, what: str = "") -> None:
        """:meth:`check` on the UTF-8 size of ``text`` (characters when the unit is characters)."""
        self.check(len(text) if self.unit == "characters" else utf8_size(text), what)


def utf8_size(text: str) -> int:
    """Bytes of ``text`` on the wire (lone surrogates count as the replacement they become)."""
    return len(text.encode("utf-8", "surrogatepass"))


def truncate_utf8(text: str, maximum: int, marker: str = " …(truncated)") -> str:
    """``text`` cut to at most ``maximum`` UTF-8 bytes (marker included), at a character boundary."""
    data = text.encode("utf-8", "replace")
    if len(data) <= maximum:
        return text
    room = max(0, maximum - utf8_size(marker))
    return data[:room].decode("utf-8", "ignore") + marker


# -- a command (RunCommand, window run tasks, patch operations) -------------------------------------
# Linux takes at most 128 KiB per argument (MAX_ARG_STRLEN) and ~2 MiB for argv + environment.
ARGV_BYTES = Limit("argv", 128 * KIB, "bytes", "pass large input in a --script file, or copy it to the hosts first")
ARGV_ITEMS = Limit("argv", 4096, "items", "pass many arguments in a --script file instead")
ENV_BYTES = Limit("the environment (--env)", 64 * KIB, "bytes", "pass large values in a --script file instead")
ENV_ITEMS = Limit("the environment (--env)", 256, "items", "set fewer variables, or set them in a --script")
ENV_NAME = Limit("an environment variable name", 256, "bytes", "use a short NAME in --env NAME=VALUE")
SCRIPT_BYTES = Limit("the script", 1 * MIB, "bytes", "copy large files to the hosts another way and run them")
TASK_INPUT_BYTES = Limit(
    "the agent task's request", 2 * MIB, "bytes", "target fewer hosts or approve fewer patches per operation"
)
CWD_BYTES = Limit("the working directory (--cwd)", 4 * KIB, "bytes", "give a shorter path")
RUN_AS_BYTES = Limit("the user name (--as)", 256, "bytes", "give the account's short name")
COMMENT_BYTES = Limit("the comment", 1 * KIB, "bytes", "keep comments short; put details in a ticket")

# -- targets -----------------------------------------------------------------------------------------
SELECTOR_BYTES = Limit("the selector", 4 * KIB, "bytes", "use fewer requirements, or tag the hosts and select the tag")
# Tag keys and values (Kubernetes label rules; enforced by fleetops.common.selectors).
TAG_KEY_CHARS = Limit("a tag key", 253, "characters", "use a shorter tag key")
TAG_VALUE_CHARS = Limit("a tag value", 63, "characters", "use a shorter tag value")
TARGET_HOSTS = Limit("the host list (--host)", 1000, "items", "tag the hosts and use --target SELECTOR instead")
# Names of hosts, operators, windows, baselines... (each room applies its own, stricter, pattern).
NAME_BYTES = Limit("the name", 255, "bytes", "use a shorter name")

# -- what hosts send -----------------------------------------------------------------------------------
# An invocation's reason is a sentence ("no such user", "timed out after 60s"); longer ones are cut.
REASON_BYTES = Limit("the reason", 2 * KIB, "bytes", "")
# Output travels in chunks of at most this many bytes (the agent's pump; the controller refuses more).
OUTPUT_CHUNK_BYTES = Limit("an output chunk", 64 * KIB, "bytes", "")
# A patch task's report (the scan: every installed package and offered update; the outcomes).
# A host with 20,000 packages reports about 2 MiB.
PATCH_REPORT_BYTES = Limit(
    "the patch report", 8 * MIB, "bytes", "the host lists too many packages to report; see docs/patching.md"
)

# -- numbers ---------------------------------------------------------------------------------------------
# max-concurrency and max-errors as counts (parsed by common/rates.py); more hosts than any fleet.
RATE_COUNT_MAX = 1_000_000
# Execution timeout of one invocation (SSM allows 48 h; long patch runs fit in a week).
TIMEOUT_SECONDS_MAX = 7 * 86400
# How long a command waits for offline hosts (SSM: 30 days).
DELIVERY_TIMEOUT_SECONDS_MAX = 30 * 86400

# -- message sizes per channel ---------------------------------------------------------------------------
# Room for ids, timestamps, the FLEETOPS_* variables the controller adds and protobuf framing.
_ENVELOPE = 64 * KIB


def _mib_ceiling(size: int) -> int:
    return -(-size // MIB) * MIB


#: The largest RunInvocation the controller may send (everything a command may hold, once).
RUN_INVOCATION_BYTES = (
    SCRIPT_BYTES.maximum
    + TASK_INPUT_BYTES.maximum
    + ARGV_BYTES.maximum
    + 2 * ARGV_ITEMS.maximum  # a tag and a length per item
    + ENV_BYTES.maximum
    + 4 * ENV_ITEMS.maximum
    + CWD_BYTES.maximum
    + RUN_AS_BYTES.maximum
    + _ENVELOPE
)
#: What an agent receives at most (controller -> agent): a RunInvocation; session frames are 64 KiB.
AGENT_RECEIVE_BYTES = max(4 * MIB, _mib_ceiling(RUN_INVOCATION_BYTES))
#: What an agent sends at most (agent -> controller): output chunks, results, inventory, session frames.
AGENT_SEND_BYTES = max(1 * MIB, _mib_ceiling(PATCH_REPORT_BYTES.maximum + _ENVELOPE))
#: The largest request an operator may send (RunCommand with a script and an explicit host list is the largest).
OPERATOR_REQUEST_BYTES = _mib_ceiling(
    SCRIPT_BYTES.maximum
    + ARGV_BYTES.maximum
    + 2 * ARGV_ITEMS.maximum
    + ENV_BYTES.maximum
    + 4 * ENV_ITEMS.maximum
    + SELECTOR_BYTES.maximum
    + TARGET_HOSTS.maximum * (NAME_BYTES.maximum + 3)
    + CWD_BYTES.maximum
    + RUN_AS_BYTES.maximum
    + COMMENT_BYTES.maximum
    + _ENVELOPE
)
#: The controller's mutual-TLS listener receives from agents and operators: at least what either may
#: legally send, with headroom so that a request somewhat over a limit reaches the check that names
#: the limit (past this, gRPC refuses it with "Received message larger than max").
CONTROLLER_RECEIVE_BYTES = max(8 * MIB, 2 * AGENT_SEND_BYTES, 2 * OPERATOR_REQUEST_BYTES)
#: The enrollment listener is unauthenticated: a CSR, an activation code and host facts (the same
#: inventory a Hello carries). It stays at 1 MiB, what agents sent before patch reports grew the
#: authenticated limit: an unauthenticated peer gets no more room than it needs.
ENROLL_RECEIVE_BYTES = 1 * MIB
#: What the controller sends an operator at most, and what opsctl accepts. A command's detail carries
#: up to 64 KiB of each output stream per host; run list and run show are kept far below this.
OPERATOR_RESPONSE_BYTES = 64 * MIB
#: What one command takes in a listing (argv, target): run list stays small whatever commands hold.
LISTED_TEXT_BYTES = 1 * KIB
#: Output tails in one command's detail (run show, the end of opsctl run): hosts past it come
#: without their tail (opsctl run output ID HOST reads it whole).
DETAIL_OUTPUT_BYTES = 32 * MIB
#: The controller sends at most what either of its peers accepts (agents are sent RunInvocations
#: checked against AGENT_RECEIVE_BYTES before they go).
CONTROLLER_SEND_BYTES = OPERATOR_RESPONSE_BYTES

#: Status messages and the hint the controller puts in an error: a peer's metadata limit is 8 KiB.
ERROR_MESSAGE_BYTES = 1536  # percent-encoding may triple it on the wire
ERROR_HINT_BYTES = 1 * KIB


def check_argv(argv: Iterable[str]) -> None:
    """argv: at most ARGV_ITEMS items of ARGV_BYTES in all (each counted with its NUL, as execve does).

    Raises:
        InvalidInput: too many items or bytes, or a NUL byte in an argument.
    """
    items = list(argv)
    ARGV_ITEMS.check(len(items))
    ARGV_BYTES.check(sum(utf8_size(a) + 1 for a in items))
    for i, arg in enumerate(items):
        if "\0" in arg:
            raise InvalidInput(f"argument {i} of the command contains a NUL byte", "NUL cannot be passed to a program")


def check_env(env: Mapping[str, str]) -> None:
    """Environment: at most ENV_ITEMS variables and ENV_BYTES in all; names non-empty, without ``=`` or NUL.

    Raises:
        InvalidInput: too many variables or bytes, or a bad name or value.
    """
    ENV_ITEMS.check(len(env))
    ENV_BYTES.check(sum(utf8_size(k) + utf8_size(v) + 2 for k, v in env.items()))
    for key, value in env.items():
        ENV_NAME.check(utf8_size(key))
        if not key or "=" in key or "\0" in key:
            raise InvalidInput(f"bad environment variable name {key[:64]!r}", "use --env NAME=VALUE")
        if "\0" in value:
            raise InvalidInput(f"the value of environment variable {key[:64]} contains a NUL byte", "remove it")


def channel_options(*, receive: int, send: int) -> tuple[tuple[str, int], ...]:
    """gRPC options setting a channel's (or server's) message size limits."""
    return (("grpc.max_receive_message_length", receive), ("grpc.max_send_message_length", send))


#: The table as docs/run-command.md prints it.
TABLE: tuple[Limit, ...] = (
    ARGV_BYTES,
    ARGV_ITEMS,
    ENV_BYTES,
    ENV_ITEMS,
    ENV_NAME,
    SCRIPT_BYTES,
    TASK_INPUT_BYTES,
    CWD_BYTES,
    RUN_AS_BYTES,
    COMMENT_BYTES,
    SELECTOR_BYTES,
    TAG_KEY_CHARS,
    TAG_VALUE_CHARS,
    TARGET_HOSTS,
    NAME_BYTES,
    REASON_BYTES,
    OUTPUT_CHUNK_BYTES,
    PATCH_REPORT_BYTES,
)
