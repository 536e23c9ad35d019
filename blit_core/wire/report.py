"""Reports on the wire: what one end of a session tells the other about the work it did
(counters, failures, warnings, deletions held back), and its itemized events, as JSON. Pure."""

from __future__ import annotations

import json
from typing import Any

from blit_core.errors import ProtocolError
from blit_core.models import FileFailure, ItemEvent, TransferReport, TransferStats

_STAT_FIELDS = frozenset(vars(TransferStats()))


def report_to_wire(report: TransferReport) -> bytes:
    return json.dumps({
        "verb": report.verb,
        "dry_run": report.dry_run,
        "stats": vars(report.stats),
        "failures": [list(f) for f in report.failures],
        "failures_omitted": report.failures_omitted,
        "warnings": report.warnings,
        "duration_s": report.duration_s,
        "deletions_skipped": report.deletions_skipped,
        "deletions_suppressed_reason": report.deletions_suppressed_reason,
    }).encode()


def report_from_wire(data: bytes) -> TransferReport:
    """The inverse of report_to_wire; ProtocolError on anything malformed."""
    try:
        doc: dict[str, Any] = json.loads(data)
        stats = TransferStats()
        for name, value in doc["stats"].items():
            if name not in _STAT_FIELDS or type(value) is not type(getattr(stats, name)):
                raise ValueError(f"bad counter {name!r}")
            setattr(stats, name, value)
        reason = doc["deletions_suppressed_reason"]
        report = TransferReport(
            verb=str(doc["verb"]),
            dry_run=bool(doc["dry_run"]),
            stats=stats,
            failures=[FileFailure(str(p), str(r), bool(v)) for p, r, v in doc["failures"]],
            failures_omitted=int(doc["failures_omitted"]),
            warnings=[str(w) for w in doc["warnings"]],
            duration_s=float(doc["duration_s"]),
            deletions_skipped=int(doc["deletions_skipped"]),
            deletions_suppressed_reason=None if reason is None else str(reason),
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise ProtocolError(f"malformed report from the peer: {exc}") from None
    return report


def events_to_wire(events: list[ItemEvent]) -> bytes:
    return json.dumps([list(e) for e in events]).encode()


def events_from_wire(data: bytes) -> list[ItemEvent]:
    """The inverse of events_to_wire (b"" is none); ProtocolError on anything malformed."""
    if not data:
        return []
    try:
        return [ItemEvent(str(code), str(path)) for code, path in json.loads(data)]
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"malformed itemized events from the peer: {exc}") from None
