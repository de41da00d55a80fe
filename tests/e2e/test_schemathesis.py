"""Schemathesis against the real server: requests generated from /openapi.json (valid ones and, in
its negative phase, invalid ones), answers checked against the same document. Fails on any 5xx, an
undocumented status, content type or header, an answer whose body the document does not describe,
or (negative phase) an invalid request that is accepted.

Bounded: a few examples per operation, no shrinking of failures' deadlines; the whole run takes
seconds, not minutes (`MAX_EXAMPLES`)."""

from __future__ import annotations

import asyncio
import re
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from omnirelay.config import DEFAULT_OPERATOR_TOKEN, Settings
from tests.e2e.conftest import BASIC, free_port, start_server

pytestmark = [
    pytest.mark.timeout(120),
    # schemathesis' own strategies use `random` (its concern, not a finding about the server)
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

MAX_EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
OPERATOR = {"Authorization": f"Bearer {DEFAULT_OPERATOR_TOKEN}"}
# Rules no schema can state, which a schema-valid request may still break (the document says them
# in the field's description): operation -> the fields whose 400 is not a mismatch.
BEYOND_SCHEMA = {
    # a possible number of its country's plan (phonenumbers' lengths per country)
    "PUT /facebook/1/applications/{key}/users/{userKey}": re.compile(r"phoneNumber"),
    # a FACEBOOK step's `from` must be one of the account's applications; steps that differ only in
    # fields the API ignores are the same step
    "POST /omni/1/scenarios": re.compile(r"flow\[\d+\](\.from)?"),
    "PUT /omni/1/scenarios/{key}": re.compile(r"flow\[\d+\](\.from)?"),
    # a scenario of the account's (Infobip answers 400, not 404); a calendar date at most 180 days
    # ahead; a host httpx can read; a period that is not 0 as a float
    "POST /omni/1/advanced": re.compile(r"scenarioKey|sendAt|notifyUrl|(sms|facebook)\.validityPeriod"),
    "POST /omni/1/text": re.compile(r"scenarioKey"),
    "GET /omni/1/logs": re.compile(r"sentSince|sentUntil"),  # a calendar date, years 1 to 9999
    "GET /facebook/1/logs": re.compile(r"sentSince|sentUntil"),
    "GET /omni/1/analytics": re.compile(r"since|until"),  # a calendar date, years 1 to 9999
    "POST /admin/1/connectors": re.compile(r"reconnectMaxS"),  # at least reconnectMinS
    "PUT /admin/1/connectors/{name}": re.compile(r"reconnectMaxS|name"),  # name: the path's
    "POST /admin/1/routes": re.compile(r"connector"),  # a connector that exists
}


def accepted_unless_beyond_schema(ctx, response, case):  # type: ignore[no-untyped-def]
    """`positive_data_acceptance`, except a 400 that names only fields of `BEYOND_SCHEMA`."""
    beyond = BEYOND_SCHEMA.get(case.operation.label)
    if response.status_code == 400 and beyond is not None:
        named = set(response.json()["requestError"]["serviceException"].get("validationErrors", {}))
        if named and all(beyond.fullmatch(name) for name in named):
            return None
    return positive_data_acceptance(ctx, response, case)


class ServerThread:
    """The whole server (sandbox mode) in its own thread and event loop: schemathesis calls it
    synchronously, over real sockets."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(host="127.0.0.1", port=free_port(), data_dir=data_dir, idle_poll_s=0.05)
        self.base_url = f"http://127.0.0.1:{self.settings.port}"
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        try:
            srv, task, _app = await start_server(self.settings)
        except BaseException as exc:
            self._error = exc
            self._started.set()
            raise
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._started.set()
        await self._stop.wait()
        srv.should_exit = True
        await task

    def __enter__(self) -> ServerThread:
        self._thread.start()
        assert self._started.wait(30), "server did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with ServerThread(tmp_path_factory.mktemp("schemathesis")) as srv:
        yield srv


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_server_does_what_its_openapi_document_says(
    live_server: ServerThread, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server.base_url}/openapi.json")
    # The document says in words that no string may hold U+0000, fields it does not describe
    # included; the described ones carry it as a pattern (tests/unit/test_openapi.py).
    schema.config.generation.update(allow_x00=False)
    failures: dict[str, str] = {}
    for found in schema.get_all_operations():
        operation = found.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            phases=[Phase.generate],  # no shrinking: a failure is reported as found
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same requests every run
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            headers = OPERATOR if case.path.startswith("/admin/") else BASIC
            case.call_and_validate(
                base_url=live_server.base_url,
                headers=headers,
                checks=[*CHECKS, accepted_unless_beyond_schema]
                if mode is GenerationMode.POSITIVE
                else [*CHECKS, negative_data_rejection],
                timeout=10,
            )

        try:
            check()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body): negative mode only
            assert mode is GenerationMode.NEGATIVE
        except Exception as exc:
            failures[operation.label] = "".join(traceback.format_exception(exc))[-3000:]
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
