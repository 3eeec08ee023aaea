"""Rolling meters (pure): event rates and latency percentiles, for the recorder's status and
the Lab's follow latency."""

from __future__ import annotations

import time
from collections import deque

import numpy as np


class LatencyWindow:
    """The last ``size`` latency samples (ns); percentiles in milliseconds."""

    def __init__(self, size: int = 20_000):
        self._buf = np.zeros(size, dtype=np.int64)
        self._n = 0
        self._pos = 0

    def add(self, samples_ns: np.ndarray) -> None:
        s = np.asarray(samples_ns, dtype=np.int64)
        s = s[s >= 0]
        size = len(self._buf)
        if len(s) >= size:
            self._buf[:] = s[-size:]
            self._pos, self._n = 0, size
            return
        end = self._pos + len(s)
        if end <= size:
            self._buf[self._pos:end] = s
        else:
            k = size - self._pos
            self._buf[self._pos:] = s[:k]
            self._buf[: end - size] = s[k:]
        self._pos = end % size
        self._n = min(size, self._n + len(s))

    def percentiles_ms(self, qs=(50, 99)) -> dict[str, float | None]:
        if not self._n:
            return {f"p{q}": None for q in qs}
        vals = np.percentile(self._buf[: self._n], qs) / 1e6
        return {f"p{q}": round(float(v), 3) for q, v in zip(qs, vals, strict=True)}


class RateMeter:
    """Events per second over a sliding window of ``window_s`` seconds."""

    def __init__(self, window_s: float = 5.0, clock=time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._events: deque[tuple[float, int]] = deque()
        self.total = 0

    def add(self, n: int) -> None:
        if n:
            self._events.append((self._clock(), n))
            self.total += n

    def rate(self) -> float:
        now = self._clock()
        while self._events and self._events[0][0] < now - self.window_s:
            self._events.popleft()
        return round(sum(n for _, n in self._events) / self.window_s, 2)
