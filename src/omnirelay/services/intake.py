"""Shared pieces of accepting sends."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from omnirelay.ports import Metrics, NewMessage

Notify = Callable[[], None]  # tells the dispatcher that new work was committed


def counted(metrics: Metrics, messages: Sequence[NewMessage], inserted: Sequence[bool]) -> None:
    """Count committed messages; those rejected at acceptance are final at once."""
    for message, ok in zip(messages, inserted, strict=True):
        if ok:
            metrics.accepted(message.api)
            if message.final_report is not None:
                metrics.final(message.final_report.channel or "", message.status.group.name)
