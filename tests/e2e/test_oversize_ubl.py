"""An incoming document whose e-invoice (UBL) is over connector.limits.MAX_UBL_BYTES is skipped with its
size and the limit, alone: its neighbour in the same batch is booked (the whole local stack, Exact)."""

from __future__ import annotations

import pytest

from connector import limits
from connector.demo import DemoEnvironment, load_folder, read_originals
from connector.models import Direction
from tests.e2e.test_demo_sync import SAMPLES

BIG, SMALL = "en16931-ubl-tc434-example1.xml", "xrechnung-03.06a-INVOICE_ubl.xml"


@pytest.mark.e2e
def test_an_oversize_ubl_is_skipped_alone_and_its_neighbour_is_booked(monkeypatch):
    docs = [d for d in load_folder(SAMPLES, Direction.INCOMING) if d.source in (BIG, SMALL)]
    originals = read_originals(SAMPLES)
    limit = max(len(originals[BIG]), len(originals[SMALL])) + 1024
    originals[BIG] += b"<!--" + b" " * limit + b"-->"  # as if it embedded a large attachment (BG-24)
    monkeypatch.setattr(limits, "MAX_UBL_BYTES", limit)
    with DemoEnvironment(docs, tools=("exact",), originals=originals) as env:
        run = env.sync(env.entities[0])
    by_source = {d.source: d for d in run.documents}
    assert by_source[SMALL].status == "synced" and by_source[SMALL].booking_number
    big = by_source[BIG]
    assert big.status == "skipped"
    assert f"({len(originals[BIG]):,} bytes), over the" in big.reason and f"({limit:,} bytes)" in big.reason
    component = next(c for c in run.components if c["name"] == "incoming_invoices")
    assert (component["synced"], component["skipped"], component["error"]) == (1, 1, None)
