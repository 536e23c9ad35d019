"""Run inside a network namespace of its own (`unshare -n`), by test_mdns_scope.py: loopback
plus a veth pair, `lan0` (10.9.9.1/24, where daemons may announce) and its peer `wire0`, on
which every packet sent out of lan0 arrives, so it is watched with a packet socket. Starts a
daemon bound to 127.0.0.1 ("narrow") and one bound to 0.0.0.0 ("wide"), watches wire0 while
they announce, scans, and prints one JSON object: which instance names were seen leaving
through lan0, and what `blit scan --json` found on lo and on lan0. Nothing here can reach a
real network: the namespace has no other interface."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

LAN_ADDRESS = "10.9.9.1"
ETH_P_ALL = 0x0003
WATCH_S = 4.0  # the announcements (probe, three announcements) go out within ~3 s


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def daemon(root: str, bind: str, name: str) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if key != "BLIT_MDNS_INTERFACES"}
    return subprocess.Popen([sys.executable, "-m", "blit_daemon", "--root", root, "--bind", bind,
                             "--port", "0", "--mdns-name", name],
                            stderr=subprocess.DEVNULL, env=env)


def scan(interface: str) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "blit_cli", "scan", "--json", "--wait", "1.5",
                           "--interface", interface], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def seen_leaving(watch: socket.socket, names: list[str], seconds: float) -> list[str]:
    """The names found in the packets arriving on the watched interface within `seconds`."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        watch.settimeout(left)
        try:
            packet = watch.recv(65536)
        except TimeoutError:
            break
        seen.update(name for name in names if name.encode() in packet)
    return sorted(seen)


def main() -> None:
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "wire0")
    sh("ip", "addr", "add", f"{LAN_ADDRESS}/24", "dev", "lan0")
    sh("ip", "link", "set", "wire0", "up")
    sh("ip", "link", "set", "lan0", "up")
    watch = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    watch.bind(("wire0", 0))
    with tempfile.TemporaryDirectory() as root:
        daemons = [daemon(root, "127.0.0.1", "narrow"), daemon(root, "0.0.0.0", "wide")]
        try:
            leaving = seen_leaving(watch, ["narrow", "wide"], WATCH_S)
            result = {"leaving": leaving, "on_lo": scan("127.0.0.1"), "on_lan": scan(LAN_ADDRESS)}
        finally:
            for running in daemons:
                running.terminate()
                running.wait(10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
