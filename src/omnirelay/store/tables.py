"""SQLAlchemy Core table definitions: the one schema, for SQLite and PostgreSQL.

Times are integer milliseconds since the epoch (UTC) in every table: one representation for
both backends, cheap to index and compare. JSON columns are text written by msgspec.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A 64-bit key that is still SQLite's rowid alias (SQLite only aliases INTEGER PRIMARY KEY).
Id = BigInteger().with_variant(Integer(), "sqlite")

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(200), nullable=False, unique=True),
    Column("password_hash", String(300), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("key_digest", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

auth_sessions = Table(
    "auth_sessions",
    metadata,
    Column("token_digest", String(64), primary_key=True),
    Column("account_id", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=False),
)

# The operator's console sessions (docs/console.md#sign-in-and-sessions): shared by every node, as
# accounts' sessions are; the operator is no account, so they have a table of their own.
operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("token_digest", String(64), primary_key=True),
    Column("last_used_at", BigInteger, nullable=False),
)

applications = Table(
    "applications",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("account_id", BigInteger, nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("page_id", String(64), nullable=False, index=True),
    Column("page_access_token", Text, nullable=False),
    Column("app_secret", Text, nullable=False),
    Column("verify_token", String(200), nullable=False),
    Column("webhook_url", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

messenger_users = Table(
    "messenger_users",
    metadata,
    Column("user_key", String(64), primary_key=True),
    Column("application_key", String(64), nullable=False),
    Column("psid", String(64), nullable=False),
    Column("phone_number", String(32), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_interaction_at", BigInteger, nullable=True),
    UniqueConstraint("application_key", "psid", name="uq_messenger_users_application_psid"),
    Index("ix_messenger_users_phone", "application_key", "phone_number"),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("dedupe_key", String(200), primary_key=True),
    Column("application_key", String(64), nullable=False),
    Column("received_at", BigInteger, nullable=False, index=True),
)

scenarios = Table(
    "scenarios",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("account_id", BigInteger, nullable=False, index=True),
    Column("name", String(500), nullable=False),
    Column("flow", Text, nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("message_id", String(200), nullable=False),
    Column("bulk_id", String(200), nullable=True),
    Column("api", String(16), nullable=False),  # FACEBOOK (/facebook/1/single) or OMNI
    Column("to_json", Text, nullable=False),  # the request's `to`, echoed
    Column("plan", Text, nullable=False),  # the frozen applicable steps
    Column("phase", String(8), nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("tries", Integer, nullable=False),
    Column("step_deadline", BigInteger, nullable=False),
    Column("next_action_at", BigInteger, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("version", Integer, nullable=False),  # also the fencing token of the current claim
    Column("claims", Integer, nullable=False, server_default="0"),  # claims since the last outcome
    Column("status_id", Integer, nullable=False),
    Column("error_id", Integer, nullable=False),
    Column("channel", String(16), nullable=True),
    Column("sent_to", String(200), nullable=True),
    Column("sent_from", String(200), nullable=True),
    Column("text", Text, nullable=True),
    Column("message_count", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    Column("done_at", BigInteger, nullable=True),
    Column("notify_url", Text, nullable=True),
    Column("callback_data", Text, nullable=True),
    Column("intermediate_report", Boolean, nullable=False),
    Column("notify", Boolean, nullable=False),
    Column("scenario_key", String(64), nullable=True),  # OMNI: the funnel's scenario (migration 0014)
    UniqueConstraint("account_id", "message_id", name="uq_messages_account_message_id"),
    Index("ix_messages_due", "next_action_at"),
    Index("ix_messages_account_created", "account_id", "created_at"),
    # the console's search, newest first (migration 0010): by bulk id, across accounts, by destination
    Index("ix_messages_account_bulk", "account_id", "bulk_id", "created_at"),
    Index("ix_messages_created", "created_at", "id"),
    Index("ix_messages_account_to", "account_id", "sent_to", "created_at"),
    # Retention finds finished messages by age. Partial: a message gets its done_at once, when it
    # ends, so live messages (done_at NULL) cost the index nothing on insert and on each step.
    Index(
        "ix_messages_done",
        "done_at",
        sqlite_where=text("done_at IS NOT NULL"),
        postgresql_where=text("done_at IS NOT NULL"),
    ),
)

attempts = Table(
    "attempts",
    metadata,
    Column("message_pk", BigInteger, primary_key=True),
    Column("step_index", Integer, primary_key=True),
    Column("channel", String(16), nullable=False),
    Column("sender", String(200), nullable=False),
    Column("to", String(200), nullable=False),
    Column("tries", Integer, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    Column("done_at", BigInteger, nullable=True),
    Column("status_id", Integer, nullable=False),
    Column("error_id", Integer, nullable=False),
    Column("message_count", Integer, nullable=False),
    Column("late_status_id", Integer, nullable=True),
    Column("late_error_id", Integer, nullable=True),
    Column("late_at", BigInteger, nullable=True),
    # a delivery short of the step's criterion (SEEN asked), and a read (migration 0013)
    Column("delivered_at", BigInteger, nullable=True),
    Column("seen_at", BigInteger, nullable=True),
    # Messenger sends waiting for their delivery, by recipient: what a watermark covers (migration 0005)
    Index(
        "ix_attempts_open_facebook",
        "to",
        "sender",
        sqlite_where=text("channel = 'FACEBOOK' AND done_at IS NULL"),
        postgresql_where=text("channel = 'FACEBOOK' AND done_at IS NULL"),
    ),
    # Messenger sends that expired and were not read since: what a late read covers (migration 0016;
    # status 15 is EXPIRED_EXPIRED)
    Index(
        "ix_attempts_unread_facebook",
        "to",
        "sender",
        sqlite_where=text("channel = 'FACEBOOK' AND status_id = 15 AND seen_at IS NULL"),
        postgresql_where=text("channel = 'FACEBOOK' AND status_id = 15 AND seen_at IS NULL"),
    ),
)

channel_refs = Table(
    "channel_refs",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("ref", String(200), primary_key=True),
    Column("message_pk", BigInteger, nullable=False, index=True),
    Column("step_index", Integer, nullable=False),
    Column("delivered", Boolean, nullable=False),
    # when the send that got this ref was recorded: a ref given again later names the newer send
    # (SMSC ids repeat; migration 0006), NULL for rows from before
    Column("sent_at", BigInteger, nullable=True),
)

receipts_inbox = Table(
    "receipts_inbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("channel", String(16), nullable=False),
    Column("ref", String(200), nullable=False),
    Column("status_id", Integer, nullable=False),
    Column("error_id", Integer, nullable=False),
    Column("done_at", BigInteger, nullable=False),
    Column("detail", Text, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("next_try_at", BigInteger, nullable=False, index=True),
    Column("sent_after", BigInteger, nullable=True),  # `Receipt.sent_after` (migration 0006)
    # the claim of the node working on it (store.claims, migration 0015): one node at a time
    Column("lease_token", Integer, nullable=False, server_default="0"),
    Column("lease_until", BigInteger, nullable=True),  # database time
    Column("seen", Boolean, nullable=False, server_default=false()),  # `Receipt.seen` (migration 0013)
)

reports = Table(
    "reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", BigInteger, nullable=False),
    Column("message_pk", BigInteger, nullable=False, index=True),
    Column("api", String(16), nullable=False),
    Column("kind", String(16), nullable=False),  # FINAL or INTERMEDIATE
    Column("state", String(8), nullable=False),  # PUSH (outbox), PULL (queued), DONE
    Column("body", Text, nullable=False),  # the rendered report row (JSON)
    Column("bulk_id", String(200), nullable=True),
    Column("message_id", String(200), nullable=False),
    Column("channel", String(16), nullable=True),
    Column("notify_url", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("next_push_at", BigInteger, nullable=True),
    Column("push_tries", Integer, nullable=False),
    Column("push_token", Integer, nullable=False, server_default="0"),  # the push claim's fencing token
    Column("push_lease_until", BigInteger, nullable=True),  # database time
    Index("ix_reports_pull", "account_id", "api", "state", "id"),
    Index("ix_reports_push", "state", "next_push_at"),
    Index("ix_reports_age", "state", "created_at"),  # retention: pulled and done reports by age
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", BigInteger, primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("body_digest", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False, index=True),
)

smpp_connectors = Table(
    "smpp_connectors",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=False),
    Column("system_id", String(16), nullable=False),
    Column("password", String(16), nullable=False),  # needed in clear to bind; never logged or returned
    Column("system_type", String(13), nullable=False),
    Column("tls", Boolean, nullable=False),
    Column("throughput_per_s", Float, nullable=False),
    Column("window", Integer, nullable=False),
    Column("enquire_link_s", Float, nullable=False),
    Column("response_timeout_s", Float, nullable=False),
    Column("reconnect_min_s", Float, nullable=False),
    Column("reconnect_max_s", Float, nullable=False),
    Column("dest_addr_ton", Integer, nullable=False),
    Column("dest_addr_npi", Integer, nullable=False),
    Column("binds", Integer, nullable=False, server_default="1"),  # the cluster's total (migration 0009)
    Column("created_at", BigInteger, nullable=False),
)

sms_routes = Table(
    "sms_routes",
    metadata,
    Column("prefix", String(32), primary_key=True),  # "" is the default route
    Column("connector", String(64), nullable=False),
)

forwards = Table(
    "forwards",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("application_key", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("next_try_at", BigInteger, nullable=True),  # None once delivered or given up
    Column("tries", Integer, nullable=False),
    Column("lease_token", Integer, nullable=False, server_default="0"),  # the claim's fencing token
    Column("lease_until", BigInteger, nullable=True),  # database time
    # two disjoint partial indexes: pending forwards by when they are due (the sender's poll), and
    # finished ones by age (retention), so that neither walks the other's rows
    Index(
        "ix_forwards_pending",
        "next_try_at",
        sqlite_where=text("next_try_at IS NOT NULL"),
        postgresql_where=text("next_try_at IS NOT NULL"),
    ),
    Index(
        "ix_forwards_done",
        "created_at",
        sqlite_where=text("next_try_at IS NULL"),
        postgresql_where=text("next_try_at IS NULL"),
    ),
)

prices = Table(
    "prices",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("country", String(2), primary_key=True),  # ISO region, or "" for the channel's default
    Column("price_per_message", Float, nullable=False),
    Column("currency", String(3), nullable=False),
)

# Cluster membership (docs/architecture.md#cluster-membership); times are the database's.
nodes = Table(
    "nodes",
    metadata,
    Column("node_id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("version", String(32), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("stopped_at", BigInteger, nullable=True),
)

# A connector's bind slots (docs/architecture.md#smpp-binds): a node binds a connector only while it
# holds one of its slots, leased in the database's time.
bind_slots = Table(
    "bind_slots",
    metadata,
    Column("connector", String(64), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("holder", String(64), nullable=True),
    Column("lease_until", BigInteger, nullable=True),
)

# Meta's throttling of a Page, told to every node (docs/architecture.md#cluster-wide-budgets):
# until when, in the database's time.
page_throttles = Table(
    "page_throttles",
    metadata,
    Column("page_id", String(64), primary_key=True),
    Column("until", BigInteger, nullable=False),
)
