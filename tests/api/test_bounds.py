"""Every string and integer a route accepts is bounded, and the OpenAPI document says so.

The hardening issue found a million-character note stored and 23-digit numbers reaching the
database (HTTP 500). This walks the published schema — parameters and request bodies, through
every referenced model — and lists each string without ``maxLength`` (or an enum, pattern or
format) and each integer without both ``minimum`` and ``maximum``.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from qala.api import create_app
from qala.settings import Settings

BOUNDING = ("maxLength", "enum", "const", "format", "pattern", "contentMediaType")


def _has(schema: dict[str, Any], bound: str) -> bool:
    """``minimum`` or ``exclusiveMinimum`` (bound ``inimum``), the same for maxima."""
    return any(key.endswith(bound) for key in schema)


def _unbounded(spec: dict[str, Any]) -> list[str]:
    models = spec.get("components", {}).get("schemas", {})
    found: list[str] = []

    def walk(schema: Any, where: str, seen: frozenset[str]) -> None:
        if not isinstance(schema, dict):
            return
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                walk(models[name], f"{where}<{name}>", seen | {name})
            return
        kind = schema.get("type")
        if kind == "string" and not any(key in schema for key in BOUNDING):
            found.append(f"string {where}")
        if kind == "integer" and not (_has(schema, "inimum") and _has(schema, "aximum")):
            found.append(f"integer {where}")
        for key in ("anyOf", "oneOf", "allOf"):
            for option in schema.get(key, []):
                walk(option, where, seen)
        walk(schema.get("items"), f"{where}[]", seen)
        for name, field in schema.get("properties", {}).items():
            walk(field, f"{where}.{name}", seen)
        walk(schema.get("additionalProperties"), f"{where}{{}}", seen)

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                where = f"{method.upper()} {path} ?{parameter['name']}"
                walk(parameter.get("schema"), where, frozenset())
            for media in operation.get("requestBody", {}).get("content", {}).values():
                walk(media.get("schema"), f"{method.upper()} {path} body", frozenset())
    return found


def test_every_accepted_string_and_integer_is_bounded(tmp_path: Any) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/q.sqlite", secret_key="t"))
    spec = TestClient(app).get("/openapi.json").json()
    unbounded = _unbounded(spec)
    assert not unbounded, f"{len(unbounded)} unbounded:\n" + "\n".join(unbounded)
    app.state.context.database.dispose()


def test_the_walk_finds_an_unbounded_field() -> None:
    spec = {
        "paths": {
            "/x": {
                "post": {
                    "parameters": [{"name": "q", "schema": {"type": "string"}}],
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/c/M"}}}},
                }
            }
        },
        "components": {"schemas": {"M": {"properties": {"n": {"type": "integer", "minimum": 0}}}}},
    }
    assert _unbounded(spec) == ["string POST /x ?q", "integer POST /x body<M>.n"]
