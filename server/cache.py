"""A bounded, thread-safe result cache keyed by the SHA-256 of an image's bytes.

What is cached (a score, with what the file declares) is a function of the bytes alone, so a hit is exact.

An image seen before costs a hash and a dictionary look-up, no decoding and no model time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class ResultCache:
    """Least-recently-used map from content hash to a result, holding at most `capacity` entries."""

    def __init__(self, capacity: int = 4096):
        self.capacity = max(0, int(capacity))
        self._entries: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        """The cached result for `key`, or None; a hit makes the entry most recently used."""
        if self.capacity == 0:
            return None
        with self._lock:
            result = self._entries.get(key)
            if result is not None:
                self._entries.move_to_end(key)
            return result

    def put(self, key: str, result: Any) -> None:
        """Remember a result, evicting the least recently used entry when full."""
        if self.capacity == 0:
            return
        with self._lock:
            self._entries[key] = result
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
