"""The connector's own app registration (Exact's client id / secret) is read from Secrets Manager once per
warm container (``connector.runtime.APP_SECRET_MAX_AGE``), not once per batch; the entities' tokens are
still read by every batch (another Lambda may have refreshed them)."""

from __future__ import annotations

from collections import Counter
from unittest import mock

import botocore.client
import pytest

from connector.demo import DemoEnvironment, load_folder
from connector.local.stack import PROJECT_ROOT

SAMPLES = PROJECT_ROOT / "sample_data" / "ubl"


@pytest.mark.e2e
def test_a_sync_of_several_batches_reads_the_app_secret_once_and_the_tokens_per_batch():
    docs = load_folder(SAMPLES)[:6]
    reads: Counter[str] = Counter()
    make_call = botocore.client.BaseClient._make_api_call

    def counting(client, operation, params):
        if operation == "GetSecretValue":
            reads["app" if params["SecretId"].endswith("/app/exact") else "other"] += 1
        return make_call(client, operation, params)

    with DemoEnvironment(docs, tools=("exact",), batch_size=2) as env:
        entity = env.entities[0]
        with mock.patch.object(botocore.client.BaseClient, "_make_api_call", counting):
            report = env.sync(entity)
        documents = sum(c["synced"] + c["skipped"] for c in report.components if c["name"].startswith("outgoing_"))
        batches = -(-documents // 2)
        assert report.status in {"Success", "Warning"} and batches >= 3
        assert reads["app"] <= 1  # once per container (0: still cached from connecting the entity)
        assert reads["other"] >= batches  # the tokens: every batch reads them again
