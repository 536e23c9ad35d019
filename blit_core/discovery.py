"""Finding blit daemons on the local network with mDNS / DNS-SD (zeroconf, asyncio API).

Both ends live here. The daemon's `Advertiser` announces `_blit._tcp.local.` with TXT
properties: `version` (blit's), `protocol` (the session protocol), `modules` (comma-separated
names in configuration order, a read-only one suffixed `:ro`, cut to fit one 255-byte TXT
string) and `nmodules` (how many modules there are, so a cut list is visible as cut).
Announcements are IPv4 and go only where the daemon listens: a specific address announces that
address on that interface, a wildcard bind (0.0.0.0 or ::) the machine's IPv4 addresses on
every interface.

Clients call `browse()` for a sorted list of `DaemonInfo` (blit_cli.scan prints it). Nothing
here prints, reads the environment or exits; failures raise
`DiscoveryError` (one line)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import ifaddr  # zeroconf's own dependency, for the machine's addresses
from zeroconf import Error as ZeroconfError
from zeroconf import InterfaceChoice, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from blit_core import __version__
from blit_core.errors import RemoteError, UsageError
from blit_core.net.session import PROTOCOL_VERSION

SERVICE_TYPE = "_blit._tcp.local."
INTERFACES_ENV = "BLIT_MDNS_INTERFACES"  # the front ends' default browse interfaces
TXT_MAX = 255  # bytes in one TXT string, "key=value" included
LABEL_MAX = 63  # bytes in a DNS label: the instance name
RESOLVE_TIMEOUT_MS = 1000  # for a daemon whose records did not all come with its announcement
READ_ONLY_SUFFIX = ":ro"
NAME_CHECK_S = 0.5  # how long a daemon asks who holds its name before it announces
# What zeroconf raises when it cannot open its sockets, probe, or accept a name.
_FAILURES = (OSError, RuntimeError, ValueError, ZeroconfError)


class DiscoveryError(RemoteError):
    """mDNS cannot announce or browse here (no multicast, no such interface, a bad name...)."""


@dataclass(frozen=True)
class ModuleInfo:
    """A module as announced: its name and whether clients may only read it."""

    name: str
    read_only: bool = False


@dataclass(frozen=True)
class DaemonInfo:
    """One daemon found on the network. `endpoint` is `address:port` ready for
    `blit copy x ENDPOINT:/module/`: an IPv4 address when there is one (IPv6 bracketed)."""

    instance: str  # "blit@nas"
    host: str  # "nas.local"
    addresses: tuple[str, ...]
    port: int
    endpoint: str
    version: str
    protocol: int | None
    modules: tuple[ModuleInfo, ...]
    module_count: int  # more than len(modules) when the announced list was cut

    def to_json(self) -> dict[str, object]:
        return {
            "instance": self.instance,
            "endpoint": self.endpoint,
            "host": self.host,
            "addresses": list(self.addresses),
            "port": self.port,
            "version": self.version,
            "protocol": self.protocol,
            "modules": [{"name": m.name, "read_only": m.read_only} for m in self.modules],
            "module_count": self.module_count,
        }


# --- the TXT record ------------------------------------------------------------------------


def txt_properties(modules: Sequence[ModuleInfo]) -> dict[str, str]:
    """The TXT properties announcing `modules`; the module list keeps whole names, in order,
    while its string fits in TXT_MAX bytes."""
    kept: list[str] = []
    size = len(b"modules=")
    for module in modules:
        entry = module.name + (READ_ONLY_SUFFIX if module.read_only else "")
        grown = size + len(entry.encode()) + (1 if kept else 0)
        if grown > TXT_MAX:
            break
        kept.append(entry)
        size = grown
    return {
        "version": __version__,
        "protocol": str(PROTOCOL_VERSION),
        "modules": ",".join(kept),
        "nmodules": str(len(modules)),
    }


def parse_modules(text: str) -> tuple[ModuleInfo, ...]:
    """The modules of a `modules` TXT value."""
    return tuple(
        ModuleInfo(entry.removesuffix(READ_ONLY_SUFFIX), entry.endswith(READ_ONLY_SUFFIX))
        for entry in text.split(",") if entry
    )


# --- announcing ----------------------------------------------------------------------------


def default_instance_name() -> str:
    """`blit@HOST` with this machine's short host name, cut to one DNS label."""
    name = f"blit@{_short_host_name()}".encode()[:LABEL_MAX]
    return name.decode(errors="ignore")


def _short_host_name() -> str:
    return socket.gethostname().split(".")[0] or "localhost"


class Advertiser:
    """The mDNS announcement of one daemon listening on `bind`:`port`. Calls must not overlap
    (the daemon runs them one after another)."""

    def __init__(self, bind: str, port: int) -> None:
        self.bind = bind
        self.port = port
        self.where = ""  # where it announces, for the log: "127.0.0.1", "all interfaces (...)"
        self._zeroconf: AsyncZeroconf | None = None
        self._interfaces: list[str] | InterfaceChoice = InterfaceChoice.All
        self._addresses: list[str] = []
        self._server = ""  # the host name its address records go under
        self._requested = ""  # the name asked for; the registered one may carry a suffix
        self._info: AsyncServiceInfo | None = None

    async def publish(self, name: str, modules: Sequence[ModuleInfo]) -> str:
        """Announce `name` with `modules`, or re-announce after a change; the instance name in
        use. The first announcement asks who holds the name, then probes the network (about
        1.7 s in all) and, when another daemon has the name, takes a free one (`NAME-2`, ...).
        Raises DiscoveryError, after which nothing is announced."""
        if len(name.encode()) > LABEL_MAX:
            raise DiscoveryError(f"the name {name!r} is longer than {LABEL_MAX} bytes")
        try:
            return await self._publish(name, txt_properties(modules))
        except (*_FAILURES, DiscoveryError) as exc:
            await self.close()
            raise DiscoveryError(str(exc) or type(exc).__name__) from None

    async def _publish(self, name: str, properties: dict[str, str]) -> str:
        if self._zeroconf is None:
            self._interfaces, self._addresses = await _scope(self.bind)
            bound_to_one = isinstance(self._interfaces, list)
            self._server = _server_name(self._addresses, bound_to_one)
            self.where = (", ".join(self._interfaces) if bound_to_one
                          else f"all interfaces ({', '.join(self._addresses)})")
            self._zeroconf = AsyncZeroconf(interfaces=self._interfaces,
                                           ip_version=IPVersion.V4Only)
        if self._info is not None and name == self._requested:
            info = self._service(self._info.name, properties)
            await self._zeroconf.async_update_service(info)
        else:
            if self._info is not None:
                await self._zeroconf.async_unregister_service(self._info)
                self._info = None
            info = self._service(f"{await self._free_name(name)}.{SERVICE_TYPE}", properties)
            await self._zeroconf.async_register_service(info, allow_name_change=True)
            self._requested = name
        self._info = info
        return _instance(info.name)

    async def _free_name(self, name: str) -> str:
        """`name`, or the first of `NAME-2`, `NAME-3`, ... that no daemon answering a one-shot
        query holds. zeroconf's probe alone finds a holder on another machine, but not one on
        this machine once its announcements are over: the probe asks for answers to port 5353,
        which the kernel may hand to another mDNS stack here (see async_browse)."""
        scope = self._interfaces if isinstance(self._interfaces, list) else None
        taken = {daemon.instance for daemon in await async_browse(NAME_CHECK_S, scope)}
        candidate, number = name, 2
        while candidate in taken:
            candidate = _with_suffix(name, f"-{number}")
            number += 1
        return candidate

    def _service(self, full_name: str, properties: dict[str, str]) -> AsyncServiceInfo:
        return AsyncServiceInfo(SERVICE_TYPE, full_name, port=self.port, properties=properties,
                                server=self._server,
                                parsed_addresses=self._addresses)

    async def close(self) -> None:
        """Withdraw the announcement (goodbye packets) and close the sockets; never raises."""
        running, self._zeroconf, self._info = self._zeroconf, None, None
        if running is not None:
            with contextlib.suppress(*_FAILURES):
                await running.async_close()


def _server_name(addresses: Sequence[str], bound_to_one: bool) -> str:
    """The host name of the announcement's address records: `HOST.local.` for a daemon on
    every interface, whose addresses are the machine's (as in other services' records for
    HOST), but `HOST-127-0-0-1.local.` for one bound to a single address. Records of one
    name from several announcers (another daemon, Avahi) merge in every browser, so under
    the shared name a loopback-only daemon would be listed at the LAN addresses it does not
    listen on."""
    host = _short_host_name()
    if not bound_to_one:
        return f"{host}.local."
    return f"{_with_suffix(host, '-' + addresses[0].replace('.', '-'))}.local."


def _with_suffix(label: str, suffix: str) -> str:
    """`label` + `suffix`, `label` cut so that the whole fits one DNS label."""
    return label.encode()[:LABEL_MAX - len(suffix)].decode(errors="ignore") + suffix


async def _scope(bind: str) -> tuple[list[str] | InterfaceChoice, list[str]]:
    """Where to announce for a daemon bound to `bind`, and the addresses to announce."""
    try:
        address = ipaddress.ip_address(bind)
    except ValueError:  # a host name: the address it binds, as the data plane does (IPv4)
        found = await asyncio.get_running_loop().getaddrinfo(
            bind, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
        address = ipaddress.ip_address(found[0][4][0])
    if address.is_unspecified:
        return InterfaceChoice.All, _machine_ipv4_addresses()
    if address.version == 6:
        raise DiscoveryError(f"bound to the IPv6 address {bind}; mDNS announcements are "
                             "IPv4-only (bind 0.0.0.0, ::, or an IPv4 address to be found)")
    return [str(address)], [str(address)]


def _machine_ipv4_addresses() -> list[str]:
    """This machine's IPv4 addresses, loopback left out unless there is nothing else."""
    addresses = sorted({ipaddress.IPv4Address(ip.ip) for adapter in ifaddr.get_adapters()
                        for ip in adapter.ips if ip.is_IPv4})
    outside = [a for a in addresses if not a.is_loopback]
    return [str(a) for a in (outside or addresses)]


# --- browsing ------------------------------------------------------------------------------


def interfaces_from_setting(text: str | None) -> list[str] | None:
    """The addresses of a comma-separated setting (the INTERFACES_ENV variable); None (all
    interfaces) when it is unset or empty."""
    addresses = [part.strip() for part in (text or "").split(",") if part.strip()]
    return addresses or None


def browse(wait_s: float, interfaces: Sequence[str] | None = None) -> list[DaemonInfo]:
    """The daemons that answer within `wait_s` seconds on `interfaces` (IP addresses of this
    machine; None: every interface, IPv4), sorted by instance name."""
    return asyncio.run(async_browse(wait_s, interfaces))


async def async_browse(wait_s: float, interfaces: Sequence[str] | None = None
                       ) -> list[DaemonInfo]:
    """`browse` from a running event loop."""
    if not (wait_s > 0 and math.isfinite(wait_s)):
        raise UsageError(f"--wait must be more than 0 seconds, got {wait_s:g}")
    choice: list[str] | InterfaceChoice = InterfaceChoice.All
    if interfaces is not None:
        choice = [_interface_address(text) for text in interfaces]
    found: dict[str, AsyncServiceInfo] = {}

    def changed(zeroconf: Zeroconf, service_type: str, name: str,
                state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            found.pop(name, None)
        else:
            found[name] = AsyncServiceInfo(service_type, name)

    where = "all interfaces" if interfaces is None else ", ".join(interfaces)
    try:
        # One-shot queries from a port of its own (unicast=True): responders answer them at
        # once, straight to that port. Asked from port 5353, the answers would be multicast,
        # which a responder may not repeat within a second of its last (so a scan just after
        # another, or after the daemon's announcement, heard nothing until its second question
        # a second later), or sent to port 5353, which every mDNS stack on this machine
        # shares, so that the kernel hands them to any one of those stacks.
        running = AsyncZeroconf(interfaces=choice, unicast=True,
                                ip_version=IPVersion.V4Only if interfaces is None else None)
    except _FAILURES as exc:
        raise DiscoveryError(f"cannot browse on {where}: {exc}") from None
    try:
        browser = AsyncServiceBrowser(running.zeroconf, SERVICE_TYPE, handlers=[changed])
        await asyncio.sleep(wait_s)
        await browser.async_cancel()
        infos = list(found.values())
        answered = await asyncio.gather(
            *(info.async_request(running.zeroconf, RESOLVE_TIMEOUT_MS) for info in infos))
    except _FAILURES as exc:
        raise DiscoveryError(f"cannot browse on {where}: {exc}") from None
    finally:
        with contextlib.suppress(*_FAILURES):
            await running.async_close()
    networks = _local_networks()
    daemons = [_daemon(info, networks) for info, ok in zip(infos, answered, strict=True)
               if ok and info.port and info.parsed_addresses()]
    return sorted(daemons, key=lambda d: (d.instance.casefold(), d.host, d.port))


def _interface_address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise UsageError(f"interface {text!r}: expected an IP address of this machine, such as"
                         " 127.0.0.1") from None


def _daemon(info: AsyncServiceInfo, networks: list[ipaddress.IPv4Network]) -> DaemonInfo:
    properties = info.decoded_properties
    modules = parse_modules(properties.get("modules") or "")
    addresses = sorted(info.parsed_addresses(), key=ipaddress.ip_address)
    port = info.port or 0
    return DaemonInfo(
        instance=_instance(info.name),
        host=(info.server or "").rstrip("."),
        addresses=tuple(addresses),
        port=port,
        endpoint=_endpoint(addresses, port, networks),
        version=properties.get("version") or "",
        protocol=_number(properties.get("protocol")),
        modules=modules,
        module_count=max(_number(properties.get("nmodules")) or 0, len(modules)),
    )


def _endpoint(addresses: Sequence[str], port: int,
              networks: Sequence[ipaddress.IPv4Network]) -> str:
    """`address:port` for a daemon announcing `addresses` (at least one): an IPv4 address,
    one inside a network of this machine (`networks`) if any, else the lowest; IPv6
    (bracketed) only when there is no IPv4 address."""
    parsed = sorted(map(ipaddress.ip_address, addresses))
    best = min(parsed, key=lambda a: (a.version != 4,
                                      not any(a in network for network in networks),
                                      a.version == 6 and a.is_link_local))
    return f"[{best}]:{port}" if best.version == 6 else f"{best}:{port}"


def _local_networks() -> list[ipaddress.IPv4Network]:
    return [ipaddress.IPv4Network(f"{ip.ip}/{ip.network_prefix}", strict=False)
            for adapter in ifaddr.get_adapters() for ip in adapter.ips if ip.is_IPv4]


def _instance(full_name: str) -> str:
    return full_name.removesuffix("." + SERVICE_TYPE)


def _number(text: str | None) -> int | None:
    """A TXT value that is a plain decimal count (ASCII digits, at most 9 of them)."""
    if text and len(text) <= 9 and text.isascii() and text.isdigit():
        return int(text)
    return None


# --- output --------------------------------------------------------------------------------

def nothing_found(wait_s: float, interfaces: Sequence[str] | None) -> str:
    """The message for an empty browse."""
    where = "all interfaces" if interfaces is None else ", ".join(interfaces)
    return f"no blit daemons found (browsed {wait_s:g}s for {SERVICE_TYPE} on {where})"
