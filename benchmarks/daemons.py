"""The remote benchmark's two daemons, both listening on 127.0.0.1 only and exporting one
directory: ``rsync --daemon`` (module ``bench``) and ``blit-daemon`` (module ``default``),
and with ``--tls`` a second ``blit-daemon`` serving TLS with a throwaway certificate.

Each runs in its own session with its output appended to a log file, and is stopped with its
whole process group (SIGTERM, then SIGKILL after 5 s).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from benchmarks.runner import BenchError, tail_text
from benchmarks.workloads import log

LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 20.0  # seconds for a daemon to start listening


class Daemon:
    """A running daemon: ``port`` once it is ready, ``stop()`` to end it."""

    def __init__(self, name: str, argv: Sequence[str], log: Path) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log = log
        self.port = 0
        with log.open("ab") as out:
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise BenchError(f"cannot start the {name}: {exc}") from exc

    def wait_ready(self, ready_port: Callable[[], int | None]) -> None:
        """Poll ``ready_port`` until it gives the port; BenchError if the daemon exits first
        or takes longer than :data:`READY_TIMEOUT`."""
        deadline = time.monotonic() + READY_TIMEOUT
        while (port := ready_port()) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"the {self.name} did not start:\n{self.report()}")
            time.sleep(0.05)
        self.port = port

    def check(self) -> None:
        """BenchError if the daemon has exited."""
        if self.proc.poll() is not None:
            raise BenchError(
                f"the {self.name} exited with {self.proc.returncode}:\n{self.report()}"
            )

    def report(self) -> str:
        return f"  $ {shlex.join(self.argv)}\n{tail_text(self.log)}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        self._signal_group(signal.SIGKILL)  # the leader if still there, and any straggler
        self.proc.wait()

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


def start_rsync_daemon(root: Path, confdir: Path) -> Daemon:
    """``rsync --daemon`` serving ``root`` as module ``bench`` on a free 127.0.0.1 port."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port = probe.getsockname()[1]
    log = confdir / "rsyncd.log"
    conf = confdir / "rsyncd.conf"
    # As root, rsyncd would switch to "nobody"; keep root so it can write and keep owners.
    owner = "    uid = root\n    gid = root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"port = {port}\naddress = {LOOPBACK}\nhosts allow = {LOOPBACK}\n"
        f"use chroot = no\nreverse lookup = no\nlog file = {log}\n\n"
        f"[bench]\n    path = {root}\n    read only = false\n    munge symlinks = no\n{owner}"
    )
    daemon = Daemon("rsync daemon", ["rsync", "--daemon", "--no-detach", f"--config={conf}"], log)
    daemon.wait_ready(lambda: port if _rsyncd_greets(port) else None)
    return daemon


def _rsyncd_greets(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0) as sock:
            return sock.recv(64).startswith(b"@RSYNCD:")
    except OSError:
        return False


@contextlib.contextmanager
def running_daemons(root: Path, blit_command: Sequence[str], into: dict[str, Daemon],
                    *, tls: bool = False) -> Iterator[Path | None]:
    """``rsync --daemon`` and ``blit-daemon`` serving ``root`` (their configs and logs in
    ``root/conf``) as ``into["rsync"]`` and ``into["blit"]``, and with ``tls`` a TLS
    ``blit-daemon`` as ``into["blit-tls"]``, all stopped on the way out. Gives the CA file
    that the TLS daemon's certificate verifies against (None without ``tls``)."""
    conf = root / "conf"
    conf.mkdir()
    with contextlib.ExitStack() as stack:
        log("starting the rsync and blit daemons ...")
        into["rsync"] = start_rsync_daemon(root, conf)
        stack.callback(into["rsync"].stop)
        into["blit"] = start_blit_daemon(blit_command, root, conf)
        stack.callback(into["blit"].stop)
        if not tls:
            yield None
            return
        from tests.helpers.certs import make_certificates  # needs cryptography (test extra)

        certs = make_certificates(conf / "tls", "blit benchmark")
        into["blit-tls"] = start_blit_daemon(
            blit_command, root, conf, name="blit daemon (TLS)",
            config=f'[daemon]\ntls_cert = "{certs.cert}"\ntls_key = "{certs.key}"\n')
        stack.callback(into["blit-tls"].stop)
        yield certs.ca


def start_blit_daemon(command: Sequence[str], root: Path, confdir: Path,
                      config: str = "", name: str = "blit daemon") -> Daemon:
    """``blit-daemon`` serving ``root`` as module ``default`` on a port it picks, with
    ``config`` as its config file (empty by default: that keeps a system-wide one out);
    ``name`` names it in messages and names its log and config files."""
    stem = re.sub(r"\W+", "-", name).strip("-")
    log = confdir / f"{stem}.log"
    config_file = confdir / f"{stem}.toml"
    config_file.write_text(config)
    argv = [*command, "--config", config_file, "--root", root, "--port", "0", "--no-mdns"]
    daemon = Daemon(name, [*argv, "--bind", LOOPBACK], log)

    def ready_port() -> int | None:
        ready = re.search(r"ready on 127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        return int(ready.group(1)) if ready else None

    daemon.wait_ready(ready_port)
    return daemon
