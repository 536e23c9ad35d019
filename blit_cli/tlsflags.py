"""The client's TLS flags, shared by blit and blit-utils: --tls, and --tls-ca FILE."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from blit_core.net.tls import ClientTls


def add_arguments(group: argparse._ActionsContainer) -> None:
    group.add_argument("--tls", action="store_true",
                       help="talk TLS to the daemon, checking its certificate against the "
                       "system's CA certificates; fail (exit 5) if it does not use TLS")
    group.add_argument("--tls-ca", metavar="FILE",
                       help="like --tls, checking the daemon's certificate against the CA "
                       "certificates in FILE (PEM)")


def from_args(args: argparse.Namespace) -> ClientTls | None:
    """The TLS the flags ask for; None: plain TCP. UsageError for an unusable --tls-ca."""
    if not (args.tls or args.tls_ca):
        return None
    from blit_core.net.tls import client_tls  # grpc: only for a remote transfer

    return client_tls(args.tls_ca)
