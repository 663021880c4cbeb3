"""DynamoDB stores: integration settings and mappings, run history, locks, notifications.

Item layout (keys ``pk`` / ``sk``; see ``template.yaml`` for the tables):

Settings table
  ``ACCOUNT#{account}`` / ``ENTITY#{entity}``          company entity: name, tool, status, settings (JSON)
  ``ENTITY#{account}#{entity}`` / ``META``             tool master data cache (JSON), refreshed by each sync
  ``ENTITY#{account}#{entity}`` / ``REL#{role}#{id}``  host relation -> tool relation id
  ``ENTITY#{account}#{entity}`` / ``DOC#{kind}#{id}``  booking record: ``intent`` (about to post) or ``booked``
  ``ENTITY#{account}#{entity}`` / ``DLV#{kind}#{supplier}#{number}``  incoming document of a supplier with
                                                       that number (BT-1) sent to the tool: its host id, totals
  ``ENTITY#{account}#{entity}`` / ``LOCK``             the one-sync-at-a-time lock (lease)
  ``ENTITY#{account}#{entity}`` / ``LATEST_SUCCESS``   pointer to the latest successful run (kept past 7 days)
  ``ENTITY#{account}#{entity}`` / ``SETUP``            API setup options (``fill_existing_lines``)

Runs table
  ``RUN#{run}`` / ``#RUN``                             run summary + component statuses (TTL ``expires_at``)
  ``RUN#{run}`` / ``BATCH#{component}#{n}``            ids of one batch
  ``RUN#{run}`` / ``RESULTS#{component}#{part}#{n}``  what the run did with up to 100 documents or relations (JSON)
  ``RUN#{run}`` / ``TALLY#{component}#{part}``         counts by outcome of one batch or plan step

Notifications table
  ``USER#{account}#{user}`` / ``{created_at}#{id}``    in-app notification

Reads ignore items whose TTL has passed (DynamoDB deletes them late, moto never).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from connector.clock import get_clock
from connector.jsontext import json_text
from connector.ports import chunked
from connector.models import COMPONENT_ORDER, ComponentStatus, IntegrationSettings, RunStatus, ToolMetadata

HISTORY_SECONDS = 7 * 24 * 3600
#: Optional fields of a booking record written with it (:meth:`Stores.record_booked_many`).
BOOKED_EXTRAS = ("source_updated_at", "reference", "content_digest", "booked_net", "booked_gross", "booked_rate")
LOCK_LEASE_SECONDS = 2 * 3600


def now_iso() -> str:
    return datetime.fromtimestamp(get_clock().now(), tz=UTC).isoformat(timespec="milliseconds")


def entity_key(account_id: str, entity_id: str) -> str:
    return f"ENTITY#{account_id}#{entity_id}"


class SyncAlreadyRunning(Exception):
    """A sync of this company entity is running; ``run_id`` names it (the API answers 409 with it)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"a sync is already running for this company entity: {run_id}")
        self.run_id = run_id


@dataclass(frozen=True)
class EntityRecord:
    """A company entity and its integration, as stored."""

    account_id: str
    entity_id: str
    name: str
    tool: str | None
    status: str
    settings: IntegrationSettings | None
    connection: dict[str, Any]

    @property
    def key(self) -> str:
        return entity_key(self.account_id, self.entity_id)


class Stores:
    """All DynamoDB access of the connector, over the three tables named in the constructor.

    ``resource`` is a boto3 DynamoDB service resource. Every method raises botocore's ``ClientError`` for
    DynamoDB failures other than the conditional-check outcomes it handles.
    """

    def __init__(self, resource: Any, settings_table: str, runs_table: str, notifications_table: str) -> None:
        self.settings = resource.Table(settings_table)
        self.runs = resource.Table(runs_table)
        self.notifications = resource.Table(notifications_table)

    # -------------------------------------------------------------------------------- entities

    def put_entity(
        self,
        account_id: str,
        entity_id: str,
        *,
        name: str,
        tool: str | None,
        status: str,
        settings: IntegrationSettings | None,
        connection: dict[str, Any] | None = None,
    ) -> None:
        """Create or replace a company entity's record (settings as JSON, no secret in it)."""
        item: dict[str, Any] = {
            "pk": f"ACCOUNT#{account_id}",
            "sk": f"ENTITY#{entity_id}",
            "account_id": account_id,
            "entity_id": entity_id,
            "name": name,
            "status": status,
            "connection": json.dumps(connection or {}),
        }
        if tool:
            item["tool"] = tool
        if settings is not None:
            item["settings"] = settings.model_dump_json()
            if settings.auto_sync:
                item["auto_sync_key"] = "ON"
        self.settings.put_item(Item=item)

    def get_entity(self, account_id: str, entity_id: str) -> EntityRecord | None:
        item = self.settings.get_item(Key={"pk": f"ACCOUNT#{account_id}", "sk": f"ENTITY#{entity_id}"}).get("Item")
        return _entity(item) if item else None

    def list_entities(self, account_id: str) -> list[EntityRecord]:
        items = _query_all(self.settings, Key("pk").eq(f"ACCOUNT#{account_id}") & Key("sk").begins_with("ENTITY#"))
        return [_entity(i) for i in items]

    def auto_sync_entities(self) -> list[tuple[str, str]]:
        """(account, entity) of every entity with automatic sync on, across accounts (sparse GSI)."""
        items = _query_all(self.settings, Key("auto_sync_key").eq("ON"), index="auto_sync")
        return [(i["pk"].split("#", 1)[1], i["sk"].split("#", 1)[1]) for i in items]

    # ---------------------------------------------------------------------------- tool metadata

    def put_metadata(self, account_id: str, entity_id: str, metadata: ToolMetadata) -> None:
        self.settings.put_item(
            Item={
                "pk": entity_key(account_id, entity_id),
                "sk": "META",
                "metadata": metadata.model_dump_json(),
                "fetched_at": now_iso(),
            }
        )

    def get_metadata(self, account_id: str, entity_id: str) -> ToolMetadata | None:
        item = self.settings.get_item(Key={"pk": entity_key(account_id, entity_id), "sk": "META"}).get("Item")
        return ToolMetadata.model_validate_json(item["metadata"]) if item else None

    # -------------------------------------------------------------------------------- relations

    def get_relations(self, account_id: str, entity_id: str, role: str, host_ids: Iterable[str]) -> dict[str, str]:
        """host relation id -> tool relation id, for the ones mapped already (``role``: customer/supplier)."""
        keys = [{"pk": entity_key(account_id, entity_id), "sk": f"REL#{role}#{h}"} for h in dict.fromkeys(host_ids)]
        return {item["sk"].split("#", 2)[2]: item["tool_id"] for item in self._batch_get(self.settings, keys)}

    def put_relations(self, account_id: str, entity_id: str, role: str, mapping: dict[str, str]) -> None:
        with self.settings.batch_writer() as batch:
            for host_id, tool_id in mapping.items():
                batch.put_item(
                    Item={"pk": entity_key(account_id, entity_id), "sk": f"REL#{role}#{host_id}", "tool_id": tool_id}
                )

    # ------------------------------------------------------------------------------ bookings

    def get_bookings(self, account_id: str, entity_id: str, kind: str, host_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """host document id -> booking record (``state`` intent|booked, ``booking_number``, ``entry_id``)."""
        keys = [{"pk": entity_key(account_id, entity_id), "sk": f"DOC#{kind}#{h}"} for h in dict.fromkeys(host_ids)]
        return {item["sk"].split("#", 2)[2]: item for item in self._batch_get(self.settings, keys)}

    def get_deliveries(self, account_id: str, entity_id: str, kind: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Delivery key (``{supplier}#{number}``, see :meth:`record_intents`) -> the incoming document of
        that supplier and number already sent to the tool: ``host_id``, ``number``, ``currency``, ``net``,
        ``vat``, ``gross`` (strings). One ``BatchGetItem`` per 100 keys, never a scan or query. The claim
        says nothing about the booking itself: its booking record (:meth:`get_bookings` of ``host_id``)
        does (a claim whose record is gone was refused by the tool and is stale)."""
        pk = entity_key(account_id, entity_id)
        keys = list(dict.fromkeys(keys))
        items = self._batch_get(self.settings, [{"pk": pk, "sk": f"DLV#{kind}#{key}"} for key in keys])
        prefix = f"DLV#{kind}#"
        return {item["sk"][len(prefix):]: _plain(item) for item in items}

    def record_intents(self, account_id: str, entity_id: str, kind: str, entries: Sequence[tuple[str, str]], run_id: str,
                       deliveries: Sequence[dict[str, Any]] = ()) -> None:
        """Record, before posting, that each (host id, reference) is about to be booked by ``run_id``.

        Written in bulk (``BatchWriteItem``, 25 a call) for the documents the batch has just read as not
        booked, under the entity's sync lock, so no other run writes these records meanwhile. (A
        conditional write per document would also stop a stalled run's late Lambda from turning a
        ``booked`` record back into an intent; that case heals itself: the next run looks an intent up in
        the tool by its reference before posting, finds the entry and records it booked again. Bulk
        writes cost one DynamoDB call per 25 documents instead of one per document, issue 8.)

        ``deliveries``: for incoming documents, one claim per document sent, ``{"key", "host_id",
        "number", "currency", "net", "vat", "gross"}`` (``key`` = ``{supplier}#{number}``), written in the
        same bulk writes: a later delivery of the same supplier invoice finds it with
        :meth:`get_deliveries` (never booked twice across deliveries)."""
        stamp = now_iso()
        with self.settings.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for host_id, reference in entries:
                writer.put_item(Item={"pk": entity_key(account_id, entity_id), "sk": f"DOC#{kind}#{host_id}", "state": "intent", "reference": reference, "run_id": run_id, "updated_at": stamp})
            for claim in deliveries:
                writer.put_item(Item=_delivery_item(account_id, entity_id, kind, claim, run_id, stamp))

    def record_deliveries(self, account_id: str, entity_id: str, kind: str, deliveries: Sequence[dict[str, Any]], run_id: str) -> None:
        """Delivery claims alone (as :meth:`record_intents` writes them), for documents booked already
        whose claim is missing (booked before claims were written): bulk writes, 25 a call."""
        stamp = now_iso()
        with self.settings.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for claim in deliveries:
                writer.put_item(Item=_delivery_item(account_id, entity_id, kind, claim, run_id, stamp))

    def record_booked_many(self, account_id: str, entity_id: str, kind: str, bookings: Sequence[dict[str, Any]], run_id: str) -> None:
        """:meth:`record_booked` for many documents in ``BatchWriteItem`` calls (25 a call): each of
        ``bookings`` is ``{"host_id", "booking_number", "entry_id"}`` plus optional ``source_updated_at``,
        ``reference``, ``content_digest``, ``booked_net``, ``booked_gross``, ``booked_rate`` (see :meth:`record_booked`). Safe to write after a whole batch was posted: until then each document holds its
        intent, and a crash in between is recovered by the next run's look-up in the tool."""
        stamp = now_iso()
        with self.settings.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for b in bookings:
                item = {"pk": entity_key(account_id, entity_id), "sk": f"DOC#{kind}#{b['host_id']}", "state": "booked", "booking_number": b["booking_number"],
                        "entry_id": b["entry_id"], "run_id": run_id, "updated_at": stamp}
                item.update({k: str(b[k]) for k in BOOKED_EXTRAS if b.get(k) is not None})
                writer.put_item(Item=item)

    def record_booked(self, account_id: str, entity_id: str, kind: str, host_id: str, *, booking_number: str, entry_id: str, run_id: str, source_updated_at: str | None = None, reference: str | None = None,
                      content_digest: str | None = None, booked_net: Any = None, booked_gross: Any = None, booked_rate: Any = None) -> None:
        """Record a booking; ``source_updated_at`` is the host's ``updated_at`` of the content booked,
        ``reference`` the document number the tool stores (payment look-ups use it), ``content_digest``
        the digest of the entry booked (:func:`connector.sync.engine.entry_digest`: an update is pushed
        only when it changes), ``booked_net`` / ``booked_gross`` the entry's totals as booked (document
        currency and sign; stored as strings: the audit tells which side changed since), ``booked_rate`` the
        exchange rate a foreign-currency entry was booked at (units of company currency per unit of the
        document currency, :func:`connector.sync.engine.booked_rate`; ``"tool"`` when none was sent and the
        tool applied its own): the audit compares the rate the tool holds with it."""
        item = {
            "pk": entity_key(account_id, entity_id),
            "sk": f"DOC#{kind}#{host_id}",
            "state": "booked",
            "booking_number": booking_number,
            "entry_id": entry_id,
            "run_id": run_id,
            "updated_at": now_iso(),
        }
        if source_updated_at:
            item["source_updated_at"] = source_updated_at
        if reference:
            item["reference"] = reference
        extras = {"content_digest": content_digest, "booked_net": booked_net, "booked_gross": booked_gross, "booked_rate": booked_rate}
        item.update({k: str(v) for k, v in extras.items() if v is not None})
        self.settings.put_item(Item=item)

    def set_booked_source(self, account_id: str, entity_id: str, kind: str, host_id: str, *, source_updated_at: str | None, content_digest: str) -> None:
        """A booked document changed in the host but not in what it books (e.g. a payment registered):
        its record takes the new ``source_updated_at`` and ``content_digest``, nothing else changes
        (``host_paid`` / ``tool_paid`` stay). Only a ``booked`` record is updated (conditional)."""
        values: dict[str, Any] = {":d": content_digest, ":b": "booked"}
        expression = "SET content_digest = :d"
        if source_updated_at:
            expression += ", source_updated_at = :u"
            values[":u"] = source_updated_at
        try:
            self.settings.update_item(
                Key={"pk": entity_key(account_id, entity_id), "sk": f"DOC#{kind}#{host_id}"},
                UpdateExpression=expression,
                ConditionExpression="#s = :b",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def list_bookings(self, account_id: str, entity_id: str) -> list[dict[str, Any]]:
        """Every booking record of the entity, with ``record_kind`` (e.g. ``outgoing_invoice``) and ``host_id``."""
        items = _query_all(self.settings, Key("pk").eq(entity_key(account_id, entity_id)) & Key("sk").begins_with("DOC#"), consistent=True)
        out = []
        for item in items:
            _, record_kind, host_id = item["sk"].split("#", 2)
            out.append({**_plain(item), "record_kind": record_kind, "host_id": host_id})
        return out

    def mark_host_paid(self, account_id: str, entity_id: str, kind: str, host_id: str) -> None:
        """The host has this document as paid now: payment status is not checked for it again."""
        self.settings.update_item(
            Key={"pk": entity_key(account_id, entity_id), "sk": f"DOC#{kind}#{host_id}"},
            UpdateExpression="SET host_paid = :t",
            ExpressionAttributeValues={":t": True},
        )

    def mark_tool_paid(self, account_id: str, entity_id: str, kind: str, host_id: str, *, run_id: str | None = None) -> bool:
        """The tool has this document paid because the host had it paid (paid status host -> tool,
        :mod:`connector.sync.paid_to_tool`): it is never pushed again. Sets ``tool_paid``,
        ``tool_paid_at`` (ISO), ``tool_paid_run`` and ``host_paid`` too: the host has it paid, so the tool
        -> host step doesn't check it again either. Only a ``booked`` record is updated (conditional);
        returns False when there is none."""
        try:
            self.settings.update_item(
                Key={"pk": entity_key(account_id, entity_id), "sk": f"DOC#{kind}#{host_id}"},
                UpdateExpression="SET tool_paid = :t, host_paid = :t, tool_paid_at = :now, tool_paid_run = :run",
                ConditionExpression=Attr("state").eq("booked"),
                ExpressionAttributeValues={":t": True, ":now": now_iso(), ":run": run_id or ""},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def clear_intent(self, account_id: str, entity_id: str, kind: str, host_id: str) -> None:
        """Forget an intent the tool refused (nothing was booked); a ``booked`` record is kept."""
        try:
            self.settings.delete_item(
                Key={"pk": entity_key(account_id, entity_id), "sk": f"DOC#{kind}#{host_id}"},
                ConditionExpression=Attr("state").eq("intent"),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # ----------------------------------------------------------------------------------- lock

    def acquire_lock(self, account_id: str, entity_id: str, run_id: str, lease_seconds: int = LOCK_LEASE_SECONDS) -> None:
        """Take the entity's sync lock for ``run_id`` (conditional write), or raise :class:`SyncAlreadyRunning`.

        A lock whose lease has expired (its holder died) is taken over."""
        now = int(get_clock().now())
        try:
            self.settings.put_item(
                Item={"pk": entity_key(account_id, entity_id), "sk": "LOCK", "run_id": run_id, "lease_until": now + lease_seconds},
                ConditionExpression=Attr("pk").not_exists() | Attr("lease_until").lt(now),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            holder = error.response.get("Item", {}).get("run_id", {}).get("S") or self.lock_holder(account_id, entity_id) or "unknown"
            raise SyncAlreadyRunning(holder) from None

    def lock_holder(self, account_id: str, entity_id: str) -> str | None:
        item = self.settings.get_item(Key={"pk": entity_key(account_id, entity_id), "sk": "LOCK"}, ConsistentRead=True).get("Item")
        return item["run_id"] if item else None

    def release_lock(self, account_id: str, entity_id: str, run_id: str) -> None:
        """Release the lock if ``run_id`` still holds it (a taken-over lock is left to its new holder)."""
        try:
            self.settings.delete_item(
                Key={"pk": entity_key(account_id, entity_id), "sk": "LOCK"},
                ConditionExpression=Attr("run_id").eq(run_id),
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # ----------------------------------------------------------------------------------- runs

    def create_run(self, *, run_id: str, account_id: str, entity_id: str, tool: str, trigger: str, started_by: str | None, started_by_email: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        now = get_clock().now()
        item = {
            "pk": f"RUN#{run_id}",
            "sk": "#RUN",
            "run_id": run_id,
            "account_id": account_id,
            "entity_id": entity_id,
            "entity_key": entity_key(account_id, entity_id),
            "tool": tool,
            "trigger": trigger,
            "dry_run": dry_run,
            "started_at": now_iso(),
            "status": RunStatus.RUNNING.value,
            "running_key": "RUNNING",
            "progress_at": int(now),
            "components": {c.value: {"status": ComponentStatus.PENDING.value, "synced": 0, "skipped": 0} for c in COMPONENT_ORDER},
            "expires_at": int(now) + HISTORY_SECONDS,
        }
        if started_by:
            item["started_by"] = started_by
        if started_by_email:
            item["started_by_email"] = started_by_email
        self.runs.put_item(Item=item)
        return item

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        item = self.runs.get_item(Key={"pk": f"RUN#{run_id}", "sk": "#RUN"}, ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def run_status(self, run_id: str) -> str | None:
        """The run's status alone (``None``: no such run): one strongly consistent read of that attribute,
        not the whole run record with its components (each batch checks it before booking)."""
        item = self.runs.get_item(Key={"pk": f"RUN#{run_id}", "sk": "#RUN"}, ConsistentRead=True,
                                  ProjectionExpression="#s", ExpressionAttributeNames={"#s": "status"}).get("Item")
        return str(item["status"]) if item and "status" in item else None

    def set_component(self, run_id: str, component: str, status: ComponentStatus, *, only_from: Sequence[ComponentStatus] = (), **fields: Any) -> bool:
        """Set a component's status (and counts / error fields); with ``only_from``, only when its current
        status is one of those. Returns whether it was written."""
        names = {"#c": component, "#s": "status"}
        values: dict[str, Any] = {":s": status.value, ":p": int(get_clock().now())}
        sets = ["components.#c.#s = :s", "progress_at = :p"]
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = value
            sets.append(f"components.#c.#f{i} = :f{i}")
        kwargs: dict[str, Any] = {}
        if only_from:
            conds = []
            for i, st in enumerate(only_from):
                values[f":o{i}"] = st.value
                conds.append(f"components.#c.#s = :o{i}")
            kwargs["ConditionExpression"] = " OR ".join(conds)
        try:
            self.runs.update_item(
                Key={"pk": f"RUN#{run_id}", "sk": "#RUN"},
                UpdateExpression="SET " + ", ".join(sets),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **kwargs,
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def update_run(self, run_id: str, **fields: Any) -> None:
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":f{i}": v for i, v in enumerate(fields.values())}
        self.runs.update_item(
            Key={"pk": f"RUN#{run_id}", "sk": "#RUN"},
            UpdateExpression="SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def close_run(self, run_id: str, status: RunStatus, **fields: Any) -> bool:
        """Give a running run its final status (it leaves the ``running`` index). False when it was no
        longer running (finished or marked Stalled meanwhile)."""
        names = {"#st": "status", **{f"#f{i}": k for i, k in enumerate(fields)}}
        values = {":st": status.value, ":running": RunStatus.RUNNING.value, ":fin": now_iso(), **{f":f{i}": v for i, v in enumerate(fields.values())}}
        sets = ["#st = :st", "finished_at = :fin", *(f"#f{i} = :f{i}" for i in range(len(fields)))]
        try:
            self.runs.update_item(
                Key={"pk": f"RUN#{run_id}", "sk": "#RUN"},
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE running_key",
                ConditionExpression="#st = :running",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def running_runs(self) -> list[dict[str, Any]]:
        """Every run still marked running, across accounts (sparse ``running`` index)."""
        return [_plain(i) for i in _query_all(self.runs, Key("running_key").eq("RUNNING"), index="running")]

    def put_batches(self, run_id: str, component: str, batches: Sequence[Sequence[str]]) -> None:
        with self.runs.batch_writer() as writer:
            for n, ids in enumerate(batches):
                writer.put_item(Item={"pk": f"RUN#{run_id}", "sk": f"BATCH#{component}#{n:05d}", "ids": list(ids), "expires_at": _ttl()})

    def get_batch(self, run_id: str, component: str, n: int) -> list[str]:
        item = self.runs.get_item(Key={"pk": f"RUN#{run_id}", "sk": f"BATCH#{component}#{n:05d}"}, ConsistentRead=True).get("Item")
        if item is None:
            raise KeyError(f"batch {n} of {component} in run {run_id} does not exist")
        return list(item["ids"])

    def put_results(self, run_id: str, component: str, results: Sequence[dict[str, Any]], *, part: str,
                    tally: Mapping[str, int] | None = None) -> None:
        """Record what the run did with each document / relation of one ``part`` of a component (a batch,
        a step of the plan): the results (``id`` plus outcome fields) as JSON, :data:`RESULTS_PER_ITEM` to
        an item, and the part's ``tally`` (counts by outcome) when given, in one bulk write. A component's totals are
        the sum of its few tallies (:meth:`get_tallies`), its details one query (:meth:`get_results`).
        Writing a part again (a retried batch) replaces its items."""
        with self.runs.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as writer:
            for n, chunk in enumerate(chunked(results, RESULTS_PER_ITEM)):
                plain = [{k: v for k, v in r.items() if v is not None} for r in chunk]
                writer.put_item(Item={"pk": f"RUN#{run_id}", "sk": f"RESULTS#{component}#{part}#{n:04d}", "component": component,
                                      "results": json_text(plain), "expires_at": _ttl()})
            if tally is not None:
                writer.put_item(Item={**tally, "pk": f"RUN#{run_id}", "sk": f"TALLY#{component}#{part}", "component": component, "expires_at": _ttl()})

    def get_tallies(self, run_id: str, component: str) -> list[dict[str, int]]:
        """The tallies :meth:`put_results` wrote for the component's parts (counts as ``int``)."""
        items = _query_all(self.runs, Key("pk").eq(f"RUN#{run_id}") & Key("sk").begins_with(f"TALLY#{component}#"), consistent=True)
        return [{k: int(v) for k, v in item.items() if isinstance(v, Decimal) and k != "expires_at"} for item in items]

    def get_results(self, run_id: str, component: str | None = None) -> list[dict[str, Any]]:
        """What the run did with each document / relation (of ``component``, else of all), each with its
        ``component``, ordered by component and id; one result per id (a part written twice counts once)."""
        prefix = f"RESULTS#{component}#" if component else "RESULTS#"
        items = _query_all(self.runs, Key("pk").eq(f"RUN#{run_id}") & Key("sk").begins_with(prefix), consistent=True)
        results: dict[tuple[str, str], dict[str, Any]] = {}
        for item in items:
            for result in json.loads(item["results"], parse_float=Decimal):
                results[(item["component"], str(result.get("id")))] = {**result, "component": item["component"]}
        return [results[key] for key in sorted(results)]

    def list_runs(self, account_id: str, entity_id: str, *, since_seconds: int = HISTORY_SECONDS) -> list[dict[str, Any]]:
        """Runs of the last ``since_seconds`` (newest first), plus the latest successful one even when older."""
        now = get_clock().now()
        since = datetime.fromtimestamp(now - since_seconds, tz=UTC).isoformat(timespec="milliseconds")
        items = _query_all(
            self.runs,
            Key("entity_key").eq(entity_key(account_id, entity_id)) & Key("started_at").gte(since),
            index="by_entity",
            forward=False,
        )
        runs = [_plain(i) for i in items if i.get("sk") == "#RUN" and _alive(i, now)]
        pointer = self.settings.get_item(Key={"pk": entity_key(account_id, entity_id), "sk": "LATEST_SUCCESS"}).get("Item")
        if pointer and all(r["run_id"] != pointer["run_id"] for r in runs):
            latest = self.get_run(pointer["run_id"])
            if latest:
                runs.append(latest)
        return runs

    def keep_latest_success(self, account_id: str, entity_id: str, run_id: str) -> None:
        """Make ``run_id`` the entity's latest success: it loses its TTL, the previous one gets it back."""
        key = {"pk": entity_key(account_id, entity_id), "sk": "LATEST_SUCCESS"}
        previous = self.settings.get_item(Key=key, ConsistentRead=True).get("Item")
        self.runs.update_item(Key={"pk": f"RUN#{run_id}", "sk": "#RUN"}, UpdateExpression="REMOVE expires_at")
        self.settings.put_item(Item={**key, "run_id": run_id})
        if previous and previous["run_id"] != run_id:
            old = self.runs.get_item(Key={"pk": f"RUN#{previous['run_id']}", "sk": "#RUN"}).get("Item")
            if old:
                started = datetime.fromisoformat(old["started_at"]).timestamp()
                self.update_run(previous["run_id"], expires_at=int(started) + HISTORY_SECONDS)

    # ---------------------------------------------------------------- connections (keep-alive)

    def all_entities(self) -> list[EntityRecord]:
        """Every company entity with an integration, across accounts (a scan: for daily jobs only)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"FilterExpression": Attr("sk").begins_with("ENTITY#") & Attr("pk").begins_with("ACCOUNT#")}
        while True:
            response = self.settings.scan(**kwargs)
            items.extend(response["Items"])
            if "LastEvaluatedKey" not in response:
                return [_entity(i) for i in items if i.get("tool")]
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def put_admin_contact(self, account_id: str, entity_id: str, user_id: str, email: str | None) -> None:
        """The admin who connected the entity (told to reconnect when its connection dies)."""
        item = {"pk": entity_key(account_id, entity_id), "sk": "ADMIN", "user_id": user_id}
        if email:
            item["email"] = email
        self.settings.put_item(Item=item)

    def get_admin_contact(self, account_id: str, entity_id: str) -> dict[str, Any] | None:
        item = self.settings.get_item(Key={"pk": entity_key(account_id, entity_id), "sk": "ADMIN"}).get("Item")
        return _plain(item) if item else None

    def set_entity_status(self, account_id: str, entity_id: str, status: str) -> None:
        self.settings.update_item(
            Key={"pk": f"ACCOUNT#{account_id}", "sk": f"ENTITY#{entity_id}"},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status},
        )

    # -------------------------------------------------------------------------- notifications

    def add_notification(self, account_id: str, user_id: str, *, title: str, body: str, run_id: str, link: str) -> str:
        notification_id = uuid.uuid4().hex
        created = now_iso()
        self.notifications.put_item(
            Item={
                "pk": f"USER#{account_id}#{user_id}",
                "sk": f"{created}#{notification_id}",
                "id": notification_id,
                "title": title,
                "body": body,
                "run_id": run_id,
                "link": link,
                "read": False,
                "created_at": created,
                "expires_at": int(get_clock().now()) + 90 * 24 * 3600,
            }
        )
        return notification_id

    def list_notifications(self, account_id: str, user_id: str) -> list[dict[str, Any]]:
        items = _query_all(self.notifications, Key("pk").eq(f"USER#{account_id}#{user_id}"), forward=False)
        return [_plain(i) for i in items]

    # ---------------------------------------------------------------------------------- utils

    @staticmethod
    def _batch_get(table: Any, keys: list[dict[str, str]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        client = table.meta.client
        for start in range(0, len(keys), 100):
            request = {table.name: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
            while request:
                response = client.batch_get_item(RequestItems=request)
                found.extend(response["Responses"].get(table.name, []))  # the resource's client deserialises
                request = response.get("UnprocessedKeys") or {}
        return found

    # --------------------------------------------------------- API: setup, deletion, notifications

    def get_metadata_record(self, account_id: str, entity_id: str) -> tuple[ToolMetadata, str | None] | None:
        """The cached tool metadata with the ISO time it was fetched (``None`` when never fetched)."""
        item = self.settings.get_item(Key={"pk": entity_key(account_id, entity_id), "sk": "META"}).get("Item")
        return (ToolMetadata.model_validate_json(item["metadata"]), item.get("fetched_at")) if item else None

    def put_setup_options(self, account_id: str, entity_id: str, **options: Any) -> None:
        """Merge API-level setup options into the entity's ``SETUP`` item (e.g. ``fill_existing_lines``:
        the setup wizard's choices that :class:`IntegrationSettings` has no field for)."""
        if not options:
            return
        names = {f"#o{i}": k for i, k in enumerate(options)}
        values = {f":o{i}": v for i, v in enumerate(options.values())}
        self.settings.update_item(
            Key={"pk": entity_key(account_id, entity_id), "sk": "SETUP"},
            UpdateExpression="SET " + ", ".join(f"#o{i} = :o{i}" for i in range(len(options))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def get_setup_options(self, account_id: str, entity_id: str) -> dict[str, Any]:
        """The entity's API-level setup options (``{}`` when none were set)."""
        item = self.settings.get_item(Key={"pk": entity_key(account_id, entity_id), "sk": "SETUP"}, ConsistentRead=True).get("Item")
        return {k: v for k, v in _plain(item).items() if k not in ("pk", "sk")} if item else {}

    def delete_relations(self, account_id: str, entity_id: str) -> int:
        """Forget every host relation -> tool relation mapping of the entity (its tool or administration
        changed, so the tool ids no longer apply). Returns how many were deleted."""
        key = entity_key(account_id, entity_id)
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(key) & Key("sk").begins_with("REL#"),
            "ProjectionExpression": "pk, sk",
            "ConsistentRead": True,
        }
        count = 0
        with self.settings.batch_writer() as batch:
            while True:
                response = self.settings.query(**kwargs)
                for item in response["Items"]:
                    batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
                    count += 1
                if "LastEvaluatedKey" not in response:
                    break
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return count

    def delete_entity(self, account_id: str, entity_id: str) -> None:
        """Delete a company entity's integration: its record, tool metadata cache, setup options and
        relation mappings, and the latest-success pointer (that run gets its 7-day TTL back). Booking
        records (``DOC#``) and delivery claims (``DLV#``) are kept so nothing is ever booked twice if the
        entity is connected again."""
        key = entity_key(account_id, entity_id)
        pointer = self.settings.get_item(Key={"pk": key, "sk": "LATEST_SUCCESS"}, ConsistentRead=True).get("Item")
        if pointer:
            old = self.runs.get_item(Key={"pk": f"RUN#{pointer['run_id']}", "sk": "#RUN"}).get("Item")
            if old:
                started = datetime.fromisoformat(old["started_at"]).timestamp()
                self.update_run(pointer["run_id"], expires_at=int(started) + HISTORY_SECONDS)
        self.delete_relations(account_id, entity_id)
        with self.settings.batch_writer() as batch:
            for sk in ("META", "SETUP", "LATEST_SUCCESS"):
                batch.delete_item(Key={"pk": key, "sk": sk})
            batch.delete_item(Key={"pk": f"ACCOUNT#{account_id}", "sk": f"ENTITY#{entity_id}"})

    def get_notification(self, account_id: str, user_id: str, notification_id: str) -> dict[str, Any] | None:
        """One notification of the user by its id (``None``: not this user's)."""
        for item in _query_all(self.notifications, Key("pk").eq(f"USER#{account_id}#{user_id}"), consistent=True):
            if item.get("id") == notification_id:
                return _plain(item)
        return None

    def mark_notification_read(self, account_id: str, user_id: str, notification_id: str) -> dict[str, Any] | None:
        """Mark the user's notification read (idempotent); returns it, or ``None`` when it isn't theirs."""
        item = self.get_notification(account_id, user_id, notification_id)
        if item is None:
            return None
        if not item.get("read"):
            updated = self.notifications.update_item(
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET #r = :t, read_at = :now",
                ExpressionAttributeNames={"#r": "read"},
                ExpressionAttributeValues={":t": True, ":now": now_iso()},
                ConditionExpression=Attr("pk").exists(),
                ReturnValues="ALL_NEW",
            )
            item = _plain(updated["Attributes"])
        return item


def _delivery_item(account_id: str, entity_id: str, kind: str, claim: dict[str, Any], run_id: str, stamp: str) -> dict[str, Any]:
    """The ``DLV#`` item of one delivery claim (amounts as strings; absent ones left out)."""
    return {"pk": entity_key(account_id, entity_id), "sk": f"DLV#{kind}#{claim['key']}", "run_id": run_id, "updated_at": stamp,
            **{k: str(claim[k]) for k in ("host_id", "number", "currency", "net", "vat", "gross") if claim.get(k) is not None}}


def _ttl() -> int:
    return int(get_clock().now()) + HISTORY_SECONDS


def _alive(item: dict[str, Any], now: float) -> bool:
    expires = item.get("expires_at")
    return expires is None or int(expires) > now


def _entity(item: dict[str, Any]) -> EntityRecord:
    settings = item.get("settings")
    return EntityRecord(
        account_id=item["account_id"],
        entity_id=item["entity_id"],
        name=item.get("name", ""),
        tool=item.get("tool"),
        status=item.get("status", "Configuration needed"),
        settings=IntegrationSettings.model_validate_json(settings) if settings else None,
        connection=json.loads(item.get("connection") or "{}"),
    )


def _query_all(table: Any, condition: Any, *, index: str | None = None, forward: bool = True, consistent: bool = False) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"KeyConditionExpression": condition, "ScanIndexForward": forward}
    if index:
        kwargs["IndexName"] = index
    elif consistent:
        kwargs["ConsistentRead"] = True
    items: list[dict[str, Any]] = []
    while True:
        response = table.query(**kwargs)
        items.extend(response["Items"])
        if "LastEvaluatedKey" not in response:
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


#: Results of one part stored per item (JSON; 100 skipped documents with reasons and hints stay far under
#: DynamoDB's 400 KB item limit).
RESULTS_PER_ITEM = 100


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB's Decimals for counts become ints; money stays as the strings it was stored as."""

    def convert(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else value
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return convert(item)

