"""A short-lived, per-process memory of API keys the database has verified.

Authenticating a request costs a database round trip (``store.accounts.principal_for_key``). An
API process remembers each key it verified, as the principal it belongs to, for
``API_KEY_CACHE_SECONDS`` (default 5 s; 0 turns the cache off), so a client's burst of requests
pays that round trip once. The cost is a bounded delay: a key revoked, or a user deactivated, in
the database is refused by every API process at most ``API_KEY_CACHE_SECONDS`` later (changes to
an organisation's name or time zone show up within the same time).

Only keys that verified are kept: an unknown, revoked or inactive key asks the database every
time, so a new key works at once and random keys cannot fill the cache. Keys are kept as their
SHA-256 digest, never in clear, and at most ``max_entries`` of them (the oldest go first).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from store.accounts import Principal, hash_key

MAX_ENTRIES = 10_000


class KeyCache:
    """Principals of recently verified keys, each trusted for ``seconds`` after verification."""

    def __init__(
        self,
        *,
        seconds: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key: str) -> Principal | None:
        """The principal of ``key`` if it was verified less than ``seconds`` ago."""
        if self.seconds <= 0:
            return None
        digest = hash_key(key)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        expires, principal = entry
        if self.clock() >= expires:
            del self._entries[digest]
            return None
        return principal

    def put(self, key: str, principal: Principal) -> None:
        """Remember that the database has just verified ``key`` as ``principal``."""
        if self.seconds <= 0:
            return
        digest = hash_key(key)
        self._entries.pop(digest, None)  # re-inserted last: the oldest entries are first
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = (self.clock() + self.seconds, principal)
