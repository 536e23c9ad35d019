"""TransferOptions on the wire: the JSON the initiator sends in Hello, so that both ends of a
session apply the same comparison, filters and policies. Pure; unknown keys are refused."""

from __future__ import annotations

import dataclasses
import json

from blit_core.errors import BlitError, ProtocolError
from blit_core.fileslist import FilesFrom
from blit_core.filters import FilterRules
from blit_core.options import CompareMode, TransferOptions

# Options that only mean something on the side that runs the command.
_LOCAL_ONLY = frozenset({"jobs", "want_progress"})


def options_to_wire(options: TransferOptions) -> bytes:
    fields = {}
    for field in dataclasses.fields(TransferOptions):
        if field.name in _LOCAL_ONLY:
            continue
        value = getattr(options, field.name)
        if field.name == "filters":
            value = [list(rule) for rule in value.rules]
        elif field.name == "files_from":
            value = None if value is None else sorted(value.listed)
        elif field.name == "compare":
            value = value.value
        fields[field.name] = value
    return json.dumps(fields).encode()


def options_from_wire(data: bytes) -> TransferOptions:
    """The options a peer sent; ProtocolError if they are malformed or contradictory."""
    try:
        fields = json.loads(data)
        if not isinstance(fields, dict):
            raise ValueError("not an object")
        known = {f.name for f in dataclasses.fields(TransferOptions)} - _LOCAL_ONLY
        unknown = set(fields) - known
        if unknown:
            raise ValueError(f"unknown options {sorted(unknown)}")
        _check_types(fields)
        if "filters" in fields:
            fields["filters"] = FilterRules(tuple(rule) for rule in fields["filters"])
        if fields.get("files_from") is not None:
            fields["files_from"] = FilesFrom(list(fields["files_from"]))
        if "compare" in fields:
            fields["compare"] = CompareMode(fields["compare"])
        return TransferOptions(**fields)
    except (ValueError, TypeError, BlitError) as exc:
        raise ProtocolError(f"bad transfer options from the peer: {exc}") from None


def _check_types(fields: dict) -> None:
    defaults = TransferOptions()
    for name, value in fields.items():
        if name in ("filters", "files_from", "compare"):
            continue
        expected = type(getattr(defaults, name))
        if value is None and name in ("backup_suffix", "backup_dir", "partial_dir",
                                      "max_delete", "min_size", "max_size"):
            continue
        if expected is type(None):
            expected = str if name.startswith(("backup", "partial")) else int
        if type(value) is not expected:
            raise ValueError(f"option {name!r} has the wrong type")
