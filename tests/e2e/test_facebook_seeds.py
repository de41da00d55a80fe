"""Every documented `/facebook/1/single` example, sent verbatim to a sandbox server, ends in exactly
one final report: delivered to the handset (messages) or to the operator (the sender action)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.e2e.conftest import BASIC, RunningServer, json_of
from tests.e2e.seeds import EXAMPLES

SEEDS = sorted(EXAMPLES.glob("000-*.http"))


def parse_http(raw: bytes) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """Method, path, headers in order, and body bytes of a raw HTTP/1.1 request file."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    lines = head.decode().split("\n")
    method, path, _version = lines[0].split(" ")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return method, path, headers, body


async def pull_until(server: RunningServer, ids: set[str], deadline_s: float = 20.0) -> list[dict[str, Any]]:
    """Pull Facebook reports until every id has one (or the deadline); returns every row pulled."""
    rows: list[dict[str, Any]] = []
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        response = await server.client.get("/facebook/1/reports", headers=BASIC)
        assert response.status_code == 200, response.text
        rows.extend(json_of(response)["results"])
        if ids <= {r["messageId"] for r in rows}:
            return rows
        await asyncio.sleep(0.1)  # polling for a condition, under a deadline
    return rows


@pytest.mark.timeout(60)
async def test_every_seed_example_is_accepted_and_reported_once(server: RunningServer) -> None:
    assert len(SEEDS) == 4, SEEDS
    sent: dict[str, str] = {}  # messageId -> message type
    for path in SEEDS:
        method, target, headers, body = parse_http(path.read_bytes())
        response = await server.client.request(method, target, headers=headers, content=body)
        assert response.status_code == 200, (path.name, response.text)
        answer = json_of(response)
        assert answer["to"] == "9c29bd43-054b-4cfe-a1d4-0b37812b4ed3"
        assert answer["messageCount"] == 1
        assert answer["status"]["groupId"] == 1 and answer["status"]["groupName"] == "PENDING"
        assert answer["status"]["id"] == 26 and answer["status"]["name"] == "PENDING_ACCEPTED"
        assert answer["messageId"] not in sent
        sent[answer["messageId"]] = json.loads(body)["message"]["type"]
    assert sorted(sent.values()) == ["IMAGE", "SENDER_ACTION", "TEMPLATE", "TEXT"]

    rows = await pull_until(server, set(sent))
    mine = [r for r in rows if r["messageId"] in sent]
    assert sorted(r["messageId"] for r in mine) == sorted(sent), mine  # each exactly once
    for row in mine:
        expected = (
            "DELIVERED_TO_OPERATOR" if sent[row["messageId"]] == "SENDER_ACTION" else "DELIVERED_TO_HANDSET"
        )
        assert row["status"]["groupName"] == "DELIVERED", row
        assert row["status"]["name"] == expected, row
        assert row["error"]["name"] == "NO_ERROR", row
        assert row["to"] == "9c29bd43-054b-4cfe-a1d4-0b37812b4ed3"
        assert row["messageCount"] == 1

    await server.until_idle()  # every late webhook (a read) has landed: it must not make a second report
    again = await server.client.get("/facebook/1/reports", headers=BASIC)
    assert not [r for r in json_of(again)["results"] if r["messageId"] in sent]


async def test_the_second_sandbox_application_reaches_its_own_page(server: RunningServer) -> None:
    # each sandbox Page has its own token: a send from the second application is answered as its
    # Page's (no such user), not refused as another Page's token (which would pause the channel)
    from omnirelay import sandbox_data as demo

    sent = await server.client.post(
        "/facebook/1/single",
        json={"from": demo.APP_KEY_2, "to": "41793026727", "message": {"type": "TEXT", "text": "hi"}},
        headers=BASIC,
    )
    assert sent.status_code == 200
    (report,) = [
        r
        for r in await pull_until(server, {sent.json()["messageId"]})
        if r["messageId"] == sent.json()["messageId"]
    ]
    assert report["status"]["groupName"] == "REJECTED", report
    assert "token" not in report["error"]["description"].lower(), report
    assert report["error"]["id"] != 0, report
