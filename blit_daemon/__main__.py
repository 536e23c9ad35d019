"""`python -m blit_daemon`: the same as the blit-daemon command."""

from blit_daemon.cli import console_script

console_script()
