"""In-memory implementations of the ports, for tests and the local demo."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class MemoryCredentialStore:
    """A :class:`connector.ports.CredentialStore` held in memory.

    ``load()`` returns a deep copy of the stored dict (``{}`` when empty), ``save()`` replaces it (and
    counts ``saves``), ``lock()`` is a process-wide ``threading.Lock`` for this store (not re-entrant).
    """

    def __init__(self, value: dict[str, Any] | None = None) -> None:
        self._value: dict[str, Any] = copy.deepcopy(value or {})
        self._lock = threading.Lock()
        self._guard = threading.Lock()
        self.saves = 0

    def load(self) -> dict[str, Any]:
        with self._guard:
            return copy.deepcopy(self._value)

    def save(self, value: dict[str, Any]) -> None:
        with self._guard:
            self._value = copy.deepcopy(value)
            self.saves += 1

    @contextmanager
    def lock(self) -> Iterator[None]:
        with self._lock:
            yield
