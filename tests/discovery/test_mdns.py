"""mDNS discovery: real blit-daemon processes on 127.0.0.1 announce themselves (on loopback
only, where they listen), `blit scan` and `blit-utils scan` find them, a stopped daemon says
goodbye, SIGHUP re-announces a changed module list; and the TXT record stays within its
limits however many modules there are."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from blit_cli.scan import describe
from blit_core import __version__, discovery
from blit_core.net.session import PROTOCOL_VERSION
from blit_daemon.child import ChildDaemon

WAIT_S = "1.5"
ANNOUNCE_TIMEOUT_S = 10.0
ANNOUNCEMENTS_OVER_S = 3.0  # zeroconf's three announcements take under a second
SUFFIX = os.getpid()  # names of their own, should another run share this loopback


def announcements(daemon: ChildDaemon, count: int = 1) -> list[str]:
    """The daemon's "mDNS: advertising" log lines, once there are `count` of them."""
    deadline = time.monotonic() + ANNOUNCE_TIMEOUT_S
    while time.monotonic() < deadline:
        lines = [line for line in list(daemon.log) if "mDNS: advertising" in line]
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"no announcement #{count} in the daemon's log:\n{''.join(daemon.log)}")


def wait_for_log(daemon: ChildDaemon, text: str) -> None:
    deadline = time.monotonic() + ANNOUNCE_TIMEOUT_S
    while not any(text in line for line in list(daemon.log)):
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{''.join(daemon.log)}"
        time.sleep(0.05)


def scan(program: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`blit scan` (program "blit_cli") or `blit-utils scan` ("blit_utils") on loopback."""
    return subprocess.run(
        [sys.executable, "-m", program, "scan", "--interface", "127.0.0.1", "--wait", WAIT_S,
         *args],
        capture_output=True, text=True, timeout=60, check=False)


def scan_json(program: str = "blit_cli") -> dict[str, dict]:
    """What `scan --json` finds, by instance name."""
    done = scan(program, "--json")
    assert done.returncode == 0, done.stderr
    return {entry["instance"]: entry for entry in json.loads(done.stdout)}


def write_config(path: Path, modules: dict[str, bool], daemon: str = "") -> Path:
    """A config file exporting a directory per module name (True: read-only), after the
    `daemon` table's text."""
    tables = [daemon]
    for name, read_only in modules.items():
        (path.parent / name).mkdir(exist_ok=True)
        tables.append(f'[[module]]\nname = "{name}"\npath = "{path.parent / name}"\n'
                      f"read_only = {'true' if read_only else 'false'}\n")
    path.write_text("\n".join(tables))
    return path


class Fleet:
    """Daemons on loopback: `a` (two modules, one read-only), `b`, `silent` (--no-mdns),
    `quiet` (`mdns = false` in its config) and `twin` (started after `a` announced, asking for
    `a`'s name)."""

    def __init__(self, base: Path) -> None:
        self.names = {key: f"blit-test-{key}-{SUFFIX}" for key in ("a", "b", "silent", "quiet")}
        (base / "a").mkdir()
        config = write_config(base / "a" / "blit.toml", {"photos": False, "archive": True})
        self.daemons: list[ChildDaemon] = []
        self.a = self._start(mdns=True, args=("--config", str(config),
                                              "--mdns-name", self.names["a"]))
        self.b = self._start(mdns=True, args=self._root(base, "b"))
        self.silent = self._start(mdns=False, args=self._root(base, "silent"))
        (base / "quiet").mkdir()
        quiet = write_config(base / "quiet" / "blit.toml", {"q": False}, "[daemon]\nmdns = false\n")
        self.quiet = self._start(mdns=True, args=("--config", str(quiet),
                                                  "--mdns-name", self.names["quiet"]))
        announcements(self.a)
        self.twin = self._start(mdns=True, args=("--root", str(base / "b"),
                                                 "--mdns-name", self.names["a"]))
        for daemon in (self.b, self.twin):
            announcements(daemon)
        self.base = base
        self.ready_at = time.monotonic()

    def _root(self, base: Path, key: str) -> tuple[str, ...]:
        (base / key).mkdir()
        return ("--root", str(base / key), "--mdns-name", self.names[key])

    def _start(self, *, mdns: bool, args: tuple[str, ...]) -> ChildDaemon:
        daemon = ChildDaemon(*args, mdns=mdns)
        self.daemons.append(daemon)
        return daemon

    def stop(self) -> None:
        for daemon in self.daemons:
            daemon.stop()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    running = Fleet(tmp_path_factory.mktemp("fleet"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def found(fleet: Fleet) -> dict[str, dict]:
    return scan_json()


@pytest.fixture(scope="module")
def table(fleet: Fleet) -> list[str]:
    done = scan("blit_cli")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout.splitlines()


def test_scan_json_gives_the_daemons_port_endpoint_and_modules(fleet: Fleet,
                                                               found: dict[str, dict]) -> None:
    assert found[fleet.names["a"]] == {
        "instance": fleet.names["a"],
        "endpoint": f"127.0.0.1:{fleet.a.port}",
        "host": found[fleet.names["a"]]["host"],
        "addresses": ["127.0.0.1"],
        "port": fleet.a.port,
        "version": __version__,
        "protocol": PROTOCOL_VERSION,
        "modules": [{"name": "photos", "read_only": False},
                    {"name": "archive", "read_only": True}],
        "module_count": 2,
    }
    assert found[fleet.names["a"]]["host"].endswith(".local")


def test_daemons_with_distinct_names_are_all_found_in_sorted_order(
        fleet: Fleet, found: dict[str, dict]) -> None:
    assert found[fleet.names["b"]]["port"] == fleet.b.port
    assert found[fleet.names["b"]]["modules"] == [{"name": "default", "read_only": False}]
    assert list(found) == sorted(found, key=str.casefold)


def test_a_taken_name_gets_a_free_one_which_the_daemon_logs(fleet: Fleet,
                                                            found: dict[str, dict]) -> None:
    renamed = f"{fleet.names['a']}-2"
    assert announcements(fleet.twin) == [
        f"blit-daemon: mDNS: advertising {renamed} ({fleet.names['a']} is taken) on 127.0.0.1"
        " (modules: default)\n"]
    assert found[renamed]["port"] == fleet.twin.port
    assert found[fleet.names["a"]]["port"] == fleet.a.port


def test_a_name_taken_long_ago_on_this_machine_is_found_taken(fleet: Fleet) -> None:
    """`b` finished announcing seconds ago, so only an answer to a question tells a newcomer
    that the name is in use (zeroconf's probe alone missed it: its answer goes to port 5353,
    which the kernel may give to any daemon on this machine)."""
    time.sleep(max(0.0, fleet.ready_at + ANNOUNCEMENTS_OVER_S - time.monotonic()))
    late = ChildDaemon("--root", str(fleet.base / "b"), "--mdns-name", fleet.names["b"],
                       mdns=True)
    try:
        assert announcements(late) == [
            f"blit-daemon: mDNS: advertising {fleet.names['b']}-2 ({fleet.names['b']} is taken)"
            " on 127.0.0.1 (modules: default)\n"]
    finally:
        late.stop()


@pytest.mark.parametrize("key", ["silent", "quiet"])
def test_a_daemon_with_mdns_off_is_not_found(fleet: Fleet, found: dict[str, dict],
                                             key: str) -> None:
    """Off with --no-mdns (`silent`) or with `mdns = false` in the config (`quiet`)."""
    daemon = fleet.silent if key == "silent" else fleet.quiet
    assert fleet.names[key] not in found
    assert daemon.port not in {entry["port"] for entry in found.values()}
    assert not any("mDNS" in line for line in daemon.log)


def test_a_failure_to_advertise_is_one_warning_and_the_daemon_serves_on(
        tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_bytes(b"still served")
    daemon = ChildDaemon("--root", str(tmp_path), "--mdns-name", "x" * 64, mdns=True)
    try:
        wait_for_log(daemon, "mDNS: not advertising")
        done = subprocess.run(
            [sys.executable, "-m", "blit_utils", "ls", f"127.0.0.1:{daemon.port}:/default"],
            capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode, done.stdout.split()) == (0, ["keep.txt"]), done.stderr
        assert daemon.proc.poll() is None
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0
    warnings = [line for line in daemon.log if "mDNS" in line]
    assert warnings == [f"blit-daemon: mDNS: not advertising: the name {'x' * 64!r} is longer "
                        "than 63 bytes\n"]


def test_scan_table_has_aligned_sorted_rows_with_ready_endpoints(fleet: Fleet,
                                                                 table: list[str]) -> None:
    header, *rows = table
    assert header.split() == ["INSTANCE", "ENDPOINT", "HOST", "ADDRESSES", "VERSION", "MODULES"]
    instances = [row.split()[0] for row in rows]
    assert instances == sorted(instances, key=str.casefold)
    ours = {row.split()[0]: row for row in rows}
    row_a = ours[fleet.names["a"]]
    assert row_a.split()[1:] == [f"127.0.0.1:{fleet.a.port}", row_a.split()[2], "127.0.0.1",
                                 __version__, "photos,", "archive", "(ro)"]
    assert ours[fleet.names["b"]].split()[1] == f"127.0.0.1:{fleet.b.port}"
    for column in ("ENDPOINT", "VERSION", "MODULES"):
        starts = {row.index(row.split()[header.split().index(column)]) for row in rows
                  if row.split()[0] in ours}
        assert starts == {header.index(column)}


def test_the_endpoint_works_for_a_transfer(fleet: Fleet, found: dict[str, dict],
                                           tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("found by mDNS\n")
    endpoint = found[fleet.names["b"]]["endpoint"]
    done = subprocess.run([sys.executable, "-m", "blit_cli", "copy", str(tmp_path / "file.txt"),
                           f"{endpoint}:/default/found/"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    pulled = tmp_path / "pulled"
    done = subprocess.run([sys.executable, "-m", "blit_cli", "copy",
                           f"{endpoint}:/default/found/file.txt", f"{pulled}/"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert (pulled / "file.txt").read_text() == "found by mDNS\n"


def test_blit_utils_scan_prints_what_blit_scan_prints(fleet: Fleet, found: dict[str, dict],
                                                       table: list[str]) -> None:
    ours = {fleet.names["a"], fleet.names["b"]}
    utils = scan_json("blit_utils")
    assert {name: utils[name] for name in ours} == {name: found[name] for name in ours}
    done = scan("blit_utils")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == table[0].split()
    assert ([row.split() for row in rows if row.split()[0] in ours]
            == [row.split() for row in table[1:] if row.split()[0] in ours])


async def _stop_and_see_goodbye(daemon: ChildDaemon, instance: str) -> None:
    """Watch the daemon from a browser of our own (loopback only), stop it, and see the
    announcement withdrawn: a daemon that vanished without goodbye would stay listed for
    its records' lifetime (minutes)."""
    added, removed = asyncio.Event(), asyncio.Event()

    def changed(zeroconf: Zeroconf, service_type: str, name: str,
                state_change: ServiceStateChange) -> None:
        if name == f"{instance}.{discovery.SERVICE_TYPE}":
            (removed if state_change is ServiceStateChange.Removed else added).set()

    async with AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only) as own:
        browser = AsyncServiceBrowser(own.zeroconf, discovery.SERVICE_TYPE, handlers=[changed])
        await asyncio.wait_for(added.wait(), 5)
        await asyncio.to_thread(daemon.stop)
        await asyncio.wait_for(removed.wait(), 3)
        await browser.async_cancel()


def test_a_stopped_daemon_withdraws_its_announcement(tmp_path: Path) -> None:
    instance = f"blit-test-stop-{SUFFIX}"
    daemon = ChildDaemon("--root", str(tmp_path), "--mdns-name", instance, mdns=True)
    try:
        announcements(daemon)
        asyncio.run(_stop_and_see_goodbye(daemon, instance))
    finally:
        daemon.stop()
    assert daemon.proc.returncode == 0
    assert instance not in scan_json()


def test_sighup_reannounces_new_modules_a_bad_config_changes_nothing(
        tmp_path: Path) -> None:
    instance = f"blit-test-hup-{SUFFIX}"
    config = write_config(tmp_path / "blit.toml", {"one": False})
    daemon = ChildDaemon("--config", str(config), "--mdns-name", instance, mdns=True)
    try:
        announcements(daemon)
        config.write_text('[daemon]\nport = "many"\n')
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for_log(daemon, "reload refused")
        write_config(config, {"one": False, "two": True}, "[daemon]\nmax_sessions = 3\n")
        daemon.proc.send_signal(signal.SIGHUP)
        assert announcements(daemon, 2)[1] == (
            f"blit-daemon: mDNS: advertising {instance} on 127.0.0.1 (modules: one, two)\n")
        entry = scan_json()[instance]
        assert entry["modules"] == [{"name": "one", "read_only": False},
                                    {"name": "two", "read_only": True}]
        assert entry["port"] == daemon.port
        # both services run with the new configuration
        listed = subprocess.run([sys.executable, "-m", "blit_utils", "list-modules", "--json",
                                 entry["endpoint"]], capture_output=True, text=True, timeout=60,
                                check=False)
        assert [(m["name"], m["read_only"]) for m in json.loads(listed.stdout)["modules"]] == [
            ("one", False), ("two", True)]
        pushed = subprocess.run([sys.executable, "-m", "blit_cli", "copy", str(config),
                                 f"{entry['endpoint']}:/two/"], capture_output=True, text=True,
                                timeout=60, check=False)
        assert (pushed.returncode, pushed.stderr) == (
            5, "blit: error: module 'two' is read-only\n")
    finally:
        daemon.stop()
    refused = [line for line in daemon.log if "reload refused" in line]
    assert refused == [f"blit-daemon: reload refused, keeping the running configuration: "
                       f"{config}: daemon.port: expected an integer, got 'many'\n"]
    assert "blit-daemon: reload: restart the daemon to apply max_sessions = 3\n" in daemon.log
    assert not any("Traceback" in line for line in daemon.log)


def _in_empty_network(*command: str) -> subprocess.CompletedProcess[str]:
    """`command` inside a network namespace of its own with only `lo`: nothing to find."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot create a network namespace (needs root)")
    return subprocess.run(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                           *command], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("program", "name"), [("blit_cli", "blit"),
                                                ("blit_utils", "blit-utils")])
def test_finding_nothing_exits_0_with_a_message(program: str, name: str) -> None:
    base = [sys.executable, "-m", program, "scan", "--wait", "0.5"]
    message = (f"{name}: no blit daemons found (browsed 0.5s for _blit._tcp.local. on "
               "127.0.0.1)\n")
    done = _in_empty_network(*base, "--interface", "127.0.0.1")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", message)
    done = _in_empty_network(*base, "--interface", "127.0.0.1", "--json")
    assert (done.returncode, json.loads(done.stdout), done.stderr) == (0, [], message)
    assert os.environ[discovery.INTERFACES_ENV] == "127.0.0.1"  # set by conftest.py
    done = _in_empty_network(*base)  # the interfaces come from the environment
    assert (done.returncode, done.stdout, done.stderr) == (0, "", message)


@pytest.mark.parametrize("program", ["blit_cli", "blit_utils"])
def test_a_reader_that_goes_away_ends_the_scan_quietly(program: str) -> None:
    """`blit scan | head -1`, with the pipe closed before anything is written: exit 0, and
    not a word about the broken pipe."""
    stdout_r, stdout_w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", program, "scan", "--interface", "127.0.0.1",
                             "--wait", "0.3", "--json"],
                            stdout=stdout_w, stderr=subprocess.PIPE, text=True)
    os.close(stdout_w)
    os.close(stdout_r)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "pipe" not in stderr.lower() and "Traceback" not in stderr


def test_scan_refuses_an_interface_that_is_not_an_address() -> None:
    done = subprocess.run([sys.executable, "-m", "blit_cli", "scan", "--interface", "eth0"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        "blit: error: interface 'eth0': expected an IP address of this machine, such as"
        " 127.0.0.1")


def test_txt_module_list_is_cut_to_one_txt_string_and_counts_every_module() -> None:
    modules = [discovery.ModuleInfo(f"module-{i:02d}-" + "x" * 50, read_only=i % 3 == 0)
               for i in range(20)]
    properties = discovery.txt_properties(modules)
    for key, value in properties.items():
        assert len(f"{key}={value}".encode()) <= discovery.TXT_MAX
    kept = discovery.parse_modules(properties["modules"])
    assert kept == tuple(modules[:len(kept)])  # whole names, in order, read-only kept
    assert 0 < len(kept) < len(modules)
    entry = modules[len(kept)].name + (":ro" if modules[len(kept)].read_only else "")
    assert len(f"modules={properties['modules']},{entry}".encode()) > discovery.TXT_MAX
    assert properties["nmodules"] == "20"
    assert properties["version"] == __version__
    assert properties["protocol"] == str(PROTOCOL_VERSION)


def test_a_short_module_list_is_announced_whole() -> None:
    modules = [discovery.ModuleInfo("photos"), discovery.ModuleInfo("archive", read_only=True)]
    assert discovery.txt_properties(modules)["modules"] == "photos,archive:ro"
    assert discovery.parse_modules("photos,archive:ro") == tuple(modules)


def test_the_table_says_how_many_modules_were_cut() -> None:
    daemon = discovery.DaemonInfo(
        instance="blit@nas", host="nas.local", addresses=("192.0.2.7",), port=9031,
        endpoint="192.0.2.7:9031", version="0.1.0", protocol=1,
        modules=(discovery.ModuleInfo("a"), discovery.ModuleInfo("b", read_only=True)),
        module_count=5)
    assert describe([daemon]) == [
        "INSTANCE  ENDPOINT        HOST       ADDRESSES  VERSION  MODULES",
        "blit@nas  192.0.2.7:9031  nas.local  192.0.2.7  0.1.0    a, b (ro), (+3 more)",
    ]


async def _scan_while_announcing(info: AsyncServiceInfo) -> subprocess.CompletedProcess[str]:
    async with AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only) as own:
        await own.async_register_service(info)
        try:
            return await asyncio.to_thread(scan, "blit_cli")
        finally:
            await own.async_unregister_service(info)


def test_a_hostile_announcement_is_shown_escaped_and_breaks_nothing() -> None:
    """Anyone on the network can announce anything: control characters in the host name and
    the properties, and numbers that are not numbers ("²", 200 digits) are escaped or
    ignored, never a crash. (zeroconf itself refuses control characters in instance names.)"""
    instance = f"evil-{SUFFIX}"
    info = AsyncServiceInfo(
        discovery.SERVICE_TYPE, f"{instance}.{discovery.SERVICE_TYPE}",
        addresses=[socket.inet_aton("127.0.0.1")], port=9,
        server="evil\x1b[31m.local.",
        properties={b"version": b"1\n2", b"protocol": "²".encode(), b"nmodules": b"9" * 200,
                    b"modules": b"m\x07od:ro"})
    done = asyncio.run(_scan_while_announcing(info))
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith(instance))
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert row.split()[:5] == [instance, "127.0.0.1:9", "evil\\#033[31m.local",
                               "127.0.0.1", "1\\#0122"]
    assert row.endswith("m\\#007od (ro)")
