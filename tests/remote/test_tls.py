"""TLS, against a real blit-daemon on 127.0.0.1 with a throwaway CA and a server certificate
for 127.0.0.1: a bad certificate or key stops start-up with one line naming the key; push
and pull with --tls-ca give identical trees (shards, ranges and deltas); a wrong CA, --tls
against a plain daemon, and a plain client against a TLS daemon each fail with exit 5 and
one line saying which; the data plane is really encrypted (a relay records every byte of
the data connections), and blit-utils works over TLS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.certs import Certificates, make_certificates
from helpers.daemon import Daemon, run
from helpers.relay import RecordingRelay
from helpers.treecheck import assert_same_tree, file_digest

from blit_core import api
from blit_core.net import dataplane
from blit_core.net.tls import client_tls
from blit_core.options import RemoteSettings, TransferOptions, Verb
from blit_daemon.config import ConfigError, load_config

MIB = 1 << 20
TLS_RECORD_HANDSHAKE = b"\x16\x03"  # a TLS record: type 22 (handshake), version 3.x
TLS_RECORD_DATA = b"\x17\x03\x03"  # type 23 (application data), TLS 1.2 framing


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "certs")


def write_config(tmp_path: Path, cert: Path | None, key: Path | None) -> Path:
    module = tmp_path / "module"
    module.mkdir(exist_ok=True)
    tls = "".join(f'{name} = "{path}"\n' for name, path in (("tls_cert", cert), ("tls_key", key))
                  if path is not None)
    config = tmp_path / "blit.toml"
    config.write_text(f'[daemon]\n{tls}\n[[module]]\nname = "default"\npath = "{module}"\n')
    return config


@pytest.fixture
def tls_daemon(tmp_path: Path, certs: Certificates) -> Iterator[Daemon]:
    running = Daemon(tmp_path / "module", config=write_config(tmp_path, certs.cert, certs.key))
    yield running
    running.stop()


def utils(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "blit_utils", *args], capture_output=True,
                          text=True, timeout=60)


def test_a_bad_certificate_or_key_stops_start_up(tmp_path: Path, certs: Certificates) -> None:
    other = make_certificates(tmp_path / "other")
    readable = tmp_path / "readable.key"
    readable.write_bytes(certs.key.read_bytes())
    readable.chmod(0o644)
    cases = [
        (None, certs.key, "daemon.tls_key: needs daemon.tls_cert too"),
        (certs.cert, None, "daemon.tls_cert: needs daemon.tls_key too"),
        (tmp_path / "absent.pem", certs.key,
         f"daemon.tls_cert: cannot read '{tmp_path}/absent.pem': No such file or directory"),
        (certs.key, certs.key, f"daemon.tls_cert: '{certs.key}' holds no PEM certificate"),
        (certs.cert, certs.cert, f"daemon.tls_key: '{certs.cert}' holds no PEM private key"),
        (certs.cert, other.key, f"daemon.tls_key: '{other.key}' is not the private key of the "
         f"certificate in '{certs.cert}'"),
        (certs.cert, readable, f"daemon.tls_key: '{readable}' may be read or written by others "
         "(mode 0644); chmod o-rwx it"),
    ]
    for cert, key, problem in cases:
        config = write_config(tmp_path, cert, key)
        with pytest.raises(ConfigError) as info:
            load_config(str(config))
        assert str(info.value) == f"{config}: {problem}"
        started = subprocess.run([sys.executable, "-m", "blit_daemon", "--config", str(config),
                                  "--port", "0", "--no-mdns"], capture_output=True, text=True,
                                 timeout=60)
        assert started.returncode == 1
        assert started.stderr == f"blit-daemon: error: {config}: {problem}\n"


def test_push_and_pull_over_tls_give_identical_trees(tls_daemon: Daemon, certs: Certificates,
                                                     small_tree: Path, tmp_path: Path) -> None:
    (small_tree / "large.bin").write_bytes(os.urandom(3 * MIB))  # ranges on several streams
    ca = ("--tls-ca", str(certs.ca))
    pushed = run("copy", *ca, f"{small_tree}/", tls_daemon.endpoint("tree") + "/")
    assert pushed.returncode == 0, pushed.stderr
    assert_same_tree(small_tree, tls_daemon.root / "tree")
    pulled = run("copy", *ca, tls_daemon.endpoint("tree") + "/", f"{tmp_path}/back/")
    assert pulled.returncode == 0, pulled.stderr
    assert_same_tree(small_tree, tmp_path / "back")
    with open(small_tree / "large.bin", "r+b") as changed:  # sent again as a delta
        changed.seek(MIB)
        changed.write(b"changed in the middle")
    again = run("copy", "--stats", *ca, f"{small_tree}/", tls_daemon.endpoint("tree") + "/")
    assert again.returncode == 0, again.stderr
    assert "Delta files: 1" in again.stdout
    assert file_digest(small_tree / "large.bin") == file_digest(
        tls_daemon.root / "tree" / "large.bin")


def test_a_certificate_from_another_ca_is_refused(tls_daemon: Daemon, tmp_path: Path,
                                                  small_tree: Path) -> None:
    stranger = make_certificates(tmp_path / "stranger", "stranger")
    for command in (
        run("copy", "--tls-ca", str(stranger.ca), f"{small_tree}/", tls_daemon.endpoint("t/")),
        utils("ls", "--tls-ca", str(stranger.ca), tls_daemon.endpoint("")),
    ):
        assert command.returncode == 5, command.stderr
        assert command.stderr.count("\n") == 1, command.stderr
        assert (f"the TLS certificate of the daemon at 127.0.0.1:{tls_daemon.port} does not "
                f"verify against the CA certificates in {stranger.ca}: unable to get local "
                "issuer certificate") in command.stderr
    assert list(tls_daemon.root.iterdir()) == []


def test_tls_against_a_plain_daemon_fails(daemon: Daemon, certs: Certificates,
                                          small_tree: Path) -> None:
    for flags in (["--tls"], ["--tls-ca", str(certs.ca)]):
        result = run("copy", *flags, f"{small_tree}/", daemon.endpoint("t/"))
        assert result.returncode == 5, result.stderr
        assert result.stderr == (f"blit: error: the daemon at 127.0.0.1:{daemon.port} does not "
                                 "use TLS, and --tls or --tls-ca was given: refusing to connect "
                                 "without it\n")
    assert list(daemon.root.iterdir()) == []


def test_a_plain_client_is_told_the_daemon_uses_tls(tls_daemon: Daemon,
                                                    small_tree: Path) -> None:
    for command, program in ((run("copy", f"{small_tree}/", tls_daemon.endpoint("t/")), "blit"),
                             (utils("ls", tls_daemon.endpoint("")), "blit-utils")):
        assert command.returncode == 5, command.stderr
        assert command.stderr == (f"{program}: error: the daemon at 127.0.0.1:{tls_daemon.port} "
                                  "uses TLS: connect with --tls (checking its certificate "
                                  "against the system's CA certificates) or --tls-ca FILE\n")
    assert list(tls_daemon.root.iterdir()) == []


@pytest.mark.parametrize("direction", ["push", "pull"])
@pytest.mark.parametrize("use_tls", [False, True], ids=["plain", "tls"])
def test_the_data_plane_is_encrypted(direction: str, use_tls: bool, tmp_path: Path,
                                     certs: Certificates, monkeypatch: pytest.MonkeyPatch
                                     ) -> None:
    """Every data connection the client opens goes through a relay that records its bytes:
    over plain TCP (the control) the file's marker shows; over TLS the connections start with
    a TLS handshake, carry at least the file's size, and never show the marker."""
    config = write_config(tmp_path, *((certs.cert, certs.key) if use_tls else (None, None)))
    daemon = Daemon(tmp_path / "module", config=config)
    local = tmp_path / "local"
    local.mkdir()
    marker = f"<{os.urandom(8).hex()} marker>".encode()
    content = marker * (4 * MIB // len(marker))
    ((daemon.root if direction == "pull" else local) / "file").write_bytes(content)
    relays: list[RecordingRelay] = []
    connect = socket.create_connection

    def via_relay(address: tuple[str, int], *args, **kwargs) -> socket.socket:
        relays.append(RecordingRelay(address))
        return connect(relays[-1].address, *args, **kwargs)

    monkeypatch.setattr(dataplane.socket, "create_connection", via_relay)
    settings = RemoteSettings(streams=2, tls=client_tls(str(certs.ca)) if use_tls else None)
    remote = daemon.endpoint("file")
    source, target = ((str(local / "file"), remote) if direction == "push"
                      else (remote, str(local / "copy")))
    try:
        report = api.transfer(Verb.COPY, [source], target, TransferOptions(), remote=settings)
    finally:
        for relay in relays:
            relay.close()
        daemon.stop()
    assert report.exit_code == 0
    copy = daemon.root / "file" if direction == "push" else local / "copy"
    assert copy.read_bytes() == content
    assert len(relays) == 2
    carried = b"".join(bytes(r.sent if direction == "push" else r.received) for r in relays)
    assert len(carried) >= len(content)
    if use_tls:
        assert all(r.sent.startswith(TLS_RECORD_HANDSHAKE) for r in relays)
        assert TLS_RECORD_DATA in carried
        assert marker not in carried
        assert marker[:16] not in carried
    else:
        # record headers (a range's start and its tail record, per stream) cut a few markers
        assert carried.count(marker) >= len(content) // len(marker) - 8


def test_blit_utils_lists_over_tls(tls_daemon: Daemon, certs: Certificates) -> None:
    (tls_daemon.root / "dir").mkdir()
    (tls_daemon.root / "dir" / "one.txt").write_bytes(b"1")
    (tls_daemon.root / "dir" / "two.txt").write_bytes(b"22")
    listed = utils("ls", "--tls-ca", str(certs.ca), tls_daemon.endpoint("dir"))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["one.txt", "two.txt"]
    modules = utils("list-modules", "--tls-ca", str(certs.ca), f"127.0.0.1:{tls_daemon.port}")
    assert modules.returncode == 0, modules.stderr
    assert "default" in modules.stdout
