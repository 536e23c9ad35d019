"""The daemon's side of logging in to a module that has users (blit_core/auth.py): the
challenge, the check of the answer in constant time, and a limit on failed attempts per peer
address (MAX_FAILURES in FAILURE_WINDOW_S; then every attempt from there is refused, even
with the right secret, until the oldest failure is that old).

A transfer is challenged inside its session. An admin call (blit-utils) brings a nonce it got
from NewChallenge, which the daemon keeps in a ChallengeBook until it is used once or expires,
and its answer, as call metadata (`admin_login`)."""

from __future__ import annotations

import collections
import secrets
import threading
import time
from collections.abc import Callable, Sequence

from google.protobuf.message import Message

from blit_core import auth
from blit_core.errors import RemoteError
from blit_core.net.generated import blit_pb2 as pb
from blit_core.net.session import Channel
from blit_daemon.config import DaemonConfig, ModuleConfig

MAX_FAILURES = 5
MAX_USER_CHARS = 256
FAILURE_WINDOW_S = 60.0
CHALLENGE_TTL_S = 30.0
MAX_OPEN_CHALLENGES = 4096  # beyond it, the oldest is forgotten
_UNKNOWN_USER_SECRET = secrets.token_bytes(32)  # an answer for it is computed, and fails


class LoginLimiter:
    """Failed logins by peer address, forgotten after FAILURE_WINDOW_S (thread-safe: admin
    calls log in from worker threads)."""

    def __init__(self) -> None:
        self._failures: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """RemoteError if `address` failed too often lately."""
        with self._lock:
            recent = self._failures.get(address, collections.deque())
            while recent and time.monotonic() - recent[0] > FAILURE_WINDOW_S:
                recent.popleft()
            if not recent:
                self._failures.pop(address, None)
                return
            if len(recent) < MAX_FAILURES:
                return
            wait = FAILURE_WINDOW_S - (time.monotonic() - recent[0])
        raise RemoteError(f"too many failed logins from this address; retry in "
                          f"{max(1, round(wait))} s")

    def failed(self, address: str) -> None:
        with self._lock:
            self._failures.setdefault(address, collections.deque()).append(time.monotonic())


class ChallengeBook:
    """The nonces handed to admin callers and not yet used: each is good once, for
    CHALLENGE_TTL_S (thread-safe: admin work runs in threads)."""

    def __init__(self) -> None:
        self._issued: collections.OrderedDict[bytes, float] = collections.OrderedDict()
        self._lock = threading.Lock()

    def issue(self) -> bytes:
        nonce = secrets.token_bytes(auth.NONCE_BYTES)
        with self._lock:
            self._issued[nonce] = time.monotonic()
            while len(self._issued) > MAX_OPEN_CHALLENGES:
                self._issued.popitem(last=False)
        return nonce

    def take(self, nonce: bytes) -> bool:
        """Whether `nonce` was issued, unused and fresh; it is used up either way."""
        with self._lock:
            issued = self._issued.pop(nonce, None)
        return issued is not None and time.monotonic() - issued <= CHALLENGE_TTL_S


def _check_user(module: ModuleConfig, user: str) -> None:
    if len(user) > MAX_USER_CHARS:
        raise RemoteError(f"a user name longer than {MAX_USER_CHARS} characters")
    if not user:
        raise RemoteError(f"module {module.name!r} needs a user: write USER@HOST:/"
                          f"{module.name}/..., with --password-file FILE or "
                          f"${auth.PASSWORD_ENV}")


def _check_answer(config: DaemonConfig, module: ModuleConfig, user: str, given: bytes,
                  address: str, limiter: LoginLimiter,
                  expected: Callable[[bytes], bytes]) -> None:
    """`expected(secret)`: the right answer for that secret."""
    known = user in module.auth_users and user in config.secrets
    secret = config.secrets[user] if known else _UNKNOWN_USER_SECRET
    if not auth.answers_match(given, expected(secret)) or not known:
        limiter.failed(address)
        raise RemoteError(f"login to module {module.name!r} as {user!r} failed: wrong user "
                          "or secret")


async def log_in(chan: Channel, config: DaemonConfig, module: ModuleConfig, user: str,
                 address: str, limiter: LoginLimiter) -> None:
    """Challenge the client for `module` if it has users; RemoteError unless it answers for
    one of them with that user's secret."""
    if not module.auth_users:
        return
    limiter.check(address)
    _check_user(module, user)
    nonce = secrets.token_bytes(auth.NONCE_BYTES)
    await chan.send(pb.Frame(challenge=pb.Challenge(nonce=nonce)))
    given = (await chan.expect("auth")).auth.answer
    _check_answer(config, module, user, given, address, limiter,
                  lambda secret: auth.answer(secret, nonce, module.name, user))


def admin_login(config: DaemonConfig, module: ModuleConfig, request: Message,
                metadata: Sequence[tuple[str, str | bytes]], address: str,
                limiter: LoginLimiter, book: ChallengeBook) -> None:
    """RemoteError unless the `metadata` of an admin call making `request` logs in to
    `module` (if it has users) with a nonce from `book`, used up here, and the right answer
    for that request."""
    if not module.auth_users:
        return
    limiter.check(address)
    given = {key: value for key, value in metadata if isinstance(value, bytes)}
    user = given.get(auth.USER_KEY, b"").decode("utf-8", "replace")
    _check_user(module, user)
    nonce = given.get(auth.NONCE_KEY, b"")
    if not book.take(nonce):  # not a failed guess (nothing was checked): not counted
        raise RemoteError(f"login to module {module.name!r} failed: its challenge is unknown, "
                          "used or expired (ask again)")
    _check_answer(config, module, user, given.get(auth.ANSWER_KEY, b""), address, limiter,
                  lambda secret: auth.admin_answer(secret, nonce, module.name, user, request))
