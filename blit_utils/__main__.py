"""`python -m blit_utils`: the same as the `blit-utils` command."""

from blit_utils.main import console_script

console_script()
