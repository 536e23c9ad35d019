"""`blit-daemon`: the daemon's command line. Reads the configuration file, applies the flags over
it, sets up logging and hands over to blit_daemon.server; a bad configuration exits 1 with one
line on stderr before anything starts."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys

from blit_cli.parsing import Parser
from blit_core import __version__
from blit_core.runtime import tune_process
from blit_daemon.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    DaemonConfig,
    apply_overrides,
    load_config,
)

DESCRIPTION = f"""Export directories ("modules") to blit clients over the network.

Modules come from the [[module]] tables of the config file ({DEFAULT_CONFIG_PATH}
when it exists, or --config PATH), or from --root PATH, which exports one directory as
the module "default". Clients name files as host:/module/path, for example
  blit copy photos/ nas:/default/photos/
The flags below win over the config file."""

EPILOG = """signals:
  SIGHUP          read the config file again and apply the flags over it (modules, motd and
                  limits change live; bind, port and max_sessions need a restart)
  SIGTERM/SIGINT  stop gracefully

exit codes:
  0   clean stop
  1   bad configuration or usage
  10  cannot bind the address
"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="blit-daemon",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH",
                        help=f"read this TOML config file (default: {DEFAULT_CONFIG_PATH}"
                        " if it exists)")
    parser.add_argument("--bind", metavar="ADDR",
                        help="listen on this address (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, metavar="N",
                        help="listen on this TCP port (default 9031; 0 picks a free one)")
    parser.add_argument("--root", metavar="PATH",
                        help='export PATH as the module "default" (when the config has none)')
    parser.add_argument("--no-mdns", action="store_true",
                        help="do not announce the daemon on the local network (mDNS)")
    parser.add_argument("--mdns-name", metavar="NAME", help="announce the daemon under NAME")
    parser.add_argument("--force-grpc-data", action="store_true",
                        help="carry file data inside the gRPC connection, never over a separate"
                        " TCP data connection")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    parser.add_argument("--version", action="version", version=f"blit-daemon {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure = functools.partial(_configure, args)
    try:
        config = configure()
    except ConfigError as exc:
        sys.stderr.write(f"blit-daemon: error: {exc}\n")
        return 1
    logging.basicConfig(level=logging.INFO, format="blit-daemon: %(message)s", stream=sys.stderr)
    if args.verbose:  # blit's own detail; grpc's and zeroconf's debug output stays out
        for name in ("blit_daemon", "blit_core"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    from blit_daemon.server import run_server

    tune_process()
    return run_server(config, reload=configure)


def _configure(args: argparse.Namespace) -> DaemonConfig:
    """The configuration file with the flags applied over it: at start, and again for each
    reload (SIGHUP). Raises ConfigError."""
    return apply_overrides(
        _read_config(args.config),
        bind=args.bind,
        port=args.port,
        root=args.root,
        no_mdns=args.no_mdns,
        mdns_name=args.mdns_name,
        force_grpc_data=args.force_grpc_data,
    )


def _read_config(path: str | None) -> DaemonConfig:
    """The file named by --config, else the default file if it exists, else the defaults."""
    if path is not None:
        return load_config(path)
    if os.path.exists(DEFAULT_CONFIG_PATH):
        return load_config(DEFAULT_CONFIG_PATH)
    return DaemonConfig()


def console_script() -> None:
    sys.exit(main())
