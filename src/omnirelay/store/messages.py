"""`SqlMessageStore`: messages, attempts, channel refs, the receipt inbox and reports.

Every write goes through the group-commit `Writer`. Transitions are guarded writes:
`UPDATE messages … WHERE id = :pk AND version = :version [AND lease_owner = :owner]`, so a
decision made on stale state (a receipt racing a deadline, a lease taken over by another node)
is refused and re-evaluated instead of overwriting newer state. Claims take a lease by moving
`next_action_at` to the lease expiry: a node that dies mid-send leaves the message due again
when its lease runs out (at-least-once sending).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Integer,
    String,
    bindparam,
    case,
    delete,
    func,
    insert,
    null,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.domain.failover import FlowState, Phase
from omnirelay.domain.messages import Channel, Receipt
from omnirelay.domain.statuses import ERRORS, STATUSES, Status, error_for_code
from omnirelay.domain.times import from_ms, to_ms
from omnirelay.ports import (
    Api,
    IdempotencyClaim,
    InboxReceipt,
    KeyClaimed,
    MessageRecord,
    NewMessage,
    NewReport,
    ReceiptOutcome,
    ReportFilter,
    ReportState,
    Transition,
)
from omnirelay.store import claims, codec, idempotency
from omnirelay.store.engine import RowStatement, one_of, reading
from omnirelay.store.tables import attempts, channel_refs, messages, receipts_inbox, reports
from omnirelay.store.writer import Writer

_RECORD_COLUMNS = (
    messages.c.id,
    messages.c.version,
    messages.c.account_id,
    messages.c.message_id,
    messages.c.bulk_id,
    messages.c.api,
    messages.c.plan,
    messages.c.phase,
    messages.c.step_index,
    messages.c.tries,
    messages.c.step_deadline,
    messages.c.next_action_at,
    messages.c.created_at,
    messages.c.sent_at,
    messages.c.message_count,
    messages.c.notify_url,
    messages.c.callback_data,
    messages.c.intermediate_report,
    messages.c.notify,
    messages.c.claims,
    messages.c.scenario_key,
)

_MESSAGES_OUTBOX = claims.Outbox(
    messages, messages.c.id, messages.c.next_action_at, messages.c.version, messages.c.lease_expires_at
)
# The receipt inbox is claimed like the other outboxes: each receipt is worked on by one node at a
# time, and a node that died with a batch claimed leaves it to the others when its lease runs out.
_INBOX_OUTBOX = claims.Outbox(
    receipts_inbox,
    receipts_inbox.c.id,
    receipts_inbox.c.next_try_at,
    receipts_inbox.c.lease_token,
    receipts_inbox.c.lease_until,
)
INBOX_LEASE_S = 10.0  # a receipt batch is read, decided and settled in well under a second


def _record(row: Any) -> MessageRecord:
    m = row._mapping
    return MessageRecord(
        pk=m["id"],
        version=m["version"],
        account_id=m["account_id"],
        message_id=m["message_id"],
        bulk_id=m["bulk_id"],
        api=Api(m["api"]),
        plan=codec.decode_plan(m["plan"]),
        state=FlowState(
            step_index=m["step_index"],
            phase=Phase(m["phase"]),
            tries=m["tries"],
            step_deadline=from_ms(m["step_deadline"]),
            next_action_at=from_ms(m["next_action_at"]) if m["next_action_at"] is not None else None,
        ),
        created_at=from_ms(m["created_at"]),
        sent_at=from_ms(m["sent_at"]) if m["sent_at"] is not None else None,
        message_count=m["message_count"],
        notify_url=m["notify_url"],
        callback_data=m["callback_data"],
        intermediate_report=m["intermediate_report"],
        notify=m["notify"],
        claims=m["claims"],
        scenario_key=m["scenario_key"],
    )


def _ms(dt: datetime | None) -> int | None:
    return to_ms(dt) if dt is not None else None


def _report_row(
    *, pk: int | None, owner: NewMessage | MessageRecord, report: NewReport, now: datetime
) -> dict[str, Any]:
    return {
        "account_id": owner.account_id,
        "message_pk": pk,
        "api": owner.api.value,
        "kind": report.kind,
        "state": report.state.value,
        "body": codec.encode(report.body),
        "bulk_id": owner.bulk_id,
        "message_id": owner.message_id,
        "channel": report.channel,
        "notify_url": owner.notify_url,
        "created_at": to_ms(now),
        "next_push_at": _ms(report.next_push_at),
        "push_tries": 0,
        "owner_account_id": owner.account_id,
        "owner_message_id": owner.message_id,
    }


# The writes below run many rows at a time, as `RowStatement`s (one executemany at the driver).

# Recording a try: insert the attempt, or update it on a retry of the same step. The text is the
# same on PostgreSQL (`RowStatement`).
_ATTEMPT_COLUMNS = (
    "message_pk",
    "step_index",
    "channel",
    "sender",
    "to",
    "tries",
    "sent_at",
    "done_at",
    "status_id",
    "error_id",
    "message_count",
)
_attempt_insert = sqlite_insert(attempts).values({c: bindparam(c) for c in _ATTEMPT_COLUMNS})
_ATTEMPT_UPSERT = RowStatement(
    _attempt_insert.on_conflict_do_update(
        index_elements=["message_pk", "step_index"],
        set_={
            **{
                k: _attempt_insert.excluded[k]
                for k in ("tries", "status_id", "error_id", "message_count", "done_at")
            },
            "sent_at": func.coalesce(attempts.c.sent_at, _attempt_insert.excluded.sent_at),
        },
    )
)

# Closing an attempt that was sent earlier (receipt, deadline).
_END_ATTEMPT = RowStatement(
    update(attempts)
    .where(attempts.c.message_pk == bindparam("b_pk"), attempts.c.step_index == bindparam("b_step"))
    .values(status_id=bindparam("b_status"), error_id=bindparam("b_error"), done_at=bindparam("b_done"))
)

# Recording the refs of an accepted send: a ref given again (SMSC ids repeat) names the newer send
# from now on. Idempotent: the same send recorded twice writes the same row; an older send recorded
# after a newer one (out-of-order commits of two nodes) leaves the newer one's row alone.
_ref_insert = sqlite_insert(channel_refs).values(
    {c: bindparam(c) for c in ("channel", "ref", "message_pk", "step_index", "delivered", "sent_at")}
)
_CHANNEL_REF_UPSERT = RowStatement(
    _ref_insert.on_conflict_do_update(
        index_elements=["channel", "ref"],
        set_={k: _ref_insert.excluded[k] for k in ("message_pk", "step_index", "delivered", "sent_at")},
        where=or_(channel_refs.c.sent_at.is_(None), channel_refs.c.sent_at <= _ref_insert.excluded.sent_at),
    )
)
_REPORT_INSERT = RowStatement.inserting(
    reports,
    (
        "account_id",
        "message_pk",
        "api",
        "kind",
        "state",
        "body",
        "bulk_id",
        "message_id",
        "channel",
        "notify_url",
        "created_at",
        "next_push_at",
        "push_tries",
    ),
)
# A report of a message inserted in the same transaction, found by its message id (rows from
# `_report_row(pk=None, ...)`; the unique (account_id, message_id) index makes it one lookup).
_REJECTED_REPORT_INSERT = RowStatement(
    insert(reports).values(
        {
            **{c: bindparam(c) for c in _REPORT_INSERT.names},
            "message_pk": select(messages.c.id)
            .where(
                messages.c.account_id == bindparam("owner_account_id"),
                messages.c.message_id == bindparam("owner_message_id"),
            )
            .scalar_subquery(),
        }
    )
)
_RECEIPT_INSERT = RowStatement.inserting(
    receipts_inbox,
    (
        "channel",
        "ref",
        "status_id",
        "error_id",
        "done_at",
        "detail",
        "received_at",
        "next_try_at",
        "sent_after",
        "seen",
    ),
)


# A transition's message update, built once and run for many rows at a time (executemany). The guard
# (version, lease owner) is checked first under a row lock (`_current`); `g_version` here is a
# second line of defence whose row count is checked where the driver reports it.
_GUARDED_UPDATE = RowStatement(
    update(messages)
    .where(messages.c.id == bindparam("g_pk"), messages.c.version == bindparam("g_version"))
    .values(
        phase=bindparam("g_phase"),
        step_index=bindparam("g_step"),
        tries=bindparam("g_tries"),
        step_deadline=bindparam("g_deadline"),
        next_action_at=bindparam("g_next"),
        lease_owner=bindparam("g_lease_owner"),
        # a lease holder going on with the next step keeps its lease (its expiry is database time)
        lease_expires_at=case(
            (bindparam("g_keep_lease", type_=Boolean), messages.c.lease_expires_at), else_=null()
        ),
        version=bindparam("g_new_version"),
        claims=bindparam("g_claims", type_=Integer),  # an outcome written: the claims start again
        status_id=bindparam("g_status"),
        error_id=bindparam("g_error"),
        channel=bindparam("g_channel"),
        sent_to=bindparam("g_to"),
        sent_from=bindparam("g_from"),
        # NULL where the transition leaves them alone (no send accepted, flow not finished)
        message_count=func.coalesce(bindparam("g_count", type_=Integer), messages.c.message_count),
        sent_at=func.coalesce(messages.c.sent_at, bindparam("g_sent", type_=BigInteger)),
        done_at=func.coalesce(bindparam("g_done", type_=BigInteger), messages.c.done_at),
    )
)
_GUARD_CHUNK = 1000  # messages per guard read (bound parameters stay far below the drivers' limits)


# Settling receipts.
_INBOX_RETRY = RowStatement(
    update(receipts_inbox)
    .where(receipts_inbox.c.id == bindparam("b_id"), receipts_inbox.c.lease_token == bindparam("b_token"))
    .values(next_try_at=bindparam("b_next"), lease_until=null())
)
_REF_DELIVERED = RowStatement(
    update(channel_refs)
    .where(
        channel_refs.c.channel == bindparam("b_channel"),
        channel_refs.c.ref == bindparam("b_ref"),
        channel_refs.c.message_pk == bindparam("b_pk"),  # not a newer send's that got the ref since
    )
    .values(delivered=bindparam("b_delivered"))
)
# A delivery short of the step's criterion, and a read: the first one of each counts.
_PROGRESS = RowStatement(
    update(attempts)
    .where(attempts.c.message_pk == bindparam("b_pk"), attempts.c.step_index == bindparam("b_step"))
    .values(delivered_at=func.coalesce(attempts.c.delivered_at, bindparam("b_at", type_=BigInteger)))
)
_SEEN = RowStatement(
    update(attempts)
    .where(attempts.c.message_pk == bindparam("b_pk"), attempts.c.step_index == bindparam("b_step"))
    .values(seen_at=func.coalesce(attempts.c.seen_at, bindparam("b_at", type_=BigInteger)))
)
_LATE_RECEIPT = RowStatement(
    update(attempts)
    .where(attempts.c.message_pk == bindparam("b_pk"), attempts.c.step_index == bindparam("b_step"))
    .values(
        late_status_id=bindparam("b_status"), late_error_id=bindparam("b_error"), late_at=bindparam("b_at")
    )
)


_MESSAGE_INSERT = RowStatement.inserting(
    messages,
    (
        "account_id",
        "message_id",
        "bulk_id",
        "api",
        "to_json",
        "plan",
        "phase",
        "step_index",
        "tries",
        "step_deadline",
        "next_action_at",
        "lease_owner",
        "lease_expires_at",
        "version",
        "status_id",
        "error_id",
        "channel",
        "sent_to",
        "sent_from",
        "text",
        "message_count",
        "created_at",
        "sent_at",
        "done_at",
        "notify_url",
        "callback_data",
        "intermediate_report",
        "notify",
        "scenario_key",
    ),
)


def _message_values(m: NewMessage) -> tuple[Any, ...]:
    """A new message's row, in `_MESSAGE_INSERT.names` order."""
    s = m.state
    first = m.plan[0] if m.plan else None
    final = m.final_report is not None
    created = to_ms(m.created_at)
    return (
        m.account_id,
        m.message_id,
        m.bulk_id,
        m.api.value,
        codec.encode(m.to),
        codec.encode(m.plan),
        s.phase.value,
        s.step_index,
        s.tries,
        to_ms(s.step_deadline),
        _ms(s.next_action_at),
        None,
        None,
        0,
        m.status.id,
        m.error.id,
        first.channel.value if first else None,
        first.to if first else None,
        first.sender if first else None,
        m.text,
        1 if final else 0,
        created,
        None,
        created if final else None,
        m.notify_url,
        m.callback_data,
        m.intermediate_report,
        m.notify,
        m.scenario_key,
    )


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    """`IN` lists of at most `_GUARD_CHUNK` values (bound parameters stay far below the drivers' limits)."""
    return [values[i : i + _GUARD_CHUNK] for i in range(0, len(values), _GUARD_CHUNK)]


# PostgreSQL: one index probe per ref, whatever the planner thinks of the table. With `ref IN (…)`
# and no statistics yet (a fresh or fast-growing table: autovacuum analyzes it a minute later, at
# the earliest), it took the default selectivity for each ref, found the list unselective, and read
# every row of the channel through the key's prefix: 45 ms per receipt batch at 20,000 messages in
# the end-to-end benchmark, and growing with the table. A LATERAL probe with LIMIT 1 can only be a
# nested loop of primary-key look-ups; the array makes it one prepared statement for any count.
_PG_CHANNEL_REFS = text(
    "SELECT c.channel, c.ref, c.message_pk, c.step_index, c.delivered, c.sent_at "
    "FROM unnest(CAST(:refs AS VARCHAR[])) AS k(ref) "
    "CROSS JOIN LATERAL (SELECT * FROM channel_refs WHERE channel = :channel AND ref = k.ref LIMIT 1) AS c"
).bindparams(bindparam("refs", type_=ARRAY(String)), bindparam("channel", type_=String))


async def _channel_refs(conn: AsyncConnection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """The `channel_refs` rows of these (channel, ref) keys. Per channel, so that the look-up is the
    primary key's (channel, ref): `ref IN (…)` alone scanned the whole table, every receipt batch."""
    refs: dict[str, list[str]] = {}
    for channel, ref in keys:
        refs.setdefault(channel, []).append(ref)
    out: dict[tuple[str, str], Any] = {}
    pg = conn.dialect.name == "postgresql"
    for channel, of_channel in refs.items():
        for chunk in _chunks(sorted(of_channel)):
            if pg:
                rows = await conn.execute(_PG_CHANNEL_REFS, {"refs": list(chunk), "channel": channel})
            else:
                rows = await conn.execute(
                    select(channel_refs).where(
                        channel_refs.c.channel == channel, channel_refs.c.ref.in_(chunk)
                    )
                )
            for row in rows:
                out[(row.channel, row.ref)] = row
    return out


class SqlMessageStore:
    def __init__(self, engine: AsyncEngine, writer: Writer) -> None:
        self._engine = engine
        self._writer = writer
        self._pg = engine.dialect.name == "postgresql"
        self._inbox_tokens: dict[int, int] = {}  # receipts claimed here and not settled: their tokens

    # -- intake ---------------------------------------------------------------------------

    async def insert_messages(
        self, new: Sequence[NewMessage], claim: IdempotencyClaim | None = None
    ) -> list[bool]:
        # intake is what sheds load when storage falls behind (store.writer): 503 and Retry-After
        inserted = await self._writer.run_batched(self._insert_requests, (list(new), claim), shed=True)
        if inserted is None:
            raise KeyClaimed()
        return inserted

    async def _insert_requests(
        self, conn: AsyncConnection, requests: list[tuple[list[NewMessage], IdempotencyClaim | None]]
    ) -> list[list[bool] | None]:
        """Concurrent requests' messages in one executemany; in order, so duplicates resolve as if
        the requests had been inserted one after another. A request whose `Idempotency-Key` was
        kept before inserts nothing (None); otherwise its key and answer are kept here."""
        free = await idempotency.free(conn, [claim for _, claim in requests])
        ok = await self._insert(
            conn, [m for (request, _), go in zip(requests, free, strict=True) if go for m in request]
        )
        out: list[list[bool] | None] = []
        start = 0
        for (request, claim), go in zip(requests, free, strict=True):
            if not go:
                out.append(None)
                continue
            inserted = ok[start : start + len(request)]
            start += len(request)
            if claim is not None:
                await idempotency.keep(conn, claim, inserted)
            out.append(inserted)
        return out

    async def _insert(self, conn: AsyncConnection, items: list[NewMessage]) -> list[bool]:
        ok = [True] * len(items)
        claimed: set[tuple[int, str]] = set()
        checks: dict[int, list[str]] = {}
        for i, m in enumerate(items):
            key = (m.account_id, m.message_id)
            if key in claimed:
                ok[i] = False
            claimed.add(key)
            if m.client_message_id:
                checks.setdefault(m.account_id, []).append(m.message_id)
        for account_id, ids in checks.items():
            taken = await conn.execute(
                select(messages.c.message_id).where(
                    messages.c.account_id == account_id, messages.c.message_id.in_(ids)
                )
            )
            used = {r[0] for r in taken}
            for i, m in enumerate(items):
                if m.account_id == account_id and m.message_id in used:
                    ok[i] = False
        await _MESSAGE_INSERT.run_tuples(conn, [_message_values(m) for i, m in enumerate(items) if ok[i]])
        # Rejected at acceptance: their final reports find the new rows' ids by message id, in the
        # same executemany (one INSERT … RETURNING per message made 10,000 rejected destinations
        # take 9 s; reading the ids back first, 40 % more than as many accepted ones).
        await _REJECTED_REPORT_INSERT.run(
            conn,
            [
                _report_row(pk=None, owner=m, report=m.final_report, now=m.created_at)
                for i, m in enumerate(items)
                if ok[i] and m.final_report is not None
            ],
        )
        return ok

    # -- dispatching ----------------------------------------------------------------------

    async def claim_due(
        self,
        now: datetime,
        owner: str,
        lease_s: float,
        limit: int,
        *,
        exclude: Sequence[int] = (),
        skip_channels: Sequence[str] = (),
    ) -> list[MessageRecord]:
        """Lease up to `limit` due messages to `owner` (store.claims): each claim bumps the
        message's `version`, its fencing token, and counts one more claim since its last outcome.
        `skip_channels`: leave messages whose current step is on these channels to other nodes."""
        stmt = claims.claim(
            _MESSAGES_OUTBOX,
            now_ms=to_ms(now),
            lease_s=lease_s,
            limit=limit,
            pg=self._pg,
            values={messages.c.lease_owner: owner, messages.c.claims: messages.c.claims + 1},
            exclude=exclude,
            where=[messages.c.channel.not_in(list(skip_channels))] if skip_channels else (),
        ).returning(*_RECORD_COLUMNS)

        async def unit(conn: AsyncConnection) -> list[MessageRecord]:
            rows = (await conn.execute(stmt)).all()
            return [_record(r) for r in rows]

        return await self._writer.run(unit)

    async def next_due_at(self) -> datetime | None:
        async with reading(self._engine) as conn:
            due = (await conn.execute(select(func.min(messages.c.next_action_at)))).scalar()
        return from_ms(due) if due is not None else None

    async def apply(self, transitions: Sequence[Transition], owner: str | None) -> list[bool]:
        return await self._writer.run_batched(self._apply_requests, (list(transitions), owner))

    async def _apply_requests(
        self, conn: AsyncConnection, requests: list[tuple[list[Transition], str | None]]
    ) -> list[list[bool]]:
        """Concurrent callers' transitions (each dispatcher task applies its own) in one go."""
        ok = await self._apply_many(conn, [(t, owner) for ts, owner in requests for t in ts])
        out, start = [], 0
        for ts, _ in requests:
            out.append(ok[start : start + len(ts)])
            start += len(ts)
        return out

    async def _apply_many(
        self, conn: AsyncConnection, items: list[tuple[Transition, str | None]]
    ) -> list[bool]:
        """The guarded message updates, then what the applied ones entail (attempts, channel ids,
        reports): a constant number of statements whatever the number of transitions. Each
        statement is a round trip to the driver (aiosqlite's thread, PostgreSQL): one per
        transition made every batch, and every claim queued behind it, as slow as the event loop
        was busy."""
        ok = await self._guarded_updates(conn, items)
        tried: list[dict[str, Any]] = []
        ended: list[dict[str, Any]] = []
        refs: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        for (t, _), applied in zip(items, ok, strict=True):
            if applied:
                self._entails(t, tried, ended, refs, rows)
        await _ATTEMPT_UPSERT.run(conn, tried)
        await _END_ATTEMPT.run(conn, ended)
        # one row per ref, the batch's last (newest) send of it: a statement changes a row once
        await _CHANNEL_REF_UPSERT.run(conn, list({(r["channel"], r["ref"]): r for r in refs}.values()))
        await _REPORT_INSERT.run(conn, rows)
        return ok

    async def _guarded_updates(
        self, conn: AsyncConnection, items: list[tuple[Transition, str | None]]
    ) -> list[bool]:
        """`UPDATE … WHERE id = :pk AND version = :version [AND lease_owner = :owner]` for each
        transition, in order (a second transition of the same message in the batch sees the
        first one's version), as one read of the guarded columns (rows locked on PostgreSQL until
        the commit; SQLite has one writer) and one executemany of the updates that pass."""
        current = await self._current(conn, sorted({t.record.pk for t, _ in items}))
        ok: list[bool] = []
        rows: list[dict[str, Any]] = []
        for t, owner in items:
            rec = t.record
            version, lease_owner = current.get(rec.pk, (None, None))
            applied = version == rec.version and (owner is None or lease_owner == owner)
            ok.append(applied)
            if applied:
                row = self._update_row(t, owner)
                rows.append(row)
                current[rec.pk] = (row["g_new_version"], row["g_lease_owner"])
        changed = await _GUARDED_UPDATE.run(conn, rows)
        if changed is not None and changed != len(rows):
            # cannot happen under the lock; the writer re-runs the batch's units one by one
            raise RuntimeError(f"guarded update changed {changed} of {len(rows)} messages")
        return ok

    async def _current(self, conn: AsyncConnection, pks: list[int]) -> dict[int, tuple[int, str | None]]:
        out: dict[int, tuple[int, str | None]] = {}
        for chunk in _chunks(pks):
            stmt = (
                select(messages.c.id, messages.c.version, messages.c.lease_owner)
                .where(one_of(messages.c.id, chunk, pg=self._pg))
                .order_by(messages.c.id)
            )
            if self._pg:
                stmt = stmt.with_for_update()  # in id order: concurrent writers lock alike
            for pk, version, lease_owner in await conn.execute(stmt):
                out[pk] = (version, lease_owner)
        return out

    @staticmethod
    def _update_row(t: Transition, owner: str | None) -> dict[str, Any]:
        rec, d, now_ms = t.record, t.decision, to_ms(t.now)
        current = rec.plan[d.state.step_index]
        next_ms = _ms(d.state.next_action_at)
        lease_owner, keep_lease = None, False
        if t.lease_until is not None and owner is not None:
            # the caller goes on with the next step itself: it keeps the message leased meanwhile
            lease_owner, keep_lease = owner, True
            next_ms = to_ms(t.lease_until)
        return {
            "g_pk": rec.pk,
            "g_version": rec.version,
            "g_phase": d.state.phase.value,
            "g_step": d.state.step_index,
            "g_tries": d.state.tries,
            "g_deadline": to_ms(d.state.step_deadline),
            "g_next": next_ms,
            "g_lease_owner": lease_owner,
            "g_keep_lease": keep_lease,
            "g_new_version": rec.version + 1,
            "g_claims": 0,
            "g_status": t.status.id,
            "g_error": t.error.id,
            "g_channel": current.channel.value,
            "g_to": current.to,
            "g_from": current.sender,
            # a flow that ends shows the count and sentAt its final report shows (a message never
            # sent: 1, and the time it ended), so that `/omni/1/logs` and the report agree
            "g_count": (
                t.accepted.message_count
                if t.accepted is not None
                else max(rec.message_count, 1)
                if d.final is not None
                else None
            ),
            "g_sent": now_ms if t.accepted is not None or d.final is not None else None,
            "g_done": now_ms if d.final is not None else None,
        }

    def _entails(
        self,
        t: Transition,
        tried: list[dict[str, Any]],
        ended: list[dict[str, Any]],
        refs: list[dict[str, Any]],
        rows: list[dict[str, Any]],
    ) -> None:
        rec, d, now_ms = t.record, t.decision, to_ms(t.now)
        acted = rec.plan[rec.state.step_index]
        tried_now = t.accepted is not None or (d.step_ended is not None and rec.state.phase is Phase.READY)
        if tried_now:
            tried.append(self._attempt_row(t))
        elif d.step_ended is not None:
            ended.append(
                {
                    "b_pk": rec.pk,
                    "b_step": rec.state.step_index,
                    "b_status": d.step_ended.status.id,
                    "b_error": d.step_ended.error.id,
                    "b_done": now_ms,
                }
            )
        if t.accepted is not None:
            refs.extend(
                {
                    "channel": acted.channel.value,
                    "ref": ref,
                    "message_pk": rec.pk,
                    "step_index": rec.state.step_index,
                    "delivered": False,
                    "sent_at": now_ms,
                }
                for ref in t.accepted.refs
            )
        rows.extend(_report_row(pk=rec.pk, owner=rec, report=report, now=t.now) for report in t.reports)

    @staticmethod
    def _attempt_row(t: Transition) -> dict[str, Any]:
        rec, ended, now_ms = t.record, t.decision.step_ended, to_ms(t.now)
        step = rec.plan[rec.state.step_index]
        return {
            "message_pk": rec.pk,
            "step_index": rec.state.step_index,
            "channel": step.channel.value,
            "sender": step.sender,
            "to": step.to,
            "tries": rec.state.tries + 1,
            "sent_at": now_ms if t.accepted is not None else None,
            "done_at": now_ms if ended is not None else None,
            "status_id": (ended.status if ended is not None else t.status).id,
            "error_id": (ended.error if ended is not None else t.error).id,
            "message_count": t.accepted.message_count if t.accepted is not None else 0,
        }

    # -- receipts -------------------------------------------------------------------------

    async def record_receipts(self, receipts: Sequence[Receipt], now: datetime) -> None:
        now_ms = to_ms(now)
        rows = [
            {
                "channel": r.channel.value,
                "ref": r.ref,
                "status_id": r.status.id,
                "error_id": r.error.id,
                "done_at": to_ms(r.done_at),
                "detail": codec.encode(r.detail),
                "received_at": now_ms,
                "next_try_at": now_ms,
                "sent_after": _ms(r.sent_after),
                "seen": r.seen,
            }
            for r in receipts
        ]
        if not rows:
            return

        async def unit(conn: AsyncConnection) -> None:
            await _RECEIPT_INSERT.run(conn, rows)

        await self._writer.run(unit)

    async def due_receipts(
        self, now: datetime, limit: int, *, lease_s: float = INBOX_LEASE_S
    ) -> list[InboxReceipt]:
        """Claim up to `limit` due receipts for this node (store.claims: a fresh token each, which
        their settlement presents) and read what deciding them needs."""
        # the claim walks the index's order (next_try_at, then id): by id alone, SQLite scanned the
        # whole inbox in id order, unmatched receipts waiting for a retry included
        claim = claims.claim(_INBOX_OUTBOX, now_ms=to_ms(now), lease_s=lease_s, limit=limit, pg=self._pg)
        stmt = claim.returning(receipts_inbox.c.id, receipts_inbox.c.lease_token)

        async def unit(conn: AsyncConnection) -> list[tuple[int, int]]:
            return [(r.id, r.lease_token) for r in (await conn.execute(stmt)).all()]

        taken = await self._writer.run(unit)
        if not taken:
            return []
        self._inbox_tokens.update(taken)
        async with reading(self._engine) as conn:
            inbox: list[Any] = []
            for chunk in _chunks(sorted(i for i, _ in taken)):
                by_id = one_of(receipts_inbox.c.id, chunk, pg=self._pg)
                inbox.extend((await conn.execute(select(receipts_inbox).where(by_id))).all())
            if not inbox:
                return []
            by_key = await _channel_refs(conn, {(r.channel, r.ref) for r in inbox})
            pks = {r.message_pk for r in by_key.values()}
            records: dict[int, MessageRecord] = {}
            undelivered: dict[tuple[int, int], frozenset[str]] = {}
            ended_at: dict[tuple[int, int], tuple[datetime, Status, bool]] = {}
            if pks:
                by_pk = one_of(messages.c.id, list(pks), pg=self._pg)
                for row in (await conn.execute(select(*_RECORD_COLUMNS).where(by_pk))).all():
                    records[row.id] = _record(row)
                parts = (
                    await conn.execute(
                        select(
                            channel_refs.c.message_pk, channel_refs.c.step_index, channel_refs.c.ref
                        ).where(
                            one_of(channel_refs.c.message_pk, list(pks), pg=self._pg),
                            channel_refs.c.delivered.is_(False),
                        )
                    )
                ).all()
                collect: dict[tuple[int, int], set[str]] = {}
                for p in parts:
                    collect.setdefault((p.message_pk, p.step_index), set()).add(p.ref)
                undelivered = {k: frozenset(v) for k, v in collect.items()}
                ended_at = await self._steps_ended(conn, records, by_key.values())
        out = []
        for r in inbox:
            ref_row = by_key.get((r.channel, r.ref))
            receipt = Receipt(
                channel=Channel(r.channel),
                ref=r.ref,
                status=STATUSES[r.status_id],
                error=ERRORS.get(r.error_id) or error_for_code(r.error_id),
                done_at=from_ms(r.done_at),
                detail=codec.decode_dict(r.detail),
                sent_after=from_ms(r.sent_after) if r.sent_after is not None else None,
                seen=bool(r.seen),
            )
            if ref_row is None:
                out.append(InboxReceipt(r.id, receipt, from_ms(r.received_at), None, None, frozenset()))
                continue
            owner = (ref_row.message_pk, ref_row.step_index)
            out.append(
                InboxReceipt(
                    r.id,
                    receipt,
                    from_ms(r.received_at),
                    records.get(ref_row.message_pk),
                    ref_row.step_index,
                    undelivered.get(owner, frozenset()),
                    ref_sent_at=from_ms(ref_row.sent_at) if ref_row.sent_at is not None else None,
                    step_ended_at=ended[0] if (ended := ended_at.get(owner)) else None,
                    step_ended_status=ended[1] if ended else None,
                    step_late=ended[2] if ended else False,
                )
            )
        return out

    async def _steps_ended(
        self, conn: AsyncConnection, records: dict[int, MessageRecord], owners: Any
    ) -> dict[tuple[int, int], tuple[datetime, Status, bool]]:
        """When the steps that refs belong to ended, for the steps no longer waiting (only those:
        a receipt for the step being waited on, the usual case, costs no read)."""
        done: set[tuple[int, int]] = set()
        for row in owners:
            rec = records.get(row.message_pk)
            if rec is not None and not (
                rec.state.phase is Phase.WAITING and rec.state.step_index == row.step_index
            ):
                done.add((row.message_pk, row.step_index))
        out: dict[tuple[int, int], tuple[datetime, Status, bool]] = {}
        a = attempts.c
        for chunk in _chunks(sorted(done)):
            rows = await conn.execute(
                select(a.message_pk, a.step_index, a.done_at, a.status_id, a.late_at).where(
                    tuple_(a.message_pk, a.step_index).in_(list(chunk))
                )
            )
            for row in rows:
                if row.done_at is not None:
                    out[(row.message_pk, row.step_index)] = (
                        from_ms(row.done_at),
                        STATUSES[row.status_id],
                        row.late_at is not None,
                    )
        return out

    async def settle_receipts(self, outcomes: Sequence[ReceiptOutcome]) -> list[bool]:
        items = list(outcomes)
        # the claims' tokens: a receipt whose claim was taken over since is another node's now
        tokens = {o.inbox_id: self._inbox_tokens.pop(o.inbox_id, -1) for o in items}

        async def unit(conn: AsyncConnection) -> list[bool]:
            return await self._settle_many(conn, items, tokens)

        return await self._writer.run(unit)

    async def _claimed_inbox(
        self, conn: AsyncConnection, ids: set[int], tokens: dict[int, int]
    ) -> dict[int, Any]:
        """The inbox rows of these ids still under this node's claims, locked on PostgreSQL."""
        inbox: dict[int, Any] = {}
        for chunk in _chunks(sorted(ids)):
            read = select(receipts_inbox).where(one_of(receipts_inbox.c.id, chunk, pg=self._pg))
            for row in await conn.execute(read.with_for_update() if self._pg else read):
                if row.lease_token == tokens[row.id]:
                    inbox[row.id] = row
        return inbox

    async def _settle_many(
        self, conn: AsyncConnection, items: list[ReceiptOutcome], tokens: dict[int, int]
    ) -> list[bool]:
        """Settle a batch of receipts in a constant number of statements (one executemany or one
        `IN` per kind of write), not about five per receipt: each statement is a round trip that
        every claim queued behind the writer waits for. Only receipts still under this node's
        claim (their token unchanged) are settled; the others are left to the node that has them."""
        ok = [True] * len(items)
        retry = [
            {"b_id": o.inbox_id, "b_token": tokens[o.inbox_id], "b_next": to_ms(o.retry_at)}
            for o in items
            if o.retry_at is not None
        ]
        settle = [i for i, o in enumerate(items) if o.retry_at is None]
        inbox = await self._claimed_inbox(conn, {items[i].inbox_id for i in settle}, tokens)
        for i in settle:
            if items[i].inbox_id not in inbox:
                ok[i] = False  # gone already, or claimed by another node since: not settled here
        settle = [i for i in settle if items[i].inbox_id in inbox]
        refs = await _channel_refs(
            conn, {(row.channel, row.ref) for row in (inbox[items[i].inbox_id] for i in settle)}
        )
        with_transition = [i for i in settle if items[i].transition is not None]
        applied = await self._apply_many(
            conn, [(t, None) for i in with_transition if (t := items[i].transition) is not None]
        )
        for i, done in zip(with_transition, applied, strict=True):
            if not done:
                ok[i] = False  # stale: look at it again right away, with fresh state
                row = inbox[items[i].inbox_id]
                retry.append({"b_id": row.id, "b_token": row.lease_token, "b_next": row.received_at})
        delivered: list[dict[str, Any]] = []
        late: list[dict[str, Any]] = []
        progress: list[dict[str, Any]] = []
        seen: list[dict[str, Any]] = []
        report_rows: list[dict[str, Any]] = []
        gone: list[int] = []
        for i in settle:
            if not ok[i]:
                continue
            row = inbox[items[i].inbox_id]
            ref = refs.get((row.channel, row.ref))
            if ref is not None and (ref.message_pk, ref.step_index) != items[i].owner:
                ref = None  # unmatched, or the ref names another (newer) send now: not this receipt's
            if ref is not None:
                # when the gateway heard of it: a Messenger watermark bounds send times, not a read's
                at = {"b_pk": ref.message_pk, "b_step": ref.step_index, "b_at": row.received_at}
                if items[i].progress:
                    # not marked delivered: the read that would meet the criterion must still find it
                    progress.append(at)
                elif STATUSES[row.status_id].is_success:
                    delivered.append(
                        {
                            "b_channel": row.channel,
                            "b_ref": row.ref,
                            "b_pk": ref.message_pk,
                            "b_delivered": True,
                        }
                    )
                if items[i].late:
                    owner_record = items[i].record
                    if owner_record is not None:
                        received = from_ms(row.received_at)
                        report_rows.extend(
                            _report_row(pk=ref.message_pk, owner=owner_record, report=r, now=received)
                            for r in items[i].reports
                        )
                    late.append(
                        {
                            "b_pk": ref.message_pk,
                            "b_step": ref.step_index,
                            "b_status": row.status_id,
                            "b_error": row.error_id,
                            "b_at": row.done_at,
                        }
                    )
                if row.seen:
                    seen.append(at)
            gone.append(row.id)
        await _INBOX_RETRY.run(conn, retry)
        await _REF_DELIVERED.run(conn, delivered)
        await _LATE_RECEIPT.run(conn, late)
        await _PROGRESS.run(conn, progress)
        await _SEEN.run(conn, seen)
        await _REPORT_INSERT.run(conn, report_rows)
        for chunk in _chunks(gone):
            await conn.execute(delete(receipts_inbox).where(one_of(receipts_inbox.c.id, chunk, pg=self._pg)))
        return ok

    # -- reports --------------------------------------------------------------------------

    async def record_by_message_id(self, account_id: int, message_id: str) -> MessageRecord | None:
        async with reading(self._engine) as conn:
            row = (
                await conn.execute(
                    select(*_RECORD_COLUMNS).where(
                        messages.c.account_id == account_id, messages.c.message_id == message_id
                    )
                )
            ).first()
        return _record(row) if row is not None else None

    async def take_reports(self, account_id: int, api: Api, flt: ReportFilter) -> list[bytes]:
        conds = [
            reports.c.account_id == account_id,
            reports.c.api == api.value,
            reports.c.state == ReportState.PULL.value,
        ]
        if flt.bulk_id is not None:
            conds.append(reports.c.bulk_id == flt.bulk_id)
        if flt.message_id is not None:
            conds.append(reports.c.message_id == flt.message_id)
        if flt.channel is not None:
            conds.append(reports.c.channel == flt.channel)
        pick = select(reports.c.id).where(*conds).order_by(reports.c.id).limit(flt.limit)
        if self._pg:
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(reports)
            .where(reports.c.id.in_(pick.scalar_subquery()), reports.c.state == ReportState.PULL.value)
            .values(state=ReportState.DONE.value)
            .returning(reports.c.id, reports.c.body)
        )

        async def unit(conn: AsyncConnection) -> list[bytes]:
            rows = sorted((await conn.execute(stmt)).all(), key=lambda r: r.id)
            return [r.body.encode() for r in rows]

        return await self._writer.run(unit)
