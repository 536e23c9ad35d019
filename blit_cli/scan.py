"""The `scan` verb of `blit` and `blit-utils`: browse for blit daemons announced with mDNS
(blit_core.discovery) and print them as a table or one JSON list. An empty result is exit 0
with a message on stderr."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from blit_cli.render import escape_name

if TYPE_CHECKING:
    from blit_core.discovery import DaemonInfo

DESCRIPTION = ("List the blit daemons that announce themselves with mDNS, each with an ENDPOINT"
               " to use as ENDPOINT:/module/path.")
HELP = "list the blit daemons announced on the local network"
COLUMNS = ("INSTANCE", "ENDPOINT", "HOST", "ADDRESSES", "VERSION", "MODULES")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", type=float, default=2.0, metavar="SECS",
                        help="listen for SECS seconds (default: 2)")
    parser.add_argument("--interface", action="append", metavar="ADDR",
                        help="browse on the interface with this IP address (repeatable; default:"
                        " the addresses in $BLIT_MDNS_INTERFACES, else every interface)")
    parser.add_argument("--json", action="store_true", help="print one JSON list on stdout")


def run(args: argparse.Namespace, program: str) -> int:
    from blit_core import discovery  # zeroconf costs ~70 ms of start-up: only when scanning

    interfaces = args.interface or discovery.interfaces_from_setting(
        os.environ.get(discovery.INTERFACES_ENV))
    daemons = discovery.browse(args.wait, interfaces)
    if args.json:
        print(json.dumps([daemon.to_json() for daemon in daemons], indent=2))
    elif daemons:
        print("\n".join(describe(daemons)))
    if not daemons:
        sys.stderr.write(f"{program}: {discovery.nothing_found(args.wait, interfaces)}\n")
    return 0


def describe(daemons: Sequence[DaemonInfo]) -> list[str]:
    """A header, then one aligned row per daemon, in the order given (browse() sorts), every
    announced text escaped as file names are. Read-only modules are marked "(ro)"; a cut
    module list ends with "(+N more)"."""
    rows = [COLUMNS] + [
        tuple(escape_name(cell) for cell in (d.instance, d.endpoint, d.host, ",".join(d.addresses),
                                             d.version, _modules_text(d)))
        for d in daemons
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS) - 1)]
    return ["  ".join([*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)),
                       row[-1]]) for row in rows]


def _modules_text(daemon: DaemonInfo) -> str:
    names = [m.name + (" (ro)" if m.read_only else "") for m in daemon.modules]
    missing = daemon.module_count - len(daemon.modules)
    if missing:
        names.append(f"(+{missing} more)")
    return ", ".join(names) or "-"
