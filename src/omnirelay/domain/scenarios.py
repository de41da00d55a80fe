"""Scenario rules (docs/api.md#scenarios): ordered steps; one default per account."""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import dataclass

from omnirelay.domain.errors import ValidationFailed
from omnirelay.domain.messages import (
    OMNI_CHANNEL_NAMES,
    READ_RECEIPT_CHANNELS,
    Channel,
    Step,
    SuccessCriterion,
)

# Bounds of a scenario (docs/decisions/0008-input-limits.md): each step may send once per message,
# so the number of steps bounds the sends one accepted message can cost.
MAX_STEPS = 5
MAX_NAME = 500  # characters; the `scenarios.name` column
MAX_SENDER = 200  # characters of a step's `from`; the attempts' `sender` column


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    name: str
    flow: tuple[Step, ...]
    is_default: bool


def new_key() -> str:
    """32 uppercase hex characters, like Infobip's scenario and application keys."""
    return secrets.token_hex(16).upper()


def check_name(name: str | None) -> str:
    if name is None or not name.strip():
        raise ValidationFailed(field="name", problem="must not be empty")
    if len(name) > MAX_NAME:
        raise ValidationFailed(field="name", problem=f"must be at most {MAX_NAME} characters")
    return name


RawStep = tuple[str | None, str | None, str | None]  # from, channel, successCriterion


def check_flow(raw: list[RawStep] | None, application_keys: Collection[str]) -> tuple[Step, ...]:
    """Validate `flow` as (from, channel, successCriterion); FACEBOOK senders must be the account's
    applications; a criterion left out is DELIVERED; SEEN only on a channel that reports reads
    (docs/api.md#success-criteria).

    A channel may come back with another sender (a second page, another SMS sender); the same step
    twice would send the same content to the same address again, so it is refused, whatever the
    criteria."""
    if not raw:
        raise ValidationFailed(field="flow", problem="must not be empty")
    if len(raw) > MAX_STEPS:
        raise ValidationFailed(field="flow", problem=f"must hold at most {MAX_STEPS} items")
    steps: list[Step] = []
    for i, (sender, channel, criterion) in enumerate(raw):
        where = f"flow[{i}]"
        if not channel:
            raise ValidationFailed(field=f"{where}.channel", problem="is required")
        if channel not in OMNI_CHANNEL_NAMES:
            raise ValidationFailed(field=f"{where}.channel", problem=f"unknown channel {channel}")
        if channel not in Channel.__members__:
            raise ValidationFailed(field=f"{where}.channel", problem=f"channel {channel} is not supported")
        if not sender:
            raise ValidationFailed(field=f"{where}.from", problem="is required")
        if len(sender) > MAX_SENDER:
            raise ValidationFailed(field=f"{where}.from", problem=f"must be at most {MAX_SENDER} characters")
        if channel == Channel.FACEBOOK and sender not in application_keys:
            raise ValidationFailed(
                field=f"{where}.from", problem=f"{sender} is not a Facebook application key of this account"
            )
        step = Step(Channel(channel), sender, _criterion(criterion, where))
        if step.criterion is SuccessCriterion.SEEN and step.channel not in READ_RECEIPT_CHANNELS:
            raise ValidationFailed(
                field=f"{where}.successCriterion",
                problem=f"SEEN is not possible on {channel}: it reports no reads",
            )
        for first, other in enumerate(steps):
            if (other.channel, other.sender) == (step.channel, step.sender):
                raise ValidationFailed(field=where, problem=f"repeats flow[{first}] (same channel and from)")
        steps.append(step)
    return tuple(steps)


def _criterion(raw: str | None, where: str) -> SuccessCriterion:
    if raw is None:
        return SuccessCriterion.DELIVERED
    if raw not in SuccessCriterion.__members__:
        names = ", ".join(SuccessCriterion)
        raise ValidationFailed(field=f"{where}.successCriterion", problem=f"must be one of {names}")
    return SuccessCriterion(raw)
