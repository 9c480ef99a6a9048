"""JSON that every parser reads: what slmtui writes for others (exports, ``--json`` listings) never holds NaN
or Infinity, which Python writes by default and strict parsers (JavaScript's JSON.parse, jq, serde) refuse.

A number that is not finite (a probability that overflowed, a loss that diverged) has no value to give: it is
written as null, the JSON for "not known".
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float inside it (dicts, lists, tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of ``finite(value)``, refusing (ValueError) anything non-finite that slipped past."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)
