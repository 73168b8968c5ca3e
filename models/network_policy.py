"""Which addresses a workspace's connections may reach: the public internet, and what operators allow.

Refused by default: loopback, private (RFC 1918, ULA, CGNAT), link-local (the cloud metadata service at
169.254.169.254 among them), multicast, unspecified and reserved addresses, and IPv6 forms that embed one
of those (IPv4-mapped, NAT64 and 6to4 are judged by the IPv4 address inside). `SYNCJOBS_ALLOWED_NETWORKS`
(a comma-separated CIDR list) widens it, e.g. for an internal API or the demo's own shop on loopback.
"""

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Not covered by is_private & co. in every Python version: carrier-grade NAT and NAT64.
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


class AddressRefused(Exception):
    """The network policy refuses this address."""


def parse_networks(text: str | Iterable[str] | None) -> tuple[Network, ...]:
    """CIDRs (or single addresses) from a comma-separated string or a list; ValueError names a bad one."""
    if text is None:
        return ()
    items = text.split(",") if isinstance(text, str) else list(text)
    networks = []
    for item in (part.strip() for part in items):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not a CIDR network") from None
    return tuple(networks)


def embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in SIX_TO_FOUR:
        return address.sixtofour
    return None


def is_public(address: Address) -> bool:
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or address in CGNAT
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


@dataclass(frozen=True)
class NetworkPolicy:
    """Public addresses, plus the `allowed` networks."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def from_setting(cls, text: str | Iterable[str] | None) -> "NetworkPolicy":
        return cls(parse_networks(text))

    def permits(self, address: str | Address) -> bool:
        try:
            ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        if any(ip.version == net.version and ip in net for net in self.allowed):
            return True
        inner = embedded_ipv4(ip)
        if inner is not None and any(inner in net for net in self.allowed if net.version == 4):
            return True
        return is_public(ip)

    def check(self, host: str, addresses: Iterable[str]) -> None:
        """Raise AddressRefused unless every address `host` resolved to is permitted (one refused address
        refuses the host: a name that also points inside is not followed)."""
        addresses = list(addresses)
        if not addresses or not all(self.permits(address) for address in addresses):
            raise AddressRefused(f"{host} is not reachable under the network policy")

    def as_setting(self) -> list[str]:
        return [str(net) for net in self.allowed]


def literal_address(host: str) -> Address | None:
    """The IP address `host` spells, if it spells one ("[::1]" included); None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def url_origin(url: str) -> tuple[str, str | None, int | None]:
    """(scheme, host, port) of a URL, the default port filled in: where its requests go."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, parts.hostname, port or {"http": 80, "https": 443}.get(scheme)
