"""The Graph simulator run standalone, as `omnirelay sandbox graph` runs it (plain asyncio event loop).

`--pages N`: numbered simulated Pages with ids, tokens and secrets derived from their index (so a
client can register the matching Messenger applications), each with a token of its own and one
person without a phone number (a phone-number send is refused, so the gateway fails over; a send to
the person is accepted and, the Page having no webhook URL, never delivered). Answers are not held
back by Nagle's algorithm (the client's delayed ACK would add ~40 ms to each)."""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from omnirelay import sandbox_data as demo
from omnirelay.sandbox.graph import (
    NUMBERED_PAGE_LIMIT,
    GraphSimulator,
    numbered_page,
    numbered_pages,
    numbered_user,
)
from tests.processes import interrupt


def test_numbered_pages_are_deterministic_and_distinct() -> None:
    pages = numbered_pages(3)
    assert [(p.page_id, p.access_token, p.app_secret) for p in pages] == [
        ("300000000000000", "sim-page-token-00000", "sim-app-secret-00000"),
        ("300000000000001", "sim-page-token-00001", "sim-app-secret-00001"),
        ("300000000000002", "sim-page-token-00002", "sim-app-secret-00002"),
    ]
    assert numbered_pages(3) == pages  # the same every time
    assert numbered_page(2) == pages[2]
    assert all(p.webhook_url is None for p in pages)
    many = numbered_pages(500)
    assert len({p.page_id for p in many}) == len({p.access_token for p in many}) == 500
    sandbox = {demo.PAGE_ID, demo.PAGE_ID_2}
    assert not sandbox & {p.page_id for p in many}
    assert demo.PAGE_TOKEN not in {p.access_token for p in many}
    assert numbered_pages(0) == []
    people = [numbered_user(i) for i in range(500)]
    assert [u.page_id for u in people] == [p.page_id for p in many]
    assert len({u.psid for u in people}) == 500
    assert numbered_user(1).psid == "400000000000001"
    assert all(u.phone_number is None and not u.outside_window for u in people)


def test_numbered_pages_out_of_range() -> None:
    with pytest.raises(ValueError, match="index"):
        numbered_page(-1)
    with pytest.raises(ValueError, match="index"):
        numbered_page(NUMBERED_PAGE_LIMIT)
    with pytest.raises(ValueError, match="numbered pages"):
        numbered_pages(-1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def graph_process() -> Iterator[str]:
    """`python -m omnirelay sandbox graph --pages 3` on a free local port; stopped by its pid."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnirelay", "sandbox", "graph", "--port", str(port), "--pages", "3"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, f"nothing listening on {port}"
            time.sleep(0.05)  # polling for a condition, under a deadline
        yield f"http://127.0.0.1:{port}"
    finally:
        interrupt(proc, timeout_s=10)


async def send(
    client: httpx.AsyncClient, page_id: str, token: str, recipient: dict[str, str]
) -> httpx.Response:
    return await client.post(
        f"/v25.0/{page_id}/messages",
        headers={"Authorization": f"Bearer {token}"},
        json={"recipient": recipient, "messaging_type": "UPDATE", "message": {"text": "hi"}},
    )


async def test_sandbox_graph_pages_option(graph_process: str) -> None:
    pages = numbered_pages(3)
    number = {"phone_number": "+41793026727"}
    async with httpx.AsyncClient(base_url=graph_process, timeout=10) as client:
        for page in pages:
            # each Page is found by its own token; it knows nobody, so a number finds no user
            r = await send(client, page.page_id, page.access_token, number)
            assert r.status_code == 400, r.text
            error = r.json()["error"]
            assert (error["code"], error["error_subcode"]) == (100, 2018001), error
        for i, page in enumerate(pages):
            # its one person is there: the send is accepted (and no webhook follows: no webhook URL)
            psid = numbered_user(i).psid
            r = await send(client, page.page_id, page.access_token, {"id": psid})
            assert r.status_code == 200, r.text
            assert r.json()["recipient_id"] == psid
        # a person is known only to their own Page
        r = await send(client, pages[1].page_id, pages[1].access_token, {"id": numbered_user(0).psid})
        assert r.status_code == 400 and r.json()["error"]["code"] == 100, r.text
        # a Page's token does not open another Page
        r = await send(client, pages[1].page_id, pages[2].access_token, number)
        assert r.status_code == 400 and r.json()["error"]["code"] == 190
        # the sandbox Page and its user are there as without --pages
        r = await send(client, demo.PAGE_ID, demo.PAGE_TOKEN, {"id": demo.PSID})
        assert r.status_code == 200, r.text
        assert r.json()["recipient_id"] == demo.PSID


async def test_answers_are_not_delayed_by_nagle() -> None:
    # The simulator on the standard asyncio loop (not uvloop), as the standalone command runs it.
    assert "uvloop" not in type(asyncio.get_running_loop()).__module__
    async with httpx.AsyncClient() as hooks, GraphSimulator(hooks) as graph:
        graph.add_page("300000000000000", "token", "secret")
        timings = []
        async with httpx.AsyncClient(base_url=graph.base_url, timeout=10) as client:
            for _ in range(20):
                t0 = time.perf_counter()
                r = await send(client, "300000000000000", "token", {"phone_number": "+41793026727"})
                timings.append(time.perf_counter() - t0)
                assert r.status_code == 400
    # with Nagle on, each answer's body waited for the ACK of its headers: >= 40 ms
    assert statistics.median(timings) < 0.02, timings
