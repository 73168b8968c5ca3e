"""Bearer tokens verified from a short in-process cache: hash -> grant, at most one second old.

Without it every request reads its token before doing its own work, doubling the round trips of a GET. A
revoked token is refused at once by the process that revoked it and within `max_age` by every other one.
"""

from datetime import datetime, timedelta

from models.clock import Clock
from models.tokens import Grant, TokenStore, hash_token

MAX_AGE = timedelta(seconds=1)
# Bounds memory under a flood of distinct valid tokens; past it the cache starts over.
MAX_ENTRIES = 10_000


class TokenCache:
    def __init__(self, tokens: TokenStore, clock: Clock, *, max_age: timedelta = MAX_AGE):
        self._tokens = tokens
        self._clock = clock
        self._max_age = max_age
        # hash -> (grant, when it was read, when it must be read again)
        self._grants: dict[str, tuple[Grant, datetime, datetime]] = {}

    async def authenticate(self, token: str, now: datetime | None = None) -> Grant | None:
        """The token's grant, or None; `now` is the clock's reading when the caller has one already."""
        digest = hash_token(token)
        if now is None:
            now = self._clock.now()
        cached = self._grants.get(digest)
        # A clock stepped back must not stretch an entry's life, so the age is bounded on both sides.
        if cached is not None and cached[1] <= now < cached[2]:
            return cached[0]
        # Unknown tokens are not cached: a token issued a moment ago elsewhere must work at once.
        grant = await self._tokens.authenticate(token, now)
        if grant is None:
            self._grants.pop(digest, None)
            return None
        if len(self._grants) >= MAX_ENTRIES:
            self._grants.clear()
        self._grants[digest] = (grant, now, now + self._max_age)
        return grant

    def forget(self, token_id) -> None:
        """Drop a revoked token at once (in this process)."""
        self._grants = {
            digest: entry for digest, entry in self._grants.items() if entry[0].token_id != token_id
        }
