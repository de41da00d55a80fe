"""Shared pieces of accepting sends."""

from __future__ import annotations

from collections.abc import Callable

Notify = Callable[[], None]  # tells the dispatcher that new work was committed
