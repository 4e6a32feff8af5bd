"""JSON text from outside (request bodies) to Python data, refusing structures nested deeper than
any real document: a body of 1,000 nested lists exhausted the interpreter's recursion limit in the
parser or later in the code walking it, and the server answered 500.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64
"""Far beyond NGSI-LD entities, observation batches and GeoJSON polygons (depth 5–8)."""


def load_json(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The data in ``raw``; raises ``ValueError`` naming the problem for invalid JSON and for
    arrays or objects nested more than ``max_depth`` levels."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ValueError(f"nested more than {max_depth} levels deep") from None
    if _openings(raw) > max_depth and depth(data) > max_depth:
        raise ValueError(f"nested more than {max_depth} levels deep")
    return data


def _openings(raw: bytes | str) -> int:
    """How many arrays and objects the text could open (an upper bound on its depth, counted in C:
    most bodies have too few brackets to need the walk)."""
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{")
    return raw.count(b"[") + raw.count(b"{")


def depth(data: Any) -> int:
    """How deeply arrays and objects nest in ``data`` (a scalar is 0), without recursion."""
    if not isinstance(data, dict | list):
        return 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, level = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest
