"""A city's service catalogue as data: parsing it (YAML text) and checking submitted attributes.

The catalogue follows Open311 service definitions: each service has attributes with a
``datatype`` (string, number, datetime, text, singlevaluelist, multivaluelist), a ``required``
flag, an ``order`` and, for lists, the allowed ``values`` (key and name). Names and descriptions
are given in Kazakh, Russian and English.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from qala.core.errors import Problem, raise_if_problems
from qala.core.yamltext import load_yaml

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
LIST_DATATYPES = ("singlevaluelist", "multivaluelist")
LANGUAGES = ("kk", "ru", "en")
SERVICE_TYPES = ("realtime", "batch", "blackbox")

MAX_STRING = 1000
MAX_TEXT = 4000
MAX_LIST_ITEMS = 50

Names = dict[str, str]


@dataclass(frozen=True)
class AttributeValue:
    key: str
    name: Names


@dataclass(frozen=True)
class AttributeDefinition:
    """One question of a service's form (an Open311 attribute)."""

    code: str
    datatype: str
    required: bool
    description: Names
    order: int
    variable: bool = True
    datatype_description: str = ""
    values: tuple[AttributeValue, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The stored form (JSON column of the service)."""
        return {
            "code": self.code,
            "datatype": self.datatype,
            "required": self.required,
            "variable": self.variable,
            "order": self.order,
            "datatype_description": self.datatype_description,
            "description": dict(self.description),
            "values": [{"key": v.key, "name": dict(v.name)} for v in self.values],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttributeDefinition:
        return cls(
            code=str(data["code"]),
            datatype=str(data["datatype"]),
            required=bool(data.get("required", False)),
            description=dict(data.get("description") or {}),
            order=int(data.get("order", 0)),
            variable=bool(data.get("variable", True)),
            datatype_description=str(data.get("datatype_description") or ""),
            values=tuple(
                AttributeValue(str(v["key"]), dict(v.get("name") or {}))
                for v in data.get("values") or []
            ),
        )


@dataclass(frozen=True)
class ServiceDefinition:
    code: str
    name: Names
    description: Names
    department: str | None
    sla_hours: float
    group: str = ""
    keywords: tuple[str, ...] = ()
    service_type: str = "realtime"
    attributes: tuple[AttributeDefinition, ...] = ()


@dataclass(frozen=True)
class DistrictDefinition:
    code: str
    name: Names
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class DepartmentDefinition:
    code: str
    name: Names
    email: str | None = None


@dataclass(frozen=True)
class RoutingDefinition:
    department: str
    service: str | None = None
    district: str | None = None
    priority: int = 100


@dataclass(frozen=True)
class CityArea:
    """Where a city takes reports: inside ``boundary`` (a GeoJSON Polygon or MultiPolygon in
    lon/lat) when it is known, else within ``radius_km`` of the centre."""

    lat: float
    lon: float
    radius_km: float
    boundary: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "lat": self.lat,
            "lon": self.lon,
            "radius_km": self.radius_km,
            "boundary": self.boundary,
        }


@dataclass
class CityCatalogue:
    """Everything a city declares: who it is, its districts, departments, services and routing."""

    code: str
    name: Names
    anonymous_allowed: bool = True
    contact: str | None = None
    key_service: str | None = None
    districts: list[DistrictDefinition] = field(default_factory=list)
    departments: list[DepartmentDefinition] = field(default_factory=list)
    services: list[ServiceDefinition] = field(default_factory=list)
    routing: list[RoutingDefinition] = field(default_factory=list)
    area: CityArea | None = None


def _names(value: Any, where: str, problems: list[Problem], file: str) -> Names:
    if isinstance(value, str):
        return dict.fromkeys(LANGUAGES, value)
    if not isinstance(value, dict):
        problems.append(Problem(f"{where}: expected names in kk, ru and en", file=file))
        return dict.fromkeys(LANGUAGES, "")
    extra = sorted(str(k) for k in value if k not in LANGUAGES)
    if extra:
        problems.append(
            Problem(
                f"{where}: unexpected keys {', '.join(extra)} among names (quote texts with commas)",
                file=file,
            )
        )
    missing = [lang for lang in LANGUAGES if not str(value.get(lang) or "").strip()]
    if missing:
        problems.append(Problem(f"{where}: missing name in {', '.join(missing)}", file=file))
    return {lang: str(value.get(lang) or "") for lang in LANGUAGES}


def read_yaml(text: str, *, file: str) -> Any:
    """YAML text as data; ValidationError naming ``file`` when it is not YAML."""
    try:
        return load_yaml(text) or {}
    except yaml.YAMLError as exc:
        raise_if_problems(
            [Problem(f"not valid YAML: {exc}", file=file)], "the catalogue is invalid"
        )
        raise AssertionError("unreachable") from exc


def parse_catalogue(text: str, *, file: str = "catalogue.yaml") -> CityCatalogue:
    """Read a city catalogue from YAML, reporting every problem found at once."""
    return catalogue_of(read_yaml(text, file=file), file=file)


def _area(head: dict[str, Any], problems: list[Problem], file: str) -> CityArea | None:
    lat, lon, radius = head.get("lat"), head.get("lon"), head.get("radius_km")
    boundary = head.get("boundary")
    if lat is None and lon is None and boundary is None:
        return None
    numbers = (lat, lon, radius)
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in numbers):
        problems.append(
            Problem("jurisdiction: `lat`, `lon` and `radius_km` must all be numbers", file=file)
        )
        return None
    assert isinstance(lat, int | float) and isinstance(lon, int | float)
    assert isinstance(radius, int | float)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0):
        problems.append(
            Problem("jurisdiction: centre out of range or `radius_km` not positive", file=file)
        )
        return None
    if boundary is not None and not (
        isinstance(boundary, dict)
        and boundary.get("type") in ("Polygon", "MultiPolygon")
        and isinstance(boundary.get("coordinates"), list)
    ):
        problems.append(
            Problem("jurisdiction: `boundary` must be a GeoJSON Polygon or MultiPolygon", file=file)
        )
        return None
    return CityArea(float(lat), float(lon), float(radius), boundary)


def catalogue_of(data: Any, *, file: str = "catalogue.yaml") -> CityCatalogue:
    """A city catalogue from parsed YAML data, reporting every problem found at once."""
    problems: list[Problem] = []
    if not isinstance(data, dict) or not isinstance(data.get("jurisdiction"), dict):
        raise_if_problems([Problem("expected a `jurisdiction:` mapping at the top", file=file)])
    head = data["jurisdiction"]
    code = str(head.get("code") or "").strip().lower()
    if not code:
        problems.append(
            Problem("jurisdiction: `code` is required (the city's place code)", file=file)
        )
    catalogue = CityCatalogue(
        code=code,
        name=_names(head.get("name"), "jurisdiction", problems, file),
        anonymous_allowed=bool(head.get("anonymous_allowed", True)),
        contact=head.get("contact"),
        key_service=head.get("key_service"),
        area=_area(head, problems, file),
    )
    for i, d in enumerate(data.get("districts") or []):
        catalogue.districts.append(
            DistrictDefinition(
                code=str(d.get("code")),
                name=_names(d.get("name"), f"districts[{i}]", problems, file),
                lat=float(d["lat"]) if d.get("lat") is not None else None,
                lon=float(d["lon"]) if d.get("lon") is not None else None,
            )
        )
    for i, d in enumerate(data.get("departments") or []):
        catalogue.departments.append(
            DepartmentDefinition(
                code=str(d.get("code")),
                name=_names(d.get("name"), f"departments[{i}]", problems, file),
                email=d.get("email"),
            )
        )
    department_codes = {d.code for d in catalogue.departments}
    district_codes = {d.code for d in catalogue.districts}
    seen: set[str] = set()
    for i, s in enumerate(data.get("services") or []):
        where = f"services[{i}] `{s.get('code')}`"
        service_code = str(s.get("code") or "")
        if not service_code or service_code in seen:
            problems.append(
                Problem(f"{where}: service codes must be present and unique", file=file)
            )
        seen.add(service_code)
        department = s.get("department")
        if department is not None and department not in department_codes:
            problems.append(Problem(f"{where}: unknown department `{department}`", file=file))
        sla = s.get("sla_hours")
        if not isinstance(sla, int | float) or sla <= 0:
            problems.append(
                Problem(f"{where}: `sla_hours` must be a positive number", file=file, value=sla)
            )
            sla = 1.0
        service_type = str(s.get("type") or "realtime")
        if service_type not in SERVICE_TYPES:
            problems.append(
                Problem(f"{where}: `type` must be one of {', '.join(SERVICE_TYPES)}", file=file)
            )
        attributes = []
        attribute_codes: set[str] = set()
        for order, a in enumerate(s.get("attributes") or [], start=1):
            a_where = f"{where} attribute `{a.get('code')}`"
            datatype = a.get("datatype")
            if datatype not in DATATYPES:
                problems.append(
                    Problem(
                        f"{a_where}: datatype must be one of {', '.join(DATATYPES)}",
                        file=file,
                        value=datatype,
                    )
                )
            if not a.get("code") or a["code"] in attribute_codes:
                problems.append(
                    Problem(f"{a_where}: attribute codes must be present and unique", file=file)
                )
            attribute_codes.add(str(a.get("code")))
            values = tuple(
                AttributeValue(
                    str(v.get("key")), _names(v.get("name"), f"{a_where} value", problems, file)
                )
                for v in a.get("values") or []
            )
            if datatype in LIST_DATATYPES and not values:
                problems.append(Problem(f"{a_where}: a {datatype} needs `values`", file=file))
            attributes.append(
                AttributeDefinition(
                    code=str(a.get("code")),
                    datatype=str(datatype),
                    required=bool(a.get("required", False)),
                    description=_names(a.get("description"), a_where, problems, file),
                    order=int(a.get("order", order)),
                    variable=bool(a.get("variable", True)),
                    datatype_description=str(a.get("datatype_description") or ""),
                    values=values,
                )
            )
        catalogue.services.append(
            ServiceDefinition(
                code=service_code,
                name=_names(s.get("name"), where, problems, file),
                description=_names(s.get("description") or "", where, problems, file),
                department=department,
                sla_hours=float(sla),
                group=str(s.get("group") or ""),
                keywords=tuple(str(k) for k in s.get("keywords") or []),
                service_type=service_type,
                attributes=tuple(attributes),
            )
        )
    for i, r in enumerate(data.get("routing") or []):
        rule = RoutingDefinition(
            department=str(r.get("department")),
            service=r.get("service"),
            district=r.get("district"),
            priority=int(r.get("priority", 100)),
        )
        if rule.department not in department_codes:
            problems.append(
                Problem(f"routing[{i}]: unknown department `{rule.department}`", file=file)
            )
        if rule.service is not None and rule.service not in seen:
            problems.append(Problem(f"routing[{i}]: unknown service `{rule.service}`", file=file))
        if rule.district is not None and rule.district not in district_codes:
            problems.append(Problem(f"routing[{i}]: unknown district `{rule.district}`", file=file))
        catalogue.routing.append(rule)
    raise_if_problems(problems, f"the service catalogue {file} is invalid")
    return catalogue


# ---------------------------------------------------------------------------------------------
# Submitted attribute values


def parse_w3_datetime(text: str) -> datetime:
    """A W3C/ISO 8601 date-time (``Z`` or an offset; a naive time is taken as UTC)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def check_attributes(
    definitions: tuple[AttributeDefinition, ...] | list[AttributeDefinition],
    submitted: dict[str, list[str]],
) -> tuple[dict[str, Any], list[Problem]]:
    """Check a request's ``attribute[code]`` values against the service definition.

    Returns the cleaned values (numbers as floats, date-times as ISO strings in UTC, multi-value
    lists as lists) and every problem found, each naming the attribute.
    """
    problems: list[Problem] = []
    clean: dict[str, Any] = {}
    known = {d.code: d for d in definitions}
    for code in submitted:
        if code not in known:
            problems.append(
                Problem(
                    f"unknown attribute; this service asks for {', '.join(sorted(known)) or 'none'}",
                    column=f"attribute[{code}]",
                    code="unknown_attribute",
                )
            )
    for definition in definitions:
        if not definition.variable:
            continue
        column = f"attribute[{definition.code}]"
        raw = [v for v in submitted.get(definition.code, []) if v.strip() != ""]
        if not raw:
            if definition.required:
                problems.append(Problem("is required", column=column, code="required"))
            continue
        allowed = {v.key for v in definition.values}
        datatype = definition.datatype
        if datatype == "multivaluelist":
            if len(raw) > MAX_LIST_ITEMS:
                problems.append(Problem(f"at most {MAX_LIST_ITEMS} values", column=column))
                continue
            wrong = [v for v in raw if v not in allowed]
            if wrong:
                problems.append(
                    Problem(
                        f"expected keys among {', '.join(sorted(allowed))}",
                        column=column,
                        value=wrong[0],
                    )
                )
                continue
            clean[definition.code] = list(dict.fromkeys(raw))
            continue
        if len(raw) > 1:
            problems.append(Problem("expected one value, got several", column=column))
            continue
        value = raw[0]
        if datatype == "singlevaluelist":
            if value not in allowed:
                problems.append(
                    Problem(
                        f"expected one of {', '.join(sorted(allowed))}", column=column, value=value
                    )
                )
            else:
                clean[definition.code] = value
        elif datatype == "number":
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                problems.append(Problem("expected a number", column=column, value=value[:50]))
            else:
                clean[definition.code] = number
        elif datatype == "datetime":
            try:
                clean[definition.code] = parse_w3_datetime(value).isoformat().replace("+00:00", "Z")
            except (ValueError, OverflowError):
                problems.append(
                    Problem(
                        "expected a date-time such as 2025-01-31T08:00:00+05:00",
                        column=column,
                        value=value[:50],
                    )
                )
        else:  # string, text
            limit = MAX_TEXT if datatype == "text" else MAX_STRING
            if len(value) > limit:
                problems.append(
                    Problem(
                        f"at most {limit} characters",
                        column=column,
                        value=f"{len(value)} characters",
                    )
                )
            else:
                clean[definition.code] = value
    return clean, problems
