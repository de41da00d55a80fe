"""Cluster membership (docs/architecture.md#cluster-membership): a node is a member while its
heartbeat, written and judged in the database's clock, is fresh."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class NodeState(StrEnum):
    LIVE = "LIVE"  # heartbeat fresh
    STALE = "STALE"  # heartbeat older than the stale period: crashed, hung or cut off
    STOPPED = "STOPPED"  # stopped gracefully


@dataclass(frozen=True, slots=True)
class Node:
    node_id: str
    host: str
    pid: int
    version: str
    started_at: datetime  # database time, as the heartbeat
    heartbeat_at: datetime
    stopped_at: datetime | None

    def state(self, db_now: datetime, stale_s: float) -> NodeState:
        if self.stopped_at is not None:
            return NodeState.STOPPED
        if db_now - self.heartbeat_at > timedelta(seconds=stale_s):
            return NodeState.STALE
        return NodeState.LIVE
