"""An aiohttp session that reaches only what the network policy permits.

Names are checked after DNS by the session's resolver, and the connection goes to the very addresses that
were checked (aiohttp connects to what its resolver returns), so a name that answers a public address to
the check and a private one to the connection gets nowhere. Hosts written as addresses skip the resolver;
a request-start hook checks those. Both run again on every redirect hop.
"""

import socket
from types import SimpleNamespace

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


def policy_session(policy: NetworkPolicy, **options) -> aiohttp.ClientSession:
    """A ClientSession under `policy`; no proxy from the environment, no DNS cache to go stale."""

    async def check_literal_host(_session, _context: SimpleNamespace, params) -> None:
        host = params.url.host or ""
        address = literal_address(host)
        if address is not None and not policy.permits(address):
            raise AddressRefused(f"{host} is not reachable under the network policy")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(check_literal_host)
    connector = aiohttp.TCPConnector(resolver=PolicyResolver(policy), use_dns_cache=False)
    return aiohttp.ClientSession(connector=connector, trace_configs=[trace], trust_env=False, **options)
