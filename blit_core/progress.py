"""The observer interface through which a transfer reports as it goes. The library only calls
these methods; rendering (progress bars, itemized lines, warnings) belongs to the front ends."""

from __future__ import annotations

from typing import Protocol

from blit_core.models import FileFailure, ItemEvent


class TransferObserver(Protocol):
    def on_planned(self, files: int, num_bytes: int) -> None:
        """More files (and their bytes) were found at the source; totals only grow."""

    def on_progress(self, num_bytes: int, files: int) -> None:
        """Bytes and files completed since the previous call."""

    def on_scanned(self, entries: int, finished: bool) -> None:
        """A remote transfer's manifest: `entries` listed by the SOURCE so far; `finished`
        once its scan is complete."""

    def on_item(self, event: ItemEvent) -> None:
        """One itemized change (only when options.want_events is set, and for deletions)."""

    def on_warning(self, message: str) -> None:
        """Something the user should know that is not a failure."""

    def on_failure(self, failure: FileFailure) -> None:
        """A file could not be transferred or deleted; the transfer goes on."""


class NullObserver:
    """Observes nothing: for library callers that only want the report."""

    def on_planned(self, files: int, num_bytes: int) -> None:
        return

    def on_progress(self, num_bytes: int, files: int) -> None:
        return

    def on_scanned(self, entries: int, finished: bool) -> None:
        return

    def on_item(self, event: ItemEvent) -> None:
        return

    def on_warning(self, message: str) -> None:
        return

    def on_failure(self, failure: FileFailure) -> None:
        return
