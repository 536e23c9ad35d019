"""Resolving what a client names ("/module/path") to a module of the daemon and a path beneath
its root: the module looked up by name, the rest checked as a plain relative path (refused,
never normalised), and its parent directory opened without following any symlink. Shared by
the Transfer service and the admin service."""

from __future__ import annotations

import os

from blit_core import pathsafe
from blit_core.errors import ProtocolError, RemoteError
from blit_daemon.config import DaemonConfig, ModuleConfig


def find_module(config: DaemonConfig, name: str) -> ModuleConfig:
    """The module called `name`; RemoteError naming the modules there are when none is."""
    module = config.module(name)
    if module is None:
        names = ", ".join(m.name for m in config.modules)
        raise RemoteError(f"unknown module {name!r} (this daemon has: {names})")
    return module


def module_relative(module: ModuleConfig, virtual: str) -> str:
    """The module-relative part of "/module/path", refused (never normalised) if unsafe."""
    prefix = f"/{module.name}"
    if virtual != prefix and not virtual.startswith(prefix + "/"):
        raise ProtocolError(f"path {virtual!r} is outside module {module.name!r}")
    return pathsafe.validate_wire_path(virtual[len(prefix):].strip("/"))


def resolve(config: DaemonConfig, virtual: str) -> tuple[ModuleConfig, str]:
    """The module a "/module/path" names, and the module-relative rest ("" for its root)."""
    if not virtual.startswith("/"):
        raise ProtocolError(f"path {virtual!r} does not start with /module")
    module = find_module(config, virtual[1:].partition("/")[0])
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
