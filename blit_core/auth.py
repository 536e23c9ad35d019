"""Logging in to a daemon module that has users: the challenge/response both ends compute, and
the client's ways to get its secret. Secrets never cross the wire: the daemon sends a fresh
random nonce, and the client answers with HMAC-SHA256(secret, context), where the context
binds the nonce to this protocol, module and user, so an answer is good for one session only.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from google.protobuf.message import Message

from blit_core.errors import UsageError

NONCE_BYTES = 32
PASSWORD_ENV = "BLIT_PASSWORD"
_CONTEXT = b"blit-auth-1\0"
_ADMIN_CONTEXT = b"blit-admin-1\0"
# An admin call's login, as call metadata: the user (UTF-8), a nonce from NewChallenge, the
# answer.
USER_KEY, NONCE_KEY, ANSWER_KEY = "blit-user-bin", "blit-nonce-bin", "blit-answer-bin"


def answer(secret: bytes, nonce: bytes, module: str, user: str) -> bytes:
    """The answer to `nonce` for `user` logging in to `module`."""
    context = _CONTEXT + nonce + b"\0" + module.encode() + b"\0" + user.encode()
    return hmac.new(secret, context, hashlib.sha256).digest()


def admin_answer(secret: bytes, nonce: bytes, module: str, user: str, request: Message) -> bytes:
    """The answer to `nonce` for an admin call making `request`: bound to the request too (its
    type and content), so that it cannot be moved to another call, as `ls` to `rm`."""
    called = hashlib.sha256(request.DESCRIPTOR.full_name.encode() + b"\0"
                            + request.SerializeToString(deterministic=True)).digest()
    return answer(secret, _ADMIN_CONTEXT + called + nonce, module, user)


def login_metadata(secret: bytes, nonce: bytes, module: str, user: str,
                   request: Message) -> tuple[tuple[str, bytes], ...]:
    """The metadata of an admin call making `request` that logs in to `module` as `user`."""
    return ((USER_KEY, user.encode()), (NONCE_KEY, nonce),
            (ANSWER_KEY, admin_answer(secret, nonce, module, user, request)))


def answers_match(given: bytes, expected: bytes) -> bool:
    """Compared in constant time."""
    return hmac.compare_digest(given, expected)


def client_secret(password_file: str | None) -> bytes | None:
    """The secret to log in with: the first line of `password_file`, else $BLIT_PASSWORD,
    else None. UsageError if the file cannot be read or holds no secret."""
    if password_file is not None:
        try:
            with open(password_file, "rb") as stream:
                secret = stream.readline().rstrip(b"\r\n")
        except OSError as exc:
            raise UsageError(f"--password-file {password_file}: {exc.strerror or exc}") from None
        if not secret:
            raise UsageError(f"--password-file {password_file}: its first line is empty")
        return secret
    from_env = os.environ.get(PASSWORD_ENV)
    return from_env.encode() if from_env else None
