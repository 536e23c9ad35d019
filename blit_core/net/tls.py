"""TLS for both planes, both ends: the daemon's identity (its certificate and key, served on
the gRPC port and on every data connection), the client's trust (a CA file, or the system
store) and the explanation of a connection that TLS made fail.

Nothing is negotiated: a daemon with a certificate speaks only TLS, and a client uses TLS only
when asked (--tls, --tls-ca), and then never plain text. The client checks the daemon's
certificate and name (the host it dialled) with the same trust on the gRPC channel and on each
data connection, so both planes reach the same verified daemon.

os.sendfile cannot write through TLS, so a TLS data connection reads files into a buffer and
sends that (dataplane.TlsSocketOutput). Kernel TLS would bring sendfile back, but Python
3.11's ssl module cannot switch it on."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
from dataclasses import dataclass

import grpc

from blit_core.errors import UsageError

PROBE_TIMEOUT_S = 5.0
_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----")
_PEM_ENCRYPTED = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


class TlsFileError(Exception):
    """A TLS file of the daemon is unusable; `key` is the config key naming it (tls_cert or
    tls_key), the message the problem."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key


@dataclass(frozen=True)
class ServerTls:
    """The daemon's identity, loaded once: for the gRPC port and for data connections."""

    credentials: grpc.ServerCredentials
    context: ssl.SSLContext


def load_server_tls(cert_file: str, key_file: str) -> ServerTls:
    """The daemon's certificate (chain) and private key, as PEM files. TlsFileError if either
    cannot be read, holds no PEM of its kind, the key is encrypted or readable by others, or
    the key is not the certificate's."""
    cert = _read("tls_cert", cert_file)
    key = _read("tls_key", key_file)
    if _PEM_CERTIFICATE not in cert:
        raise TlsFileError("tls_cert", f"{cert_file!r} holds no PEM certificate")
    if not _PEM_PRIVATE_KEY.search(key):
        raise TlsFileError("tls_key", f"{key_file!r} holds no PEM private key")
    if any(marker in key for marker in _PEM_ENCRYPTED):
        raise TlsFileError("tls_key", f"{key_file!r} is encrypted with a passphrase; the daemon "
                           "needs the key unencrypted (readable by its user only)")
    mode = os.stat(key_file).st_mode
    if mode & 0o007:
        raise TlsFileError("tls_key", f"{key_file!r} may be read or written by others "
                           f"(mode {mode & 0o777:04o}); chmod o-rwx it")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.num_tickets = 0  # data connections are never resumed
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_passphrase)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsFileError("tls_key", f"{key_file!r} is not the private key of the "
                               f"certificate in {cert_file!r}") from None
        raise TlsFileError("tls_cert", f"cannot load {cert_file!r} with {key_file!r}: "
                           f"{exc.reason or exc}") from None
    return ServerTls(grpc.ssl_server_credentials([(key, cert)]), context)


def _read(key: str, path: str) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError as exc:
        raise TlsFileError(key, f"cannot read {path!r}: {exc.strerror or exc}") from None


def _no_passphrase() -> bytes:
    raise TlsFileError("tls_key", "the key is encrypted with a passphrase")


@dataclass(frozen=True)
class ClientTls:
    """How the client checks the daemon: `roots` are the CA certificates (PEM) the gRPC
    channel trusts (None: grpc's own, where the system has no CA bundle file), `context` the
    same trust for data connections, `trust` its name in messages."""

    roots: bytes | None
    context: ssl.SSLContext
    trust: str


def client_tls(ca_file: str | None) -> ClientTls:
    """Trust the CA certificates in `ca_file` (PEM), or the system store when None.
    UsageError if the file cannot be read or holds no certificate."""
    if ca_file is None:
        bundle = ssl.get_default_verify_paths().cafile  # $SSL_CERT_FILE, or the system's
        roots = None
        if bundle is not None:
            with open(bundle, "rb") as stream:
                roots = stream.read()
        return ClientTls(roots, ssl.create_default_context(), "the system's CA certificates")
    try:
        with open(ca_file, "rb") as stream:
            roots = stream.read()
    except OSError as exc:
        raise UsageError(f"--tls-ca {ca_file}: {exc.strerror or exc}") from None
    if _PEM_CERTIFICATE not in roots:
        raise UsageError(f"--tls-ca {ca_file}: holds no PEM certificate")
    try:
        context = ssl.create_default_context(cadata=roots.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError) as exc:
        raise UsageError(f"--tls-ca {ca_file}: not a readable PEM certificate ({exc})") from None
    return ClientTls(roots, context, f"the CA certificates in {ca_file}")


def open_channel(address: str, tls: ClientTls | None) -> grpc.aio.Channel:
    """A gRPC channel to the daemon at `address` ("host:port"): TLS when `tls` is given."""
    if tls is None:
        return grpc.aio.insecure_channel(address)
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(tls.roots))


def explain_failure(address: str, tls: ClientTls | None) -> str | None:
    """Why the daemon at `address` could not be reached, when TLS is the reason: it uses
    TLS and the client does not, or the other way round, or its certificate did not verify.
    None when TLS is not why (nothing listens there, ...). Makes one probe connection."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        raw = socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S)
    except OSError:
        return None
    context = tls.context if tls is not None else _any_certificate()
    with contextlib.closing(raw):
        try:
            context.wrap_socket(raw, server_hostname=host).close()
        except ssl.SSLCertVerificationError as exc:
            assert tls is not None
            return (f"the TLS certificate of the daemon at {address} does not verify against "
                    f"{tls.trust}: {exc.verify_message}")
        except OSError:
            if tls is None:
                return None
            return (f"the daemon at {address} does not use TLS, and --tls or --tls-ca was "
                    "given: refusing to connect without it")
    if tls is None:
        return (f"the daemon at {address} uses TLS: connect with --tls (checking its "
                "certificate against the system's CA certificates) or --tls-ca FILE")
    return None


def _any_certificate() -> ssl.SSLContext:
    """For the probe of a plain client only: whether TLS answers, whatever its certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
