"""JSON for what the store keeps (plans, report bodies): msgspec, with a schema, never pickle."""

from __future__ import annotations

from typing import Any

import msgspec

from omnirelay.domain.failover import PlannedStep

_encoder = msgspec.json.Encoder()
_plan_decoder = msgspec.json.Decoder(tuple[PlannedStep, ...])
_dict_decoder = msgspec.json.Decoder(dict[str, Any])


def encode(value: Any) -> str:
    return _encoder.encode(value).decode()


def decode_plan(raw: str) -> tuple[PlannedStep, ...]:
    return _plan_decoder.decode(raw)


def decode_dict(raw: str) -> dict[str, Any]:
    return _dict_decoder.decode(raw)
