"""The README's "Production in five steps", run as written: its bash block, with the SMSC's host
and port pointed at `omnirelay sandbox smsc` on 127.0.0.1, the gateway's port free, and SQLite for
the PostgreSQL URL. From nothing to a delivered SMS and its report."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from omnirelay import sandbox_data as sb
from tests.e2e.conftest import BASIC, RunningServer, free_port, json_of
from tests.unit.test_openapi import check_request, load

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
SMSC_ACCOUNT = ("--system-id", "acme", "--password", "s3cret")  # as in the README's block


def answers(out: str) -> list[dict[str, object]]:
    """The JSON objects curl printed (without newlines between them), in order."""
    found, decoder, i = [], json.JSONDecoder(), 0
    while (i := out.find("{", i)) >= 0:
        value, end = decoder.raw_decode(out, i)
        found.append(value)
        i = end
    return found


def readme_block(heading: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading) :]
    return section[section.index("```bash\n") + 8 : section.index("\n```", section.index("```bash\n"))]


def replaced(script: str, old: str, new: str) -> str:
    assert old in script, f"the README's block no longer has {old!r}"
    return script.replace(old, new)


def test_production_in_five_steps_as_written(tmp_path: Path):
    block = readme_block("### Production in five steps")
    scenario = re.search(r"scenarios .*\n.*-d '(\{.*\})'", block)
    assert scenario is not None
    check_request(load(), "POST", "/omni/1/scenarios", json.loads(scenario.group(1)))

    smsc_port, port = free_port(), free_port()
    script = replaced(
        block, "postgresql+asyncpg://omnirelay@db.internal/omnirelay", f"sqlite+aiosqlite:///{tmp_path}/p.db"
    )
    script = replaced(script, "--host smsc.example.net --port 2775", f"--host 127.0.0.1 --port {smsc_port}")
    script = replaced(script, "--host 0.0.0.0 --port 8080", f"--host 127.0.0.1 --port {port}")
    script = replaced(script, "API=http://127.0.0.1:8080", f"API=http://127.0.0.1:{port}")
    script = "set -euo pipefail\n" + script + "\nkill $!\nwait\n"

    smsc = subprocess.Popen(
        [sys.executable, "-m", "omnirelay", "sandbox", "smsc", "--port", str(smsc_port), *SMSC_ACCOUNT],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIRELAY_")}
    # Its own session: no controlling terminal, so the password prompt reads the piped stdin.
    shell = subprocess.Popen(
        ["bash", "-c", script],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = shell.communicate(f"{PASSWORD}\n{PASSWORD}\n", timeout=150)
    finally:
        for proc in (shell, smsc):
            if proc.poll() is None:
                os.killpg(shell.pid, signal.SIGKILL) if proc is shell else os.kill(proc.pid, signal.SIGINT)
            proc.communicate(timeout=20)
    assert shell.returncode == 0, f"{out}\n{err}"
    lines = out.splitlines()
    assert re.fullmatch(
        r"Authorization: App \S{40,}", next(x for x in lines if x.startswith("Authorization"))
    )
    ready, created, accepted, report = answers(out.split("Authorization: App ")[1])
    assert ready["status"] == "ready", ready
    assert created["flow"] == [{"from": "InfoSMS", "channel": "SMS"}] and created["default"] is True
    (message,) = accepted["messages"]
    (result,) = report["results"]
    assert result["messageId"] == message["messageId"]
    assert (result["channel"], result["status"]["name"]) == ("SMS", "DELIVERED_TO_HANDSET")


async def test_the_messenger_example_waits_for_its_report(server: RunningServer):
    """The "60 seconds" section's Messenger example, against a sandbox server: its loop waits for
    the delivery webhook, then prints the report (reading at once gave {"results":[]})."""
    first = readme_block("## 60 seconds")
    setup = "\n".join(line for line in first.splitlines() if line.startswith(("AUTH=", "API=")))
    setup = replaced(setup, "API=http://127.0.0.1:8080", f"API={server.base_url}")
    messenger = readme_block("The Messenger examples of the documentation")
    shell = await asyncio.create_subprocess_exec(
        "bash", "-c", f"set -euo pipefail\n{setup}\n{messenger}\n", stdout=subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(shell.communicate(), timeout=60)
    assert shell.returncode == 0
    sent, report = answers(out.decode())
    (result,) = report["results"]
    assert result["messageId"] == sent["messageId"]
    assert result["status"]["name"] == "DELIVERED_TO_HANDSET"


@pytest.mark.timeout(120)
async def test_the_seen_tour_fails_over_unless_the_message_is_read(server: RunningServer):
    """The "60 seconds" section's SEEN example, run as written against a sandbox server: read by
    one sandbox user (no SMS), delivered and never read by the other (SMS after 30 s)."""
    first = readme_block("## 60 seconds")
    setup = "\n".join(line for line in first.splitlines() if line.startswith(("AUTH=", "API=")))
    setup = replaced(setup, "API=http://127.0.0.1:8080", f"API={server.base_url}")
    seen = readme_block("**Read, or SMS.**")
    shell = await asyncio.create_subprocess_exec(
        "bash", "-c", f"set -euo pipefail\n{setup}\n{seen}\n", stdout=subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(shell.communicate(), timeout=90)
    assert shell.returncode == 0
    read, unread, logs, analytics = answers(out.decode())
    (row,) = logs["results"]
    assert row["messageId"] == unread["messages"][0]["messageId"]
    fb, sms = row["attempts"]
    assert (fb["channel"], fb["status"]["name"], fb["successCriterion"]) == (
        "FACEBOOK",
        "EXPIRED_EXPIRED",
        "SEEN",
    )
    assert "deliveredAt" in fb and "seenAt" not in fb
    assert (sms["channel"], sms["status"]["name"]) == ("SMS", "DELIVERED_TO_HANDSET")
    (read_row,) = json_of(
        await server.client.get(f"/omni/1/logs?messageId={read['messages'][0]['messageId']}", headers=BASIC)
    )["results"]
    assert [(a["channel"], a["status"]["name"]) for a in read_row["attempts"]] == [
        ("FACEBOOK", "DELIVERED_TO_HANDSET")
    ]
    steps = next(s["steps"] for s in analytics["scenarios"] if s["scenarioKey"] != sb.SCENARIO_KEY)
    assert [(s["sent"], s["met"], s["failed"]["expired"]) for s in steps] == [(2, 1, 1), (1, 1, 0)]
