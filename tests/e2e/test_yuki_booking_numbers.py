"""Yuki (seed 004): the booking number Yuki gives is stored as Yuki gives it; one with letters or
separators can't be stored by the host product, and the document says so clearly (booked, flagged)."""

from __future__ import annotations

import pytest

from connector.demo import DemoEnvironment, load_folder
from connector.local.stack import PROJECT_ROOT
from connector.runtime import services

SAMPLES = PROJECT_ROOT / "sample_data" / "ubl"


@pytest.mark.e2e
def test_booking_number_with_letters_is_kept_and_flagged():
    docs = [d for d in load_folder(SAMPLES) if d.source in {"xrechnung-03.06a-INVOICE_ubl.xml", "en16931-ubl-tc434-example1.xml"}]
    with DemoEnvironment(docs, tools=("yuki",)) as env:
        entity = env.entities[0]
        entity.sandbox.set_booking_number_format(services().stores.get_entity(env.account_id, entity.entity_id).connection["administration_id"], "F{year}-{seq:04d}")
        report = env.sync(entity)
        assert report.status == "Warning"
        invoices = report.components[2]
        assert invoices["name"] == "outgoing_invoices" and invoices["synced"] == 2 and invoices["status"] == "Warning"
        for doc in report.documents:
            assert doc.status == "synced" and doc.booking_number.startswith("F")
            assert "can't store booking number" in doc.flag
            host_number = env.host.booking_number("invoice", next(i.host_id for i in entity.loaded if i.source == doc.source))
            assert host_number is None  # the host refused it; the connector keeps Yuki's number itself

        invoices_in_yuki = len(entity.sandbox.invoices(services().stores.get_entity(env.account_id, entity.entity_id).connection["administration_id"]))
        again = env.sync(entity)
        assert {d.status for d in again.documents} == {"already_synced"}
        assert all("can't store booking number" in d.flag for d in again.documents)
        assert len(entity.sandbox.invoices(services().stores.get_entity(env.account_id, entity.entity_id).connection["administration_id"])) == invoices_in_yuki
