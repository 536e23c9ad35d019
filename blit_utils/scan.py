"""`blit-utils scan`: the same verb as `blit scan` (blit_cli.scan), with blit-utils' --help."""

from __future__ import annotations

import argparse

from blit_cli import scan


def register(subparsers: argparse._SubParsersAction) -> None:
    sub = subparsers.add_parser("scan", add_help=False, help=scan.HELP,
                                description=scan.DESCRIPTION)
    scan.add_arguments(sub)
    sub.add_argument("--help", action="help", help="show this help and exit")
    sub.set_defaults(run=lambda args: scan.run(args, "blit-utils"))
