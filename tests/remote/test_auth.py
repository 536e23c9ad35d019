"""Modules with users, against a real blit-daemon on 127.0.0.1: the secrets file is checked
at start-up, the right secret (from --password-file or $BLIT_PASSWORD) logs in for push and
pull, a wrong one or none is refused with exit 5 and writes nothing, an answer is good for
one session only, failed logins are rate-limited per address, and no data plane is granted
before the login. blit-utils logs in the same way on every call (a nonce from NewChallenge,
the answer in the call's metadata): the right secret lists, measures and removes, a wrong one
or none is refused, and a replayed answer or nonce is refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from helpers.daemon import Daemon
from helpers.treecheck import assert_same_tree

from blit_core import auth
from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.generated import blit_pb2_grpc as pb_grpc
from blit_core.net.session import PROTOCOL_VERSION
from blit_core.options import TransferOptions
from blit_core.wire.options import options_to_wire
from blit_daemon import login
from blit_daemon.config import ConfigError, load_config

SECRET = b"correct horse battery staple"


def write_config(tmp_path: Path, secrets: str = "alice:correct horse battery staple\n",
                 mode: int = 0o600, users: str = '["alice"]') -> Path:
    module = tmp_path / "module"
    module.mkdir(exist_ok=True)
    secrets_file = tmp_path / "secrets"
    secrets_file.write_text(secrets)
    secrets_file.chmod(mode)
    config = tmp_path / "blit.toml"
    config.write_text(f'[daemon]\nsecrets_file = "{secrets_file}"\n\n[[module]]\nname = "default"\n'
                      f'path = "{module}"\nauth_users = {users}\n')
    return config


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Daemon]:
    running = Daemon(tmp_path / "module", config=write_config(tmp_path))
    yield running
    running.stop()


def run_with(program: str, *args: str,
             password: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m program args`, with $BLIT_PASSWORD set to `password` (unset if None)."""
    env = {k: v for k, v in os.environ.items() if k != auth.PASSWORD_ENV}
    if password is not None:
        env[auth.PASSWORD_ENV] = password.decode()
    return subprocess.run([sys.executable, "-m", program, *args], capture_output=True,
                          text=True, timeout=120, env=env)


def blit(*args: str, password: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return run_with("blit_cli", *args, password=password)


def utils(*args: str, password: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return run_with("blit_utils", *args, password=password)


def endpoint(daemon: Daemon, path: str, user: str = "alice") -> str:
    return f"{user}@127.0.0.1:{daemon.port}:/default/{path}"


@pytest.mark.parametrize(("secrets", "mode", "users", "problem"), [
    ("alice:x\n", 0o640, '["alice"]', "may be read or written by group or others (mode 0640)"),
    ("alice:x\n", 0o604, '["alice"]', "chmod 600 it"),
    ("bob:x\n", 0o600, '["alice"]', "user 'alice' has no secret in"),
    ("alice\n", 0o600, '["alice"]', "line 1: expected user:secret"),
    ("alice:x\n", 0o600, '["al ice"]', "invalid user name"),
])
def test_a_bad_secrets_file_stops_start_up(tmp_path: Path, secrets: str, mode: int,
                                           users: str, problem: str) -> None:
    config = write_config(tmp_path, secrets, mode, users)
    with pytest.raises(ConfigError) as info:
        load_config(str(config))
    assert problem in str(info.value)
    started = subprocess.run([sys.executable, "-m", "blit_daemon", "--config", str(config),
                              "--port", "0", "--no-mdns"], capture_output=True, text=True,
                             timeout=60)
    assert started.returncode != 0 and problem in started.stderr


def test_a_secrets_file_that_is_a_directory_stops_start_up(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "secrets").unlink()
    (tmp_path / "secrets").mkdir()
    with pytest.raises(ConfigError, match="the secrets file is not a regular file"):
        load_config(str(config))


def test_a_missing_secrets_file_stops_start_up(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "secrets").unlink()
    with pytest.raises(ConfigError, match="cannot read the secrets file: No such file"):
        load_config(str(config))
    config.write_text(config.read_text().replace(f'secrets_file = "{tmp_path}/secrets"', ""))
    with pytest.raises(ConfigError, match=r"module\[1\].auth_users: needs \[daemon\] secrets_file"):
        load_config(str(config))


def test_the_right_secret_logs_in_to_push_and_pull(guarded: Daemon, tmp_path: Path,
                                                  small_tree: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_bytes(SECRET + b"\n")
    pushed = blit("copy", "--password-file", str(password_file), f"{small_tree}/",
                  endpoint(guarded, "tree") + "/")
    assert pushed.returncode == 0, pushed.stderr
    assert_same_tree(small_tree, guarded.root / "tree")
    pulled = blit("copy", endpoint(guarded, "tree") + "/", f"{tmp_path}/back/", password=SECRET)
    assert pulled.returncode == 0, pulled.stderr
    assert_same_tree(small_tree, tmp_path / "back")


@pytest.mark.parametrize(("user", "password", "problem"), [
    ("alice", b"wrong", "login to module 'default' as 'alice' failed: wrong user or secret"),
    ("mallory", SECRET, "login to module 'default' as 'mallory' failed"),
    ("alice", None, "needs a login: give --password-file FILE or set BLIT_PASSWORD"),
    ("", SECRET, "needs a user: write USER@HOST:/default/"),
    ("a" * 300, SECRET, "a user name longer than 256 characters"),
])
def test_a_wrong_login_is_refused_and_writes_nothing(guarded: Daemon, small_tree: Path,
                                                     user: str, password: bytes | None,
                                                     problem: str) -> None:
    target = endpoint(guarded, "tree", user).removeprefix("@") + "/"
    result = blit("copy", f"{small_tree}/", target, password=password)
    assert result.returncode == 5, result.stderr
    assert problem in result.stderr
    assert list(guarded.root.iterdir()) == []


async def _hello_then(daemon: Daemon, answer_with: object) -> tuple[bytes, list[str]]:
    """One session as alice: Hello, then whatever `answer_with(nonce)` sends; returns the
    nonce and the names of the frames that came back."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{daemon.port}") as channel:
        call = pb_grpc.BlitStub(channel).Transfer()
        await call.write(pb.Frame(hello=pb.Hello(
            protocol=PROTOCOL_VERSION, client_version="test", module="default",
            paths=["/default/x"], client_role=pb.SOURCE, verb="copy",
            options=options_to_wire(TransferOptions()), user="alice")))
        first = await call.read()
        nonce = first.challenge.nonce
        assert len(nonce) == auth.NONCE_BYTES
        await answer_with(call, nonce)
        seen = []
        while (frame := await call.read()) is not grpc.aio.EOF:
            seen.append(frame.WhichOneof("body"))
            if frame.HasField("failure"):
                seen.append(frame.failure.message)
                break
            if frame.HasField("welcome"):
                break
        call.cancel()
        return nonce, seen


def test_an_answer_is_good_for_one_session_only(guarded: Daemon) -> None:
    answers: list[bytes] = []

    async def honest(call, nonce: bytes) -> None:
        answers.append(auth.answer(SECRET, nonce, "default", "alice"))
        await call.write(pb.Frame(auth=pb.AuthAnswer(answer=answers[-1])))

    async def replay(call, nonce: bytes) -> None:
        await call.write(pb.Frame(auth=pb.AuthAnswer(answer=answers[0])))

    first_nonce, first = asyncio.run(_hello_then(guarded, honest))
    assert first == ["welcome"]
    second_nonce, second = asyncio.run(_hello_then(guarded, replay))
    assert second_nonce != first_nonce
    assert second[0] == "failure" and "failed: wrong user or secret" in second[1]


def test_no_data_plane_is_granted_before_the_login(guarded: Daemon) -> None:
    async def skip_login(call, nonce: bytes) -> None:
        await call.write(pb.Frame(roots=pb.Roots(roots=[pb.Root(src="s", dst="x",
                                                                is_dir=True)])))

    _, seen = asyncio.run(_hello_then(guarded, skip_login))
    assert seen[0] == "failure" and "expected auth" in seen[1]
    assert "grant" not in seen


def test_failed_logins_are_rate_limited_per_address(guarded: Daemon,
                                                    small_tree: Path) -> None:
    for _ in range(login.MAX_FAILURES):
        assert blit("copy", f"{small_tree}/", endpoint(guarded, "t") + "/",
                    password=b"guess").returncode == 5
    locked = blit("copy", f"{small_tree}/", endpoint(guarded, "t") + "/", password=SECRET)
    assert locked.returncode == 5
    assert "too many failed logins from this address" in locked.stderr


def test_blit_utils_logs_in_to_list_measure_and_remove(guarded: Daemon, tmp_path: Path) -> None:
    (guarded.root / "dir").mkdir()
    (guarded.root / "dir" / "a.txt").write_bytes(b"12345")
    password_file = tmp_path / "password"
    password_file.write_bytes(SECRET + b"\n")
    where = endpoint(guarded, "dir")

    listed = utils("ls", "--password-file", str(password_file), where)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["a.txt"]
    used = utils("du", "--json", where, password=SECRET)
    assert used.returncode == 0, used.stderr
    assert '"bytes": 5' in used.stdout
    for verb in ("find", "df"):
        assert utils(verb, where, password=SECRET).returncode == 0
    removed = utils("rm", "--yes", endpoint(guarded, "dir/a.txt"), password=SECRET)
    assert removed.returncode == 0, removed.stderr
    assert not (guarded.root / "dir" / "a.txt").exists()


@pytest.mark.parametrize(("user", "password", "problem"), [
    ("alice", b"wrong", "login to module 'default' as 'alice' failed: wrong user or secret"),
    ("alice", None, "logging in as 'alice' needs a secret: --password-file FILE or "
                    "$BLIT_PASSWORD"),
    ("", SECRET, "needs a user: write USER@HOST:/default/"),
])
def test_blit_utils_with_a_wrong_login_is_refused(guarded: Daemon, user: str,
                                                  password: bytes | None, problem: str) -> None:
    (guarded.root / "kept.txt").write_bytes(b"kept")
    for verb in (["ls"], ["rm", "--yes"]):
        result = utils(*verb, endpoint(guarded, "kept.txt", user).removeprefix("@"),
                       password=password)
        assert result.returncode in (1, 5), result.stderr
        assert problem in result.stderr
    assert (guarded.root / "kept.txt").read_bytes() == b"kept"


DISK_FREE = pb.PathRequest(path=b"/default")


def test_an_admin_login_is_good_for_one_call_only(guarded: Daemon) -> None:
    """A nonce is used up by the call it logs in (right answer or wrong), and one nobody
    handed out is refused without counting as a failed login."""
    async def calls() -> list[str]:
        outcomes = []
        async with grpc.aio.insecure_channel(f"127.0.0.1:{guarded.port}") as channel:
            stub = pb_grpc.BlitAdminStub(channel)

            async def disk_free(metadata: tuple) -> str:
                try:
                    await stub.DiskFree(DISK_FREE, metadata=metadata)
                except grpc.aio.AioRpcError as exc:
                    return exc.details()
                return "ok"

            nonce = (await stub.NewChallenge(pb.ChallengeRequest())).nonce
            honest = auth.login_metadata(SECRET, nonce, "default", "alice", DISK_FREE)
            outcomes.append(await disk_free(honest))
            outcomes.append(await disk_free(honest))  # replayed
            made_up = auth.login_metadata(SECRET, bytes(auth.NONCE_BYTES), "default", "alice",
                                          DISK_FREE)
            for _ in range(login.MAX_FAILURES + 1):  # not failed guesses: never rate-limited
                outcomes.append(await disk_free(made_up))
            nonce = (await stub.NewChallenge(pb.ChallengeRequest())).nonce
            outcomes.append(await disk_free(auth.login_metadata(SECRET, nonce, "default",
                                                                "alice", DISK_FREE)))
            other = (await stub.NewChallenge(pb.ChallengeRequest())).nonce
            outcomes.append(await disk_free(auth.login_metadata(SECRET, other, "elsewhere",
                                                                "alice", DISK_FREE)))
            other = (await stub.NewChallenge(pb.ChallengeRequest())).nonce
            removal = pb.RemoveRequest(paths=[b"/default/kept.txt"])
            outcomes.append(await disk_free(auth.login_metadata(SECRET, other, "default",
                                                                "alice", removal)))
        return outcomes

    ok, replayed, *made_up, ok_again, other_module, other_call = asyncio.run(calls())
    assert ok == ok_again == "ok"
    assert "its challenge is unknown, used or expired" in replayed
    assert all("its challenge is unknown, used or expired" in m for m in made_up)
    assert "failed: wrong user or secret" in other_module  # the answer names the module
    assert "failed: wrong user or secret" in other_call  # and the call it is for
