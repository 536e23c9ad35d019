"""Access control beyond logins, against a real blit-daemon on 127.0.0.1: host rules for the
daemon (every call, admin ones too) and per module, modules kept out of listings
(`list = false`) yet usable by name, `refuse_options`, and `max_connections` with its "busy"
refusal, which `--retries` waits out. Also the rules themselves (rsync's reading of allow and
deny lists) and which modules the bind warning names."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.admin import utils
from helpers.daemon import Daemon, run
from helpers.procs import bytes_arrived, wait_for
from helpers.treecheck import assert_same_tree, find_temp_files

from blit_daemon.access import HostRules, parse_network, peer_address
from blit_daemon.config import ConfigError, load_config
from blit_daemon.server import _writable_by_anyone

MODULES = {  # name: extra lines of its [[module]] table
    "open": "",
    "allowed": 'hosts_allow = ["127.0.0.1"]',
    "allowed_first": 'hosts_allow = ["127.0.0.1/32"]\nhosts_deny = ["127.0.0.0/8"]',
    "denied": 'hosts_deny = ["127.0.0.0/8"]',
    "elsewhere": 'hosts_allow = ["10.0.0.0/8", "fd00::/8"]',
    "hidden": "list = false",
    "nodelete": 'refuse_options = ["delete", "checksum"]',
    "single": "max_connections = 1",
}


def write_config(base: Path, daemon_lines: str = "") -> Path:
    tables = []
    for name, extra in MODULES.items():
        (base / name).mkdir(parents=True, exist_ok=True)
        tables.append(f'[[module]]\nname = "{name}"\npath = "{base / name}"\n{extra}\n')
    config = base / "blit.toml"
    config.write_text(f"[daemon]\n{daemon_lines}\n\n" + "\n".join(tables))
    return config


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    base = tmp_path_factory.mktemp("access")
    running = Daemon(base, config=write_config(base))
    yield running
    running.stop()


def at(daemon: Daemon, module: str, path: str = "") -> str:
    return f"127.0.0.1:{daemon.port}:/{module}/{path}"


def make_source(base: Path, size: int = 1000) -> Path:
    src = base / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a" * size)
    (src / "sub").mkdir()
    (src / "sub" / "b.txt").write_bytes(b"b" * 10)
    return src


def refused(done: subprocess.CompletedProcess[str], reason: str) -> None:
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr
    assert reason in done.stderr, done.stderr


@pytest.mark.parametrize("module", ["open", "allowed", "allowed_first"])
def test_modules_whose_rules_let_loopback_in_take_pushes(guarded: Daemon, tmp_path: Path,
                                                         module: str) -> None:
    src = make_source(tmp_path)
    done = run("copy", f"{src}/", at(guarded, module, f"{tmp_path.name}/"))
    assert done.returncode == 0, done.stderr
    assert_same_tree(src, guarded.root / module / tmp_path.name)


@pytest.mark.parametrize("module", ["denied", "elsewhere"])
def test_modules_whose_rules_keep_loopback_out_refuse_everything(guarded: Daemon,
                                                                 tmp_path: Path,
                                                                 module: str) -> None:
    src = make_source(tmp_path)
    (guarded.root / module / "kept.txt").write_text("kept")
    reason = f"module {module!r} does not accept connections from 127.0.0.1"
    refused(run("copy", f"{src}/", at(guarded, module, "new/")), reason)
    refused(run("copy", at(guarded, module, "kept.txt"), f"{tmp_path}/out.txt"), reason)
    refused(utils("ls", at(guarded, module)), reason)
    refused(utils("rm", "--yes", at(guarded, module, "kept.txt")), reason)
    assert sorted(p.name for p in (guarded.root / module).iterdir()) == ["kept.txt"]
    assert not (tmp_path / "out.txt").exists()
    assert find_temp_files(tmp_path) == []


def test_listings_show_only_the_modules_open_to_the_caller(guarded: Daemon) -> None:
    done = utils("list-modules", f"127.0.0.1:{guarded.port}", "--json")
    assert done.returncode == 0, done.stderr
    names = [m["name"] for m in json.loads(done.stdout)["modules"]]
    assert names == ["open", "allowed", "allowed_first", "nodelete", "single"]
    unknown = run("copy", at(guarded, "nosuch", "x"), "/tmp/never-written")
    refused(unknown, "unknown module 'nosuch' (this daemon has: open, allowed, allowed_first, "
                     "nodelete, single)")
    host = f"127.0.0.1:{guarded.port}:"
    completed = utils("complete-path", f"{host}/")
    assert completed.stdout.split() == [f"{host}/{name}/" for name in sorted(names)]


def test_a_hidden_module_still_serves_by_name(guarded: Daemon, tmp_path: Path) -> None:
    src = make_source(tmp_path)
    pushed = run("copy", f"{src}/", at(guarded, "hidden", "tree/"))
    assert pushed.returncode == 0, pushed.stderr
    pulled = run("copy", at(guarded, "hidden", "tree/"), f"{tmp_path}/back/")
    assert pulled.returncode == 0, pulled.stderr
    assert_same_tree(src, tmp_path / "back")
    listed = utils("ls", at(guarded, "hidden", "tree"), "--json")
    assert listed.returncode == 0, listed.stderr


def test_refused_options_refuse_the_session_and_change_nothing(guarded: Daemon,
                                                               tmp_path: Path) -> None:
    module = guarded.root / "nodelete"
    src = make_source(tmp_path)
    tree = module / tmp_path.name
    tree.mkdir()
    (tree / "extra.txt").write_text("extraneous, but kept")
    deletes = "module 'nodelete' refuses deleting files"
    refused(run("mirror", f"{src}/", at(guarded, "nodelete", f"{tmp_path.name}/")), deletes)
    refused(run("copy", "--delete-excluded", "--exclude", "*.txt", f"{src}/",
                at(guarded, "nodelete", f"{tmp_path.name}/")), deletes)
    refused(run("copy", "-c", f"{src}/", at(guarded, "nodelete", f"{tmp_path.name}/")),
            "module 'nodelete' refuses -c/--checksum")
    assert sorted(p.name for p in tree.iterdir()) == ["extra.txt"]
    copied = run("copy", f"{src}/", at(guarded, "nodelete", f"{tmp_path.name}/"))
    assert copied.returncode == 0, copied.stderr
    assert (tree / "a.txt").read_bytes() == (src / "a.txt").read_bytes()
    refused(run("move", at(guarded, "nodelete", f"{tmp_path.name}/"), f"{tmp_path}/moved/"),
            deletes)
    assert (tree / "a.txt").exists() and not (tmp_path / "moved" / "a.txt").exists()
    refused(utils("rm", "--yes", at(guarded, "nodelete", f"{tmp_path.name}/extra.txt")),
            deletes)
    assert (tree / "extra.txt").exists()
    pulled = run("copy", at(guarded, "nodelete", f"{tmp_path.name}/"), f"{tmp_path}/back/")
    assert pulled.returncode == 0, pulled.stderr


def start_slow_push(src: Path, target: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "blit_cli", "copy", "--bwlimit", "256K",
                             f"{src}/", target], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_max_connections_refuses_as_busy_and_retries_wait_it_out(guarded: Daemon,
                                                                  tmp_path: Path) -> None:
    src = make_source(tmp_path, size=2 << 20)
    slow = start_slow_push(src, at(guarded, "single", "slow/"))
    try:
        wait_for(lambda: bytes_arrived(guarded.root / "single" / "slow"), 30,
                 "the first session's data", slow)
        busy = run("copy", f"{src}/", at(guarded, "single", "second/"))
        refused(busy, "module 'single' is busy: it is serving its maximum of 1 connections")
        other = run("copy", f"{src}/", at(guarded, "open", "alongside/"))
        assert other.returncode == 0, other.stderr
        patient = run("copy", "--retries", "30", "--retries-sleep", "0.5", f"{src}/",
                      at(guarded, "single", "second/"))
        assert patient.returncode == 0, patient.stderr
        assert "is busy" in patient.stderr and "retrying in 0.5 s (retry 1 of 30)" in \
            patient.stderr
    finally:
        _, err = slow.communicate(timeout=60)
    assert slow.returncode == 0, err
    for name in ("slow", "second"):
        assert_same_tree(src, guarded.root / "single" / name)


def test_daemon_host_rules_refuse_every_call(tmp_path: Path) -> None:
    config = write_config(tmp_path, 'hosts_deny = ["127.0.0.1", "::1"]')
    daemon = Daemon(tmp_path, config=config)
    try:
        reason = "this blit daemon does not accept connections from 127.0.0.1"
        src = make_source(tmp_path)
        refused(run("copy", f"{src}/", at(daemon, "open", "x/")), reason)
        refused(utils("list-modules", f"127.0.0.1:{daemon.port}"), reason)
        refused(utils("df", at(daemon, "open")), reason)
        refused(utils("ls", at(daemon, "open")), reason)  # a streaming call
        assert list((tmp_path / "open").iterdir()) == []
    finally:
        daemon.stop()


def test_refused_transfers_on_a_busy_machine_all_say_why(tmp_path: Path) -> None:
    """Twelve refused transfers at once, so that some client writes its Hello late: each
    still gets the reason, not gRPC's "Internal error from Core" (which a write arriving
    after the refusal turned it into, for about one in ten on a busy machine)."""
    config = write_config(tmp_path, 'hosts_deny = ["127.0.0.1", "::1"]')
    daemon = Daemon(tmp_path, config=config)
    try:
        src = make_source(tmp_path)
        argv = [sys.executable, "-m", "blit_cli", "copy", f"{src}/", at(daemon, "open", "x/")]
        clients = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True) for _ in range(12)]
        for client in clients:
            out, err = client.communicate(timeout=120)
            refused(subprocess.CompletedProcess(argv, client.returncode, out, err),
                    "this blit daemon does not accept connections from 127.0.0.1")
        assert list((tmp_path / "open").iterdir()) == []
    finally:
        daemon.stop()


@pytest.mark.parametrize(("peer", "address"), [
    ("ipv4:127.0.0.1:5000", "127.0.0.1"),
    ("ipv6:%5B::1%5D:37850", "::1"),  # as grpc 1.85 writes it
    ("ipv6:[fd00::7]:9031", "fd00::7"),
])
def test_peer_addresses_are_read_from_grpc_peers(peer: str, address: str) -> None:
    assert peer_address(peer) == address
    assert HostRules(deny=(parse_network("10.0.0.0/8"),)).permits(peer_address(peer))


@pytest.mark.parametrize(("allow", "deny", "address", "permitted"), [
    ((), (), "192.0.2.7", True),
    (("127.0.0.1",), (), "127.0.0.1", True),
    (("127.0.0.1",), (), "127.0.0.2", False),
    ((), ("10.0.0.0/8",), "10.1.2.3", False),
    ((), ("10.0.0.0/8",), "192.0.2.7", True),
    (("10.1.0.0/16",), ("10.0.0.0/8",), "10.1.2.3", True),  # allow is read first
    (("10.1.0.0/16",), ("10.0.0.0/8",), "10.2.0.1", False),
    (("10.1.0.0/16",), ("10.0.0.0/8",), "192.0.2.7", True),  # on neither list
    (("192.168.1.0/24",), (), "::ffff:192.168.1.9", True),  # IPv4 on an IPv6 socket
    (("fd00::/8",), (), "fd12::1", True),
    (("fd00::/8",), (), "not an address", False),
])
def test_host_rules_read_as_rsync_reads_them(allow: tuple[str, ...], deny: tuple[str, ...],
                                             address: str, permitted: bool) -> None:
    rules = HostRules(tuple(map(parse_network, allow)), tuple(map(parse_network, deny)))
    assert rules.permits(address) is permitted


@pytest.mark.parametrize(("line", "problem"), [
    ('hosts_allow = ["nas.local"]', "module[1].hosts_allow: 'nas.local' is not an IP address "
                                    "or CIDR"),
    ('hosts_deny = "10.0.0.0/8"', "module[1].hosts_deny: expected an array of addresses"),
    ("max_connections = 0", "module[1].max_connections: expected at least 1, got 0"),
    ('list = "no"', "module[1].list: expected true or false"),
    ('refuse_options = ["rm"]', "module[1].refuse_options: unknown option 'rm' (refusable: "
                                "delete, checksum"),
])
def test_bad_access_keys_stop_start_up_naming_them(tmp_path: Path, line: str,
                                                   problem: str) -> None:
    config = tmp_path / "blit.toml"
    config.write_text(f'[[module]]\nname = "m"\npath = "{tmp_path}"\n{line}\n')
    with pytest.raises(ConfigError) as info:
        load_config(str(config))
    assert problem in str(info.value)


def test_the_bind_warning_names_only_writable_unguarded_exposed_modules(
        tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text("alice:x\n")
    secrets.chmod(0o600)
    config = tmp_path / "blit.toml"
    config.write_text(
        f'[daemon]\nbind = "192.0.2.1"\nsecrets_file = "{secrets}"\n'
        f'[[module]]\nname = "open"\npath = "{tmp_path}"\n'
        f'[[module]]\nname = "ro"\npath = "{tmp_path}"\nread_only = true\n'
        f'[[module]]\nname = "users"\npath = "{tmp_path}"\nauth_users = ["alice"]\n'
        f'[[module]]\nname = "local"\npath = "{tmp_path}"\nhosts_allow = ["127.0.0.0/8"]\n'
        f'[[module]]\nname = "lan"\npath = "{tmp_path}"\nhosts_allow = ["192.168.0.0/16"]\n')
    loaded = load_config(str(config))
    assert _writable_by_anyone(loaded) == ["open", "lan"]
    assert _writable_by_anyone(dataclasses.replace(loaded, bind="127.0.0.1")) == []
    assert _writable_by_anyone(dataclasses.replace(
        loaded, hosts=HostRules((parse_network("127.0.0.1"),)))) == []
