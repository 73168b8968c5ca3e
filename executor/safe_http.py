"""An aiohttp session that reaches only what the network policy permits.

Names are checked after DNS by the session's resolver, and the connection goes to the very addresses that
were checked (aiohttp connects to what its resolver returns), so a name that answers a public address to
the check and a private one to the connection gets nowhere. Hosts written as addresses skip the resolver;
the connector checks those before it connects. Both run again for every redirect hop, which opens its own
connection.
"""

import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from models.network_policy import AddressRefused, NetworkPolicy, literal_address


class PolicyResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver and refuses a name with any address the policy refuses."""

    def __init__(self, policy: NetworkPolicy):
        self._policy = policy
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        self._policy.check(host, [result["host"] for result in results])
        return results

    async def close(self) -> None:
        await self._resolver.close()


class PolicyConnector(aiohttp.TCPConnector):
    """Refuses a host written as an address the policy refuses; names go through the PolicyResolver."""

    def __init__(self, policy: NetworkPolicy):
        super().__init__(resolver=PolicyResolver(policy), use_dns_cache=False)
        self._policy = policy

    async def connect(self, req, traces, timeout):  # noqa: ASYNC109 (aiohttp's signature)
        host = req.url.host or ""
        address = literal_address(host)
        if address is not None and not self._policy.permits(address):
            raise AddressRefused(f"{host} is not reachable under the network policy")
        return await super().connect(req, traces, timeout)


def policy_session(policy: NetworkPolicy, **options) -> aiohttp.ClientSession:
    """A ClientSession under `policy`; no proxy from the environment, no DNS cache to go stale."""
    return aiohttp.ClientSession(connector=PolicyConnector(policy), trust_env=False, **options)
