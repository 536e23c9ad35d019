"""The `scan` verb of `blit` and `blit-utils`: browse for blit daemons announced with mDNS
(blit_core.discovery) and print them as a table or one JSON list. An empty result is exit 0
with a message on stderr."""

from __future__ import annotations

import argparse
import json
import os
import sys

DESCRIPTION = ("List the blit daemons that announce themselves with mDNS, each with an ENDPOINT"
               " to use as ENDPOINT:/module/path.")
HELP = "list the blit daemons announced on the local network"


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
        print("\n".join(discovery.describe(daemons)))
    if not daemons:
        sys.stderr.write(f"{program}: {discovery.nothing_found(args.wait, interfaces)}\n")
    return 0
