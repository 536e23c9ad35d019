"""Load: 8 clients push and pull their own trees through one daemon (max_sessions = 8) for
about 20 s, with the client loop of `python -m benchmarks load` (benchmarks/load.py). Each
client alternates a push of its tree into the module and a pull of its tree from the module,
every time into a fresh destination; then every client starts one paced transfer, and while
all 8 are writing, a 9th client is started.

What must hold:
- every transfer exits 0, and its destination equals its source (types, modes, mtimes in ns,
  content, symlink targets), checked after each transfer and again at the end for each
  client's last push and pull, with no temp files left;
- the daemon's open descriptors come back to their count before the clients started;
- the daemon's RSS stays under RSS_LIMIT_MB (it peaked at about 100 MB when written);
- the 9th client is refused at once: exit 5 and a "busy" message within PROMPT_S, not a hang;
- the daemon is still up afterwards."""

from __future__ import annotations

from pathlib import Path

from helpers.daemon import Daemon
from helpers.treecheck import assert_same_tree, find_temp_files

from benchmarks.load import run_load

CLIENTS = 8
DURATION_S = 20.0
PACED_S = 8.0
RSS_LIMIT_MB = 300
PROMPT_S = 10.0
EXIT_REMOTE = 5


def test_eight_clients_push_and_pull_for_twenty_seconds(tmp_path: Path) -> None:
    module, local = tmp_path / "module", tmp_path / "local"
    module.mkdir()
    config = tmp_path / "blit.toml"
    config.write_text(f'[daemon]\nmax_sessions = {CLIENTS}\n'
                      f'[[module]]\nname = "default"\npath = "{module}"\n')
    daemon = Daemon(module, config=config)
    try:
        result = run_load(daemon.port, daemon.proc.pid, module, local, CLIENTS, DURATION_S,
                          PACED_S)
        assert daemon.proc.poll() is None, "".join(daemon.log)
    finally:
        daemon.stop()

    assert result.errors() == []
    assert sum(not t.paced for t in result.transfers) >= CLIENTS * 2
    assert sum(t.paced for t in result.transfers) == CLIENTS
    assert {t.direction for t in result.transfers} == {"push", "pull"}
    for i in range(CLIENTS):
        for src, dst in ((local / f"src-{i}", module / f"push-{i}"),
                         (module / f"src-{i}", local / f"pull-{i}")):
            assert_same_tree(src, dst)
            assert find_temp_files(dst) == []

    assert result.fds_before is not None
    assert result.fds_after == result.fds_before
    assert 0 < result.rss_start <= result.rss_peak <= RSS_LIMIT_MB << 20

    probe = result.probe
    assert probe is not None
    assert probe.returncode == EXIT_REMOTE, probe.message
    assert "busy" in probe.message
    assert probe.seconds <= PROMPT_S
