"""Fuzzing the data-plane decoder and the bounded inflation of compressed (ZREC) records.

Arbitrary bytes and mutated streams of valid records, fed in random pieces: the decoder gives
well-formed events (payload bytes exactly as declared, never beyond a chunk) or ProtocolError,
and never holds much more memory than it was fed, whatever lengths the records claim.
(tests/core/wire/test_codec.py covers round trips and each limit one at a time.)"""

from __future__ import annotations

import contextlib
import itertools

import zstandard
from helpers.fuzz import BOUNDARY_U64, fuzz_settings, mutated, peak_allocation
from hypothesis import given
from hypothesis import strategies as st

from blit_core.errors import ProtocolError
from blit_core.wire import frames
from blit_core.wire.codec import Decoder
from blit_core.wire.compression import inflate

SMALL_LIMITS = frames.Limits(max_inflated_length=1 << 16)
CHUNK = 4096
SLACK = 256 << 10  # the interpreter's own allocations while decoding
_zstd = zstandard.ZstdCompressor(write_content_size=True)


def _payload_record(kind: int, payload: bytes, need_id: int = 3, offset: int = 0) -> bytes:
    if kind == frames.RANGE:
        return frames.encode_range_header(need_id, offset, len(payload)) + payload
    if kind == frames.SHARD:
        return frames.encode_shard_header(len(payload)) + payload
    return frames.encode_literal_header(len(payload)) + payload


def _zrec(record: bytes) -> bytes:
    frame = _zstd.compress(record)
    return frames.encode_compressed_header(len(record), len(frame)) + frame


payloads = st.one_of(st.binary(max_size=300), st.builds(bytes, st.integers(0, 5000)))
payload_records = st.builds(_payload_record, st.sampled_from([frames.RANGE, frames.SHARD,
                                                              frames.LITERAL]), payloads,
                            st.integers(0, 1 << 20), st.integers(0, 1 << 30))
lengths = st.one_of(st.sampled_from(BOUNDARY_U64), st.integers(0, (1 << 64) - 1))
# Headers packed as they are, with any claimed length (the encoders would refuse most).
claiming_headers = st.one_of(
    st.builds(frames.RANGE_HEADER.pack, st.just(frames.RANGE), lengths, lengths, lengths),
    st.builds(frames.SHARD_HEADER.pack, st.just(frames.SHARD), lengths),
    st.builds(frames.LITERAL_HEADER.pack, st.just(frames.LITERAL), lengths),
    st.builds(frames.ABORT_HEADER.pack, st.just(frames.ABORT), lengths, st.integers(0, 0xFFFF)),
    st.builds(frames.COMPRESSED_HEADER.pack, st.just(frames.COMPRESSED),
              st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 32) - 1)),
)
records = st.one_of(
    payload_records,
    claiming_headers,
    payload_records.map(_zrec),
    st.builds(frames.encode_abort, st.integers(0, 1 << 40), st.text(max_size=30)),
    st.builds(frames.encode_delta_start, st.integers(0, 1 << 40)),
    st.builds(frames.encode_copy, st.integers(0, 1 << 40), st.integers(0, 1 << 40)),
    st.builds(frames.encode_delta_end, st.integers(0, 1 << 62), st.binary(min_size=16,
                                                                          max_size=16)),
    st.builds(frames.encode_redo, st.integers(0, frames.FIRST_REDO_ID - 1),
              st.integers(frames.FIRST_REDO_ID, (1 << 63) - 1), st.integers(0, 1 << 40),
              st.integers(-(1 << 63), (1 << 63) - 1)),
    st.builds(frames.REDO_RECORD.pack, st.just(frames.REDO), lengths, lengths, lengths,
              st.integers(-(1 << 63), (1 << 63) - 1)),
)
streams = st.lists(records, max_size=8).map(lambda rs: b"".join(rs) + frames.encode_end())
hostile_streams = st.one_of(st.binary(max_size=2000), streams.flatmap(mutated))


class _Grammar:
    """Checks the event sequence: payload events only inside a payload, as long as declared."""

    def __init__(self) -> None:
        self.remaining: int | None = None  # payload bytes still due, inside a payload
        self.ended = False

    def add(self, event: object) -> None:
        assert not self.ended, f"{event!r} after End"
        if isinstance(event, frames.Data):
            assert self.remaining is not None and 0 < len(event.chunk) <= min(self.remaining,
                                                                              CHUNK)
            self.remaining -= len(event.chunk)
        elif isinstance(event, frames.PayloadEnd):
            assert self.remaining == 0, "a payload ended before its declared length"
            self.remaining = None
        else:
            assert self.remaining is None, f"{event!r} inside a payload"
            if isinstance(event, frames.RangeStart | frames.ShardStart | frames.LiteralStart):
                self.remaining = event.length
            self.ended = isinstance(event, frames.End)


def _decode(data: bytes, cuts: list[int]) -> None:
    """Feed `data` cut at `cuts`, then EOF, draining events; ProtocolError passes through."""
    decoder, grammar = Decoder(SMALL_LIMITS, max_data_chunk=CHUNK), _Grammar()
    bounds = [0, *sorted(c for c in cuts if c < len(data)), len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    for piece in [*pieces, b""]:
        decoder.receive_data(piece)
        while (event := decoder.next_event()) is not frames.NEED_DATA:
            grammar.add(event)
        if grammar.ended:
            return


@fuzz_settings()
@given(data=hostile_streams, cuts=st.lists(st.integers(0, 3000), max_size=6))
def test_any_bytes_give_well_formed_events_or_a_protocol_error(data: bytes,
                                                               cuts: list[int]) -> None:
    with contextlib.suppress(ProtocolError):
        _decode(data, cuts)


@fuzz_settings(0.5)
@given(data=hostile_streams)
def test_the_decoder_never_holds_more_than_it_was_fed_or_may_inflate(data: bytes) -> None:
    """Whatever lengths the records claim, memory follows the bytes that arrived (plus one
    inflated record, within its limit)."""

    def run() -> None:
        with contextlib.suppress(ProtocolError):
            _decode(data, [])

    peak = peak_allocation(run)
    assert peak <= 4 * len(data) + 2 * SMALL_LIMITS.max_inflated_length + SLACK, peak


frames_to_inflate = st.one_of(
    st.binary(max_size=400),
    st.binary(max_size=3000).map(_zstd.compress).flatmap(mutated),
    st.binary(max_size=3000).map(zstandard.ZstdCompressor(write_content_size=False).compress),
    st.integers(0, 1 << 20).map(lambda n: _zstd.compress(bytes(n))),  # bombs
)


@fuzz_settings()
@given(frame=frames_to_inflate, raw_length=st.one_of(st.integers(0, 1 << 16),
                                                     st.sampled_from([0, 1, 4096, 1 << 16])))
def test_inflate_gives_exactly_the_declared_length_or_a_protocol_error(frame: bytes,
                                                                      raw_length: int) -> None:
    outcome: list[bytes] = []

    def run() -> None:
        with contextlib.suppress(ProtocolError):
            outcome.append(inflate(frame, raw_length))

    peak = peak_allocation(run)
    assert not outcome or len(outcome[0]) == raw_length
    assert peak <= 2 * (len(frame) + raw_length) + SLACK, peak
