"""The data-plane framing: records survive an encode/decode round trip however the bytes are
split, the zero-copy bypass gives the same result, every declared length is checked against its
limit before the payload arrives, and malformed or truncated streams raise ProtocolError."""

from __future__ import annotations

import itertools
import os
import struct

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blit_core.errors import ProtocolError
from blit_core.wire import frames
from blit_core.wire.codec import Decoder
from blit_core.wire.frames import (
    NEED_DATA,
    Abort,
    CopyBlocks,
    Data,
    DeltaEnd,
    DeltaStart,
    End,
    Limits,
    LiteralStart,
    PayloadEnd,
    RangeStart,
    Redo,
    ShardStart,
)

MiB = 1 << 20

# Records as the tests model them: ("range", need_id, offset, payload), ("shard", payload),
# ("abort", need_id, reason), ("delta", need_id), ("copy", block, count), ("lit", payload),
# ("dend", size, digest), ("redo", need_id, new_id, size, mtime_ns), ("end",); ("z", record)
# is a range, shard or lit record compressed, which decodes as the record itself.


def zrec(raw: bytes, frame: bytes | None = None) -> bytes:
    """A ZREC record holding `raw` (or claiming to, around another `frame`)."""
    frame = zstandard.ZstdCompressor().compress(raw) if frame is None else frame
    return struct.pack(">BII", frames.COMPRESSED, len(raw), len(frame)) + frame


def plain(records: list[tuple]) -> list[tuple]:
    return [rec[1] if rec[0] == "z" else rec for rec in records]


def encode(records: list[tuple]) -> bytes:
    out = bytearray()
    for rec in records:
        if rec[0] == "z":
            out += zrec(encode([rec[1]]))
        elif rec[0] == "range":
            out += frames.encode_range_header(rec[1], rec[2], len(rec[3])) + rec[3]
        elif rec[0] == "shard":
            out += frames.encode_shard_header(len(rec[1])) + rec[1]
        elif rec[0] == "abort":
            out += frames.encode_abort(rec[1], rec[2])
        elif rec[0] == "delta":
            out += frames.encode_delta_start(rec[1])
        elif rec[0] == "copy":
            out += frames.encode_copy(rec[1], rec[2])
        elif rec[0] == "lit":
            out += frames.encode_literal_header(len(rec[1])) + rec[1]
        elif rec[0] == "dend":
            out += frames.encode_delta_end(rec[1], rec[2])
        elif rec[0] == "redo":
            out += frames.encode_redo(*rec[1:])
        else:
            out += frames.encode_end()
    return bytes(out)


class Reassembler:
    """Rebuilds model records from events, checking the event grammar on the way."""

    def __init__(self) -> None:
        self.records: list[tuple] = []
        self.current: tuple | None = None  # (kind, *fields, declared length)
        self.payload = bytearray()
        self.data_events = 0

    def add(self, event: object) -> None:
        assert not self.records or self.records[-1] != ("end",), "event after End"
        if isinstance(event, RangeStart):
            assert self.current is None
            self.current = ("range", event.need_id, event.offset, event.length)
        elif isinstance(event, ShardStart):
            assert self.current is None
            self.current = ("shard", event.length)
        elif isinstance(event, Data):
            assert self.current is not None and event.chunk, "empty or stray Data"
            self.data_events += 1
            self.direct(event.chunk)
        elif isinstance(event, PayloadEnd):
            assert self.current is not None and len(self.payload) == self.current[-1]
            self.records.append((*self.current[:-1], bytes(self.payload)))
            self.current, self.payload = None, bytearray()
        elif isinstance(event, LiteralStart):
            assert self.current is None
            self.current = ("lit", event.length)
        elif isinstance(event, Abort):
            assert self.current is None
            self.records.append(("abort", event.need_id, event.reason))
        elif isinstance(event, DeltaStart | CopyBlocks | DeltaEnd | Redo):
            assert self.current is None
            kind = {DeltaStart: "delta", CopyBlocks: "copy", DeltaEnd: "dend",
                    Redo: "redo"}[type(event)]
            self.records.append((kind, *(getattr(event, f) for f in event.__slots__)))
        else:
            assert isinstance(event, End) and self.current is None
            self.records.append(("end",))

    def direct(self, chunk: bytes) -> None:
        self.payload += chunk
        assert len(self.payload) <= self.current[-1], "more payload than declared"

    def drain(self, dec: Decoder) -> None:
        while (event := dec.next_event()) is not NEED_DATA:
            self.add(event)


def decode_pieces(pieces: list[bytes], **kwargs: int) -> Reassembler:
    dec, out = Decoder(**kwargs), Reassembler()
    for piece in pieces:
        dec.receive_data(piece)
        out.drain(dec)
    dec.receive_data(b"")
    out.drain(dec)
    assert dec.next_event() is NEED_DATA and dec.buffered == 0
    return out


def split_at(blob: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(blob)]
    return [blob[a:b] for a, b in itertools.pairwise(bounds) if b > a]


SMALL = [
    ("range", 7, 0, b""),
    ("range", 1, 0, b"hello world" * 50),
    ("shard", b"tar-ish " * 300),
    ("abort", 2, "disque plein: ünïcødé ✓ 日本語"),
    ("range", 3, 4096, bytes(range(256)) * 3),
    ("shard", b""),
    ("abort", 4, ""),
    ("delta", 9),
    ("copy", 0, 3),
    ("lit", b"new bytes" * 40),
    ("copy", 17, 1),
    ("lit", b""),
    ("dend", 12345, bytes(range(16))),
    ("redo", 6, frames.FIRST_REDO_ID, 4096, -1_000_000_007),
    ("z", ("range", 5, 100, b"compressible " * 500)),
    ("z", ("shard", bytes(10_000))),
    ("z", ("lit", b"")),
    ("end",),
]

BIG = [
    ("range", 10, 0, os.urandom(3 * MiB + 17)),
    ("range", 11, 0, b""),
    ("shard", os.urandom(MiB // 2)),
    ("abort", 12, "écriture impossible — Ошибка"),
    ("range", 10, 3 * MiB + 17, os.urandom(2 * MiB)),
    *SMALL,
]

BIG_BLOB = encode(BIG)


def test_round_trip_fed_all_at_once():
    assert decode_pieces([BIG_BLOB]).records == plain(BIG)


def test_data_chunks_never_exceed_max_data_chunk():
    out = decode_pieces([BIG_BLOB], max_data_chunk=4096)
    assert out.records == plain(BIG)
    assert out.data_events >= (5 * MiB + MiB // 2) // 4096


def test_round_trip_fed_one_byte_at_a_time():
    blob = encode(SMALL)
    assert decode_pieces([blob[i : i + 1] for i in range(len(blob))]).records == plain(SMALL)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(BIG_BLOB)), max_size=60))
def test_round_trip_fed_in_random_splits(cuts):
    assert decode_pieces(split_at(BIG_BLOB, cuts)).records == plain(BIG)


payload_records = st.one_of(
    st.tuples(st.just("range"), st.integers(0, 2**63 - 1), st.integers(0, 2**40), st.binary()),
    st.tuples(st.just("shard"), st.binary()),
    st.tuples(st.just("lit"), st.binary()),
)
records_strategy = st.lists(
    st.one_of(
        payload_records,
        st.tuples(st.just("z"), payload_records),
        st.tuples(st.just("abort"), st.integers(0, 2**63 - 1), st.text(max_size=100)),
        st.tuples(st.just("delta"), st.integers(0, 2**63 - 1)),
        st.tuples(st.just("copy"), st.integers(0, 2**40), st.integers(0, 2**40)),
        st.tuples(st.just("dend"), st.integers(0, 2**63 - 1), st.binary(min_size=16, max_size=16)),
        st.tuples(st.just("redo"), st.integers(0, frames.FIRST_REDO_ID - 1),
                  st.integers(frames.FIRST_REDO_ID, 2**63 - 1), st.integers(0, 2**63 - 1),
                  st.integers(-(2**63), 2**63 - 1)),
    )
).map(lambda recs: [*recs, ("end",)])


@settings(max_examples=200, deadline=None)
@given(records_strategy, st.data())
def test_round_trip_of_random_records_in_random_splits(records, data):
    blob = encode(records)
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=20))
    assert decode_pieces(split_at(blob, cuts)).records == plain(records)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1000, 300_000), min_size=1, max_size=30))
def test_payload_consumed_bypass_gives_the_same_records(sizes):
    """Alternate normal feeding with direct "socket" reads of payload, as an I/O layer would."""
    dec, out, pos, turn = Decoder(), Reassembler(), 0, 0
    while pos < len(BIG_BLOB):
        size = sizes[turn % len(sizes)]
        turn += 1
        if dec.payload_remaining and dec.buffered == 0 and turn % 2:
            n = min(size, dec.payload_remaining, len(BIG_BLOB) - pos)
            out.direct(BIG_BLOB[pos : pos + n])
            dec.payload_consumed(n)
        else:
            n = min(size, len(BIG_BLOB) - pos)
            dec.receive_data(memoryview(BIG_BLOB)[pos : pos + n])
        pos += n
        out.drain(dec)
    dec.receive_data(b"")
    out.drain(dec)
    assert out.records == plain(BIG)


def test_payload_consumed_refuses_misuse():
    dec = Decoder()
    with pytest.raises(ValueError):
        dec.payload_consumed(1)  # not in a payload
    dec.receive_data(frames.encode_range_header(1, 0, 10) + b"abc")
    assert dec.next_event() == RangeStart(1, 0, 10)
    with pytest.raises(ValueError):
        dec.payload_consumed(1)  # bytes still buffered
    assert dec.next_event() == Data(b"abc")
    assert dec.payload_remaining == 7
    with pytest.raises(ValueError):
        dec.payload_consumed(8)
    with pytest.raises(ValueError):
        dec.payload_consumed(0)
    dec.payload_consumed(7)
    assert dec.payload_remaining == 0
    assert dec.next_event() == PayloadEnd()
    assert dec.next_event() is NEED_DATA


def rejected_after(header: bytes, limits: Limits = frames.DEFAULT_LIMITS) -> ProtocolError:
    """Feed only `header`; the decoder must refuse it without waiting for more bytes."""
    dec = Decoder(limits)
    dec.receive_data(header[:-1])
    assert dec.next_event() is NEED_DATA
    dec.receive_data(header[-1:])
    with pytest.raises(ProtocolError) as info:
        dec.next_event()
    return info.value


def test_range_length_over_limit_is_rejected_as_soon_as_the_header_is_complete():
    err = rejected_after(struct.pack(">BQQQ", frames.RANGE, 1, 0, 2**41))
    assert "range length" in str(err) and str(1 << 40) in str(err)


def test_range_length_limit_is_configurable():
    err = rejected_after(frames.encode_range_header(1, 0, 11), Limits(max_range_length=10))
    assert "range length" in str(err) and "10" in str(err)


def test_range_past_the_largest_file_offset_is_rejected():
    err = rejected_after(struct.pack(">BQQQ", frames.RANGE, 1, 2**63 - 5, 10))
    assert "range end" in str(err)


def test_shard_length_over_limit_is_rejected_as_soon_as_the_header_is_complete():
    err = rejected_after(struct.pack(">BQ", frames.SHARD, 2**31))
    assert "shard length" in str(err) and str(1 << 30) in str(err)


def test_delta_lengths_over_limit_are_rejected_as_soon_as_the_header_is_complete():
    err = rejected_after(struct.pack(">BQ", frames.LITERAL, 2**24 + 1))
    assert "literal length" in str(err)
    err = rejected_after(struct.pack(">BQQ", frames.COPY, 0, 2**41))
    assert "copy count" in str(err)
    err = rejected_after(struct.pack(">BQQ", frames.COPY, 2**41, 1))
    assert "copy block" in str(err)


def test_abort_reason_over_limit_is_rejected_before_the_reason_arrives():
    err = rejected_after(struct.pack(">BQH", frames.ABORT, 1, 5000))
    assert "reason length" in str(err) and "4096" in str(err)


@pytest.mark.parametrize(
    "header",
    [
        struct.pack(">BQQQ", frames.RANGE, 2**63, 0, 0),
        struct.pack(">BQH", frames.ABORT, 2**64 - 1, 0),
        struct.pack(">BQ", frames.DELTA, 2**63),
    ],
)
def test_need_id_over_limit_is_rejected(header):
    err = rejected_after(header)
    assert "need_id" in str(err) and str(2**63 - 1) in str(err)


@pytest.mark.parametrize(("need_id", "new_id", "problem"), [
    (frames.FIRST_REDO_ID, frames.FIRST_REDO_ID + 1, "need_id"),  # a file sent again, again
    (5, frames.FIRST_REDO_ID - 1, "new id"),  # a new id a manifest could have given
    (5, 2**63, "new id"),
])
def test_a_redo_outside_its_id_ranges_is_refused(need_id, new_id, problem):
    err = rejected_after(struct.pack(">BQQQq", frames.REDO, need_id, new_id, 10, 0))
    assert problem in str(err)


def test_a_compressed_record_is_checked_before_anything_is_inflated():
    err = rejected_after(struct.pack(">BII", frames.COMPRESSED, (16 << 20) + 65, 10))
    assert "inflated length" in str(err)
    err = rejected_after(struct.pack(">BII", frames.COMPRESSED, 100, (16 << 20) + 65))
    assert "compressed length" in str(err)


def test_a_decompression_bomb_is_refused_without_inflating_it():
    # 64 MiB of zeros in a 2 KiB frame, claimed to be a 1 KiB record
    bomb = zstandard.ZstdCompressor(level=1).compress(bytes(64 << 20))
    assert "does not declare its length" in protocol_error(zrec(bytes(1024), bomb))
    # a frame with no declared size, even one that would fit
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(bytes(1024))
    assert "does not declare its length" in protocol_error(zrec(bytes(1024), unsized))


@pytest.mark.parametrize(("raw", "problem"), [
    (frames.encode_abort(1, "x"), "holds no RANGE, SHARD or LIT record"),
    (zrec(encode([("lit", b"x" * 600)])), "holds no RANGE, SHARD or LIT record"),  # nested
    (frames.encode_literal_header(10) + b"short", "disagrees with its content"),
    (frames.encode_literal_header(2) + b"longer", "disagrees with its content"),
    (b"\x07", "holds no RANGE, SHARD or LIT record"),  # a header cut short
    (b"", "holds no RANGE, SHARD or LIT record"),
])
def test_a_compressed_record_must_hold_exactly_one_payload_record(raw: bytes, problem: str):
    assert problem in protocol_error(zrec(raw))


def test_a_corrupt_compressed_frame_is_a_protocol_error():
    raw = encode([("lit", b"abc" * 300)])
    frame = bytearray(zstandard.ZstdCompressor().compress(raw))
    assert "does not decompress" in protocol_error(zrec(raw, bytes(frame) + b"junk"))
    frame[-6:] = b"\xff" * 6
    assert "does not decompress" in protocol_error(zrec(raw, bytes(frame)))


def protocol_error(blob: bytes, eof: bool = True) -> str:
    dec = Decoder()
    with pytest.raises(ProtocolError) as info:
        dec.receive_data(blob)
        if eof:
            dec.receive_data(b"")
        while dec.next_event() is not NEED_DATA:
            pass
    return str(info.value)


def test_unknown_record_type_is_named_in_hex():
    assert "0xab" in protocol_error(frames.encode_abort(1, "x") + b"\xab", eof=False)


def test_data_after_end_in_the_same_buffer():
    assert "data after END" in protocol_error(frames.encode_end() + b"\x01", eof=False)


def test_data_after_end_in_a_later_receive():
    dec = Decoder()
    dec.receive_data(frames.encode_end())
    assert dec.next_event() == End()
    assert dec.next_event() is NEED_DATA
    with pytest.raises(ProtocolError, match="data after END"):
        dec.receive_data(b"\x04")
    dec.receive_data(b"")  # the peer closing after END is fine
    assert dec.next_event() is NEED_DATA


def test_eof_mid_header():
    blob = frames.encode_range_header(1, 0, 5)[:10]
    assert "middle of a record" in protocol_error(blob)


def test_eof_mid_abort_reason():
    blob = frames.encode_abort(1, "a reason")[:-2]
    assert "middle of a record" in protocol_error(blob)


def test_eof_mid_payload():
    blob = frames.encode_range_header(1, 0, 5) + b"abc"
    assert "middle of a payload" in protocol_error(blob)


def test_eof_between_records_without_end():
    blob = frames.encode_shard_header(2) + b"ab"
    assert "before END" in protocol_error(blob)


def test_invalid_utf8_reason():
    blob = struct.pack(">BQH", frames.ABORT, 1, 2) + b"\xff\xfe"
    assert "utf-8" in protocol_error(blob, eof=False)


def test_receive_after_eof_is_a_caller_bug():
    dec = Decoder()
    dec.receive_data(b"")
    with pytest.raises(RuntimeError):
        dec.receive_data(b"\x04")


def test_preface_round_trip():
    token = os.urandom(frames.TOKEN_BYTES)
    preface = frames.encode_preface(token)
    assert len(preface) == frames.PREFACE_SIZE == 37
    assert preface.startswith(b"BLIT\x01")
    assert frames.parse_preface(preface) == token


@pytest.mark.parametrize(
    "bad",
    [
        b"BLOT\x01" + bytes(32),  # magic
        b"BLIT\x02" + bytes(32),  # version
        b"BLIT\x01" + bytes(31),  # too short
        b"BLIT\x01" + bytes(33),  # too long
        b"",
    ],
)
def test_bad_preface_is_rejected(bad):
    with pytest.raises(ProtocolError):
        frames.parse_preface(bad)


def test_encode_preface_rejects_a_16_byte_token():
    with pytest.raises(ValueError):
        frames.encode_preface(bytes(16))


@pytest.mark.parametrize(
    "call",
    [
        lambda: frames.encode_range_header(-1, 0, 0),
        lambda: frames.encode_range_header(2**63, 0, 0),
        lambda: frames.encode_range_header(1, -1, 0),
        lambda: frames.encode_range_header(1, 0, 2**40 + 1),
        lambda: frames.encode_range_header(1, 2**63 - 1, 1),
        lambda: frames.encode_shard_header(2**30 + 1),
        lambda: frames.encode_shard_header(-1),
        lambda: frames.encode_abort(2**63, "x"),
        lambda: frames.encode_redo(frames.FIRST_REDO_ID, frames.FIRST_REDO_ID, 0, 0),
        lambda: frames.encode_redo(1, frames.FIRST_REDO_ID - 1, 0, 0),
        lambda: frames.encode_redo(1, frames.FIRST_REDO_ID, 2**63, 0),
    ],
)
def test_encoders_validate_against_the_limits(call):
    with pytest.raises(ValueError):
        call()


def test_encode_abort_truncates_the_reason_on_a_utf8_boundary():
    record = frames.encode_abort(5, "a" + "é" * 3000)  # 6001 bytes of utf-8
    _, need_id, reason_len = struct.unpack_from(">BQH", record)
    assert need_id == 5 and reason_len == 4095 == len(record) - 11
    dec = Decoder()
    dec.receive_data(record)
    assert dec.next_event() == Abort(5, "a" + "é" * 2047)


def test_encode_abort_survives_unencodable_surrogates():
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    dec = Decoder()
    dec.receive_data(frames.encode_abort(1, f"cannot read {name}"))
    assert dec.next_event() == Abort(1, "cannot read caf?")


def test_decoding_64_mib_in_64_kib_pieces_is_linear():
    """Each receive_data yields at most one Data holding everything buffered, so the work per
    byte is constant: no re-scanning or re-copying of the growing buffer."""
    piece = os.urandom(64 * 1024)
    total = 64 * MiB
    dec = Decoder()
    dec.receive_data(frames.encode_range_header(1, 0, total))
    assert dec.next_event() == RangeStart(1, 0, total)
    receives = data_events = received = 0
    while received < total:
        dec.receive_data(piece)
        receives += 1
        received += len(piece)
        while (event := dec.next_event()) is not NEED_DATA:
            if isinstance(event, PayloadEnd):
                break
            assert event.chunk == piece
            data_events += 1
        assert dec.buffered == 0
    assert data_events <= receives + 1
    assert len(dec._buf) <= len(piece)  # consumed bytes are dropped, not kept
    assert event == PayloadEnd()
