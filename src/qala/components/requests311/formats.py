"""Open311 GeoReport v2 documents in JSON and XML, shaped as the specification shows them.

XML roots: ``services``/``service``, ``service_definition`` (``attributes``/``attribute``,
``values``/``value``), ``service_requests``/``request``, ``errors``/``error``, ``discovery``
(``endpoints``/``endpoint``, ``formats``/``format``, ``jurisdictions``/``jurisdiction``). Every document is UTF-8 with the XML
declaration.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from qala.components.requests311.catalogue import AttributeDefinition
from qala.components.requests311.jurisdictions import ServiceInfo
from qala.components.requests311.views import PublicRequest

JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "text/xml; charset=utf-8"
XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"

# Element name of one item inside each list element.
_ITEM_TAG = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "jurisdictions": "jurisdiction",
}


def w3_datetime(moment: datetime | None) -> str | None:
    """ISO 8601 as the W3C note says, always with a time zone (UTC: ``Z``)."""
    if moment is None:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _xml_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _xml_element(tag: str, value: Any, out: list[str]) -> None:
    if isinstance(value, Mapping):
        out.append(f"<{tag}>")
        for key, inner in value.items():
            _xml_element(key, inner, out)
        out.append(f"</{tag}>")
    elif isinstance(value, list | tuple):
        item = _ITEM_TAG.get(tag, "item")
        out.append(f"<{tag}>")
        for inner in value:
            _xml_element(item, inner, out)
        out.append(f"</{tag}>")
    elif value is None:
        out.append(f"<{tag}/>")
    else:
        out.append(f"<{tag}>{_xml_text(value)}</{tag}>")


def xml_document(root: str, value: Any) -> str:
    out = [XML_DECLARATION]
    _xml_element(root, value, out)
    return "".join(out)


def json_document(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render(fmt: str, root: str, value: Any) -> tuple[str, str]:
    """(body, content type) of ``value`` in ``fmt``; ``root`` names the XML root element."""
    if fmt == "xml":
        return xml_document(root, value), XML_TYPE
    return json_document(value), JSON_TYPE


# ---------------------------------------------------------------------------------------------
# The documents


def service_entry(service: ServiceInfo, language: str) -> dict[str, Any]:
    return {
        "service_code": service.code,
        "service_name": service.names.get(language) or service.names["en"],
        "description": service.descriptions.get(language) or service.descriptions["en"],
        "metadata": service.metadata,
        "type": service.service_type,
        "keywords": ", ".join(service.keywords),
        "group": service.group,
    }


def attribute_entry(attribute: AttributeDefinition, language: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "variable": attribute.variable,
        "code": attribute.code,
        "datatype": attribute.datatype,
        "required": attribute.required,
        "datatype_description": attribute.datatype_description or None,
        "order": attribute.order,
        "description": attribute.description.get(language) or attribute.description.get("en", ""),
    }
    if attribute.values:
        entry["values"] = [
            {"key": v.key, "name": v.name.get(language) or v.name.get("en", v.key)}
            for v in attribute.values
        ]
    return entry


def service_definition(service: ServiceInfo, language: str) -> dict[str, Any]:
    return {
        "service_code": service.code,
        "attributes": [attribute_entry(a, language) for a in service.attributes],
    }


def request_entry(request: PublicRequest) -> dict[str, Any]:
    return {
        "service_request_id": request.service_request_id,
        "status": request.status,
        "status_notes": request.status_notes,
        "service_name": request.service_name,
        "service_code": request.service_code,
        "description": request.description,
        "agency_responsible": request.agency_responsible,
        "service_notice": request.service_notice,
        "requested_datetime": w3_datetime(request.requested_datetime),
        "updated_datetime": w3_datetime(request.updated_datetime),
        "expected_datetime": w3_datetime(request.expected_datetime),
        "address": request.address,
        "address_id": request.address_id,
        "zipcode": request.zipcode,
        "lat": request.lat,
        "long": request.long,
        "media_url": request.media_url,
        # An extension: residents who support the request instead of filing a duplicate.
        "supporters": request.supporters,
    }


def errors_entries(errors: Iterable[tuple[int, str]]) -> list[dict[str, Any]]:
    return [{"code": code, "description": description} for code, description in errors]
