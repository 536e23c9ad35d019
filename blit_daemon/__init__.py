"""blit-daemon: the daemon that exports modules over gRPC and TCP (its own issue)."""
