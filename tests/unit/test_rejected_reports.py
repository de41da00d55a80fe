"""The final reports of destinations rejected at acceptance are rendered once per group and completed
with each message id (services.reports.RejectedAtAcceptance): each must read exactly as the report
rendered for that message alone."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from omnirelay.domain.statuses import (
    EC_UNKNOWN_USER,
    NO_ERROR,
    REJECTED_DESTINATION_NOT_REGISTERED,
    REJECTED_DUPLICATE_MESSAGE_ID,
)
from omnirelay.ports import Api, NewReport, ReportState
from omnirelay.services import reports
from omnirelay.store import codec

NOW = datetime(2026, 12, 4, 12, 0, 0, 123000, tzinfo=UTC)
# what a client may put in a message id, bulk id or callbackData: anything but NUL (refused at the API)
text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30)


def alone(api: Api, message_id: str, to: str, bulk_id: str | None, callback_data: str | None) -> str:
    body = reports.render(
        api=api,
        message_id=message_id,
        bulk_id=bulk_id,
        to=to,
        channel="SMS",
        sent_at=NOW,
        done_at=NOW,
        message_count=1,
        status=REJECTED_DESTINATION_NOT_REGISTERED,
        error=EC_UNKNOWN_USER,
        callback_data=callback_data,
    )
    return codec.encode(body)


@given(
    ids=st.lists(text, min_size=1, max_size=5),
    to=text,
    bulk_id=st.none() | text,
    callback_data=st.none() | text,
    api=st.sampled_from(Api),
)
def test_each_report_reads_as_if_rendered_alone(
    ids: list[str], to: str, bulk_id: str | None, callback_data: str | None, api: Api
) -> None:
    rejected = reports.RejectedAtAcceptance(
        api=api, bulk_id=bulk_id, channel="SMS", now=NOW, callback_data=callback_data, notify_url=None
    )
    for message_id in ids:
        report = rejected.report(message_id, to, REJECTED_DESTINATION_NOT_REGISTERED, EC_UNKNOWN_USER)
        assert codec.encode(report.body) == alone(api, message_id, to, bulk_id, callback_data)


def test_groups_differ_by_address_status_and_error() -> None:
    rejected = reports.RejectedAtAcceptance(
        api=Api.OMNI, bulk_id="b", channel="SMS", now=NOW, callback_data=None, notify_url=None
    )
    cases = [
        ("m1", "", REJECTED_DESTINATION_NOT_REGISTERED, NO_ERROR),
        ("m2", "41", REJECTED_DESTINATION_NOT_REGISTERED, NO_ERROR),  # another address only
        ("m3", "41", REJECTED_DESTINATION_NOT_REGISTERED, EC_UNKNOWN_USER),  # another error only
        ("m4", "41", REJECTED_DUPLICATE_MESSAGE_ID, EC_UNKNOWN_USER),  # another status only
    ]
    for message_id, to, status, error in cases:
        body = codec.decode_dict(codec.encode(rejected.report(message_id, to, status, error).body))
        assert (body["messageId"], body["to"], body["status"]["id"], body["error"]["id"]) == (
            message_id,
            to,
            status.id,
            error.id,
        )


def test_pushed_when_there_is_somewhere_to_push() -> None:
    def report(notify_url: str | None) -> NewReport:
        rejected = reports.RejectedAtAcceptance(
            api=Api.OMNI, bulk_id=None, channel="SMS", now=NOW, callback_data=None, notify_url=notify_url
        )
        return rejected.report("m", "", REJECTED_DESTINATION_NOT_REGISTERED, NO_ERROR)

    pushed, pulled = report("http://127.0.0.1:9/r"), report(None)
    assert (pushed.state, pushed.next_push_at) == (ReportState.PUSH, NOW)
    assert (pulled.state, pulled.next_push_at) == (ReportState.PULL, None)
