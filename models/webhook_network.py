"""Where a webhook may point: public addresses only, unless SYNCJOBS_ALLOWED_NETWORKS lets a private,
loopback or link-local network in. A tenant's webhook must never reach our own hosts or internal network.
The addresses are judged by the same NetworkPolicy as the HTTP connector's and destination URLs'."""

import ipaddress
from urllib.parse import urlsplit

from models.errors import ValidationFailed
from models.network_policy import NetworkPolicy, parse_networks

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Names that mean this host whatever DNS says.
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class TargetRefused(ValidationFailed):
    """The webhook URL points at an address webhooks may not reach."""

    code = "target_refused"


def parse_allowed_networks(text: str) -> list[Network]:
    """SYNCJOBS_ALLOWED_NETWORKS: comma-separated CIDRs (or single addresses)."""
    return list(parse_networks(text))


def address_allowed(address: Address | str, allowed: list[Network]) -> bool:
    """Public addresses always; anything else (private, loopback, link-local, reserved, multicast,
    shared, and IPv6 forms embedding them) only inside an allowed network."""
    return NetworkPolicy(tuple(allowed)).permits(address)


def check_url(url: str, allowed: list[Network]) -> None:
    """Refuse a URL that is not http(s), or whose host is a literal address or local name outside the
    policy. Host names are checked again, resolved, at every delivery."""
    try:
        parts = urlsplit(url)
        scheme, hostname = parts.scheme, parts.hostname
        parts.port  # noqa: B018 - a port that is not a number raises here, not at delivery
    except ValueError:  # "http://[::1", a port of letters: no URL at all
        scheme, hostname = "", None
    if scheme not in ("http", "https") or not hostname:
        raise ValidationFailed(
            "The webhook URL must be http(s) with a host",
            details=[{"field": "url", "message": "expected http:// or https:// and a host"}],
        )
    host = hostname.rstrip(".").lower()
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
