"""Documents: named, versioned, parameterised descriptions of what to run (docs/automation.md).

A document is a YAML (or JSON) mapping::

    description: Restart a systemd service
    parameters:
      service:
        type: string                 # string (default) | integer | boolean | string_list
        description: the unit to restart
        pattern: '^[A-Za-z0-9@._-]+$'
        default: nginx
      attempts: {type: integer, allowed: [1, 2, 3], default: 1}
    run:                             # what runs: a script per platform, at least one
      shell: |                       # Linux and macOS (/bin/sh)
        systemctl restart "$FLEETOPS_PARAM_SERVICE"
      powershell: |                  # Windows
        Restart-Service -Name $env:FLEETOPS_PARAM_SERVICE
    check:                           # optional: exits 0 when the host is as the document leaves it
      shell: systemctl is-active --quiet "$FLEETOPS_PARAM_SERVICE"
    timeout: 10m                     # optional: each host's run (default: run command's, 1 hour)

Instead of ``run``, a document may name a built-in ``action`` (``patch.scan`` or ``patch.install``,
the same agent tasks as ``opsctl patch``), or list ``steps`` (a runbook, ``common/runbooks.py``).

**Parameters never become script text.** Each reaches the script as an environment variable
``FLEETOPS_PARAM_<NAME>`` (the name in upper case): strings as given, integers in decimal, booleans
as ``true``/``false``, string lists as a JSON array. A value such as ``x; rm -rf /`` is therefore
inert data to a script that quotes its variables, whatever it contains. Values are validated
against the declaration (type, ``allowed``, ``pattern``: a regular expression the whole value, or
each item of a list, must match) before anything is sent.

Documents are immutable once stored: ``opsctl doc update`` adds a version, and a run names
``NAME`` (its default version) or ``NAME:VERSION``. Names starting ``fleetops-`` are the built-in
documents (:data:`BUILTIN_DOCUMENTS`), read-only. Duplicate keys in a file are refused (a
silently dropped second ``parameters:`` block would change what runs).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fleetops.common import limits
from fleetops.common.durations import parse_duration
from fleetops.common.errors import InvalidInput
from fleetops.common.strict_yaml import kind_of, parse_text

DOC_HINT = "see docs/automation.md#documents for the document format"
NAME_HINT = (
    "1-128 letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. restart-web; "
    "names starting fleetops- are the built-in documents"
)
BUILTIN_PREFIX = "fleetops-"
PARAM_ENV_PREFIX = "FLEETOPS_PARAM_"
MAX_DOCUMENT_BYTES = 256 * limits.KIB
MAX_PARAMETERS = 50
MAX_ALLOWED_VALUES = 100
MAX_VALUE_BYTES = 4 * limits.KIB
MAX_LIST_ITEMS = 100
MAX_DESCRIPTION = 2048

ParamType = Literal["string", "integer", "boolean", "string_list"]
PARAM_TYPES: tuple[ParamType, ...] = ("string", "integer", "boolean", "string_list")
#: Built-in actions a document may run instead of a script: the agent tasks of ``opsctl patch``.
ACTIONS: tuple[str, ...] = ("patch.scan", "patch.install")
PLATFORMS = ("shell", "powershell")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_DOC_KEYS = ("description", "parameters", "run", "action", "check", "steps", "timeout")
_PARAM_KEYS = ("type", "description", "default", "allowed", "pattern")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _unknown(keys: Iterable[Any], known: tuple[str, ...], where: str) -> None:
    unknown = sorted(str(k) for k in keys if k not in known)
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], known, n=1)
    guess = f"did you mean {close[0]}? " if close else ""
    raise InvalidInput(f"{where}unknown key(s): {', '.join(unknown)}", f"{guess}the keys are {', '.join(known)}")


def validate_name(name: Any) -> str:
    """*name* if it is a valid document name, else :class:`InvalidInput`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(f"bad document name {name!r}", NAME_HINT)
    return name


def is_builtin(name: str) -> bool:
    return name.startswith(BUILTIN_PREFIX)


def split_reference(text: str) -> tuple[str, int | None]:
    """``NAME[:VERSION]`` as ``(name, version or None)``; :class:`InvalidInput` when malformed."""
    name, sep, version = text.partition(":")
    validate_name(name)
    if not sep:
        return name, None
    if not re.fullmatch(r"[0-9]{1,9}", version) or int(version) < 1:
        raise InvalidInput(f"bad document version {version!r} in {text!r}", "write NAME or NAME:VERSION, e.g. web:3")
    return name, int(version)


def param_env_name(name: str) -> str:
    return PARAM_ENV_PREFIX + name.upper()


@dataclass(frozen=True)
class Parameter:
    """One declared parameter; ``default`` is ``None`` when the parameter is required."""

    name: str
    type: ParamType = "string"
    description: str = ""
    default: Any = None
    allowed: tuple[Any, ...] = ()
    pattern: str = ""

    @property
    def required(self) -> bool:
        return self.default is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.description:
            out["description"] = self.description
        if self.default is not None:
            out["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        if self.allowed:
            out["allowed"] = list(self.allowed)
        if self.pattern:
            out["pattern"] = self.pattern
        return out

    def coerce(self, value: Any, where: str) -> Any:
        """*value* (text from the command line, or a YAML value) as this parameter's type, checked.

        Raises:
            InvalidInput: wrong type, not an allowed value, not matching the pattern, too long.
        """
        typed = _typed(self.type, value, where)
        items = typed if isinstance(typed, tuple) else (typed,)
        if isinstance(typed, tuple) and len(typed) > MAX_LIST_ITEMS:
            raise InvalidInput(f"{where}: more than {MAX_LIST_ITEMS} items", "pass fewer values")
        for item in items:
            if isinstance(item, str):
                if "\0" in item:
                    raise InvalidInput(f"{where}: the value contains a NUL byte", "remove it")
                if limits.utf8_size(item) > MAX_VALUE_BYTES:
                    raise InvalidInput(
                        f"{where}: the value is longer than {MAX_VALUE_BYTES} bytes",
                        "pass large input as a file on the hosts instead",
                    )
                if self.pattern and not re.fullmatch(self.pattern, item):
                    raise InvalidInput(
                        f"{where}: {_shown(item)} does not match the pattern {self.pattern!r}",
                        self.description or "give a value the document accepts (opsctl doc show NAME)",
                    )
            if self.allowed and item not in self.allowed:
                raise InvalidInput(
                    f"{where}: {_shown(item)} is not one of the allowed values",
                    "allowed: " + ", ".join(json.dumps(a) for a in self.allowed),
                )
        return typed

    def env_value(self, value: Any) -> str:
        """The environment variable's text for a coerced *value*."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, tuple):
            return json.dumps(list(value), separators=(",", ":"), ensure_ascii=False)
        return str(value)


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _typed(kind: ParamType, value: Any, where: str) -> Any:
    if kind == "string":
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InvalidInput(f"{where}: expected text, got {kind_of(value)}", "quote the value in YAML")
        return str(value)
    if kind == "integer":
        if isinstance(value, bool):
            raise InvalidInput(f"{where}: expected an integer, got a boolean", "e.g. 3")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
            return int(value)
        raise InvalidInput(f"{where}: expected an integer, got {_shown(value)}", "e.g. 3")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise InvalidInput(f"{where}: expected true or false, got {_shown(value)}", "e.g. true")
    # string_list: a list, a JSON array, or comma-separated text
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise InvalidInput(
                    f"{where}: {_shown(value)} is not a JSON array", 'e.g. \'["a","b"]\' or a,b'
                ) from None
        else:
            value = [part.strip() for part in text.split(",")] if text else []
    if not isinstance(value, (list, tuple)):
        raise InvalidInput(f"{where}: expected a list of text, got {kind_of(value)}", 'e.g. ["a", "b"] or a,b')
    for item in value:
        if not isinstance(item, str):
            raise InvalidInput(
                f"{where}: {item!r} is {kind_of(item)}, not text",
                "quote it: YAML reads words like no, on or 123 as booleans or numbers",
            )
    return tuple(value)


def _parameter(name: Any, raw: Any) -> Parameter:
    where = f"parameters.{name}"
    if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
        raise InvalidInput(
            f"parameters: bad parameter name {name!r}",
            "1-64 letters, digits or '_', starting with a letter, e.g. service_name",
        )
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where}: a parameter is a mapping, got {kind_of(raw)}", "e.g. {type: string, default: x}")
    _unknown(raw, _PARAM_KEYS, f"{where}: ")
    kind = raw.get("type", "string")
    if kind not in PARAM_TYPES:
        raise InvalidInput(f"{where}.type: unknown type {kind!r}", f"types are {', '.join(PARAM_TYPES)}")
    description = raw.get("description", "") or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"{where}.description: text of at most {MAX_DESCRIPTION} characters", "a sentence")
    pattern = raw.get("pattern", "") or ""
    if pattern:
        if kind in ("integer", "boolean") or not isinstance(pattern, str):
            raise InvalidInput(f"{where}.pattern: a pattern applies to string and string_list parameters", "remove it")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InvalidInput(f"{where}.pattern: not a regular expression: {exc}", "e.g. '^[a-z0-9-]+$'") from None
    allowed_raw = raw.get("allowed", ()) or ()
    if not isinstance(allowed_raw, (list, tuple)) or len(allowed_raw) > MAX_ALLOWED_VALUES:
        raise InvalidInput(f"{where}.allowed: a list of at most {MAX_ALLOWED_VALUES} values", "e.g. allowed: [a, b]")
    item_kind: ParamType = "string" if kind == "string_list" else kind
    allowed = tuple(_typed(item_kind, v, f"{where}.allowed") for v in allowed_raw)
    param = Parameter(name, kind, description, None, allowed, pattern)
    if raw.get("default") is not None:
        default = param.coerce(raw["default"], f"{where}.default")
        param = Parameter(name, kind, description, default, allowed, pattern)
    return param


@dataclass(frozen=True)
class Scripts:
    """A script per platform: ``shell`` (Linux, macOS) and ``powershell`` (Windows)."""

    shell: str = ""
    powershell: str = ""

    def for_platform(self, windows: bool) -> str:
        return self.powershell if windows else self.shell

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("shell", self.shell), ("powershell", self.powershell)) if v}


def _scripts(raw: Any, where: str) -> Scripts:
    if isinstance(raw, str):
        raw = {"shell": raw}
    if not isinstance(raw, Mapping):
        raise InvalidInput(
            f"{where}: expected a mapping of shell and/or powershell scripts", f"{where}: {{shell: ...}}"
        )
    _unknown(raw, PLATFORMS, f"{where}: ")
    scripts = {}
    for key in PLATFORMS:
        text = raw.get(key, "") or ""
        if not isinstance(text, str):
            raise InvalidInput(f"{where}.{key}: a script is text, got {kind_of(text)}", "use a YAML block: |")
        limits.SCRIPT_BYTES.check(limits.utf8_size(text))
        if "\0" in text:
            raise InvalidInput(f"{where}.{key}: the script contains a NUL byte", "remove it")
        scripts[key] = text
    if not any(scripts.values()):
        raise InvalidInput(f"{where}: no script", f"give {where}.shell (Linux, macOS) and/or {where}.powershell")
    return Scripts(**scripts)


@dataclass(frozen=True)
class Document:
    """A parsed document (one version). ``text`` is the file as stored and shown."""

    description: str
    parameters: tuple[Parameter, ...]
    run: Scripts | None = None
    action: str = ""
    check: Scripts | None = None
    steps: tuple[Any, ...] = ()  # common.runbooks.Step, for a runbook
    timeout_seconds: int = 0

    @property
    def kind(self) -> str:
        """``command`` (a script), ``action`` (a built-in agent task) or ``runbook`` (steps)."""
        if self.steps:
            return "runbook"
        return "action" if self.action else "command"

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter's value: *given* (text or typed) checked and coerced, defaults filled in.

        Raises:
            InvalidInput: an unknown parameter (with a close match), a required one missing, or a
                value the declaration refuses. Nothing has been sent when this raises.
        """
        names = [p.name for p in self.parameters]
        for name in given:
            if name not in names:
                close = difflib.get_close_matches(str(name), names, n=1)
                guess = f"did you mean {close[0]}? " if close else ""
                have = f"its parameters are {', '.join(names)}" if names else "it takes no parameters"
                raise InvalidInput(f"unknown parameter {name!r}", f"{guess}{have}")
        values: dict[str, Any] = {}
        for param in self.parameters:
            if param.name in given:
                values[param.name] = param.coerce(given[param.name], f"parameter {param.name}")
            elif param.default is not None:
                values[param.name] = param.default
            else:
                raise InvalidInput(
                    f"parameter {param.name} is required",
                    f"add --param {param.name}=VALUE" + (f" ({param.description})" if param.description else ""),
                )
        return values

    def environment(self, values: Mapping[str, Any]) -> dict[str, str]:
        """The ``FLEETOPS_PARAM_*`` variables for resolved *values*."""
        env = {}
        for param in self.parameters:
            if param.name in values:
                env[param_env_name(param.name)] = param.env_value(values[param.name])
        limits.check_env(env)
        return env


def load_text(text: str, source: str = "the document") -> Any:
    """YAML or JSON *text* as data, refusing duplicate keys and oversized files."""
    if limits.utf8_size(text) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            f"the document is larger than {MAX_DOCUMENT_BYTES // limits.KIB} KiB",
            "keep big scripts on the hosts, or split the document",
        )
    if "\0" in text:
        raise InvalidInput("the document contains a NUL byte", "save it as UTF-8 text")
    return parse_text(text, source, DOC_HINT)


def parse(text: str, source: str = "the document") -> Document:
    """The document in *text* (YAML or JSON), checked; :class:`InvalidInput` naming the field
    (prefixed with *source*, e.g. the file name)."""
    data = load_text(text, source)
    try:
        return from_data(data)
    except InvalidInput as exc:
        raise InvalidInput(f"{source}: {exc.message}", exc.hint) from None


def from_data(data: Any) -> Document:
    if not isinstance(data, Mapping):
        raise InvalidInput(f"a document is a mapping, got {kind_of(data)}", DOC_HINT)
    _unknown(data, _DOC_KEYS, "")
    description = data.get("description", "") or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description: text of at most {MAX_DESCRIPTION} characters", "a sentence or two")
    raw_params = data.get("parameters") or {}
    if not isinstance(raw_params, Mapping):
        raise InvalidInput(f"parameters: a mapping of names to declarations, got {kind_of(raw_params)}", DOC_HINT)
    if len(raw_params) > MAX_PARAMETERS:
        raise InvalidInput(f"parameters: more than {MAX_PARAMETERS}", "split the document")
    params = tuple(_parameter(name, raw) for name, raw in raw_params.items())
    upper: dict[str, str] = {}
    for p in params:
        if (other := upper.setdefault(p.name.upper(), p.name)) != p.name:
            raise InvalidInput(
                f"parameters: {other} and {p.name} are the same variable {param_env_name(p.name)}",
                "rename one",
            )
    what = [k for k in ("run", "action", "steps") if data.get(k) is not None]
    if len(what) != 1:
        raise InvalidInput(
            "a document runs exactly one of: run (scripts), action (a built-in task) or steps (a runbook)"
            + (f"; this one has {', '.join(what)}" if what else ""),
            DOC_HINT,
        )
    run = _scripts(data["run"], "run") if "run" in what else None
    action = ""
    if "action" in what:
        action = data["action"]
        if action not in ACTIONS:
            raise InvalidInput(f"action: unknown action {action!r}", f"built-in actions are {', '.join(ACTIONS)}")
    check = _scripts(data["check"], "check") if data.get("check") is not None else None
    if check is not None and "steps" in what:
        raise InvalidInput("check: a runbook has no check", "give the check to the documents its steps run")
    steps: tuple[Any, ...] = ()
    if "steps" in what:
        from fleetops.common.runbooks import parse_steps

        steps = tuple(parse_steps(data["steps"], {p.name for p in params}))
    timeout = 0
    if data.get("timeout") is not None:
        raw_timeout = data["timeout"]
        if not isinstance(raw_timeout, str):
            raise InvalidInput(f"timeout: a duration such as 10m, got {kind_of(raw_timeout)}", "e.g. timeout: 10m")
        try:
            timeout = int(parse_duration(raw_timeout).total_seconds())
        except InvalidInput as exc:
            raise InvalidInput(f"timeout: {exc.message}", exc.hint) from None
        if not 0 < timeout <= limits.TIMEOUT_SECONDS_MAX:
            raise InvalidInput(f"timeout: {raw_timeout} is out of range", "from 1s to 7d")
    return Document(description, params, run, action, check, steps, timeout)


# -- built-in documents ---------------------------------------------------------------------

_RUN_SHELL = """\
description: Run a shell script (Linux, macOS) or PowerShell script (Windows) given as a parameter.
parameters:
  commands:
    type: string
    description: the script to run; it is the text of the run, not substituted into one
run:
  shell: |
    exec /bin/sh -c "$FLEETOPS_PARAM_COMMANDS"
  powershell: |
    $sb = [ScriptBlock]::Create($env:FLEETOPS_PARAM_COMMANDS)
    & $sb
    exit $LASTEXITCODE
"""

_PATCH_SCAN = """\
description: Scan hosts for missing patches against their baseline (as opsctl patch scan).
parameters:
  refresh:
    type: boolean
    description: refresh the package index before scanning
    default: true
action: patch.scan
"""

_PATCH_INSTALL = """\
description: Install the approved patches of each host's baseline, rebooting if needed (as opsctl patch install).
parameters:
  reboot:
    type: string
    description: if-needed reboots when an update asks for it; never leaves it pending
    allowed: [if-needed, never]
    default: if-needed
action: patch.install
"""

#: Built-in documents (name -> text); read-only, version 1.
BUILTIN_DOCUMENTS: Mapping[str, str] = {
    "fleetops-RunShellScript": _RUN_SHELL,
    "fleetops-PatchScan": _PATCH_SCAN,
    "fleetops-PatchInstall": _PATCH_INSTALL,
}
