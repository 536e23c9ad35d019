"""blit_core: the library under blit. It scans, plans and commits transfers; it never prints,
parses argv, reads the environment or exits. Front ends call `blit_core.api`."""

__version__ = "0.1.0"
