"""Durability (issue 7): every table has point-in-time recovery and deletion protection; run history
expires after 7 days, except the latest successful run per entity."""

from __future__ import annotations

import boto3
import pytest

from connector.clock import ScaledClock, get_clock, set_clock
from connector.local.stack import PROJECT_ROOT, LocalStack
from connector.local.template import load_template, resources_of_type
from connector.models import RunStatus
from connector.stores.dynamodb import HISTORY_SECONDS, Stores


def test_every_table_has_pitr_deletion_protection_and_is_retained():
    tables = resources_of_type(load_template(PROJECT_ROOT / "template.yaml"), "AWS::DynamoDB::Table")
    assert set(tables) == {"SettingsTable", "RunsTable", "NotificationsTable"}
    for name, table in tables.items():
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name
        assert props["DeletionProtectionEnabled"] is True, name
        assert table["DeletionPolicy"] == "Retain", name
    assert tables["RunsTable"]["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_local_tables_really_refuse_deletion():
    with LocalStack() as stack:
        client = boto3.client("dynamodb")
        with pytest.raises(client.exceptions.ClientError, match="DeletionProtectionEnabled"):
            client.delete_table(TableName=stack.table_names["RunsTable"])
        backups = client.describe_continuous_backups(TableName=stack.table_names["SettingsTable"])
        assert backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_history_is_seven_days_plus_the_latest_success():
    previous = set_clock(ScaledClock(1.0))
    try:
        with LocalStack() as stack:
            stores = Stores(boto3.resource("dynamodb"), stack.table_names["SettingsTable"], stack.table_names["RunsTable"], stack.table_names["NotificationsTable"])

            def run(status: RunStatus) -> str:
                run_id = f"run-{get_clock().now():.0f}"
                stores.create_run(run_id=run_id, account_id="a", entity_id="e", tool="exact", trigger="nightly", started_by=None)
                stores.close_run(run_id, status)
                if status is RunStatus.SUCCESS:
                    stores.keep_latest_success("a", "e", run_id)
                get_clock().advance(23 * 3600)  # never exactly 7 days from "now": no run sits on the edge
                return run_id

            old_success = run(RunStatus.SUCCESS)
            latest_success = run(RunStatus.SUCCESS)
            failures = [run(RunStatus.ERROR) for _ in range(9)]  # 9 nights of failed runs
            listed = [r["run_id"] for r in stores.list_runs("a", "e")]
            now = get_clock().now()
            young = {r for r in failures if now - int(r.split("-")[1]) < HISTORY_SECONDS}
            assert len(young) == 7  # started within the last 7 days (23 h apart)
            assert set(listed) == young | {latest_success}
            assert old_success not in listed
            assert stores.get_run(latest_success).get("expires_at") is None  # kept past 7 days
            assert int(stores.get_run(old_success)["expires_at"]) <= get_clock().now()  # TTL given back
            assert all(int(stores.get_run(r)["expires_at"]) - HISTORY_SECONDS <= get_clock().now() for r in failures)
    finally:
        set_clock(previous)
