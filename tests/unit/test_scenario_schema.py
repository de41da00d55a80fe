"""The documented body of POST /omni/1/scenarios says what a scenario needs: its required fields
and the channels a step may use (those omnirelay sends on)."""

from __future__ import annotations

import jsonschema
import pytest

from omnirelay.domain.messages import Channel
from tests.unit.test_openapi import check_request, load, request_schema


def test_a_scenario_needs_a_name_and_steps_with_a_sender_and_a_channel() -> None:
    doc = load()
    schemas = doc["components"]["schemas"]
    assert request_schema(doc, "POST", "/omni/1/scenarios") == {"$ref": "#/components/schemas/ScenarioCreate"}
    assert set(schemas["ScenarioCreate"]["required"]) == {"name", "flow"}
    step = schemas["ScenarioStepCreate"]
    assert set(step["required"]) == {"from", "channel"}
    assert step["properties"]["channel"]["enum"] == [c.value for c in Channel]


@pytest.mark.parametrize(
    "body",
    [
        {"flow": [{"from": "InfoSMS", "channel": "SMS"}]},
        {"name": "SMS", "flow": []},
        {"name": "SMS", "flow": [{"from": "InfoSMS"}]},
        {"name": "SMS", "flow": [{"from": "InfoSMS", "channel": "VIBER"}]},
    ],
)
def test_an_incomplete_scenario_does_not_match(body: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        check_request(load(), "POST", "/omni/1/scenarios", body)


def test_a_complete_scenario_matches() -> None:
    body = {"name": "SMS", "flow": [{"from": "InfoSMS", "channel": "SMS"}], "default": True}
    check_request(load(), "POST", "/omni/1/scenarios", body)
