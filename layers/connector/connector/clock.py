"""The clock the connector and the sandboxes read: real time in the cloud, scaled time locally.

A sandbox enforcing "60 calls a minute" and the adapter that waits for the minute to roll over must agree
on what a minute is. In one process (the local stack, the benchmark) both read this module's clock, so a
:class:`ScaledClock` makes a simulated minute pass in a fraction of a real one. Times are epoch seconds
(float) for scheduling only; they never carry money.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """Real wall-clock time: ``now()`` in epoch seconds, ``sleep(seconds)`` blocks for real."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def utcnow(self) -> datetime:
        """The current time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.now(), tz=UTC)


class ScaledClock(Clock):
    """Simulated time running ``speed`` times faster than real time, starting at the real now.

    ``sleep(s)`` blocks ``s / speed`` real seconds; ``advance(s)`` jumps ahead without blocking (tests).
    Thread-safe.
    """

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._real0 = time.monotonic()
        self._sim0 = time.time() if start is None else start
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._sim0 + (time.monotonic() - self._real0) * self.speed + self._offset

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


_clock: Clock = Clock()


def get_clock() -> Clock:
    """The process-wide clock (real unless :func:`set_clock` replaced it)."""
    return _clock


def set_clock(clock: Clock) -> Clock:
    """Replace the process-wide clock; returns the previous one so a caller can restore it."""
    global _clock
    previous, _clock = _clock, clock
    return previous
