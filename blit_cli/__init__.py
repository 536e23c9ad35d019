"""blit's command line: a thin shell over blit_core.api."""
