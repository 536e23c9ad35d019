"""The Transfer RPC's frames as bytes.

The RPC is registered without protobuf (de)serializers on both ends, so a session serializes
each Frame once, parses it once, and counts the bytes that crossed by their length. A frame
whose only field is `data` (the codec bytes of --force-grpc, about a MiB each) is built and
taken apart here without protobuf: its encoding is the field's tag, a varint length, then the
bytes. Sending copies the payload once; a received one is handed on as a view of the bytes
gRPC delivered (what the decoder then buffers is its business: not a range's payload)."""

from __future__ import annotations

from typing import NamedTuple

from google.protobuf.message import DecodeError

from blit_core.errors import ProtocolError
from blit_core.net.generated import blit_pb2 as pb

TRANSFER_SERVICE = pb.DESCRIPTOR.services_by_name["Blit"].full_name
TRANSFER_METHOD = f"/{TRANSFER_SERVICE}/Transfer"

_WIRE_TYPE_LEN = 2  # protobuf's length-delimited wire type
DATA_TAG = pb.Frame.DESCRIPTOR.fields_by_name["data"].number << 3 | _WIRE_TYPE_LEN
assert DATA_TAG < 0x80, "the data field's tag must stay one byte (a field number below 16)"
_FRAME_FIELDS = frozenset(pb.Frame.DESCRIPTOR.fields_by_name)
_VARINT_MAX_BYTES = 10


class DataFrame(NamedTuple):
    """A received Frame whose body is `data`, left unparsed: answers `HasField` and
    `WhichOneof` as the Frame would, and `data` is a view of the received bytes."""

    data: memoryview

    def HasField(self, field: str) -> bool:
        if field not in _FRAME_FIELDS:
            raise ValueError(f"Frame has no field {field!r}")
        return field == "data"

    def WhichOneof(self, oneof: str) -> str:
        return "data"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_data_frame(payload: bytes | bytearray | memoryview) -> bytes:
    """The serialized Frame(data=payload)."""
    return b"".join((bytes((DATA_TAG,)), _varint(len(payload)), payload))


def _data_payload(raw: bytes) -> memoryview | None:
    """The payload of a serialized frame that holds `data` and nothing else, else None."""
    if not raw or raw[0] != DATA_TAG:
        return None
    length = shift = 0
    for pos in range(1, min(len(raw), 1 + _VARINT_MAX_BYTES)):
        byte = raw[pos]
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            start = pos + 1
            return memoryview(raw)[start:] if start + length == len(raw) else None
    return None


def parse_frame(raw: bytes) -> pb.Frame | DataFrame:
    """A received frame: a DataFrame when only `data` is set, else the parsed Frame."""
    payload = _data_payload(raw)
    if payload is not None:
        return DataFrame(payload)
    try:
        return pb.Frame.FromString(raw)
    except DecodeError:
        raise ProtocolError("the peer sent a control frame that does not parse") from None
