"""`blit-utils completions`: the scripts parse in each shell, complete verbs, options and choices
of all three programs, and complete remote paths through a real daemon (CompletePath)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.daemon import Daemon

SHELL_CHECK = {"bash": ["bash", "-n"], "zsh": ["zsh", "-n"], "fish": ["fish", "--no-execute"]}


def script(shell: str) -> str:
    result = subprocess.run([sys.executable, "-m", "blit_utils", "completions", shell],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose PATH has a `blit-utils` running this checkout's interpreter, as an
    installed console script would."""
    bin_dir = tmp_path_factory.mktemp("bin")
    tool = bin_dir / "blit-utils"
    tool.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m blit_utils "$@"\n')
    tool.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("module")
    (root / "photos").mkdir()
    (root / "photos" / "2024").mkdir()
    (root / "photos" / "2025.txt").write_text("x")
    (root / "photos" / ".thumbs").mkdir()
    (root / "plans").write_text("y")
    server = Daemon(root)
    yield server
    server.stop()


@pytest.mark.parametrize("shell", sorted(SHELL_CHECK))
def test_script_parses_in_its_shell(shell: str, tmp_path: Path) -> None:
    if shutil.which(SHELL_CHECK[shell][0]) is None:
        pytest.skip(f"{shell} is not installed (CI installs it from apt)")
    path = tmp_path / f"blit.{shell}"
    path.write_text(script(shell))
    result = subprocess.run([*SHELL_CHECK[shell], str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def bash_complete(line: str, env: dict[str, str], tmp_path: Path) -> list[str]:
    """COMPREPLY for `line` (cursor at its end), with bash splitting the words as it does
    interactively: at blanks, and at ':' (in COMP_WORDBREAKS by default)."""
    path = tmp_path / "blit.bash"
    path.write_text(script("bash"))
    program = line.split()[0]
    driver = f"""
source {path}
COMP_LINE={line!r}
COMP_POINT=${{#COMP_LINE}}
words=()
for blank_word in $COMP_LINE; do
    while [[ $blank_word == *:* ]]; do
        words+=("${{blank_word%%:*}}" ":"); blank_word=${{blank_word#*:}}
    done
    words+=("$blank_word")
done
[[ $COMP_LINE == *" " ]] && words+=("")
COMP_WORDS=("${{words[@]}}")
COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
complete -p {program} >/dev/null || exit 3
{"_" + program.replace("-", "_")}
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    result = subprocess.run(["bash", "-c", driver], capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return [word for word in result.stdout.splitlines() if word]


def test_bash_completes_verbs_options_and_choices(shim: dict[str, str], tmp_path: Path) -> None:
    verbs = bash_complete("blit-utils ", shim, tmp_path)
    for verb in ("list-modules", "ls", "find", "du", "df", "rm", "scan", "completions"):
        assert verb in verbs
    assert "complete-path" not in verbs  # the hidden helper of these scripts
    assert bash_complete("blit mi", shim, tmp_path) == ["mirror"]
    assert bash_complete("blit copy --che", shim, tmp_path) == ["--checksum"]
    assert bash_complete("blit-daemon --no-", shim, tmp_path) == ["--no-mdns"]
    assert bash_complete("blit-utils completions ", shim, tmp_path) == ["bash", "zsh", "fish"]
    assert bash_complete("blit-utils find h:/m --type ", shim, tmp_path) == ["f", "d", "l"]


def test_bash_completes_local_files(shim: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "alpha").mkdir()
    (tmp_path / "alps.txt").write_text("")
    assert sorted(bash_complete(f"blit copy {tmp_path}/al", shim, tmp_path)) == [
        f"{tmp_path}/alpha", f"{tmp_path}/alps.txt"]


def test_bash_completes_remote_paths_through_the_daemon(
        daemon: Daemon, shim: dict[str, str], tmp_path: Path) -> None:
    where = f"127.0.0.1:{daemon.port}:/default/"
    # bash already split "127.0.0.1:PORT:" off the word: candidates are what follows.
    assert sorted(bash_complete(f"blit copy x {where}p", shim, tmp_path)) == [
        "/default/photos/", "/default/plans"]
    assert sorted(bash_complete(f"blit-utils ls {where}photos/", shim, tmp_path)) == [
        "/default/photos/2024/", "/default/photos/2025.txt"]
    assert bash_complete(f"blit-utils ls {where}photos/.", shim, tmp_path) == [
        "/default/photos/.thumbs/"]
    assert bash_complete(f"blit copy x 127.0.0.1:{daemon.port}:/def", shim, tmp_path) == [
        "/default/"]


def test_fish_completes_remote_paths_and_options(
        daemon: Daemon, shim: dict[str, str], tmp_path: Path) -> None:
    if shutil.which("fish") is None:
        pytest.skip("fish is not installed (CI installs it from apt)")
    path = tmp_path / "blit.fish"
    path.write_text(script("fish"))
    where = f"127.0.0.1:{daemon.port}:/default/"

    def complete(line: str) -> list[str]:
        result = subprocess.run(["fish", "-c", f"source {path}; complete -C {line!r}"],
                                capture_output=True, text=True, env=shim, timeout=60)
        assert result.returncode == 0, result.stderr
        return sorted(row.split("\t")[0] for row in result.stdout.splitlines())

    assert complete(f"blit copy x {where}p") == [f"{where}photos/", f"{where}plans"]
    assert complete("blit copy --chec") == ["--checksum"]
    assert complete("blit-utils completions ") == ["bash", "fish", "zsh"]
