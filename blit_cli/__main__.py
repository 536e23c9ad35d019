"""`python -m blit_cli`: the same as the `blit` command."""

from blit_cli.main import console_script

console_script()
