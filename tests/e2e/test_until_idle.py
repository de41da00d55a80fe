"""`Gateway.until_idle`, the hook the other tests synchronise on: it returns only once a message's
whole journey has been written, and it gives up when work keeps coming."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import BASIC, RunningServer, json_of


async def test_returns_once_the_journey_is_written(server: RunningServer):
    """Messenger refuses the phone number, the SMS goes out, the SMSC's receipt comes back and the
    final report is written: all of it before `until_idle` returns, so one pull finds the report."""
    body = {
        "destinations": [{"to": {"phoneNumber": "41793026727"}}],
        "facebook": {"text": "hello"},
        "sms": {"text": "hello"},
    }
    (m,) = json_of(await server.client.post("/omni/1/advanced", json=body, headers=BASIC))["messages"]
    await server.until_idle()
    reports = json_of(await server.client.get("/omni/1/reports", headers=BASIC))["results"]
    assert [(r["messageId"], r["channel"], r["status"]["name"]) for r in reports] == [
        (m["messageId"], "SMS", "DELIVERED_TO_HANDSET")
    ]
    await server.until_idle()  # idle stays idle: nothing more was due
    assert json_of(await server.client.get("/omni/1/reports", headers=BASIC))["results"] == []


class _Busy:
    """A peer that always has something still to come (a simulator whose webhook never arrives)."""

    pending = 1


async def test_gives_up_when_work_keeps_coming(server: RunningServer):
    with pytest.raises(TimeoutError):
        await server.until_idle(0.3, _Busy())


async def test_a_due_message_no_worker_has_taken_counts(server: RunningServer):
    """Storage is read too: with the dispatcher stopped, an accepted message is due and nobody is
    busy, and `until_idle` must not take that for idle."""
    await server.gateway.supervisor.stop("dispatcher", grace_s=1)
    body = {"destinations": [{"to": {"phoneNumber": "41793026727"}}], "sms": {"text": "waiting"}}
    assert (await server.client.post("/omni/1/advanced", json=body, headers=BASIC)).status_code == 200
    with pytest.raises(TimeoutError):
        await server.until_idle(0.5)
