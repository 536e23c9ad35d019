from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    SOURCE: _ClassVar[Role]
    DESTINATION: _ClassVar[Role]
ROLE_UNSPECIFIED: Role
SOURCE: Role
DESTINATION: Role

class Frame(_message.Message):
    __slots__ = ("hello", "welcome", "roots", "manifest", "needs", "grant", "data", "summary", "done", "failure", "progress")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ROOTS_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    NEEDS_FIELD_NUMBER: _ClassVar[int]
    GRANT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    welcome: Welcome
    roots: Roots
    manifest: Manifest
    needs: Needs
    grant: DataGrant
    data: bytes
    summary: Summary
    done: Done
    failure: Failure
    progress: Progress
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., welcome: _Optional[_Union[Welcome, _Mapping]] = ..., roots: _Optional[_Union[Roots, _Mapping]] = ..., manifest: _Optional[_Union[Manifest, _Mapping]] = ..., needs: _Optional[_Union[Needs, _Mapping]] = ..., grant: _Optional[_Union[DataGrant, _Mapping]] = ..., data: _Optional[bytes] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ..., done: _Optional[_Union[Done, _Mapping]] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("protocol", "client_version", "module", "paths", "client_role", "verb", "options", "force_grpc", "streams", "bwlimit")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ROLE_FIELD_NUMBER: _ClassVar[int]
    VERB_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    FORCE_GRPC_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    BWLIMIT_FIELD_NUMBER: _ClassVar[int]
    protocol: int
    client_version: str
    module: str
    paths: _containers.RepeatedScalarFieldContainer[str]
    client_role: Role
    verb: str
    options: bytes
    force_grpc: bool
    streams: int
    bwlimit: int
    def __init__(self, protocol: _Optional[int] = ..., client_version: _Optional[str] = ..., module: _Optional[str] = ..., paths: _Optional[_Iterable[str]] = ..., client_role: _Optional[_Union[Role, str]] = ..., verb: _Optional[str] = ..., options: _Optional[bytes] = ..., force_grpc: _Optional[bool] = ..., streams: _Optional[int] = ..., bwlimit: _Optional[int] = ...) -> None: ...

class PathState(_message.Message):
    __slots__ = ("exists", "is_dir")
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    IS_DIR_FIELD_NUMBER: _ClassVar[int]
    exists: bool
    is_dir: bool
    def __init__(self, exists: _Optional[bool] = ..., is_dir: _Optional[bool] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("protocol", "server_version", "paths", "motd", "force_grpc_data", "bwlimit")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    MOTD_FIELD_NUMBER: _ClassVar[int]
    FORCE_GRPC_DATA_FIELD_NUMBER: _ClassVar[int]
    BWLIMIT_FIELD_NUMBER: _ClassVar[int]
    protocol: int
    server_version: str
    paths: _containers.RepeatedCompositeFieldContainer[PathState]
    motd: str
    force_grpc_data: bool
    bwlimit: int
    def __init__(self, protocol: _Optional[int] = ..., server_version: _Optional[str] = ..., paths: _Optional[_Iterable[_Union[PathState, _Mapping]]] = ..., motd: _Optional[str] = ..., force_grpc_data: _Optional[bool] = ..., bwlimit: _Optional[int] = ...) -> None: ...

class Root(_message.Message):
    __slots__ = ("src", "dst", "prefix", "is_dir")
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    IS_DIR_FIELD_NUMBER: _ClassVar[int]
    src: str
    dst: str
    prefix: str
    is_dir: bool
    def __init__(self, src: _Optional[str] = ..., dst: _Optional[str] = ..., prefix: _Optional[str] = ..., is_dir: _Optional[bool] = ...) -> None: ...

class Roots(_message.Message):
    __slots__ = ("roots", "make_dir", "has_make_dir")
    ROOTS_FIELD_NUMBER: _ClassVar[int]
    MAKE_DIR_FIELD_NUMBER: _ClassVar[int]
    HAS_MAKE_DIR_FIELD_NUMBER: _ClassVar[int]
    roots: _containers.RepeatedCompositeFieldContainer[Root]
    make_dir: str
    has_make_dir: bool
    def __init__(self, roots: _Optional[_Iterable[_Union[Root, _Mapping]]] = ..., make_dir: _Optional[str] = ..., has_make_dir: _Optional[bool] = ...) -> None: ...

class Manifest(_message.Message):
    __slots__ = ("batch", "entries")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    batch: int
    entries: bytes
    def __init__(self, batch: _Optional[int] = ..., entries: _Optional[bytes] = ...) -> None: ...

class Needs(_message.Message):
    __slots__ = ("batch", "ids")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    batch: int
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, batch: _Optional[int] = ..., ids: _Optional[_Iterable[int]] = ...) -> None: ...

class DataGrant(_message.Message):
    __slots__ = ("port", "token", "streams")
    PORT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    port: int
    token: bytes
    streams: int
    def __init__(self, port: _Optional[int] = ..., token: _Optional[bytes] = ..., streams: _Optional[int] = ...) -> None: ...

class Summary(_message.Message):
    __slots__ = ("report", "confirmed", "last", "events")
    REPORT_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    report: bytes
    confirmed: bytes
    last: bool
    events: bytes
    def __init__(self, report: _Optional[bytes] = ..., confirmed: _Optional[bytes] = ..., last: _Optional[bool] = ..., events: _Optional[bytes] = ...) -> None: ...

class Done(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: bytes
    def __init__(self, report: _Optional[bytes] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ("message", "exit_code")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    message: str
    exit_code: int
    def __init__(self, message: _Optional[str] = ..., exit_code: _Optional[int] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("bytes", "files")
    BYTES_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    bytes: int
    files: int
    def __init__(self, bytes: _Optional[int] = ..., files: _Optional[int] = ...) -> None: ...
