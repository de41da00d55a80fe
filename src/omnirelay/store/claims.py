"""Claims: leases on outbox rows (messages to send, reports to push, inbound to forward).

One rule for every outbox (docs/architecture.md, "Claims and leases"):

- A row is due when its scheduling column (`next_action_at`, `next_push_at`, `next_try_at`) has
  passed by the caller's clock, and no live lease holds it. Scheduling (retries, deadlines) is the
  domain's business and follows the injected `Clock`.
- A lease's expiry is written and compared in the database's clock, never a node's: two nodes whose
  clocks disagree still agree on whether a lease is live, so a skewed clock cannot take over a
  message while its holder is sending it.
- Every claim takes a fresh fencing token (the row's token plus one) and the write of its outcome
  must present it: a late write from a claim that was taken over is refused, however the take-over
  came about.
- A claim moves the scheduling column to the lease's end (by the caller's clock), so claimed rows
  leave the head of the due index and the claim query does not walk them.

PostgreSQL claims with `FOR UPDATE SKIP LOCKED` (nodes claim disjoint rows without waiting for each
other); SQLite has one writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, ColumnElement, Table, cast, func, literal, or_, select, update
from sqlalchemy.sql.dml import Update

from omnirelay.store.engine import one_of

# The Unix epoch as a Julian day: SQLite's `julianday('now')` counts days from noon, 4714 BC.
_UNIX_EPOCH_JULIAN_DAY = 2440587.5


def db_now_ms(*, pg: bool) -> ColumnElement[int]:
    """The database's clock, in epoch milliseconds like every time column. PostgreSQL's `now()` is
    its transaction's start: earlier than the commit, so a lease measured from it ends no later
    than its holder believes."""
    if pg:
        return cast(func.extract("epoch", func.now()) * 1000, BigInteger)
    return cast((func.julianday("now") - _UNIX_EPOCH_JULIAN_DAY) * 86_400_000, BigInteger)


@dataclass(frozen=True, slots=True)
class Outbox:
    """How a table is leased: its key, scheduling column, token and lease expiry (database time),
    and the condition that makes a row an outbox entry at all."""

    table: Table
    key: Column[Any]
    due: Column[Any]
    token: Column[Any]
    lease_until: Column[Any]
    pending: tuple[ColumnElement[bool], ...] = ()


def claim(
    outbox: Outbox,
    *,
    now_ms: int,
    lease_s: float,
    limit: int,
    pg: bool,
    values: dict[Any, Any] | None = None,
    exclude: Sequence[int] = (),
    where: Sequence[ColumnElement[bool]] = (),
) -> Update:
    """The UPDATE that claims up to `limit` due rows; add `.returning(...)` to it. `exclude`: keys
    this caller is still working on (a lease it still holds, read as expired by a slow clock or a
    slow write, is not its to take again). `where`: conditions of the caller's own (the channels
    it can send on)."""
    lease_ms = int(lease_s * 1000)
    db_now = db_now_ms(pg=pg)
    free = or_(outbox.lease_until.is_(None), outbox.lease_until <= db_now)
    pick = (
        select(outbox.key)
        .where(*outbox.pending, *where, outbox.due <= now_ms, free)
        .order_by(outbox.due, outbox.key)
        .limit(limit)
    )
    if exclude:
        pick = pick.where(~one_of(outbox.key, list(exclude), pg=pg))
    if pg:
        pick = pick.with_for_update(skip_locked=True)
    return (
        update(outbox.table)
        .where(outbox.key.in_(pick.scalar_subquery()))
        .values(
            {
                outbox.token: outbox.token + 1,
                outbox.lease_until: db_now + literal(lease_ms, BigInteger),
                outbox.due: now_ms + lease_ms,
                **(values or {}),
            }
        )
    )
