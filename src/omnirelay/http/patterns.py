"""The `pattern`s of the OpenAPI document for rules the server checks with `str` methods.

Python's `\\s` and JSON Schema's (ECMA-262) differ, and `str.strip`/`str.isspace` follow neither
exactly, so whitespace is spelled out: `SPACE` is every character `str.isspace` is true of
(tests/unit/test_openapi.py checks it). U+0000 is refused in every string (http/body.py).
"""

from __future__ import annotations

from omnirelay.domain.connectors import MAX_PREFIX

SPACE = (
    "\\t\\n\\u000b\\u000c\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680"
    "\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)
_S = f"[{SPACE}]*"  # what `strip()` removes

NON_BLANK = f"^[^\\u0000]*[^{SPACE}\\u0000][^\\u0000]*$"  # `value.strip()` is not empty
NO_SPACE = f"^[^{SPACE}\\u0000]+$"
ABSOLUTE_URL = "^[Hh][Tt][Tt][Pp][Ss]?://[^/\\u0000][^\\u0000]*$"
TIME = f"^{_S}[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9:.]+(Z|[+-][0-9]{{2}}:?[0-9]{{2}}){_S}$"
TIME_OR_EMPTY = f"^({TIME[1:-1]})?$"
PHONE = f"^{_S}\\+?[0-9 ]*[0-9][0-9 ]*{_S}$"
POSITIVE_NUMBER = f"^{_S}\\+?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?{_S}$"
PREFIX = f"^{_S}\\+?([0-9]{{0,{MAX_PREFIX}}}|[Dd][Ee][Ff][Aa][Uu][Ll][Tt]){_S}$"
