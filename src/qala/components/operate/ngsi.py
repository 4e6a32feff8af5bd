"""NGSI-LD (ETSI GS CIM 009) representation rules, without storage: normalising incoming entities
(normalised or Smart Data Models key-values form), rendering them back, the ``q`` query language,
geo-queries, and the ProblemDetails errors.

Names of types and attributes are kept in the canonical form of ``jsonld`` (the short name for
terms of the default vocabulary and the core context, the IRI for terms a client's ``@context``
maps elsewhere); ``names_of`` maps them from and to a client's context.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

import re2

from qala.components.operate import jsonld
from qala.engines.geo import shapes

NGSI_NULL = "urn:ngsi-ld:null"
"""The value that deletes an attribute in a merge or update (clause 4.5.1: JSON null is refused)."""
CORE_CONTEXT = jsonld.CORE_CONTEXT
LD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
ERROR_BASE = "https://uri.etsi.org/ngsi-ld/errors/"

ATTRIBUTE_TYPES = frozenset(
    {
        "Property",
        "Relationship",
        "GeoProperty",
        "LanguageProperty",
        "ListProperty",
        "ListRelationship",
        "VocabProperty",
        "JsonProperty",
    }
)
GEOJSON_TYPES = frozenset(
    {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
)
# Attributes whose values NGSI-LD keeps as GeoProperty even in key-values input.
GEO_ATTRIBUTES = frozenset({"location", "observationSpace", "operationSpace"})
RESERVED = frozenset({"id", "type", "@context", "scope", "createdAt", "modifiedAt"})


class NgsiError(Exception):
    """An NGSI-LD error answered as ProblemDetails ``{type, title, detail}``.

    ``kind`` is the last segment of the error type URI (``ResourceNotFound``, ``BadRequestData``…).
    """

    STATUS: ClassVar[dict[str, int]] = {
        "InvalidRequest": 400,
        "BadRequestData": 400,
        "AlreadyExists": 409,
        "OperationNotSupported": 422,
        "ResourceNotFound": 404,
        "InternalError": 500,
        "TooComplexQuery": 403,
        "TooManyResults": 403,
        "LdContextNotAvailable": 503,
        "NotAcceptable": 406,
        "UnsupportedMediaType": 415,
        "NoMultiTenantSupport": 501,
        "NonexistentTenant": 404,
        "Unauthorized": 401,
        "Forbidden": 403,
    }
    TITLES: ClassVar[dict[str, str]] = {
        "InvalidRequest": "The request associated to the operation is syntactically invalid",
        "BadRequestData": "The request includes input data which does not meet the requirements",
        "AlreadyExists": "The referred element already exists",
        "OperationNotSupported": "The operation is not supported",
        "ResourceNotFound": "The referred resource has not been found",
        "InternalError": "There has been an error during the operation execution",
        "TooComplexQuery": "The query is too complex",
        "TooManyResults": "The query has too many results",
        "NotAcceptable": "The requested media type is not acceptable",
        "LdContextNotAvailable": "A remote JSON-LD @context could not be retrieved",
        "UnsupportedMediaType": "The request media type is not supported",
        "Unauthorized": "Authentication is required",
        "Forbidden": "The caller may not do this",
        "NonexistentTenant": "The addressed tenant does not exist",
    }

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail

    @property
    def status(self) -> int:
        return self.STATUS.get(self.kind, 400)

    def problem(self) -> dict[str, Any]:
        return {
            "type": ERROR_BASE + self.kind,
            "title": self.TITLES.get(self.kind, self.kind),
            "detail": self.detail,
        }


def bad_data(detail: str) -> NgsiError:
    return NgsiError("BadRequestData", detail)


def names_of(context: Any) -> jsonld.Names:
    """The names of a client's ``@context`` (None: the core context); a context that cannot be
    retrieved or processed is ``LdContextNotAvailable`` (503)."""
    try:
        return jsonld.names(context)
    except jsonld.ContextNotAvailable as exc:
        raise NgsiError("LdContextNotAvailable", str(exc)) from None


# ---------------------------------------------------------------------------------------------
# PAS 182 concepts

PAS182_CONCEPTS = (
    "organisation",
    "person",
    "community",
    "place",
    "item",
    "service",
    "resource",
    "event",
    "observation",
    "case",
    "metric",
    "plan",
)

_CONCEPT_OF_TYPE = {
    "Organization": "organisation",
    "Organisation": "organisation",
    "Person": "person",
    "Community": "community",
    "Group": "community",
    "Place": "place",
    "Building": "place",
    "Park": "place",
    "Road": "place",
    "RoadSegment": "place",
    "District": "place",
    "City": "place",
    "AdministrativeArea": "place",
    "PointOfInterest": "place",
    "Device": "item",
    "DeviceModel": "item",
    "Streetlight": "item",
    "StreetlightGroup": "item",
    "StreetlightControlCabinet": "item",
    "Vehicle": "item",
    "ParkingSpot": "item",
    "WasteContainer": "item",
    "Asset": "item",
    "Item": "item",
    "Service": "service",
    "PublicService": "service",
    "Resource": "resource",
    "WaterSupply": "resource",
    "EnergySupply": "resource",
    "Event": "event",
    "Alert": "event",
    "Incident": "case",
    "ServiceRequest": "case",
    "Case": "case",
    "KeyPerformanceIndicator": "metric",
    "Plan": "plan",
}


def pas182_concept(entity_type: str) -> str:
    """The PAS 182 concept an NGSI-LD entity type stands for (``item`` when unknown).

    Types ending in ``Observed`` or ``Observation`` (AirQualityObserved, WaterQualityObserved,
    TrafficFlowObserved…) are observations.
    """
    short = entity_type.rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    if short in _CONCEPT_OF_TYPE:
        return _CONCEPT_OF_TYPE[short]
    if short.endswith(("Observed", "Observation", "Measurement")):
        return "observation"
    return "item"


# ---------------------------------------------------------------------------------------------
# Normalising input


_FORBIDDEN_IN_NAMES = re.compile(r"[\s<>\"'=;()?|{}\[\]\\]")
"""Characters no attribute name may hold (clause 4.6.2 forbids those that break ``q`` and URIs)."""

ATTRIBUTE_MEMBERS = jsonld.ATTRIBUTE_MEMBERS


def check_attribute_name(name: Any) -> str:
    """``name`` when it may name an attribute, else ``BadRequestData`` naming it."""
    if not isinstance(name, str) or not name or _FORBIDDEN_IN_NAMES.search(name):
        raise bad_data(
            f"attribute name {name!r} holds a character NGSI-LD forbids "
            "(blank, <, >, \", ', =, ;, (, ), ?, |, {, }, [, ], \\)"
        )
    return name


def normalise_attribute(name: str, raw: Any) -> dict[str, Any]:
    """One attribute in normalised form: ``{"type": "Property", "value": ...}`` and kin.

    Accepts the normalised form as it is and wraps key-values input (Smart Data Models
    ``example.json`` style): GeoJSON geometries become GeoProperty, ``ref*`` URNs Relationships.
    A normalised attribute is checked: a known type, a non-null ``value``/``object``, and
    sub-attributes that are attributes themselves.
    """
    check_attribute_name(name.rsplit(".", 1)[-1])
    if is_null(raw):
        marker: dict[str, Any] = {"type": "Property", "value": NGSI_NULL}
        if isinstance(raw, Mapping):
            marker["type"] = raw.get("type", "Property")
            if raw.get("datasetId") is not None:
                marker["datasetId"] = raw["datasetId"]
        return marker
    if (
        isinstance(raw, Mapping)
        and isinstance(raw.get("type"), str)
        and raw["type"] not in ATTRIBUTE_TYPES
        and raw["type"] not in GEOJSON_TYPES
        and ("value" in raw or "object" in raw)
    ):
        raise bad_data(
            f"attribute `{name}` has type {raw['type']!r}, not an NGSI-LD attribute type"
        )
    if isinstance(raw, Mapping) and raw.get("type") in ATTRIBUTE_TYPES:
        attribute = dict(raw)
        kind = attribute["type"]
        if kind == "Relationship" and attribute.get("object") is None:
            raise bad_data(f"relationship `{name}` has no `object`")
        if kind in ("Property", "GeoProperty") and attribute.get("value") is None:
            raise bad_data(f"attribute `{name}` of type {kind} has no `value` (null is none)")
        if kind == "LanguageProperty" and not isinstance(attribute.get("languageMap"), Mapping):
            raise bad_data(f"LanguageProperty `{name}` needs a `languageMap` object")
        if kind == "GeoProperty":
            check_geometry(name, attribute["value"])
        if kind == "Property":
            attribute["value"] = single_value(attribute["value"])
        for sub_name, sub in list(attribute.items()):
            if sub_name in ATTRIBUTE_MEMBERS:
                continue
            if not isinstance(sub, Mapping) or "type" not in sub:
                raise bad_data(
                    f"sub-attribute `{name}.{sub_name}` must be an attribute object with a `type`"
                )
            attribute[sub_name] = normalise_attribute(f"{name}.{sub_name}", sub)
        if "observedAt" in attribute and not isinstance(attribute["observedAt"], str):
            raise bad_data(f"`{name}.observedAt` must be an ISO 8601 date-time text")
        return attribute
    if isinstance(raw, list) and raw and all(isinstance(x, Mapping) and "type" in x for x in raw):
        return normalise_instances(name, raw)  # type: ignore[return-value]
    if isinstance(raw, Mapping) and raw.get("type") in GEOJSON_TYPES:
        check_geometry(name, raw)
        return {"type": "GeoProperty", "value": dict(raw)}
    if (
        name.startswith("ref")
        and isinstance(raw, str)
        and raw.startswith("urn:")
        and len(name) > 3
        and name[3].isupper()
    ):
        return {"type": "Relationship", "object": raw}
    return {"type": "Property", "value": single_value(raw)}


def single_value(value: Any) -> Any:
    """A Property value as JSON-LD compaction gives it back: an array of one element is that
    element. ``value`` (``ngsi-ld:hasValue``) has no ``@set``/``@list`` container, so after
    expansion a one-element array and its element are the same data (JSON-LD 1.1 clause 4.3.2;
    ordered lists are ListProperty's ``valueList``). An array of one array stays, since the
    inner array would be a JSON-LD list of its own."""
    if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], list):
        return value[0]
    return value


def normalise_instances(name: str, raw: list[Any]) -> dict[str, Any] | list[dict[str, Any]]:
    """A multi-attribute (clause 4.5.5): instances told apart by ``datasetId``, at most one
    without (the default instance). One instance is kept as a plain attribute."""
    instances = [normalise_attribute(name, item) for item in raw]
    seen: set[Any] = set()
    for instance in instances:
        dataset = instance.get("datasetId")
        if dataset is not None:
            check_entity_id(dataset)
        if dataset in seen:
            which = f"datasetId {dataset}" if dataset else "the default instance (no datasetId)"
            raise bad_data(f"attribute `{name}` holds {which} twice")
        seen.add(dataset)
    return instances[0] if len(instances) == 1 else instances


def instances_of(attribute: Any) -> list[dict[str, Any]]:
    """The instances of a stored attribute (one, or several told apart by ``datasetId``)."""
    if isinstance(attribute, list):
        return [a for a in attribute if isinstance(a, dict)]
    return [attribute] if isinstance(attribute, dict) else []


def default_instance(attribute: Any) -> Any:
    """The instance without ``datasetId`` (else the first): what single-valued readers see."""
    if not isinstance(attribute, list):
        return attribute
    for instance in attribute:
        if isinstance(instance, Mapping) and instance.get("datasetId") is None:
            return instance
    return attribute[0] if attribute else None


def merge_instances(existing: Any, new: Any) -> Any:
    """``new`` instances replace those of ``existing`` with the same ``datasetId``; the others
    stay (appending an instance with another datasetId adds it)."""
    kept = {i.get("datasetId"): i for i in instances_of(existing)}
    for instance in instances_of(new):
        kept[instance.get("datasetId")] = instance
    values = list(kept.values())
    return values[0] if len(values) == 1 else values


def is_null(raw: Any) -> bool:
    """Whether an incoming attribute is the deletion marker ``urn:ngsi-ld:null``."""
    if raw == NGSI_NULL:
        return True
    if not isinstance(raw, Mapping):
        return False
    return NGSI_NULL in (raw.get("value"), raw.get("object")) or raw.get("languageMap") in (
        NGSI_NULL,
        {"@none": NGSI_NULL},
    )


def check_geometry(name: str, value: Any) -> None:
    if not isinstance(value, Mapping) or value.get("type") not in GEOJSON_TYPES:
        raise bad_data(f"GeoProperty `{name}` must hold a GeoJSON geometry (Point, Polygon…)")
    coordinates = value.get("coordinates")
    if not isinstance(coordinates, list) or not coordinates:
        raise bad_data(f"GeoProperty `{name}` has no coordinates")
    if value["type"] == "Point":
        if len(coordinates) < 2 or not all(isinstance(c, int | float) for c in coordinates[:2]):
            raise bad_data(f"point `{name}` must have [longitude, latitude] numbers")
        lon, lat = coordinates[0], coordinates[1]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise bad_data(f"point `{name}` [{lon}, {lat}] is outside [-180..180, -90..90]")


@dataclass
class EntityInput:
    """An incoming entity after validation: id, type, normalised attributes and @context."""

    id: str
    type: str
    attrs: dict[str, dict[str, Any]]
    context: Any = None


_ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")


def check_entity_id(entity_id: Any) -> str:
    if not isinstance(entity_id, str) or not _ID_PATTERN.match(entity_id):
        raise bad_data(f"entity id {entity_id!r} is not a URI (e.g. urn:ngsi-ld:Device:kgmt-9)")
    return entity_id


def check_ids(ids: tuple[str, ...]) -> tuple[str, ...]:
    """Each of ``ids`` when it is a URI, else ``BadRequestData``."""
    for entity_id in ids:
        check_entity_id(entity_id)
    return ids


def parse_entity(
    body: Any, *, context: Any = None, require_id: bool = True, entity_id: str | None = None
) -> EntityInput:
    """Validate one entity body and normalise its attributes.

    Parameters
    ----------
    body
        The decoded JSON object.
    context
        The ``@context`` given by a Link header (``application/json`` requests).
    """
    if not isinstance(body, Mapping):
        raise bad_data("an entity must be a JSON object")
    given_context = body.get("@context", context)
    body = jsonld.canonical_entity(body, names_of(given_context))
    identifier = body.get("id", entity_id)
    if require_id or identifier is not None:
        identifier = check_entity_id(identifier)
    types = parse_types(body.get("type"), f"entity {identifier}")
    attrs = {
        name: normalise_attribute(name, raw) for name, raw in body.items() if name not in RESERVED
    }
    if body.get(SCOPE) is not None:
        attrs[SCOPE] = parse_scope(body[SCOPE])  # type: ignore[assignment]
    if len(types) > 1:
        attrs[TYPES] = types  # type: ignore[assignment]
    return EntityInput(id=str(identifier), type=types[0], attrs=attrs, context=given_context)


def parse_fragment(
    body: Any, *, require_some: bool = False, context: Any = None
) -> dict[str, dict[str, Any]]:
    """Attributes of a PATCH/POST ``.../attrs`` body in normalised form, named canonically under
    the body's ``@context`` (else ``context``, a Link header's) (``require_some``: an empty
    fragment is ``BadRequestData``)."""
    if not isinstance(body, Mapping):
        raise bad_data("the attributes must be a JSON object")
    body = jsonld.canonical_entity(body, names_of(body.get("@context", context)))
    if require_some and not [name for name in body if name not in RESERVED or name in MEMBERS]:
        raise bad_data("the fragment holds no attribute")
    attrs = {
        name: normalise_attribute(name, raw) for name, raw in body.items() if name not in RESERVED
    }
    if body.get(SCOPE) is not None:
        scope: Any = NGSI_NULL if body[SCOPE] == NGSI_NULL else parse_scope(body[SCOPE])
        attrs[SCOPE] = scope
    if body.get(TYPES) is not None:
        attrs[TYPES] = parse_types(body[TYPES], "the fragment")  # type: ignore[assignment]
    return attrs


# ---------------------------------------------------------------------------------------------
# Scopes (clauses 4.18, 4.19): an entity's ``scope`` is kept in its attributes under the key
# ``scope`` (no attribute may take that name) as a list of texts such as ``/Madrid/Gardens``.

SCOPE = "scope"
_SCOPE_PATTERN = re.compile(r"^/[^\s/#+,;()]+(?:/[^\s/#+,;()]+)*$")


TYPES = "type"
"""An entity of several types (clause 4.16) keeps them all, as a list, under the key ``type``
of its attributes (no attribute may take that name); its first type is its stored ``type``."""
MEMBERS = frozenset({SCOPE, TYPES})
"""Entity members kept among the attributes and written by attribute operations."""


def parse_types(raw: Any, what: str) -> list[str]:
    """The types an entity's ``type`` member names (one text or an array), each checked."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise bad_data(f"{what} needs a `type` (one text, e.g. AirQualityObserved)")
    for item in items:
        if not isinstance(item, str) or not item:
            raise bad_data(f"{what} needs a `type` (one text, e.g. AirQualityObserved)")
        if item in RESERVED or item.startswith("@") or _FORBIDDEN_IN_NAMES.search(item):
            raise bad_data(
                f"entity type {item!r} is a reserved word or holds a forbidden character"
            )
    return list(dict.fromkeys(items))


def parse_type_selection(text: str | None) -> tuple[tuple[str, ...], ...]:
    """A ``type`` query parameter (clause 4.17): names joined by ``,``/``|`` (or) and ``;``
    (and), with parentheses; returned as alternatives, each the types an entity must all have.
    ``()``: no type asked."""
    if text is None or not text.strip():
        return ()
    tokens = re.findall(r"[(),|;]|[^(),|;]+", text)
    position = 0

    def peek() -> str | None:
        return tokens[position].strip() if position < len(tokens) else None

    def alternatives() -> list[tuple[str, ...]]:
        nonlocal position
        found = conjunction()
        while peek() in (",", "|"):
            position += 1
            found += conjunction()
        return found

    def conjunction() -> list[tuple[str, ...]]:
        nonlocal position
        found = factor()
        while peek() == ";":
            position += 1
            found = [(*a, *b) for a in found for b in factor()]
        return found

    def factor() -> list[tuple[str, ...]]:
        nonlocal position
        token = peek()
        if token == "(":
            position += 1
            inner = alternatives()
            if peek() != ")":
                raise bad_data(f"type: missing `)` in {text!r}")
            position += 1
            return inner
        if not token or token in "(),|;":
            raise bad_data(f"type: expected a type name in {text!r}")
        position += 1
        return [(token,)]

    found = alternatives()
    if position != len(tokens):
        raise bad_data(f"type: unexpected {''.join(tokens[position:])!r} in {text!r}")
    return tuple(dict.fromkeys(tuple(dict.fromkeys(group)) for group in found))


def types_of(entity_type: str, attrs: Mapping[str, Any]) -> list[str]:
    """Every type of an entity (its stored ``type`` first)."""
    types = attrs.get(TYPES)
    return list(types) if isinstance(types, list) and types else [entity_type]


def parse_scope(raw: Any) -> list[str]:
    """The scopes of an entity's ``scope`` member (one text or an array of them)."""
    items = raw if isinstance(raw, list) else [raw]
    if not items or not all(isinstance(x, str) and _SCOPE_PATTERN.match(x) for x in items):
        raise bad_data(f"scope {raw!r} must be one or more texts like /Madrid/Gardens")
    return list(dict.fromkeys(items))


def scope_member(attrs: Mapping[str, Any]) -> Any:
    """How an entity's scopes are rendered: one text, or an array of several (None: none)."""
    scopes = attrs.get(SCOPE)
    if not isinstance(scopes, list) or not scopes:
        return None
    return scopes[0] if len(scopes) == 1 else list(scopes)


_SCOPE_QUERY_TERM = re.compile(r"^/(?:#|[^\s/#,;()]+(?:/[^\s/#,;()]+)*(?:/#)?)$")


@lru_cache(maxsize=256)
def parse_scope_query(text: str) -> tuple[tuple[Any, ...], ...]:
    """A ``scopeQ`` (clause 4.19): terms joined by ``,`` (or) and ``;`` (and); in a term ``+``
    stands for one level and a final ``/#`` for the scope and all below it. Returns the
    disjunction of conjunctions of compiled terms."""
    alternatives = []
    for alternative in text.replace("(", "").replace(")", "").split(","):
        terms = []
        for term in alternative.split(";"):
            term = term.strip()
            if not _SCOPE_QUERY_TERM.match(term):
                raise bad_data(f"scopeQ: {term!r} is not a scope such as /Madrid/+/Parks/#")
            if term == "/#":
                terms.append(re.compile(r"^/.+$"))
                continue
            deep = term.endswith("/#")
            levels = (term[:-2] if deep else term).split("/")[1:]
            body = "".join("/[^/]+" if level == "+" else "/" + re.escape(level) for level in levels)
            terms.append(re.compile("^" + body + ("(?:/.*)?$" if deep else "$")))
        alternatives.append(tuple(terms))
    return tuple(alternatives)


def scope_matches(text: str, attrs: Mapping[str, Any]) -> bool:
    """Whether an entity's scopes satisfy a ``scopeQ``."""
    scopes = attrs.get(SCOPE)
    if not isinstance(scopes, list):
        return False
    return any(
        all(any(term.match(scope) for scope in scopes) for term in terms)
        for terms in parse_scope_query(text)
    )


def split_list(text: str | None) -> tuple[str, ...]:
    """The items of a comma-separated parameter (``type``, ``id``, ``attrs``, ``pick``)."""
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())


KNOWN_OPTIONS = frozenset(
    {
        "keyValues",
        "simplified",
        "normalized",
        "concise",
        "sysAttrs",
        "noOverwrite",
        "replace",
        "update",
        "temporalValues",
        "aggregatedValues",
    }
)
KNOWN_FORMATS = frozenset(
    {"keyValues", "simplified", "normalized", "concise", "temporalValues", "aggregatedValues"}
)


def parse_options(options: str | None, format_: str | None = None) -> set[str]:
    """The representation options chosen by ``options`` (comma-separated) and ``format``.

    Raises ``BadRequestData`` for a value the specification does not define.
    """
    chosen = set(split_list(options))
    unknown = chosen - KNOWN_OPTIONS
    if unknown:
        raise NgsiError(
            "InvalidRequest",
            f"options {', '.join(sorted(unknown))} unknown; use {sorted(KNOWN_OPTIONS)}",
        )
    if format_:
        if format_ not in KNOWN_FORMATS:
            raise NgsiError(
                "InvalidRequest", f"format {format_!r} unknown; use {sorted(KNOWN_FORMATS)}"
            )
        chosen -= KNOWN_FORMATS  # `format` wins over a representation given in `options`
        chosen.add(format_)
    return chosen


_PROJECTION_NAME = re.compile(r"[A-Za-z@][A-Za-z0-9_:#/.@-]*")


ProjectionTree = dict[str, "ProjectionTree | None"]
"""A parsed ``pick``/``omit`` expression: member name → the expression inside its braces (None
when it has none)."""


def parse_projection_tree(text: str, *, what: str) -> ProjectionTree:
    """A ``pick``/``omit`` expression (clause 4.21) as a tree.

    The grammar is ``item ("," | "|" item)*`` with ``item = name ["{" expression "}"]``; the
    braces project the entities a relationship links to (linked-entity retrieval, ``join``).
    A malformed expression is ``BadRequestData``.
    """
    position = 0

    def expression() -> ProjectionTree:
        nonlocal position
        tree: ProjectionTree = {}
        while True:
            match = _PROJECTION_NAME.match(text, position)
            if match is None:
                raise bad_data(f"{what}: expected an attribute name at {text[position:]!r}")
            name = match.group()
            position = match.end()
            inner: ProjectionTree | None = None
            if position < len(text) and text[position] == "{":
                position += 1
                inner = expression()
                if position >= len(text) or text[position] != "}":
                    raise bad_data(f"{what}: unclosed brace in {text!r}")
                position += 1
            tree[name] = inner
            if position < len(text) and text[position] in ",|":
                position += 1
                continue
            return tree

    tree = expression()
    if position != len(text):
        raise bad_data(f"{what}: unexpected {text[position:]!r} in {text!r}")
    return tree


def parse_projection(text: str, *, what: str) -> tuple[str, ...]:
    """The top-level entity members named by a ``pick``/``omit`` expression."""
    return tuple(parse_projection_tree(text, what=what))


@dataclass(frozen=True)
class Projection:
    """Which members of an entity an answer holds (``attrs``, ``pick``, ``omit``), and how the
    entities its relationships link to are projected (``linked``: from ``rel{...}``)."""

    pick: frozenset[str] | None = None
    omit: frozenset[str] = frozenset()
    linked: Mapping[str, Projection] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def of(
        cls,
        attrs: str | None,
        pick: str | None,
        omit: str | None,
        names: jsonld.Names | None = None,
    ) -> Projection:
        """From the request's parameters; ``names`` maps the client's names to stored ones."""
        shown = cls._of(attrs, pick, omit)
        return shown if names is None else shown.renamed(names.canonical)

    def renamed(self, canonical: Callable[[str], str]) -> Projection:
        """This projection with the client's member names mapped to stored ones, the
        projections of linked entities (``rel{...}``) included."""

        def stored(members: frozenset[str]) -> frozenset[str]:
            return frozenset(m if m in ("id", "type") else canonical(m) for m in members)

        return Projection(
            pick=stored(self.pick) if self.pick is not None else None,
            omit=stored(self.omit),
            linked={canonical(k): v.renamed(canonical) for k, v in self.linked.items()},
        )

    @classmethod
    def _of(cls, attrs: str | None, pick: str | None, omit: str | None) -> Projection:
        if pick is not None and attrs is not None:
            raise bad_data("`pick` and `attrs` exclude each other; use `pick`")
        if omit is not None and attrs is not None:
            raise bad_data("`omit` and `attrs` exclude each other; use `omit`")
        picked = parse_projection_tree(pick, what="pick") if pick is not None else None
        omitted = parse_projection_tree(omit, what="omit") if omit is not None else {}
        if attrs is not None:
            names = split_list(attrs)
            for name in names:
                check_attribute_name(name)
                if name in ("id", "type"):
                    raise bad_data(f"`attrs` names attributes; {name!r} is an entity member")
            if not names:
                raise bad_data("`attrs` names no attribute")
            return cls(pick=frozenset({"id", "type", *names}))
        return cls.of_trees(picked, omitted)

    @classmethod
    def of_trees(cls, picked: ProjectionTree | None, omitted: ProjectionTree) -> Projection:
        """From parsed ``pick``/``omit`` trees: a name with braces in ``omit`` is kept (only
        members of the entity it links to are omitted)."""
        dropped = {name for name, inner in omitted.items() if inner is None}
        if picked is not None and set(picked) & dropped:
            raise bad_data(f"{sorted(set(picked) & dropped)} both picked and omitted")
        linked: dict[str, Projection] = {}
        for name in {*(picked or {}), *omitted}:
            inner_pick = (picked or {}).get(name)
            inner_omit = omitted.get(name)
            if inner_pick is not None or inner_omit is not None:
                linked[name] = cls.of_trees(inner_pick, inner_omit or {})
        return cls(
            pick=frozenset(picked) if picked is not None else None,
            omit=frozenset(dropped),
            linked=linked,
        )

    def shows(self, member: str) -> bool:
        return member not in self.omit and (self.pick is None or member in self.pick)

    def apply(self, rendered: dict[str, Any]) -> dict[str, Any]:
        """``rendered`` without the members this projection drops (``@context`` stays)."""
        return {k: v for k, v in rendered.items() if k == "@context" or self.shows(k)}

    def of_linked(self, name: str) -> Projection:
        """How the entity that relationship ``name`` links to is projected (all of it unless
        ``name{...}`` said otherwise)."""
        return self.linked.get(name) or Projection()

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attribute names picked (none: all)."""
        return tuple(sorted(self.pick - {"id", "type"})) if self.pick is not None else ()


def place_code_of(attrs: Mapping[str, Any]) -> str | None:
    """The place code an entity's attributes declare (``placeCode``, else ``district``)."""
    place = attrs.get("placeCode") or attrs.get("district")
    if isinstance(place, dict) and isinstance(place.get("value"), str):
        return str(place["value"])
    return None


def point_of(attrs: Mapping[str, Any], name: str = "location") -> tuple[float, float] | None:
    """(lat, lon) of a GeoProperty: the point itself, or the mean of a shape's vertices."""
    geometry = _geometry_of(attrs, name)
    if geometry is None:
        return None
    points = list(_flatten_points(geometry.get("coordinates")))
    if not points:
        return None
    lon = sum(p[0] for p in points) / len(points)
    lat = sum(p[1] for p in points) / len(points)
    return lat, lon


Box = tuple[float, float, float, float]
"""(lat_min, lat_max, lon_min, lon_max) in degrees."""


def box_of(attrs: Mapping[str, Any], name: str = "location") -> Box | None:
    """The box (lat_min, lat_max, lon_min, lon_max) around every vertex of a GeoProperty (a
    point's box is the point): the whole shape lies in it, whatever its size."""
    geometry = _geometry_of(attrs, name)
    return None if geometry is None else _box_around(geometry.get("coordinates"))


def _geometry_of(attrs: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The GeoJSON value of the GeoProperty ``name`` (its default instance), if it has one."""
    attribute = default_instance(attrs.get(name))
    if not isinstance(attribute, Mapping):
        return None
    geometry = attribute.get("value")
    return geometry if isinstance(geometry, Mapping) else None


def _box_around(coordinates: Any) -> Box | None:
    points = list(_flatten_points(coordinates))
    if not points:
        return None
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return min(lats), max(lats), min(lons), max(lons)


def _flatten_points(coordinates: Any) -> Iterable[tuple[float, float]]:
    if (
        isinstance(coordinates, list)
        and len(coordinates) >= 2
        and all(isinstance(c, int | float) for c in coordinates[:2])
    ):
        yield float(coordinates[0]), float(coordinates[1])
    elif isinstance(coordinates, list):
        for item in coordinates:
            yield from _flatten_points(item)


# ---------------------------------------------------------------------------------------------
# Rendering


def render_entity(
    entity_id: str,
    entity_type: str,
    attrs: Mapping[str, Any],
    *,
    key_values: bool = False,
    pick: Iterable[str] | None = None,
    context: Any = None,
    system: Mapping[str, str] | None = None,
    projection: Projection | None = None,
    concise: bool = False,
) -> dict[str, Any]:
    """An entity as the API answers it: normalised, key-values (``options=keyValues``) or concise.

    ``pick`` keeps only the attributes named; ``projection`` (``pick``/``omit``) may drop ``id``
    and ``type`` too.
    """
    wanted = set(pick) if pick else None
    shown = projection or Projection()
    out: dict[str, Any] = {}
    if shown.shows("id"):
        out["id"] = entity_id
    if shown.shows("type"):
        types = types_of(entity_type, attrs)
        out["type"] = types[0] if len(types) == 1 else types
    if system:
        out.update(system)
    for name, attribute in attrs.items():
        if wanted is not None and name not in wanted:
            continue
        if not shown.shows(name):
            continue
        if name == SCOPE:
            out[SCOPE] = scope_member(attrs)
            continue
        if name == TYPES:
            continue
        if system is None:
            attribute = without_system(attribute)
        if key_values:
            out[name] = simplify(attribute)
        elif concise:
            out[name] = concise_attribute(attribute)
        else:
            out[name] = attribute
    if context is not None:
        out["@context"] = context
    return out


def without_system(attribute: Any) -> Any:
    """A stored attribute without the ``createdAt``/``modifiedAt`` the broker keeps on each
    instance (see ``sysattrs``): what answers without ``sysAttrs`` show."""
    if isinstance(attribute, list):
        return [without_system(instance) for instance in attribute]
    if isinstance(attribute, dict) and ("createdAt" in attribute or "modifiedAt" in attribute):
        return {k: v for k, v in attribute.items() if k not in ("createdAt", "modifiedAt")}
    return attribute


def concise_attribute(attribute: Any) -> Any:
    """The concise form (clause 4.5.8): ``type`` dropped where the other members imply it, and a
    bare value when nothing else is left."""
    if isinstance(attribute, list):
        return [concise_attribute(instance) for instance in attribute]
    kind = attribute.get("type")
    out = {k: v for k, v in attribute.items() if k != "type"}
    if kind == "Property" and not isinstance(out.get("value"), Mapping) and set(out) == {"value"}:
        return out["value"]
    if kind == "GeoProperty" and set(out) == {"value"}:
        return out["value"]
    if kind in ("Property", "GeoProperty", "Relationship", "LanguageProperty"):
        for name, sub in list(out.items()):
            if isinstance(sub, Mapping) and sub.get("type") in ATTRIBUTE_TYPES:
                out[name] = concise_attribute(sub)
        return out
    return dict(attribute)


def simplify(attribute: Any) -> Any:
    if isinstance(attribute, list):
        return [simplify(instance) for instance in attribute]
    if attribute.get("type") in ("Relationship", "ListRelationship"):
        return attribute.get("object", attribute.get("objectList"))
    if attribute.get("type") == "LanguageProperty":
        return attribute.get("languageMap")
    return attribute.get("value")


def attribute_value(attribute: Mapping[str, Any]) -> Any:
    return simplify(attribute)


# ---------------------------------------------------------------------------------------------
# The q query language (subset of clause 4.9): ``;`` and, ``|`` or, parentheses, comparisons
# ==, !=, >, >=, <, <=, ~= (pattern), !~=, ranges ``a..b``, lists ``a,b``, bare attribute (exists),
# paths ``attr.sub`` (sub-attribute) and ``attr[key]`` (a key inside a structured value).

_TOKEN = re.compile(
    r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<and>;)|(?P<or>\|)"
    r"|(?P<term>[^;|()]+?(?:(?:==|!=|>=|<=|~=|!~=|>|<)(?:\"(?:[^\"\\]|\\.)*\"|[^;|()])*)?(?=[;|()]|$)))"
)
_COMPARISON = re.compile(
    r"^(?P<path>[A-Za-z0-9_.:@\[\]/#-]+?)\s*(?P<op>==|!=|>=|<=|!~=|~=|>|<)\s*(?P<value>.*)$",
    re.S,
)


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is the client's error, not a log line


@lru_cache(maxsize=256)
def compile_pattern(pattern: str, *, what: str) -> Any:
    """A client's regular expression (``q``'s ``~=``, ``idPattern``) compiled on RE2.

    RE2 matches in time linear in the text, so a pattern such as ``^(?:(?:[^Q]+)+)+Q`` cannot
    hold a CPU for seconds as Python's backtracking ``re`` does. The result has ``search`` and
    ``fullmatch``.

    Raises
    ------
    NgsiError
        ``BadRequestData`` naming ``what`` when RE2 cannot run the pattern (backreferences,
        lookaround) or it is no regular expression at all.
    """
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise NgsiError(
            "BadRequestData",
            f"{what} is not a regular expression RE2 runs: {reason} (patterns run on RE2, in "
            "linear time: no backreferences or lookaround)",
        ) from None


@dataclass(frozen=True)
class QTerm:
    path: tuple[str, ...]
    op: str | None
    value: Any


@dataclass(frozen=True)
class QNode:
    op: str  # "and" | "or"
    children: tuple[QNode | QTerm, ...]


def parse_q(text: str) -> QNode | QTerm:
    """Parse a ``q`` expression; raises ``NgsiError(InvalidRequest)`` naming the problem."""
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise NgsiError("InvalidRequest", f"q: cannot read from {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind).strip()))
        position = match.end()
    index = 0

    def expression() -> QNode | QTerm:
        nonlocal index
        parts = [conjunction()]
        while index < len(tokens) and tokens[index][0] == "or":
            index += 1
            parts.append(conjunction())
        return parts[0] if len(parts) == 1 else QNode("or", tuple(parts))

    def conjunction() -> QNode | QTerm:
        nonlocal index
        parts = [atom()]
        while index < len(tokens) and tokens[index][0] == "and":
            index += 1
            parts.append(atom())
        return parts[0] if len(parts) == 1 else QNode("and", tuple(parts))

    def atom() -> QNode | QTerm:
        nonlocal index
        if index >= len(tokens):
            raise NgsiError("InvalidRequest", f"q: expression {text!r} ends too early")
        kind, value = tokens[index]
        index += 1
        if kind == "lp":
            inner = expression()
            if index >= len(tokens) or tokens[index][0] != "rp":
                raise NgsiError("InvalidRequest", f"q: missing `)` in {text!r}")
            index += 1
            return inner
        if kind != "term":
            raise NgsiError("InvalidRequest", f"q: unexpected {value!r} in {text!r}")
        return _parse_term(value)

    tree = expression()
    if index != len(tokens):
        raise NgsiError("InvalidRequest", f"q: unexpected {tokens[index][1]!r} in {text!r}")
    return tree


def canonical_q(tree: QNode | QTerm, names: jsonld.Names) -> QNode | QTerm:
    """``tree`` with its attribute and sub-attribute names in stored form (``[key]`` parts,
    keys inside a structured value, stay as written)."""
    if isinstance(tree, QNode):
        return QNode(tree.op, tuple(canonical_q(child, names) for child in tree.children))
    path = tuple(
        part
        if part.startswith("[") or (i > 0 and part in ATTRIBUTE_MEMBERS)
        else names.canonical(part)
        for i, part in enumerate(tree.path)
    )
    return QTerm(path, tree.op, tree.value)


def _parse_path(raw: str) -> tuple[str, ...]:
    parts: list[str] = []
    for piece in raw.split("."):
        while "[" in piece:
            head, _, rest = piece.partition("[")
            key, _, piece = rest.partition("]")
            if head:
                parts.append(head)
            parts.append("[" + key)
        if piece:
            parts.append(piece)
    if not parts:
        raise NgsiError("InvalidRequest", f"q: empty attribute path in {raw!r}")
    return tuple(parts)


def _parse_value(raw: str) -> Any:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1].replace('\\"', '"')
    if raw in ("true", "false"):
        return raw == "true"
    try:
        number = float(raw)
    except ValueError:
        return raw
    return (
        int(number) if number.is_integer() and "." not in raw and "e" not in raw.lower() else number
    )


def _parse_term(text: str) -> QTerm:
    match = _COMPARISON.match(text)
    if match is None:
        return QTerm(_parse_path(text.strip()), None, None)
    op, raw = match.group("op"), match.group("value").strip()
    if raw == "" or raw[0] in "<>=!~":
        raise NgsiError("InvalidRequest", f"q: comparison {text!r} has no valid value")
    value: Any
    if op in ("==", "!=") and ".." in raw and not raw.startswith('"'):
        low, _, high = raw.partition("..")
        value = ("range", _parse_value(low), _parse_value(high))
    elif op in ("==", "!=") and "," in raw and not raw.startswith('"'):
        value = ("list", *(_parse_value(x) for x in raw.split(",")))
    elif op in ("~=", "!~="):
        pattern = raw[1:-1] if raw.startswith('"') and raw.endswith('"') else raw
        value = compile_pattern(pattern, what="q")
    else:
        value = _parse_value(raw)
    return QTerm(_parse_path(match.group("path")), op, value)


_MISSING = object()


def _resolve(attrs: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    attribute = default_instance(attrs.get(path[0]))
    if not isinstance(attribute, Mapping):
        return _MISSING
    current: Any = attribute
    rest = path[1:]
    for part in rest:
        if part.startswith("["):
            value = current.get("value") if "type" in current and "value" in current else current
            if not isinstance(value, Mapping) or part[1:] not in value:
                return _MISSING
            current = value[part[1:]]
        elif isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return _MISSING
    if isinstance(current, Mapping) and current.get("type") in ATTRIBUTE_TYPES:
        return simplify(current)
    return current


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if isinstance(actual, list):
        return any(_compare(item, op, expected) for item in actual)
    if isinstance(expected, tuple) and expected and expected[0] == "range":
        inside = _ordered(actual, ">=", expected[1]) and _ordered(actual, "<=", expected[2])
        return inside if op == "==" else not inside
    if isinstance(expected, tuple) and expected and expected[0] == "list":
        found = any(_equal(actual, candidate) for candidate in expected[1:])
        return found if op == "==" else not found
    if op == "==":
        return _equal(actual, expected)
    if op == "!=":
        return not _equal(actual, expected)
    if op in ("~=", "!~="):
        matched = isinstance(actual, str) and expected.search(actual) is not None
        return matched if op == "~=" else not matched
    return _ordered(actual, op, expected)


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected or (isinstance(expected, str) and str(actual).lower() == expected)
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return float(actual) == float(expected)
    return str(actual) == str(expected)


def _ordered(actual: Any, op: str, expected: Any) -> bool:
    if isinstance(actual, bool):
        return False
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return _in_order(float(actual), op, float(expected))
    if isinstance(actual, str):
        return _in_order(actual, op, str(expected))
    return False


_Comparable = TypeVar("_Comparable", float, str)


def _in_order(a: _Comparable, op: str, b: _Comparable) -> bool:
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def q_matches(tree: QNode | QTerm, attrs: Mapping[str, Any]) -> bool:
    """Whether an entity's (normalised) attributes satisfy a parsed ``q`` expression."""
    if isinstance(tree, QNode):
        results = (q_matches(child, attrs) for child in tree.children)
        return all(results) if tree.op == "and" else any(results)
    actual = _resolve(attrs, tree.path)
    if tree.op is None:
        return actual is not _MISSING
    if actual is _MISSING:
        return False
    return _compare(actual, tree.op, tree.value)


# ---------------------------------------------------------------------------------------------
# Geo-queries (clause 4.10): near with max/minDistance, within, intersects (points), equals,
# disjoint. Distances are great-circle metres (haversine on a 6,371,008.8 m sphere).

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class GeoQuery:
    relation: str
    geometry: str
    coordinates: Any
    max_distance: float | None = None
    min_distance: float | None = None
    attribute: str = "location"
    reference: shapes.Shape | None = field(default=None, compare=False)
    """The query's geometry taken apart, for every relation but ``near``."""

    def bounding_box(self) -> Box | None:
        """(lat_min, lat_max, lon_min, lon_max) that the box of every match (``box_of``) meets
        as ``box_test`` says, for SQL; ``None`` when there is nothing to narrow by."""
        if self.relation == "near":
            if self.max_distance is None or self.geometry != "Point":
                return None
            lon, lat = self.coordinates[0], self.coordinates[1]
            dlat = math.degrees(self.max_distance / EARTH_RADIUS_M) * 1.01
            dlon = dlat / max(math.cos(math.radians(min(89.0, abs(lat) + dlat))), 1e-6)
            return lat - dlat, lat + dlat, lon - dlon, lon + dlon
        if self.relation == "disjoint":
            return None
        return _box_around(self.coordinates)

    @property
    def box_test(self) -> str:
        """How a match's box stands to ``bounding_box``: ``inside`` it (``within``: a shape
        inside another is inside its box), ``around`` it (``contains``), else ``meets`` it
        (the nearest point of a ``near`` match, and every point two shapes share, lies in both
        boxes)."""
        if self.relation == "within":
            return "inside"
        if self.relation == "contains":
            return "around"
        return "meets"


def parse_geo_query(
    georel: str | None, geometry: str | None, coordinates: str | None, geoproperty: str | None
) -> GeoQuery | None:
    """Validate the geo-query parameters; ``None`` when none are given."""
    import json

    if georel is None and geometry is None and coordinates is None:
        return None
    if not (georel and geometry and coordinates):
        raise NgsiError(
            "BadRequestData", "a geo-query needs `georel`, `geometry` and `coordinates` together"
        )
    if geometry not in GEOJSON_TYPES:
        raise NgsiError("BadRequestData", f"geometry {geometry!r} is not a GeoJSON type")
    try:
        parsed = json.loads(coordinates)
    except ValueError:
        raise NgsiError(
            "BadRequestData", f"coordinates {coordinates!r} are not a JSON array like [71.43,51.13]"
        ) from None
    relation, *modifiers = georel.split(";")
    if relation not in (
        "near",
        "within",
        "contains",
        "intersects",
        "equals",
        "disjoint",
        "overlaps",
    ):
        raise NgsiError("BadRequestData", f"georel {relation!r} is not an NGSI-LD relation")
    max_distance = min_distance = None
    for modifier in modifiers:
        key, _, number = modifier.partition("==")
        try:
            distance = float(number)
        except ValueError:
            raise NgsiError(
                "BadRequestData", f"georel modifier {modifier!r} needs a number"
            ) from None
        if key == "maxDistance":
            max_distance = distance
        elif key == "minDistance":
            min_distance = distance
        else:
            raise NgsiError(
                "BadRequestData", f"georel modifier {key!r} is not maxDistance/minDistance"
            )
    if relation == "near":
        if geometry != "Point":
            raise NgsiError("OperationNotSupported", "near is supported with a Point geometry")
        if max_distance is None and min_distance is None:
            raise NgsiError("BadRequestData", "near needs maxDistance or minDistance")
    if geometry == "Point":
        check_geometry("coordinates", {"type": "Point", "coordinates": parsed})
    try:
        reference = shapes.shape_of({"type": geometry, "coordinates": parsed}, prepared=True)
    except ValueError as exc:
        raise NgsiError("BadRequestData", f"coordinates of the {geometry}: {exc}") from None
    return GeoQuery(
        relation,
        geometry,
        parsed,
        max_distance,
        min_distance,
        geoproperty or "location",
        reference,
    )


def _nearest_point(
    attrs: Mapping[str, Any], name: str, longitude: float, latitude: float
) -> tuple[float, float] | None:
    """(lat, lon) of the entity's geometry nearest to the given point: a Point's own position,
    a shape's nearest position (a polygon around the point: the point)."""
    attribute = default_instance(attrs.get(name))
    geometry = attribute.get("value") if isinstance(attribute, Mapping) else None
    if not isinstance(geometry, Mapping):
        return None
    if geometry.get("type") == "Point":
        return point_of(attrs, name)
    try:
        shape = shapes.shape_of(dict(geometry))
    except ValueError:
        return None
    lon, lat = shapes.nearest_position(shape, longitude, latitude)
    return lat, lon


def geo_matches(query: GeoQuery, attrs: Mapping[str, Any]) -> bool:
    """Whether the entity's GeoProperty satisfies the geo-query: ``near`` by the distance from
    the query's point to the nearest point of the entity's geometry, the other relations on the
    shapes themselves (clause 4.10)."""
    if query.relation == "near":
        qlon, qlat = query.coordinates[0], query.coordinates[1]
        point = _nearest_point(attrs, query.attribute, qlon, qlat)
        if point is None:
            return False
        distance = haversine_m(point[0], point[1], qlat, qlon)
        if query.max_distance is not None and distance > query.max_distance:
            return False
        return not (query.min_distance is not None and distance < query.min_distance)
    attribute = default_instance(attrs.get(query.attribute))
    if not isinstance(attribute, Mapping) or query.reference is None:
        return False
    try:
        target = shapes.shape_of(attribute.get("value"))
    except ValueError:
        return False
    return shapes.relate(query.relation, target, query.reference)
