"""Manifest entry ids stay below FIRST_REDO_ID: the ids at and above it are those a REDO gives
a file the SOURCE sends again, so a manifest that used one could make a need stand for two
files. The reader refuses such an id as a protocol error."""

from __future__ import annotations

import pytest

from blit_core.errors import ProtocolError
from blit_core.models import FileEntry
from blit_core.wire.frames import FIRST_REDO_ID
from blit_core.wire.manifest import EntryRecord, ManifestWriter, RootRecord, read_records

FILE = FileEntry("a.txt", 0o100644, 3, 10**18, 10**18, 0, 0, 1, 7, 1, 0, "")


def one_record(kind: str, entry_id: int) -> bytes:
    writer = ManifestWriter()
    if kind == "root":
        writer.root(0, entry_id, FILE._replace(name=""))
    else:
        writer.entry(entry_id, FILE)
    return writer.take()


@pytest.mark.parametrize("kind", ["root", "entry"])
def test_the_largest_manifest_id_is_read(kind: str) -> None:
    (record,) = read_records(one_record(kind, FIRST_REDO_ID - 1))
    assert isinstance(record, RootRecord if kind == "root" else EntryRecord)
    assert record.id == FIRST_REDO_ID - 1


@pytest.mark.parametrize("kind", ["root", "entry"])
@pytest.mark.parametrize("entry_id", [FIRST_REDO_ID, (1 << 64) - 1])
def test_an_id_reserved_for_files_sent_again_is_refused(kind: str, entry_id: int) -> None:
    with pytest.raises(ProtocolError, match="not below"):
        list(read_records(one_record(kind, entry_id)))
