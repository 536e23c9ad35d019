"""blit-daemon: the daemon that exports modules over gRPC and TCP (arrives with the daemon issue)."""
