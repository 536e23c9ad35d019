"""blit-utils: admin verbs against a daemon (arrives with the discovery and admin issue)."""
