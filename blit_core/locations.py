"""Parsing one command-line location: a local path, or a path inside a module of a blit daemon.

Remote locations look like `host:/module/path`, with an optional port (`host:9031:/module/path`)
and IPv6 addresses in brackets (`[::1]:9031:/module/path`), and a user to log in as before an
'@' (`alice@host:/module/path`). As in rsync, a name is local when it
has no ':', starts with '/', '.' or '~', or has a '/' before its first ':'; so `./a:b` names a
local file with a colon in it. Pure string work: no I/O."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from blit_core.errors import UsageError

_MODULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HOST_NAME = re.compile(r"[A-Za-z0-9._-]+")
_PORT_PREFIX = re.compile(r"([0-9]+):")


def is_module_name(name: str) -> bool:
    """Whether `name` is a valid module name: a letter or digit, then at most 63 letters,
    digits, '.', '_' or '-'."""
    return _MODULE_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class RemoteLocation:
    """A path inside a module exported by a blit daemon."""

    host: str  # without brackets for IPv6
    port: int | None  # None: the default port
    module: str
    path: str  # module-relative and normalised, without a trailing '/'; "" is the module root
    trailing_slash: bool  # the user ended it with '/' (or '/.'): "the contents of", as rsync
    user: str = ""  # who logs in to the module ("" for nobody)

    def address(self, default_port: int) -> str:
        """`host:port` (`[v6]:port` for IPv6): the target to connect to."""
        port = default_port if self.port is None else self.port
        return f"{self._host_text()}:{port}"

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        path = f"/{self.path}" if self.path else ""
        slash = "/" if self.trailing_slash else ""
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self._host_text()}{port}:/{self.module}{path}{slash}"

    def _host_text(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


def parse_location(text: str) -> str | RemoteLocation:
    """`text` itself when it names a local path, else the remote location it spells.

    Raises UsageError when `text` looks remote but is malformed."""
    first_colon = text.find(":")
    if first_colon < 0 or text.startswith(("/", ".", "~")) or "/" in text[:first_colon]:
        return text
    user = ""
    at = text.find("@")
    if 0 <= at < first_colon:
        user, text = text[:at], text[at + 1:]
        if not user or any(c.isspace() or c in ":/" for c in user):
            raise UsageError(f"{user!r}: not a user name (write USER@HOST:/module/path)")
    host, after = _split_host(text)
    port = None
    match = _PORT_PREFIX.match(after)
    if match:
        digits = match[1]
        if len(digits) > 5 or not 1 <= int(digits) <= 65535:
            raise UsageError(f"{text!r}: port {digits} is not between 1 and 65535")
        port = int(digits)
        after = after[match.end():]
    if after and not after.startswith("/"):
        raise UsageError(
            f"{text!r}: remote paths look like host:/module/path"
            f" (a local name with a colon can be written ./{text})"
        )
    if "\\" in after or "\x00" in after:
        raise UsageError(f"{text!r}: a remote path cannot contain a backslash or NUL")
    raw = after.split("/")
    if ".." in raw:
        raise UsageError(f"{text!r}: '..' is not allowed in a remote path")
    parts = [part for part in raw if part not in ("", ".")]
    if not parts:
        daemon = text[: len(text) - len(after) - 1]  # what the user wrote before ':' and path
        raise UsageError(
            f"{text!r} names no module: remote paths look like host:/module/path;"
            f" to see the modules, run: blit-utils list-modules {daemon}"
        )
    module, *rest = parts
    if not is_module_name(module):
        raise UsageError(
            f"{text!r}: {module!r} is not a module name (a letter or digit, then letters,"
            " digits, '.', '_' or '-'; at most 64 characters)"
        )
    return RemoteLocation(host, port, module, "/".join(rest), raw[-1] in ("", "."), user)


def _split_host(text: str) -> tuple[str, str]:
    """The host of a remote location, and what follows the ':' after it."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UsageError(f"{text!r}: missing ']' after the IPv6 address")
        host, after = text[1:end], text[end + 1 :]
        if not after.startswith(":"):
            raise UsageError(f"{text!r}: expected ':' after ']'")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UsageError(f"{text!r}: [{host}] is not an IPv6 address") from None
        return host, after[1:]
    host, _, after = text.partition(":")
    local_hint = f" (a local name with a colon can be written ./{text})"
    if not host:
        raise UsageError(f"{text!r}: the host before ':' is missing{local_hint}")
    if not _HOST_NAME.fullmatch(host):
        raise UsageError(f"{text!r}: {host!r} is not a host name{local_hint}")
    return host, after
