"""Resolving what a client names ("/module/path") to a module of the daemon and a path beneath
its root: the module looked up by name, the rest checked as a plain relative path (refused,
never normalised), and its parent directory opened without following any symlink. Shared by
the Transfer service and the admin service."""

from __future__ import annotations

import os

from blit_core import pathsafe
from blit_core.errors import ProtocolError, RemoteError
from blit_daemon.config import DaemonConfig, ModuleConfig


def find_module(config: DaemonConfig, name: str, address: str) -> ModuleConfig:
    """The module called `name`, for a peer at `address`; RemoteError naming the modules it
    may see when there is none, and when the module's host rules keep `address` out."""
    module = config.module(name)
    if module is None:
        names = ", ".join(m.name for m in config.visible_modules(address)) or "none you may see"
        raise RemoteError(f"unknown module {name!r} (this daemon has: {names})")
    if not module.hosts.permits(address):
        raise RemoteError(f"module {name!r} does not accept connections from {address} "
                          "(its hosts_allow / hosts_deny)")
    return module


def module_relative(module: ModuleConfig, virtual: str) -> str:
    """The module-relative part of "/module/path", refused (never normalised) if unsafe."""
    prefix = f"/{module.name}"
    if virtual != prefix and not virtual.startswith(prefix + "/"):
        raise ProtocolError(f"path {virtual!r} is outside module {module.name!r}")
    return pathsafe.validate_wire_path(virtual[len(prefix):].strip("/"))


def resolve(config: DaemonConfig, virtual: str, address: str) -> tuple[ModuleConfig, str]:
    """The module a "/module/path" names (find_module), and the module-relative rest ("" for
    its root)."""
    if not virtual.startswith("/"):
        raise ProtocolError(f"path {virtual!r} does not start with /module")
    module = find_module(config, virtual[1:].partition("/")[0], address)
    return module, module_relative(module, virtual)


def open_parent(module: ModuleConfig, rel: str) -> tuple[int, str]:
    """(descriptor of the directory holding `rel`, its name), walked from the module root
    without following symlinks; for the module root itself, (its descriptor, ""). The caller
    closes the descriptor."""
    head, _, name = rel.rpartition("/")
    root_fd = pathsafe.open_root(module.path)
    try:
        return pathsafe.open_beneath(root_fd, head), name
    finally:
        os.close(root_fd)
