"""Control-stream frames as bytes (--force-grpc's data frames built and taken apart without
protobuf) agree with protobuf's own encoding and parsing, and the codec bytes they carry are
applied the same however they are split into frames."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blit_core.errors import ProtocolError
from blit_core.net.dataplane import RecordHandler, feed_frames
from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.rawframes import DataFrame, encode_data_frame, parse_frame
from blit_core.wire import frames
from blit_core.wire.codec import Decoder

# Payload lengths around each varint length boundary (1, 2, 3 and 4 bytes).
LENGTHS = [0, 1, 127, 128, 129, 16_383, 16_384, (1 << 20) + 7, (2 << 20) + 1]


@pytest.mark.parametrize("length", LENGTHS)
def test_a_data_frame_is_encoded_as_protobuf_encodes_it(length: int) -> None:
    payload = os.urandom(length)
    raw = encode_data_frame(payload)
    assert raw == pb.Frame(data=payload).SerializeToString()
    assert encode_data_frame(memoryview(payload)) == raw


@pytest.mark.parametrize("length", LENGTHS)
def test_a_data_frame_is_received_without_parsing(length: int) -> None:
    payload = os.urandom(length)
    frame = parse_frame(pb.Frame(data=payload).SerializeToString())
    assert isinstance(frame, DataFrame)
    assert bytes(frame.data) == payload
    assert frame.HasField("data") and not frame.HasField("failure")
    assert not frame.HasField("progress") and frame.WhichOneof("body") == "data"
    with pytest.raises(ValueError, match="no field"):
        frame.HasField("dta")  # as a parsed Frame does


def test_other_frames_are_parsed_by_protobuf() -> None:
    for sent in (pb.Frame(progress=pb.Progress()),
                 pb.Frame(failure=pb.Failure(message="no", exit_code=5)),
                 pb.Frame(manifest=pb.Manifest(batch=3, entries=b"\x3a" * 40))):
        got = parse_frame(sent.SerializeToString())
        assert isinstance(got, pb.Frame) and got == sent


def test_a_data_field_followed_by_another_is_left_to_protobuf() -> None:
    """Protobuf keeps the last member of a oneof: the frame is a Progress, not data."""
    raw = encode_data_frame(b"abc") + pb.Frame(progress=pb.Progress()).SerializeToString()
    got = parse_frame(raw)
    assert isinstance(got, pb.Frame) and got.WhichOneof("body") == "progress"


@pytest.mark.parametrize("raw", [
    encode_data_frame(b"abcdef")[:-1],  # shorter than its length says
    bytes([encode_data_frame(b"")[0]]) + b"\xff" * 11,  # a length that never ends
    b"\x0a\x05ab",  # a Hello cut short
])
def test_a_malformed_frame_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError, match="does not parse"):
        parse_frame(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_parse_as_protobuf_parses_them(raw: bytes) -> None:
    try:
        expected = pb.Frame.FromString(raw)
    except Exception:
        with pytest.raises(ProtocolError):
            parse_frame(raw)
        return
    got = parse_frame(raw)
    assert got.WhichOneof("body") == expected.WhichOneof("body")
    if isinstance(got, DataFrame):
        assert bytes(got.data) == expected.data
    else:
        assert got == expected


class _Files:
    """Stands in for the Destination: the ranges and aborts RecordHandler hands it."""

    def __init__(self) -> None:
        self.content: dict[int, bytearray] = {}
        self.aborted: list[int] = []

    def write_range(self, need_id: int, offset: int, data: bytes | memoryview) -> None:
        file = self.content.setdefault(need_id, bytearray())
        assert offset == len(file)
        file += data

    def abort(self, need_id: int, reason: str) -> None:
        self.aborted.append(need_id)


@pytest.mark.parametrize("seed", range(20))
def test_codec_bytes_split_into_frames_anywhere_are_applied_alike(seed: int) -> None:
    """Range payloads go straight from the frames to the files (the decoder never sees
    them), and every other record still goes through the decoder, wherever frames split."""
    rng = random.Random(seed)
    files = {need_id: rng.randbytes(rng.choice([0, 1, 300, 70_000])) for need_id in (1, 2, 3)}
    stream = bytearray()
    for need_id, content in files.items():
        stream += frames.encode_range_header(need_id, 0, len(content)) + content
    stream += frames.encode_abort(4, "vanished") + frames.encode_end()
    cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(0, 30)))
    dest = _Files()
    handler = RecordHandler(dest)  # type: ignore[arg-type]
    decoder = Decoder()
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        feed_frames(decoder, handler, bytes(stream[start:end]))
        feed_frames(decoder, handler, b"")  # an empty frame changes nothing
    assert handler.ended
    assert {k: bytes(v) for k, v in dest.content.items()} == files
    assert dest.aborted == [4]
