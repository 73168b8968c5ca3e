"""Where a webhook may point: public addresses only, unless SYNCJOBS_ALLOWED_NETWORKS lets a private,
loopback or link-local network in. A tenant's webhook must never reach our own hosts or internal network.

This is the webhooks' own small check; the HTTP connector's network policy (branch tenant-runtime) is meant to
replace it at merge: `address_allowed` and `check_url` are the two calls the rest of the code makes."""

import ipaddress
from urllib.parse import urlsplit

from models.errors import ValidationFailed

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Names that mean this host whatever DNS says.
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class TargetRefused(ValidationFailed):
    """The webhook URL points at an address webhooks may not reach."""

    code = "target_refused"


def parse_allowed_networks(text: str) -> list[Network]:
    """SYNCJOBS_ALLOWED_NETWORKS: comma-separated CIDRs (or single addresses)."""
    networks = []
    for part in text.split(","):
        if part.strip():
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
    return networks


def address_allowed(address: Address | str, allowed: list[Network]) -> bool:
    """Public addresses always; anything else (private, loopback, link-local, reserved, multicast,
    shared) only inside an allowed network."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(ip in network for network in allowed):
        return True
    return ip.is_global and not ip.is_multicast


def check_url(url: str, allowed: list[Network]) -> None:
    """Refuse a URL that is not http(s), or whose host is a literal address or local name outside the
    policy. Host names are checked again, resolved, at every delivery."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(
            "The webhook URL must be http(s) with a host",
            details=[{"field": "url", "message": "expected http:// or https:// and a host"}],
        )
    host = parts.hostname.rstrip(".").lower()
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        refused = not address_allowed(literal, allowed)
    else:
        refused = (host in LOCAL_NAMES or host.endswith(".localhost")) and not address_allowed(
            "127.0.0.1", allowed
        )
    if refused:
        raise TargetRefused(details=[{"field": "url", "message": f"{host} is not a public address"}])
