"""Who may use the daemon and its modules, beyond logging in (blit_daemon/login.py):

- host rules (`hosts_allow`, `hosts_deny`: addresses and CIDRs), for the whole daemon and per
  module, read as rsync reads them: with only an allow list, only its addresses are let in;
  with only a deny list, all but its addresses; with both, the allow list is checked first,
  then the deny list, and an address on neither is let in;
- `max_connections`: how many transfer sessions a module serves at once;
- `refuse_options`: what a module refuses to do for a client, by option name.

An IPv4 peer reaching an IPv6 socket (::ffff:a.b.c.d) is matched as its IPv4 address."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import ipaddress
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from blit_core.errors import DaemonBusy, RemoteError
from blit_core.options import CompareMode, TransferOptions, Verb

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str) -> Network:
    """An address ("192.168.1.7", "::1") or a CIDR ("10.0.0.0/8"); ValueError if neither."""
    return ipaddress.ip_network(text.strip(), strict=False)


@dataclass(frozen=True)
class HostRules:
    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()

    def permits(self, address: str) -> bool:
        """Whether a peer at `address` (an IP address; anything else is refused when there
        are rules) may connect."""
        if not self.allow and not self.deny:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allow):
            return True
        if any(ip in network for network in self.deny):
            return False
        return bool(self.deny) or not self.allow  # on neither list: only an allow list bars

    @property
    def loopback_only(self) -> bool:
        """Whether only loopback addresses are let in."""
        return bool(self.allow) and not self.deny and all(n.is_loopback for n in self.allow)


OPEN_TO_ALL = HostRules()


def peer_address(peer: str) -> str:
    """The address part of a gRPC peer ("ipv4:127.0.0.1:5000", "ipv6:%5B::1%5D:5000": gRPC
    percent-encodes the brackets)."""
    address = urllib.parse.unquote(peer.split(":", 1)[-1])
    return address.rsplit(":", 1)[0].strip("[]") if ":" in address else address


REFUSED_FIRST_MESSAGE_WAIT_S = 2.0


class HostGate(grpc.aio.ServerInterceptor):
    """Ends every call, of every service, from an address that the daemon's host rules (read
    anew for each call, so a reload applies) do not permit."""

    def __init__(self, rules: Callable[[], HostRules]) -> None:
        self._rules = rules

    async def intercept_service(self, continuation: Callable[..., Any],
                                details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        kind = ("stream" if handler.request_streaming else "unary") + "_" + (
            "stream" if handler.response_streaming else "unary")
        return handler._replace(**{kind: self._gated(getattr(handler, kind),
                                                     handler.request_streaming)})

    def _gated(self, behavior: Callable[..., Any], request_streaming: bool) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(behavior):
            async def gated_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await self._check(context, request_streaming)
                async for reply in behavior(request, context):
                    yield reply
            return gated_stream

        async def gated(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await self._check(context, request_streaming)
            return await behavior(request, context)
        return gated

    async def _check(self, context: grpc.aio.ServicerContext, request_streaming: bool) -> None:
        address = peer_address(context.peer())
        if self._rules().permits(address):
            return
        if request_streaming:
            # The client's first message is taken before the refusal: a client that writes it
            # after the refusal arrived would see gRPC's "Internal error from Core" instead of
            # the reason (grpc/grpc#36066), one run in ten on a busy machine.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(context.read(), REFUSED_FIRST_MESSAGE_WAIT_S)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                            f"this blit daemon does not accept connections from {address} "
                            "(its hosts_allow / hosts_deny)")


class ModuleSessions:
    """Transfer sessions running per module, against each module's max_connections."""

    def __init__(self) -> None:
        self._running: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def admitted(self, name: str, limit: int | None) -> Iterator[None]:
        """Count one session of module `name` while inside; DaemonBusy if `limit` are
        already running."""
        if limit is not None and self._running[name] >= limit:
            raise DaemonBusy(f"module {name!r} is busy: it is serving its maximum of {limit} "
                             "connections; retry later")
        self._running[name] += 1
        try:
            yield
        finally:
            self._running[name] -= 1
            if not self._running[name]:
                del self._running[name]


def _deletes_in_module(options: TransferOptions, verb: Verb, module_is_source: bool) -> bool:
    """Whether a transfer would delete files inside the module: a mirror or
    --delete-excluded into it, a move out of it."""
    if module_is_source:
        return verb is Verb.MOVE
    return verb is Verb.MIRROR or options.delete_excluded


# What each name in refuse_options refuses, and what the client is told it asked for.
REFUSABLE: Mapping[str, tuple[str, Callable[[TransferOptions, Verb, bool], bool]]] = {
    "delete": ("deleting files (mirror or --delete-excluded into it, move out of it, "
               "blit-utils rm)", _deletes_in_module),
    "checksum": ("-c/--checksum", lambda o, v, s: o.compare is CompareMode.CHECKSUM),
    "compress": ("-z/--compress", lambda o, v, s: o.compress),
    "partial": ("--partial", lambda o, v, s: o.partial),
    "inplace": ("--inplace", lambda o, v, s: o.inplace),
    "backup": ("-b/--backup", lambda o, v, s: o.backup),
    "hard-links": ("-H/--hard-links", lambda o, v, s: o.hard_links),
    "copy-links": ("-L/--copy-links", lambda o, v, s: o.copy_links),
}


def refusal(module_name: str, option: str) -> RemoteError:
    """The error for a module that refuses `option` (a name in REFUSABLE)."""
    return RemoteError(f"module {module_name!r} refuses {REFUSABLE[option][0]}")


def check_refused(module_name: str, refused: tuple[str, ...], options: TransferOptions,
                  verb: Verb, module_is_source: bool) -> None:
    """The refusal of the first option in `refused` that this transfer asks for."""
    for name in refused:
        if REFUSABLE[name][1](options, verb, module_is_source):
            raise refusal(module_name, name)
