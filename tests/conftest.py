"""Shared test set-up: quiet moto's interpreter logs (it logs every caught state failure in full)."""

import logging

logging.getLogger("moto").setLevel(logging.CRITICAL)


import pytest  # noqa: E402

from connector.clock import set_clock  # noqa: E402
from tests.fakes import FakeClock  # noqa: E402


@pytest.fixture
def clock():
    """A :class:`FakeClock` installed as the process clock for the test (restored after)."""
    fake = FakeClock()
    previous = set_clock(fake)
    yield fake
    set_clock(previous)
