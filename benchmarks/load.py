"""``python -m benchmarks load``: one blit-daemon on 127.0.0.1 and many concurrent clients
pushing and pulling their own trees for a while, with the daemon's memory, descriptors and
``max_sessions`` refusal checked along the way.

The clients (:func:`run_load`, also used by ``tests/remote/test_load.py``) are threads of this
process, each running one ``blit mirror`` after another until the duration is over, alternating
a push of its local tree into the module and a pull of its tree in the module, each into a
fresh destination that is then compared with the source (types, permission bits, mtimes in
ns, sizes and content digests). Then comes the paced round: every client starts one more
transfer with ``--bwlimit`` (so that it lasts about ``paced_seconds``); once every one of them
is writing its destination, all ``max_sessions`` sessions are open, and one more client
(beyond ``max_sessions``) must be refused with exit 5 and a "busy" message, promptly.

Measured meanwhile: the daemon's RSS (at the start, its peak, after the run) and its open file
descriptors (``/proc/PID/fd``) before the clients start and after they are done, which must be
equal after a short settling wait.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.daemons import LOOPBACK, start_blit_daemon
from benchmarks.report import default_json_path, fmt, machine_header, machine_info, verdict
from benchmarks.report import write_json as write_json_file
from benchmarks.rss import read_rss, sampling
from benchmarks.runner import BenchError, mb, positive_float, positive_int
from benchmarks.workloads import KiB, MiB, TreeSpec, generate_tree, log, remove_tree

BLIT_CLIENT = [sys.executable, "-m", "blit_cli"]
BLIT_DAEMON = [sys.executable, "-m", "blit_daemon"]
DEFAULT_CLIENTS = 32
DEFAULT_DURATION_S = 120.0
DEFAULT_PACED_S = 30.0  # how long each transfer of the paced round lasts
RSS_LIMIT_MB = 512.0  # the daemon's peak RSS, at most
PROMPT_S = 10.0  # the client beyond max_sessions is refused within this
SETTLE_S = 10.0  # for the daemon's descriptors to come back to their start after the run
TRANSFER_TIMEOUT_S = 300.0  # a transfer still running after this is killed and fails
RSS_INTERVAL_S = 0.1
DIRECTIONS = ("push", "pull")


def client_spec(index: int) -> TreeSpec:
    """Client ``index``'s tree: 200 small files of 1-8 KiB and two files of 2-4 MiB (sizes vary
    from client to client)."""
    return TreeSpec(big_files=2, big_size=(2 + index % 3) * MiB + 4099 * index, dirs=4,
                    files_per_dir=50, small_size=(1 + index % 8) * KiB)


def make_client_tree(root: Path, index: int) -> None:
    """:func:`generate_tree` of :func:`client_spec`, with a few modes other than 0644 and a
    symlink."""
    generate_tree(root, client_spec(index), progress=lambda _: None)
    os.chmod(root / "big_00.bin", 0o755)
    os.chmod(root / "d0001" / "f00000.bin", 0o600)
    os.chmod(root / "d0002", 0o750)
    os.symlink("../big_01.bin", root / "d0003" / "link")


def _content(path: str, st: os.stat_result) -> str | None:
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            return f"{st.st_size}:{hashlib.file_digest(f, 'blake2b').hexdigest()}"
    return os.readlink(path) if stat.S_ISLNK(st.st_mode) else None


def tree_state(root: Path) -> dict[str, tuple[int, int, str | None]]:
    """Every path under ``root`` ("." for the root) -> (st_mode, mtime in ns, and a regular
    file's size and BLAKE2b digest or a symlink's target). Symlinks are not followed."""
    state: dict[str, tuple[int, int, str | None]] = {}
    for folder, _, files in os.walk(root):
        for path in (folder, *(os.path.join(folder, name) for name in files)):
            st = os.lstat(path)
            state[os.path.relpath(path, root)] = (st.st_mode, st.st_mtime_ns, _content(path, st))
    return state


def _differences(want: dict[str, Any], got: dict[str, Any]) -> str:
    """The first few paths where two :func:`tree_state` differ."""
    paths = sorted(p for p in want.keys() | got.keys() if want.get(p) != got.get(p))
    shown = [f"{p}: source {want.get(p)}, destination {got.get(p)}" for p in paths[:3]]
    return "; ".join(shown) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def open_fds(pid: int) -> int | None:
    """How many descriptors ``pid`` has open (None when it is gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


@dataclass
class Transfer:
    """One ``blit mirror`` of the run; ``error`` is empty when it exited 0 and verified."""

    client: int
    direction: str
    paced: bool
    seconds: float
    nbytes: int
    returncode: int
    error: str


@dataclass
class Probe:
    """The client beyond ``max_sessions``: its exit, how long it took and its message."""

    returncode: int | None
    seconds: float
    message: str
    sessions_held: int  # paced transfers still running when it finished

    def met(self) -> bool:
        return (self.returncode == 5 and "busy" in self.message.lower()
                and self.seconds <= PROMPT_S)


@dataclass
class LoadResult:
    clients: int
    duration: float
    loop_seconds: float = 0.0  # from the start to the end of the last unpaced transfer
    transfers: list[Transfer] = field(default_factory=list)
    probe: Probe | None = None
    rss_start: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    fds_before: int | None = None
    fds_after: int | None = None

    def errors(self) -> list[str]:
        return [f"client {t.client} {t.direction}{' (paced)' if t.paced else ''}: {t.error}"
                for t in self.transfers if t.error]

    def loop_bytes(self) -> int:
        return sum(t.nbytes for t in self.transfers if not t.paced and not t.error)

    def mb_per_s(self) -> float | None:
        return mb(self.loop_bytes()) / self.loop_seconds if self.loop_seconds else None

    def checks(self) -> list[tuple[str, str, str, bool | None]]:
        """(requirement, measured, limit, met?) rows."""
        done = len(self.transfers)
        ok = done - len(self.errors())
        counts = ", ".join(f"{sum(t.direction == d for t in self.transfers)} {d}"
                           for d in DIRECTIONS)
        paced = sum(t.paced for t in self.transfers)
        probe = self.probe
        probe_text = ("not run" if probe is None else
                      f"exit {probe.returncode} after {probe.seconds:.1f} s, {probe.sessions_held}"
                      f" sessions still open: {probe.message or '(no message)'}")
        loop = [t for t in self.transfers if not t.paced]
        return [
            ("every transfer exits 0 and verifies",
             f"{ok} of {done} ({counts}; {paced} paced)", "all", ok == done and done > 0),
            ("daemon RSS", f"{mb(self.rss_start):.1f} MB at start, {mb(self.rss_peak):.1f} MB "
             f"peak, {mb(self.rss_end):.1f} MB after", f"peak <= {RSS_LIMIT_MB:g} MB",
             mb(self.rss_peak) <= RSS_LIMIT_MB),
            ("daemon open fds", f"{self.fds_before} before, {self.fds_after} after", "equal",
             self.fds_after is not None and self.fds_after == self.fds_before),
            (f"client {self.clients + 1} while {self.clients} sessions run", probe_text,
             f'exit 5, "busy", <= {PROMPT_S:g} s', probe is not None and probe.met()),
            ("aggregate throughput", f"{fmt(self.mb_per_s(), 1)} MB/s: {len(loop)} transfers, "
             f"{mb(self.loop_bytes()):,.0f} MB in {self.loop_seconds:.1f} s", "—", None),
        ]

    def met(self) -> bool:
        return all(met is not False for *_, met in self.checks())

    def markdown(self) -> str:
        rows = [f"| {what} | {measured} | {limit} | {verdict(met)} |"
                for what, measured, limit, met in self.checks()]
        errors = self.errors()
        tail = ["", "Failures:", *(f"- {e}" for e in errors[:20])] if errors else []
        if len(errors) > 20:
            tail.append(f"- ... and {len(errors) - 20} more")
        return "\n".join(["| requirement | measured | limit | met? |", "|---|---|---|---|",
                          *rows, *tail]) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "mb_per_s": self.mb_per_s(), "met": self.met(),
                "checks": [dict(zip(("requirement", "measured", "limit", "met"), row,
                                    strict=True)) for row in self.checks()]}


class Client:
    """Client ``index``'s trees (``local/src-N`` to push into ``module/push-N``, ``module/src-N``
    to pull into ``local/pull-N``) and the transfer it is running."""

    def __init__(self, index: int, port: int, module: Path, local: Path) -> None:
        self.index = index
        self.port = port
        self.local_src, self.module_src = local / f"src-{index}", module / f"src-{index}"
        self.push_dst, self.pull_dst = module / f"push-{index}", local / f"pull-{index}"
        for root in (self.local_src, self.module_src):
            make_client_tree(root, index)
        self.states = {"push": tree_state(self.local_src), "pull": tree_state(self.module_src)}
        self.nbytes = client_spec(index).total_bytes
        self.proc: subprocess.Popen[str] | None = None
        self.paced_dst: Path | None = None  # set while its paced transfer runs

    def _endpoint(self, path: Path, module: Path) -> str:
        return f"{LOOPBACK}:{self.port}:/default/{path.relative_to(module)}/"

    def argv(self, direction: str, module: Path) -> tuple[list[str], Path]:
        """``blit mirror SRC/ DST/`` for a push or a pull, and its destination."""
        if direction == "push":
            return [f"{self.local_src}/", self._endpoint(self.push_dst, module)], self.push_dst
        return [self._endpoint(self.module_src, module), f"{self.pull_dst}/"], self.pull_dst

    def writing(self) -> bool:
        """Its paced transfer is running and has written into its destination."""
        proc, dst = self.proc, self.paced_dst
        return (proc is not None and dst is not None and proc.poll() is None
                and dst.is_dir() and any(dst.iterdir()))


class LoadRun:
    """The clients of one run against a daemon on 127.0.0.1 (:func:`run_load`)."""

    def __init__(self, port: int, module: Path, local: Path, clients: int, duration: float,
                 paced_seconds: float) -> None:
        self.port, self.module, self.local = port, module, local
        self.duration, self.paced_seconds = duration, paced_seconds
        local.mkdir(parents=True, exist_ok=True)
        self.clients = [Client(i, port, module, local) for i in range(clients)]
        self.result = LoadResult(clients, duration)
        self.deadline = 0.0
        self.aborted = threading.Event()
        self.paced_round = threading.Barrier(clients + 1)  # the clients and the coordinator
        self.lock = threading.Lock()

    def _transfer(self, client: Client, direction: str, paced: bool) -> None:
        paths, dst = client.argv(direction, self.module)
        shutil.rmtree(dst, ignore_errors=True)
        pace = ["--bwlimit", str(max(1, int(client.nbytes / self.paced_seconds)))] if paced else []
        timeout = TRANSFER_TIMEOUT_S + (self.paced_seconds if paced else 0)
        started = time.monotonic()
        try:
            returncode, error = self._mirror(client, [*pace, *paths], timeout,
                                             dst if paced else None)
        except OSError as exc:  # e.g. no memory to fork: a failed transfer, not a crashed run
            returncode, error = -1, f"cannot run blit: {exc}"
        seconds = time.monotonic() - started
        if not error:
            got = tree_state(dst)
            if got != client.states[direction]:
                error = "the destination differs: " + _differences(client.states[direction], got)
        with self.lock:
            self.result.transfers.append(Transfer(client.index, direction, paced, seconds,
                                                  client.nbytes, returncode, error))

    @staticmethod
    def _mirror(client: Client, args: list[str], timeout: float,
                paced_dst: Path | None) -> tuple[int, str]:
        """Run ``blit mirror ARGS`` as ``client.proc``: its exit status and error ("" if 0)."""
        client.proc = subprocess.Popen([*BLIT_CLIENT, "mirror", *args], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True)
        client.paced_dst = paced_dst  # after .proc: with a paced_dst, .proc is its transfer
        try:
            _, err = client.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            client.proc.kill()
            client.proc.communicate()
            return client.proc.returncode, f"still running after {timeout:g} s (killed)"
        code = client.proc.returncode
        return code, f"exit {code}: {err.strip()}" if code else ""

    def _loop(self, client: Client) -> None:
        direction = DIRECTIONS[client.index % 2]
        while time.monotonic() < self.deadline and not self.aborted.is_set():
            self._transfer(client, direction, paced=False)
            direction = "pull" if direction == "push" else "push"
        try:
            self.paced_round.wait()
        except threading.BrokenBarrierError:
            return
        self._transfer(client, direction, paced=True)

    def _probe(self, probe_file: Path) -> Probe:
        """Wait until every paced transfer is writing, then run one more client."""
        deadline = time.monotonic() + TRANSFER_TIMEOUT_S
        while not all(c.writing() for c in self.clients):
            ended = any(c.paced_dst is not None and c.proc is not None
                        and c.proc.poll() is not None for c in self.clients)
            if ended or time.monotonic() > deadline:
                held = sum(c.writing() for c in self.clients)
                return Probe(None, 0.0, f"only {held} of {len(self.clients)} sessions were open "
                             "at once: lengthen the paced round", held)
            time.sleep(0.05)
        started = time.monotonic()
        argv = [*BLIT_CLIENT, "copy", str(probe_file), f"{LOOPBACK}:{self.port}:/default/probe"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                                  timeout=TRANSFER_TIMEOUT_S)
            code, message = proc.returncode, proc.stderr.strip()
        except subprocess.TimeoutExpired:
            code, message = None, f"still running after {TRANSFER_TIMEOUT_S:g} s (killed)"
        seconds = time.monotonic() - started
        return Probe(code, seconds, message, sum(c.writing() for c in self.clients))

    def run(self, pid: int) -> LoadResult:
        """Run the clients against the daemon ``pid``, then the paced round and the probe."""
        result = self.result
        probe_file = self.local / "busy-probe.bin"
        probe_file.write_bytes(os.urandom(KiB))
        result.fds_before = open_fds(pid)
        result.rss_start = read_rss(pid)
        threads = [threading.Thread(target=self._loop, args=(c,), name=f"client-{c.index}")
                   for c in self.clients]
        with sampling(pid, RSS_INTERVAL_S) as sampler:
            started = time.monotonic()
            self.deadline = started + self.duration
            for thread in threads:
                thread.start()
            try:
                self.paced_round.wait(self.duration + TRANSFER_TIMEOUT_S + 60)
                result.loop_seconds = time.monotonic() - started
                result.probe = self._probe(probe_file)
                for thread in threads:
                    thread.join()
            except threading.BrokenBarrierError:
                raise BenchError("the clients did not reach the paced round in time") from None
            finally:
                self._stop(threads)
            result.fds_after = _settled_fds(pid, result.fds_before)
            result.rss_end = read_rss(pid)
        result.rss_peak = sampler.peak_rss_bytes
        return result

    def _stop(self, threads: list[threading.Thread]) -> None:
        """End whatever still runs (after an error or Ctrl-C)."""
        self.aborted.set()
        self.paced_round.abort()
        for client in self.clients:
            if client.proc is not None and client.proc.poll() is None:
                client.proc.kill()
        for thread in threads:
            thread.join()


def _settled_fds(pid: int, before: int | None) -> int | None:
    """The daemon's descriptor count once it is back to ``before`` or SETTLE_S have passed."""
    deadline = time.monotonic() + SETTLE_S
    while (now := open_fds(pid)) != before and now is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    return now


def run_load(port: int, pid: int, module: Path, local: Path, clients: int, duration: float,
             paced_seconds: float) -> LoadResult:
    """``clients`` concurrent clients of the daemon ``pid`` listening on 127.0.0.1:``port`` and
    exporting ``module`` as ``default`` with ``max_sessions = clients``, for ``duration``
    seconds, then the paced round of ``paced_seconds`` and the client beyond max_sessions. The
    clients' trees are made in ``module`` and ``local``, and left there."""
    return LoadRun(port, module, local, clients, duration, paced_seconds).run(pid)


# -- the command ------------------------------------------------------------------------


def add_parser(sub: Any) -> None:
    """The ``load`` subcommand of ``python -m benchmarks``."""
    parser = sub.add_parser(
        "load",
        help="many concurrent clients pushing and pulling through one blit-daemon on 127.0.0.1",
        description="Run one blit-daemon (max_sessions = the client count) and concurrent "
        "clients pushing and pulling their own trees for a while; check that every transfer "
        "verifies, the daemon's RSS stays bounded, its descriptors come back, and one client "
        "more is refused as busy.",
    )
    parser.add_argument("--clients", type=positive_int, default=DEFAULT_CLIENTS,
                        help=f"concurrent clients, and the daemon's max_sessions (default "
                        f"{DEFAULT_CLIENTS})")
    parser.add_argument("--duration", type=positive_float, default=DEFAULT_DURATION_S,
                        metavar="SECS",
                        help=f"how long the clients loop (default {DEFAULT_DURATION_S:g})")
    parser.add_argument("--paced-seconds", type=positive_float, default=DEFAULT_PACED_S,
                        metavar="SECS", help="length of each transfer of the paced round, "
                        f"during which the extra client is tried (default {DEFAULT_PACED_S:g})")
    parser.add_argument("--dir", type=Path, default=Path("/dev/shm"),
                        help="create the workspace under DIR (default /dev/shm)")
    parser.add_argument("--json", type=Path,
                        help="JSON output (default benchmarks/results/load-<ts>.json)")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown report here")


def run(args: argparse.Namespace) -> int:
    """Run ``python -m benchmarks load``; 1 if a requirement is not met."""
    ws = Path(tempfile.mkdtemp(prefix="blit-bench-load-", dir=args.dir)).resolve()
    info = machine_info(ws)
    module, conf = ws / "module", ws / "conf"
    module.mkdir()
    conf.mkdir()
    result = LoadResult(args.clients, args.duration)
    error = None
    daemon = None
    try:
        daemon = start_blit_daemon(BLIT_DAEMON, module, conf,
                                   config=f"[daemon]\nmax_sessions = {args.clients}\n")
        log(f"blit-daemon ready on {LOOPBACK}:{daemon.port}; making {args.clients} clients' "
            f"trees in {ws} ...")
        load = LoadRun(daemon.port, module, ws / "local", args.clients, args.duration,
                       args.paced_seconds)
        result = load.result
        log(f"{args.clients} clients for {args.duration:g} s, then the paced round ...")
        load.run(daemon.proc.pid)
        daemon.check()
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        error = str(exc)
        log(f"error: {exc}")
    except KeyboardInterrupt:
        error = "interrupted"
        log("interrupted")
    finally:
        if daemon is not None:
            daemon.stop()
        remove_tree(ws)
    write_json_file(args.json or default_json_path("load"),
                    {"kind": "load", "machine": info, "argv": sys.argv, "error": error,
                     "daemon": daemon.argv if daemon else None, **result.to_json()})
    sizes = [mb(client_spec(i).total_bytes) for i in range(args.clients)]
    notes = [f"_{args.clients} clients (`python -m blit_cli mirror SRC/ DST/`, alternating push "
             f"and pull, each tree {min(sizes):.1f}-{max(sizes):.1f} MB in "
             f"{client_spec(0).total_files} files and a symlink) for {args.duration:g} s "
             f"against one blit-daemon with max_sessions = {args.clients}; then a paced round "
             f"of {args.paced_seconds:g} s; MB = 2^20 bytes_"]
    if error:
        notes.append(f"_ABORTED: {error.splitlines()[0]}_")
    report = "\n".join([machine_header(info), "", *notes, "", result.markdown()])
    sys.stdout.write(report)
    if args.markdown:
        args.markdown.write_text(report)
    return 0 if result.met() and not error else 1
