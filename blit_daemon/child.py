"""A blit-daemon run as a child process on 127.0.0.1 with an ephemeral port and, unless asked
for, no mDNS: started, waited for until its ready line names the port, its log kept, and
stopped. Used by `blit demo` and by the tests."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

from blit_core.errors import RemoteError

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


class ChildDaemon:
    def __init__(self, *args: str, mdns: bool = False, port: int = 0) -> None:
        """`args`: what to export, e.g. ("--root", PATH) or ("--config", PATH); `mdns`:
        announce it (on 127.0.0.1 only, where it listens); `port`: 0 for an ephemeral one."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "blit_daemon", *args, "--bind", "127.0.0.1", "--port",
             str(port),
             *([] if mdns else ["--no-mdns"])],
            stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        self.log: list[str] = []
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            self.log.append(line)
            ready = re.search(r"ready on 127\.0\.0\.1:(\d+)", line)
            if ready:
                self.port = int(ready.group(1))
                threading.Thread(target=self._keep_log, daemon=True).start()
                return
            if not line:
                break
        self.stop()
        raise RemoteError(f"blit-daemon did not start: {''.join(self.log).strip()}")

    def _keep_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # drained, so the daemon never blocks on its log
            self.log.append(line)

    def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL after STOP_TIMEOUT_S."""
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
