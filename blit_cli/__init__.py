"""blit's command line (and the parser and TLS flags blit-utils and blit-daemon share).

grpc's C core logs through absl at INFO unless told otherwise, so a failed TLS handshake
would print a second, raw line under blit's own error; its threshold is read once, when grpc
loads, and every front end imports this package first."""

import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
