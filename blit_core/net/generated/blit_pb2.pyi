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

class EntryType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OTHER: _ClassVar[EntryType]
    FILE: _ClassVar[EntryType]
    DIR: _ClassVar[EntryType]
    SYMLINK: _ClassVar[EntryType]
ROLE_UNSPECIFIED: Role
SOURCE: Role
DESTINATION: Role
OTHER: EntryType
FILE: EntryType
DIR: EntryType
SYMLINK: EntryType

class Frame(_message.Message):
    __slots__ = ("hello", "welcome", "roots", "manifest", "needs", "grant", "data", "summary", "done", "failure", "progress", "signature", "delta_done", "challenge", "auth")
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
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    DELTA_DONE_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
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
    signature: Signature
    delta_done: DeltaDone
    challenge: Challenge
    auth: AuthAnswer
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., welcome: _Optional[_Union[Welcome, _Mapping]] = ..., roots: _Optional[_Union[Roots, _Mapping]] = ..., manifest: _Optional[_Union[Manifest, _Mapping]] = ..., needs: _Optional[_Union[Needs, _Mapping]] = ..., grant: _Optional[_Union[DataGrant, _Mapping]] = ..., data: _Optional[bytes] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ..., done: _Optional[_Union[Done, _Mapping]] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., signature: _Optional[_Union[Signature, _Mapping]] = ..., delta_done: _Optional[_Union[DeltaDone, _Mapping]] = ..., challenge: _Optional[_Union[Challenge, _Mapping]] = ..., auth: _Optional[_Union[AuthAnswer, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("protocol", "client_version", "module", "paths", "client_role", "verb", "options", "force_grpc", "streams", "bwlimit", "user")
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
    USER_FIELD_NUMBER: _ClassVar[int]
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
    user: str
    def __init__(self, protocol: _Optional[int] = ..., client_version: _Optional[str] = ..., module: _Optional[str] = ..., paths: _Optional[_Iterable[str]] = ..., client_role: _Optional[_Union[Role, str]] = ..., verb: _Optional[str] = ..., options: _Optional[bytes] = ..., force_grpc: _Optional[bool] = ..., streams: _Optional[int] = ..., bwlimit: _Optional[int] = ..., user: _Optional[str] = ...) -> None: ...

class Challenge(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    def __init__(self, nonce: _Optional[bytes] = ...) -> None: ...

class AuthAnswer(_message.Message):
    __slots__ = ("answer",)
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    answer: bytes
    def __init__(self, answer: _Optional[bytes] = ...) -> None: ...

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
    __slots__ = ("roots", "make_dir", "has_make_dir", "backup_dir")
    ROOTS_FIELD_NUMBER: _ClassVar[int]
    MAKE_DIR_FIELD_NUMBER: _ClassVar[int]
    HAS_MAKE_DIR_FIELD_NUMBER: _ClassVar[int]
    BACKUP_DIR_FIELD_NUMBER: _ClassVar[int]
    roots: _containers.RepeatedCompositeFieldContainer[Root]
    make_dir: str
    has_make_dir: bool
    backup_dir: str
    def __init__(self, roots: _Optional[_Iterable[_Union[Root, _Mapping]]] = ..., make_dir: _Optional[str] = ..., has_make_dir: _Optional[bool] = ..., backup_dir: _Optional[str] = ...) -> None: ...

class Manifest(_message.Message):
    __slots__ = ("batch", "entries")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    batch: int
    entries: bytes
    def __init__(self, batch: _Optional[int] = ..., entries: _Optional[bytes] = ...) -> None: ...

class Needs(_message.Message):
    __slots__ = ("batch", "ids", "more")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    batch: int
    ids: _containers.RepeatedScalarFieldContainer[int]
    more: bool
    def __init__(self, batch: _Optional[int] = ..., ids: _Optional[_Iterable[int]] = ..., more: _Optional[bool] = ...) -> None: ...

class Signature(_message.Message):
    __slots__ = ("id", "block_size", "basis_size", "seed", "weak", "strong", "last")
    ID_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    BASIS_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WEAK_FIELD_NUMBER: _ClassVar[int]
    STRONG_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    id: int
    block_size: int
    basis_size: int
    seed: int
    weak: bytes
    strong: bytes
    last: bool
    def __init__(self, id: _Optional[int] = ..., block_size: _Optional[int] = ..., basis_size: _Optional[int] = ..., seed: _Optional[int] = ..., weak: _Optional[bytes] = ..., strong: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...

class DeltaDone(_message.Message):
    __slots__ = ("ended", "whole")
    ENDED_FIELD_NUMBER: _ClassVar[int]
    WHOLE_FIELD_NUMBER: _ClassVar[int]
    ended: _containers.RepeatedScalarFieldContainer[int]
    whole: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ended: _Optional[_Iterable[int]] = ..., whole: _Optional[_Iterable[int]] = ...) -> None: ...

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
    __slots__ = ("message", "exit_code", "retryable")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    message: str
    exit_code: int
    retryable: bool
    def __init__(self, message: _Optional[str] = ..., exit_code: _Optional[int] = ..., retryable: _Optional[bool] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("bytes", "files")
    BYTES_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    bytes: int
    files: int
    def __init__(self, bytes: _Optional[int] = ..., files: _Optional[int] = ...) -> None: ...

class ListModulesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChallengeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModuleInfo(_message.Message):
    __slots__ = ("name", "comment", "read_only")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    name: str
    comment: str
    read_only: bool
    def __init__(self, name: _Optional[str] = ..., comment: _Optional[str] = ..., read_only: _Optional[bool] = ...) -> None: ...

class ModuleList(_message.Message):
    __slots__ = ("modules", "motd", "server_version")
    MODULES_FIELD_NUMBER: _ClassVar[int]
    MOTD_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    modules: _containers.RepeatedCompositeFieldContainer[ModuleInfo]
    motd: str
    server_version: str
    def __init__(self, modules: _Optional[_Iterable[_Union[ModuleInfo, _Mapping]]] = ..., motd: _Optional[str] = ..., server_version: _Optional[str] = ...) -> None: ...

class PathRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: bytes
    def __init__(self, path: _Optional[bytes] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("path", "all")
    PATH_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    path: bytes
    all: bool
    def __init__(self, path: _Optional[bytes] = ..., all: _Optional[bool] = ...) -> None: ...

class Entry(_message.Message):
    __slots__ = ("path", "type", "size", "mode", "mtime_ns", "target")
    PATH_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    path: bytes
    type: EntryType
    size: int
    mode: int
    mtime_ns: int
    target: bytes
    def __init__(self, path: _Optional[bytes] = ..., type: _Optional[_Union[EntryType, str]] = ..., size: _Optional[int] = ..., mode: _Optional[int] = ..., mtime_ns: _Optional[int] = ..., target: _Optional[bytes] = ...) -> None: ...

class EntryBatch(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    def __init__(self, entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ...) -> None: ...

class FindRequest(_message.Message):
    __slots__ = ("path", "name", "type", "has_type", "min_size", "max_size", "newer_s", "limit")
    PATH_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HAS_TYPE_FIELD_NUMBER: _ClassVar[int]
    MIN_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEWER_S_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    path: bytes
    name: bytes
    type: EntryType
    has_type: bool
    min_size: int
    max_size: int
    newer_s: float
    limit: int
    def __init__(self, path: _Optional[bytes] = ..., name: _Optional[bytes] = ..., type: _Optional[_Union[EntryType, str]] = ..., has_type: _Optional[bool] = ..., min_size: _Optional[int] = ..., max_size: _Optional[int] = ..., newer_s: _Optional[float] = ..., limit: _Optional[int] = ...) -> None: ...

class DiskUsageRequest(_message.Message):
    __slots__ = ("path", "max_depth")
    PATH_FIELD_NUMBER: _ClassVar[int]
    MAX_DEPTH_FIELD_NUMBER: _ClassVar[int]
    path: bytes
    max_depth: int
    def __init__(self, path: _Optional[bytes] = ..., max_depth: _Optional[int] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("path", "bytes", "files")
    PATH_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    path: bytes
    bytes: int
    files: int
    def __init__(self, path: _Optional[bytes] = ..., bytes: _Optional[int] = ..., files: _Optional[int] = ...) -> None: ...

class UsageBatch(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Usage]
    def __init__(self, entries: _Optional[_Iterable[_Union[Usage, _Mapping]]] = ...) -> None: ...

class Space(_message.Message):
    __slots__ = ("total", "used", "free")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    total: int
    used: int
    free: int
    def __init__(self, total: _Optional[int] = ..., used: _Optional[int] = ..., free: _Optional[int] = ...) -> None: ...

class RemoveRequest(_message.Message):
    __slots__ = ("paths", "recursive", "dry_run")
    PATHS_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[bytes]
    recursive: bool
    dry_run: bool
    def __init__(self, paths: _Optional[_Iterable[bytes]] = ..., recursive: _Optional[bool] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class Removal(_message.Message):
    __slots__ = ("path", "files", "dirs", "bytes", "error")
    PATH_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    DIRS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    path: bytes
    files: int
    dirs: int
    bytes: int
    error: str
    def __init__(self, path: _Optional[bytes] = ..., files: _Optional[int] = ..., dirs: _Optional[int] = ..., bytes: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class RemoveReply(_message.Message):
    __slots__ = ("removals",)
    REMOVALS_FIELD_NUMBER: _ClassVar[int]
    removals: _containers.RepeatedCompositeFieldContainer[Removal]
    def __init__(self, removals: _Optional[_Iterable[_Union[Removal, _Mapping]]] = ...) -> None: ...

class Completions(_message.Message):
    __slots__ = ("paths",)
    PATHS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, paths: _Optional[_Iterable[bytes]] = ...) -> None: ...
