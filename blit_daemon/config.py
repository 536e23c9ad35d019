"""The daemon's configuration: a TOML file (read with tomllib) with one [daemon] table and one
[[module]] table per exported directory, then the command-line flags applied over it.

Every key is checked: unknown keys, wrong types (TOML booleans only where a bool is expected,
and no bool where a number is), out-of-range values and missing directories are refused with
one line naming the file, the key and the problem. Modules are counted from 1 in messages:
`module[1]` is the first [[module]] table.

Host rules (`hosts_allow`, `hosts_deny`) may be given for the daemon and for each module, as
arrays of addresses and CIDRs (blit_daemon/access.py says how they are read). A module may also
limit its sessions (`max_connections`), stay out of listings (`list = false`) and refuse
options by name (`refuse_options`).

A module with `auth_users` needs `[daemon] secrets_file`: `user:secret` lines (blank lines and
`#` comments aside), a regular file that neither group nor others may read or write, naming
every such user. Its secrets are read once per load (a SIGHUP reads them again).

`tls_cert` and `tls_key` (PEM files, given together) make the daemon speak TLS on the gRPC
port and on every data connection; they are checked at each load (blit_core.net.tls): both
readable, the key unencrypted, not open to others, and the certificate's."""

from __future__ import annotations

import math
import os
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from blit_core.errors import UsageError
from blit_core.locations import is_module_name
from blit_core.net.tls import ServerTls, TlsFileError, load_server_tls
from blit_core.units import parse_size
from blit_daemon.access import OPEN_TO_ALL, REFUSABLE, HostRules, Network, parse_network

DEFAULT_CONFIG_PATH = "/etc/blit/config.toml"


class ConfigError(Exception):
    """The configuration (file or flags) is unusable; the message is one line for the user."""


@dataclass(frozen=True)
class ModuleConfig:
    """One exported directory ("module"); `path` is absolute and symlink-free (realpath)."""

    name: str
    path: str
    read_only: bool = False
    comment: str = ""
    auth_users: tuple[str, ...] = ()  # who may log in to it; none: no login
    hosts: HostRules = OPEN_TO_ALL
    max_connections: int | None = None  # transfer sessions at once; None: no limit
    listed: bool = True  # shown by list-modules, scan and completion
    refuse_options: tuple[str, ...] = ()  # names from access.REFUSABLE


@dataclass(frozen=True)
class DaemonConfig:
    """Everything the daemon runs with. `source` is the file it was read from, if any."""

    bind: str = "127.0.0.1"
    port: int = 9031  # 0: an ephemeral port
    motd: str = ""
    mdns: bool = True
    mdns_name: str | None = None
    max_sessions: int = 64
    session_timeout: float = 60.0  # seconds of peer silence that end a session
    grace_period: float = 30.0  # seconds running sessions may take to finish at shutdown
    bwlimit: int | None = None  # bytes per second; None: no limit
    force_grpc_data: bool = False
    secrets_file: str | None = None
    hosts: HostRules = OPEN_TO_ALL
    tls_cert: str | None = None  # with tls_key: TLS on both planes
    tls_key: str | None = None
    modules: tuple[ModuleConfig, ...] = ()
    source: str | None = None
    secrets: Mapping[str, bytes] = field(default_factory=dict, repr=False)  # by user
    tls: ServerTls | None = field(default=None, repr=False, compare=False)  # from tls_cert/key

    def module(self, name: str) -> ModuleConfig | None:
        """The module called `name`, or None."""
        return next((m for m in self.modules if m.name == name), None)

    def visible_modules(self, address: str) -> tuple[ModuleConfig, ...]:
        """The modules listed to a peer at `address`: not `list = false`, and open to it."""
        return tuple(m for m in self.modules if m.listed and m.hosts.permits(address))


class _Invalid(Exception):
    """A value is wrong; the message is the problem, without the file and key."""


def _show(value: object) -> str:
    """A TOML value as the user wrote it, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value) if isinstance(value, str) else str(value)


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_show(value)}")
    return value


def _nonempty_string(value: object) -> str:
    text = _string(value)
    if not text:
        raise _Invalid("must not be empty")
    return text


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_show(value)}")
    return value


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"expected an integer, got {_show(value)}")
    return value


def _port(value: object) -> int:
    port = _integer(value)
    if not 0 <= port <= 65535:
        raise _Invalid(f"expected a port from 0 to 65535, got {port}")
    return port


def _at_least_one(value: object) -> int:
    count = _integer(value)
    if count < 1:
        raise _Invalid(f"expected at least 1, got {count}")
    return count


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Invalid(f"expected a number of seconds, got {_show(value)}")
    return float(value)


def _positive_seconds(value: object) -> float:
    seconds = _seconds(value)
    if seconds <= 0:
        raise _Invalid(f"expected more than 0 seconds, got {_show(value)}")
    return seconds


def _nonnegative_seconds(value: object) -> float:
    seconds = _seconds(value)
    if seconds < 0:
        raise _Invalid(f"expected 0 seconds or more, got {_show(value)}")
    return seconds


def _bwlimit(value: object) -> int:
    if isinstance(value, str):
        try:
            rate = parse_size(value)
        except UsageError as exc:
            raise _Invalid(str(exc)) from None
    elif isinstance(value, int) and not isinstance(value, bool):
        rate = value
    else:
        raise _Invalid(f"expected a size such as '50M' or a number of bytes, got {_show(value)}")
    if rate < 1:
        raise _Invalid(
            f"expected at least 1 byte per second, got {_show(value)} (leave it out for no limit)"
        )
    return rate


def _module_name(value: object) -> str:
    name = _string(value)
    if not is_module_name(name):
        raise _Invalid(
            f"invalid module name {name!r}: use a letter or digit, then letters, digits,"
            " '.', '_' or '-', at most 64 characters"
        )
    return name


def _users(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _Invalid(f"expected a non-empty array of user names, got {_show(value)}")
    return tuple(_user(item) for item in value)


def _user(value: object) -> str:
    name = _nonempty_string(value)
    if ":" in name or "@" in name or any(c.isspace() for c in name):
        raise _Invalid(f"invalid user name {name!r}: no ':', '@' or spaces")
    return name


def _networks(value: object) -> tuple[Network, ...]:
    if not isinstance(value, list):
        raise _Invalid(f"expected an array of addresses or CIDRs, got {_show(value)}")
    networks = []
    for item in value:
        try:
            networks.append(parse_network(_nonempty_string(item)))
        except ValueError:
            raise _Invalid(f"{item!r} is not an IP address or CIDR (such as 192.168.1.0/24);"
                           " host names are not supported") from None
    return tuple(networks)


def _refusable(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _Invalid(f"expected an array of option names, got {_show(value)}")
    for item in value:
        if _string(item) not in REFUSABLE:
            raise _Invalid(f"unknown option {item!r} (refusable: {', '.join(REFUSABLE)})")
    return tuple(value)


def _absolute_path(value: object) -> str:
    path = _nonempty_string(value)
    if "\0" in path:
        raise _Invalid("a path cannot contain NUL")
    if not os.path.isabs(path):
        raise _Invalid(f"expected an absolute path, got {path!r}")
    return path


def _directory(value: object) -> str:
    path = _string(value)
    if not os.path.isabs(path):
        raise _Invalid(f"expected an absolute path, got {path!r}")
    if not os.path.isdir(path):
        raise _Invalid(f"{path!r} is not an existing directory")
    return os.path.realpath(path)


_Check = Callable[[object], object]

_DAEMON_KEYS: Mapping[str, _Check] = {
    "bind": _nonempty_string,
    "port": _port,
    "motd": _string,
    "mdns": _boolean,
    "mdns_name": _nonempty_string,
    "max_sessions": _at_least_one,
    "session_timeout": _positive_seconds,
    "grace_period": _nonnegative_seconds,
    "bwlimit": _bwlimit,
    "force_grpc_data": _boolean,
    "secrets_file": _absolute_path,
    "hosts_allow": _networks,
    "hosts_deny": _networks,
    "tls_cert": _absolute_path,
    "tls_key": _absolute_path,
}

_MODULE_KEYS: Mapping[str, _Check] = {
    "name": _module_name,
    "path": _directory,
    "read_only": _boolean,
    "comment": _string,
    "auth_users": _users,
    "hosts_allow": _networks,
    "hosts_deny": _networks,
    "max_connections": _at_least_one,
    "list": _boolean,
    "refuse_options": _refusable,
}


def load_config(path: str) -> DaemonConfig:
    """Read and check the configuration file at `path`; ConfigError if it is unusable."""
    try:
        with open(path, "rb") as stream:
            document = tomllib.load(stream)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(f"{path}: invalid TOML: values nested too deeply") from None
    for key in document:
        if key not in ("daemon", "module"):
            raise ConfigError(f"{path}: {key}: unknown key (expected [daemon] or [[module]])")
    daemon = document.get("daemon", {})
    if not isinstance(daemon, dict):
        raise ConfigError(f"{path}: daemon: expected a [daemon] table, got {_show(daemon)}")
    tables = document.get("module", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: module: expected [[module]] tables, got {_show(tables)}")
    settings = _with_host_rules(_check_table(path, "daemon", daemon, _DAEMON_KEYS))
    tls = _server_tls(path, settings)
    modules: list[ModuleConfig] = []
    for number, table in enumerate(tables, start=1):
        where = f"module[{number}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {where}: expected a table, got {_show(table)}")
        values = _with_host_rules(_check_table(path, where, table, _MODULE_KEYS))
        if "list" in values:
            values["listed"] = values.pop("list")
        for required in ("name", "path"):
            if required not in values:
                raise ConfigError(
                    f"{path}: {where}.{required}: missing (each [[module]] needs a name and a path)"
                )
        module = ModuleConfig(**values)  # type: ignore[arg-type]
        if any(other.name == module.name for other in modules):
            raise ConfigError(f"{path}: {where}.name: duplicate module name {module.name!r}")
        modules.append(module)
    secrets: dict[str, bytes] = {}
    secrets_file = settings.get("secrets_file")
    wanted = {user: n for n, m in enumerate(modules, start=1) for user in m.auth_users}
    if wanted:
        if not isinstance(secrets_file, str):
            number = next(n for n, m in enumerate(modules, start=1) if m.auth_users)
            raise ConfigError(f"{path}: module[{number}].auth_users: needs [daemon] "
                              "secrets_file, the file that holds the users' secrets")
        secrets = load_secrets(secrets_file)
        for user, number in wanted.items():
            if user not in secrets:
                raise ConfigError(f"{path}: module[{number}].auth_users: user {user!r} has no "
                                  f"secret in {secrets_file}")
    return DaemonConfig(**settings, modules=tuple(modules), source=path,  # type: ignore[arg-type]
                        secrets=secrets, tls=tls)


def _server_tls(path: str, settings: Mapping[str, object]) -> ServerTls | None:
    """The daemon's TLS identity: tls_cert and tls_key go together, and must load as a
    matching pair."""
    cert, key = settings.get("tls_cert"), settings.get("tls_key")
    if cert is None and key is None:
        return None
    if not isinstance(cert, str) or not isinstance(key, str):
        given, missing = ("tls_cert", "tls_key") if key is None else ("tls_key", "tls_cert")
        raise ConfigError(f"{path}: daemon.{given}: needs daemon.{missing} too")
    try:
        return load_server_tls(cert, key)
    except TlsFileError as exc:
        raise ConfigError(f"{path}: daemon.{exc.key}: {exc}") from None


def load_secrets(path: str) -> dict[str, bytes]:
    """The `user:secret` lines of the secrets file; ConfigError if it is missing, not a
    regular file, open to group or others, or malformed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the secrets file: {exc.strerror or exc}") from None
    try:  # checked through the descriptor, before any read (a directory cannot be read)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: the secrets file is not a regular file")
        if st.st_mode & 0o077:
            raise ConfigError(f"{path}: the secrets file may be read or written by group or "
                              f"others (mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
        with os.fdopen(os.dup(fd), "rb") as stream:
            lines = stream.read().splitlines()
    finally:
        os.close(fd)
    secrets: dict[str, bytes] = {}
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith(b"#"):
            continue
        user, colon, secret = text.partition(b":")
        if not colon or not user or not secret:
            raise ConfigError(f"{path}: line {number}: expected user:secret")
        secrets[user.decode(errors="replace")] = secret
    return secrets


def _check_table(
    path: str, where: str, table: Mapping[str, object], checks: Mapping[str, _Check]
) -> dict[str, object]:
    """Each key of `table` checked and converted by its entry in `checks`."""
    values: dict[str, object] = {}
    for key, value in table.items():
        check = checks.get(key)
        if check is None:
            known = ", ".join(checks)
            raise ConfigError(f"{path}: {where}.{key}: unknown key (known keys: {known})")
        try:
            values[key] = check(value)
        except _Invalid as exc:
            raise ConfigError(f"{path}: {where}.{key}: {exc}") from None
    return values


def _with_host_rules(values: dict[str, object]) -> dict[str, object]:
    """`values` with its hosts_allow and hosts_deny made into one HostRules, `hosts`."""
    allow, deny = values.pop("hosts_allow", ()), values.pop("hosts_deny", ())
    if allow or deny:
        values["hosts"] = HostRules(allow, deny)  # type: ignore[arg-type]
    return values


def apply_overrides(
    config: DaemonConfig,
    *,
    bind: str | None = None,
    port: int | None = None,
    root: str | None = None,
    no_mdns: bool = False,
    mdns_name: str | None = None,
    force_grpc_data: bool = False,
) -> DaemonConfig:
    """`config` with the command-line flags applied over it (flags win over the file).

    `root` exports that directory as the module "default" when the file configures none.
    Raises ConfigError for a bad flag, and when no module is left to export."""
    changes: dict[str, object] = {}
    for flag, value, check, name in (
        ("--bind", bind, _nonempty_string, "bind"),
        ("--port", port, _port, "port"),
        ("--mdns-name", mdns_name, _nonempty_string, "mdns_name"),
    ):
        if value is not None:
            try:
                changes[name] = check(value)
            except _Invalid as exc:
                raise ConfigError(f"{flag}: {exc}") from None
    if no_mdns:
        changes["mdns"] = False
    if force_grpc_data:
        changes["force_grpc_data"] = True
    modules = config.modules
    if root is not None:
        if modules:
            raise ConfigError(
                f"--root: modules are already configured in {config.source or 'the configuration'};"
                " use one or the other"
            )
        if not os.path.isdir(root):
            raise ConfigError(f"--root: {root!r} is not an existing directory")
        modules = (ModuleConfig("default", os.path.realpath(root)),)
    if not modules:
        where = f" to {config.source}" if config.source else ""
        raise ConfigError(f"no module to export: give --root PATH or add a [[module]] table{where}")
    return replace(config, modules=modules, **changes)  # type: ignore[arg-type]
