"""The limits of one request and one scenario (docs/decisions/0008-input-limits.md)."""

from __future__ import annotations

from sqlalchemy import select

from omnirelay import sandbox_data as sb
from omnirelay.store.tables import messages, reports
from tests.e2e.conftest import BASIC, RunningServer, json_of

ADVANCED = "/omni/1/advanced"


def problem(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.text
    errors: dict[str, list[str]] = json_of(response)["requestError"]["serviceException"]["validationErrors"]
    return errors


async def test_more_than_10000_destinations_is_a_400(server: RunningServer) -> None:
    body = {"destinations": [{"to": {}}] * 10_001, "sms": {"text": "x"}}
    assert problem(await server.client.post(ADVANCED, json=body, headers=BASIC)) == {
        "destinations": ["must hold at most 10000 items"]
    }
    text = {"destinations": [{"to": {}}] * 10_001, "text": "x"}
    assert "destinations" in problem(await server.client.post("/omni/1/text", json=text, headers=BASIC))


async def test_rejected_destinations_get_their_rows_and_reports_in_one_batch(server: RunningServer) -> None:
    """10,000 destinations, every third one rejected at acceptance: each rejected one has its
    message row and exactly one final report, tied to that row."""
    destinations = [
        {"to": {}} if i % 3 == 0 else {"to": {"phoneNumber": f"417{i:07d}7"}} for i in range(10_000)
    ]
    r = await server.client.post(
        ADVANCED, json={"destinations": destinations, "sms": {"text": "x"}}, headers=BASIC
    )
    assert r.status_code == 200, r.text
    answered = r.json()["messages"]
    rejected = {m["messageId"] for i, m in enumerate(answered) if i % 3 == 0}
    assert all(answered[i]["status"]["groupName"] == "REJECTED" for i in range(0, 10_000, 3))
    assert all(answered[i]["status"]["groupName"] != "REJECTED" for i in range(1, 10_000, 3))
    async with server.gateway.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(messages.c.message_id, reports.c.message_id, reports.c.kind).join(
                    reports, reports.c.message_pk == messages.c.id
                )
            )
        ).all()
    finals = [(own, reported) for own, reported, kind in rows if kind == "FINAL"]
    assert all(own == reported for own, reported in finals)  # each report on its own message's row
    assert sorted(own for own, _ in finals if own in rejected) == sorted(rejected)


async def test_scenario_steps_are_bounded_and_never_repeat(server: RunningServer) -> None:
    c = server.client
    sms = [{"from": f"Sender{i}", "channel": "SMS"} for i in range(6)]
    six = await c.post("/omni/1/scenarios", json={"name": "six", "flow": sms}, headers=BASIC)
    assert problem(six) == {"flow": ["must hold at most 5 items"]}
    twice = [{"from": sb.SMS_SENDER, "channel": "SMS"}, {"from": sb.SMS_SENDER, "channel": "SMS"}]
    repeated = await c.post("/omni/1/scenarios", json={"name": "twice", "flow": twice}, headers=BASIC)
    assert problem(repeated) == {"flow[1]": ["repeats flow[0] (same channel and from)"]}
    five = await c.post("/omni/1/scenarios", json={"name": "five", "flow": sms[:5]}, headers=BASIC)
    assert five.status_code == 200, five.text  # the same channel with another sender is a real failover
    key = five.json()["key"]
    update = await c.put(f"/omni/1/scenarios/{key}", json={"flow": sms}, headers=BASIC)
    assert problem(update) == {"flow": ["must hold at most 5 items"]}
    update = await c.put(f"/omni/1/scenarios/{key}", json={"flow": twice}, headers=BASIC)
    assert "flow[1]" in problem(update)
    assert [s["from"] for s in (await c.get(f"/omni/1/scenarios/{key}", headers=BASIC)).json()["flow"]] == [
        f"Sender{i}" for i in range(5)
    ]
