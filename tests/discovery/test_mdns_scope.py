"""Where a daemon announces, checked inside a network namespace the test creates (loopback and
a veth pair, no way out; see netns_scenario.py): a daemon bound to 127.0.0.1 sends nothing out
of the LAN interface and is listed at 127.0.0.1 only, even beside a daemon of the same host
bound to 0.0.0.0, which announces on the LAN interface with the LAN address."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIO = Path(__file__).with_name("netns_scenario.py")


@pytest.fixture(scope="module")
def scenario() -> dict:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip (iproute2)")
    probe = subprocess.run(["unshare", "-n", "sh", "-c",
                            "ip link add a0 type veth peer name b0"],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot create a network namespace with a veth pair (needs root and veth): "
                    + probe.stderr.decode(errors="replace").strip())
    done = subprocess.run(["unshare", "-n", sys.executable, str(SCENARIO)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _by_name(found: list[dict]) -> dict[str, dict]:
    return {entry["instance"]: entry for entry in found}


def test_only_the_daemon_on_every_interface_announces_out_of_the_lan(scenario: dict) -> None:
    assert scenario["leaving"] == ["wide"]


def test_each_daemon_is_listed_where_it_listens(scenario: dict) -> None:
    for found in (scenario["on_lo"], scenario["on_lan"]):
        daemons = _by_name(found)
        narrow, wide = daemons["narrow"], daemons["wide"]
        assert narrow["addresses"] == ["127.0.0.1"]
        assert narrow["endpoint"] == f"127.0.0.1:{narrow['port']}"
        assert wide["addresses"] == ["10.9.9.1"]
        assert wide["endpoint"] == f"10.9.9.1:{wide['port']}"
        assert narrow["host"] != wide["host"]
