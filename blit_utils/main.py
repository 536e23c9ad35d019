"""`blit-utils`: admin verbs against a blit daemon, one gRPC call each. This module builds the
parser from the verb modules (each registers its own sub-commands), runs the chosen verb and
maps errors to exit codes: 0 ok, 1 usage, 5 cannot connect or refused, 23 partial, 30 timeout."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from blit_cli.parsing import Parser
from blit_cli.render import drop_stdout
from blit_core import __version__
from blit_core.errors import BlitError, UsageError
from blit_utils import completions, scan, verbs

EXIT_CODES = """exit codes:
  0   success
  1   usage error
  5   cannot connect to the daemon, or it refused the request
  20  interrupted
  23  partial: some paths could not be removed (rm)
  30  the daemon did not answer within --timeout
"""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="blit-utils",
        description="Inspect and tidy the modules of a blit daemon: blit-utils VERB --help"
        " for each verb.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"blit-utils {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    scan.register(subparsers)
    verbs.register(subparsers)
    completions.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BlitError as exc:
        _error(str(exc), usage=isinstance(exc, UsageError))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 20
    except BrokenPipeError:  # `blit-utils find ... | head`
        drop_stdout()
        return 0


def _error(message: str, *, usage: bool = False) -> None:
    hint = "\nTry 'blit-utils --help' for more." if usage else ""
    sys.stderr.write(f"blit-utils: error: {message}{hint}\n")


def console_script() -> None:
    sys.exit(main())
