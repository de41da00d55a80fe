"""The API's published request/response examples, kept in the repository (tests/api_examples/README.md)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "api_examples"
