"""blit-utils list-modules, ls, find, du, df and complete-path against a real daemon, in human
and --json form, with the exit codes for a daemon that cannot be reached, one that never
answers, an unknown module and bad arguments. The tree is described in helpers/admin.py."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys

import pytest
from helpers.admin import MANY, SECRET_SIZE, AdminSetup, json_lines, utils


def test_list_modules_shows_names_access_and_comments(setup: AdminSetup) -> None:
    human = utils("list-modules", setup.host)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0].split() == ["MODULE", "ACCESS", "COMMENT"]
    assert lines[1].split() == ["data", "read-write", "prepared", "tree"]
    assert lines[2].split() == ["scratch", "read-write"]
    assert lines[3].split() == ["ro", "read-only", "archive"]
    assert len({line.index(line.split()[1]) for line in lines}) == 1  # aligned column

    result = utils("list-modules", "--json", setup.host)
    assert result.returncode == 0, result.stderr
    document = json_lines(result.stdout)
    assert len(document) == 1
    assert document[0]["modules"] == [
        {"name": "data", "comment": "prepared tree", "read_only": False},
        {"name": "scratch", "comment": "", "read_only": False},
        {"name": "ro", "comment": "archive", "read_only": True}]


def test_ls_lists_sorted_names_and_hidden_ones_with_a(setup: AdminSetup) -> None:
    plain = utils("ls", setup.at("/data"))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines() == ["a.txt", "docs", "escape", "link_to_a", "many"]
    every = utils("ls", "-a", setup.at("/data/"))
    assert every.stdout.splitlines() == [".hidden", "a.txt", "docs", "escape", "link_to_a",
                                         "many"]


def test_ls_long_format_and_json_carry_type_size_mode_and_mtime(setup: AdminSetup) -> None:
    long = utils("ls", "-l", setup.at("/data"))
    assert long.returncode == 0, long.stderr
    rows = {line.split()[-1] if "->" not in line else line.split()[-3]: line.split()
            for line in long.stdout.splitlines()}
    assert rows["a.txt"][:2] == ["-rw-r--r--", "100"]
    assert rows["docs"][0].startswith("d")
    assert rows["link_to_a"][0].startswith("l") and rows["link_to_a"][-2:] == ["->", "a.txt"]
    human = utils("ls", "-l", "-h", setup.at("/data/docs"))
    assert [line.split()[1:3] for line in human.stdout.splitlines()][1:] == [
        ["1000", "B"], ["2.4", "KiB"]]  # after nested/: one.md, two.md

    result = utils("ls", "--json", setup.at("/data/docs"))
    entries = {e["name"]: e for e in json_lines(result.stdout)}
    st = os.stat(setup.data / "docs" / "two.md")
    assert entries["two.md"] == {
        "name": "two.md", "path": "/data/docs/two.md", "type": "file", "size": 2500,
        "mode": stat.S_IMODE(st.st_mode), "mtime": st.st_mtime_ns / 1e9, "target": None}
    assert entries["nested"]["type"] == "dir"


def test_ls_of_a_file_or_a_symlink_lists_that_entry_itself(setup: AdminSetup) -> None:
    assert utils("ls", setup.at("/data/docs/one.md")).stdout == "one.md\n"
    for location in ("/data/escape", "/data/escape/"):
        result = utils("ls", "--json", setup.at(location))
        assert result.returncode == 0, result.stderr
        (entry,) = json_lines(result.stdout)
        assert entry["type"] == "symlink" and entry["target"] == str(setup.outside)
        assert "secret" not in result.stdout


def test_ls_and_find_return_all_2000_entries_sorted(setup: AdminSetup) -> None:
    names = [f"f{i:04d}" for i in range(MANY)]
    listed = utils("ls", setup.at("/data/many"))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == names
    found = utils("find", "--json", setup.at("/data/many"))
    assert found.returncode == 0, found.stderr
    paths = [entry["path"] for entry in json_lines(found.stdout)]
    assert paths == ["/data/many", *(f"/data/many/{name}" for name in names)]


@pytest.mark.parametrize(("flags", "expected"), [
    (["--name", "*.md"], ["/data/docs/one.md", "/data/docs/two.md"]),
    (["--type", "d"], ["/data", "/data/docs", "/data/docs/nested", "/data/many"]),
    (["--type", "l"], ["/data/escape", "/data/link_to_a"]),
    (["--type", "f", "--min-size", "1000", "--max-size", "2K"], ["/data/docs/one.md"]),
    (["--type", "f", "--min-size", "101"], ["/data/docs/one.md", "/data/docs/two.md"]),
    (["--name", "*.md", "--newer", "1d"], ["/data/docs/two.md"]),
    (["--name", "*.md", "--newer", "2w"], ["/data/docs/one.md", "/data/docs/two.md"]),
    (["--name", "f*", "--limit", "3"], ["/data/many/f0000", "/data/many/f0001",
                                        "/data/many/f0002"]),
])
def test_find_keeps_what_meets_every_filter(setup: AdminSetup, flags: list[str],
                                            expected: list[str]) -> None:
    result = utils("find", *flags, setup.at("/data"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected


def test_du_counts_each_directory_after_its_children(setup: AdminSetup) -> None:
    result = utils("du", "--json", setup.at("/data"))
    assert result.returncode == 0, result.stderr
    rows = json_lines(result.stdout)
    links = len("a.txt") + len(str(setup.outside))  # symlinks count their own length
    assert rows == [
        {"path": "/data/docs/nested", "bytes": 7, "files": 1},
        {"path": "/data/docs", "bytes": 3507, "files": 3},
        {"path": "/data/many", "bytes": MANY, "files": MANY},
        {"path": "/data", "bytes": 100 + 3 + 3507 + MANY + links, "files": 2 + 3 + MANY + 2},
    ]
    shallow = utils("du", "--max-depth", "1", setup.at("/data"))
    assert [line.split() for line in shallow.stdout.splitlines()] == [
        ["3507", "3", "/data/docs"], [str(MANY), str(MANY), "/data/many"],
        [str(rows[-1]["bytes"]), str(rows[-1]["files"]), "/data"]]
    human = utils("du", "-h", "--max-depth", "0", setup.at("/data/docs"))
    assert human.stdout.split() == ["3.4", "KiB", "3", "/data/docs"]


def test_df_reports_the_module_filesystem(setup: AdminSetup) -> None:
    result = utils("df", "--json", setup.at("/data"))
    assert result.returncode == 0, result.stderr
    (space,) = json_lines(result.stdout)
    fs = os.statvfs(setup.data)
    assert space["path"] == "/data"
    assert space["total"] == fs.f_blocks * fs.f_frsize
    slack = 64 * 1024 * 1024  # other tests write meanwhile
    assert abs(space["free"] - fs.f_bavail * fs.f_frsize) < slack
    assert abs(space["used"] - (fs.f_blocks - fs.f_bfree) * fs.f_frsize) < slack
    human = utils("df", "-h", setup.at("/data"))
    header, row = human.stdout.splitlines()
    assert header.split() == ["PATH", "TOTAL", "USED", "FREE", "USE%"]
    assert row.split()[0] == "/data" and row.split()[2] in ("B", "KiB", "MiB", "GiB", "TiB")


def test_cannot_connect_names_the_address_and_suggests_scan() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = utils("ls", f"127.0.0.1:{port}:/data")
    assert result.returncode == 5
    assert f"127.0.0.1:{port}" in result.stderr and "blit scan" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_daemon_that_never_answers_times_out_with_30() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        for args in (["ls", f"{address}:/data"], ["df", f"{address}:/data"]):
            result = utils(*args, "--timeout", "1")
            assert result.returncode == 30, result.stderr
            assert address in result.stderr and "1s" in result.stderr


def test_unknown_module_and_missing_path_are_refusals(setup: AdminSetup) -> None:
    result = utils("ls", setup.at("/nope"))
    assert result.returncode == 5
    assert "unknown module 'nope'" in result.stderr and "data, scratch, ro" in result.stderr
    missing = utils("du", setup.at("/data/no/such"))
    assert missing.returncode == 5 and "/data/no/such" in missing.stderr


@pytest.mark.parametrize("args", [
    ["ls", "/local/path"],
    ["ls", "host"],
    ["find", "--min-size", "lots", "h:/m"],
    ["find", "--newer", "3 fortnights", "h:/m"],
    ["find", "--type", "x", "h:/m"],
    ["list-modules", "bad host"],
    ["du", "--max-depth", "-1", "h:/m"],
    ["du", "--max-depth", "4294967296", "h:/m"],
    ["du", "--max-depth", "²", "h:/m"],
    ["find", "--limit", "18446744073709551616", "h:/m"],
    ["find", "--limit", "0", "h:/m"],
    ["find", "--min-size", "99999999999T", "h:/m"],
    ["find", "--newer", "9" * 400 + "d", "h:/m"],
])
def test_bad_arguments_exit_1_with_one_line(args: list[str]) -> None:
    result = utils(*args)
    assert result.returncode == 1
    assert result.stderr.startswith("blit-utils: error: ")
    assert len(result.stderr.splitlines()) <= 2  # the error and a pointer to --help


def test_the_widest_numbers_the_wire_carries_are_accepted(setup: AdminSetup) -> None:
    result = utils("find", "--limit", str(2**64 - 1), "--max-size", "16000000T", "--newer",
                   "9" * 300 + "d", setup.at("/data/docs"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["/data/docs", "/data/docs/nested",
                                     "/data/docs/nested/deep.txt", "/data/docs/one.md",
                                     "/data/docs/two.md"]
    result = utils("du", "--max-depth", str(2**32 - 1), setup.at("/data/docs"))
    assert result.returncode == 0, result.stderr


def test_a_reader_that_goes_away_ends_the_listing_quietly(setup: AdminSetup) -> None:
    """`blit-utils find ... | head -1`: the reader closes the pipe (here before anything is
    written, so the write fails for certain) and blit-utils exits 0 without a complaint."""
    stdout_r, stdout_w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "blit_utils", "find", setup.at("/data/many")],
                            stdin=subprocess.DEVNULL, stdout=stdout_w, stderr=subprocess.PIPE)
    os.close(stdout_w)
    os.close(stdout_r)
    _, stderr = proc.communicate(timeout=60)
    assert (proc.returncode, stderr) == (0, b"")


def test_complete_path_offers_full_words(setup: AdminSetup) -> None:
    def complete(word: str) -> list[str]:
        result = utils("complete-path", "--", setup.at(word))
        assert result.returncode == 0 and result.stderr == ""
        return result.stdout.splitlines()

    assert complete("/") == [setup.at("/data/"), setup.at("/ro/"), setup.at("/scratch/")]
    assert complete("/s") == [setup.at("/scratch/")]
    assert complete("/data") == [setup.at("/data/")]
    assert complete("/data/") == [setup.at(f"/data/{name}") for name in
                                  ("a.txt", "docs/", "escape", "link_to_a", "many/")]
    assert complete("/data/.") == [setup.at("/data/.hidden")]
    assert complete("/data/docs/t") == [setup.at("/data/docs/two.md")]
    assert complete("/data/escape/") == []  # never through the symlink
    assert len(complete("/data/many/f")) == 1000


@pytest.mark.parametrize("word", ["{host}:/data/../", "{host}:/nope/", "nohost", "{host}",
                                  "127.0.0.1:1:/data/", "{host}:/data/a.txt/x"])
def test_complete_path_is_silent_on_every_error(setup: AdminSetup, word: str) -> None:
    result = utils("complete-path", "--", word.format(host=setup.host))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_nothing_outside_the_module_is_listed_found_or_counted(setup: AdminSetup) -> None:
    found = utils("find", setup.at("/data"))
    assert "secret" not in found.stdout and "/data/escape\n" in found.stdout
    through = utils("ls", setup.at("/data/escape/secret.txt"))
    assert through.returncode == 5 and "symlink" in through.stderr
    assert utils("find", setup.at("/data/escape")).stdout == "/data/escape\n"
    usage = json_lines(utils("du", "--json", setup.at("/data/escape")).stdout)
    assert usage == [{"path": "/data/escape", "bytes": len(str(setup.outside)), "files": 1}]
    assert usage[0]["bytes"] < SECRET_SIZE


def _on_terminal(args: list[str], env: dict[str, str]) -> str:
    """What blit-utils prints with stdout on a pty."""
    leader, follower = os.openpty()
    with subprocess.Popen([sys.executable, "-m", "blit_utils", *args], stdout=follower,
                          stderr=subprocess.DEVNULL, env=env) as proc:
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the program ended
                break
            if not chunk:
                break
            shown += chunk
        proc.wait(60)
    os.close(leader)
    return shown.decode()


def test_colour_only_on_a_terminal_and_never_with_no_color(setup: AdminSetup) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = _on_terminal(["ls", setup.at("/data")], env)
    assert "\033[1;34mdocs\033[0m" in coloured and "\033[36mlink_to_a\033[0m" in coloured
    assert "\033[" not in _on_terminal(["ls", setup.at("/data")], {**env, "NO_COLOR": "1"})
    assert "\033[" not in utils("ls", setup.at("/data")).stdout  # a pipe


@pytest.mark.parametrize("daemon", ["nas:", "nas:9031", "nas:9031:"])
def test_a_daemon_without_a_module_points_at_list_modules(daemon: str) -> None:
    result = utils("ls", daemon)
    assert result.returncode == 1
    assert "names no module" in result.stderr
    assert "blit-utils list-modules nas" in result.stderr
