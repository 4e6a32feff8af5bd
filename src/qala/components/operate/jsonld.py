"""JSON-LD term expansion and compaction for the NGSI-LD API (ETSI GS CIM 009 clause 5.5.7).

An NGSI-LD client names entity types and attributes with short terms that its ``@context``
(a ``Link`` header, or ``@context`` in an ``application/ld+json`` body) maps to IRIs; terms the
context does not define fall to the core context's default vocabulary
``https://uri.etsi.org/ngsi-ld/default-context/``. Two clients with different contexts must see
the same data, so Qala keeps every name in one **canonical form**: the IRI the writer's context
gives, compacted again with the core context alone. A term of the default vocabulary (the usual
case: Smart Data Models attributes sent without a context Qala can resolve) stays the short name
the client sent, core terms (``location``, ``observedAt``) stay themselves, and a term the
writer's context maps elsewhere is kept as its full IRI (``https://ngsi-ld-test-suite/context#speed``).
Answers compact the canonical names with the reader's context (``to_reader``).

Contexts are processed with PyLD (``pyld.jsonld.JsonLdProcessor.process_context``) into a term
map, once per distinct context, and cached; naming a term is then a dictionary look-up. PyLD's
full ``expand``/``compact`` of a whole entity costs milliseconds per request (see
``bench/ngsi_jsonld.py``), while Qala only needs the names of types, attributes and
sub-attributes mapped.

Where context documents come from (``configure``):

- the core context: the document given by ``ngsi_core_context_file`` (e.g. fetched once at
  setup time from the ETSI URL), else a built-in map of the core terms that name attributes
  and members, written from the specification's list (clause 5.5.7 and Annex B);
- ``ngsi_context_files``: URL prefix → local file or folder, preloaded copies of the contexts a
  deployment uses (the conformance script maps the suites' context URLs to their own folders);
- remote contexts are fetched only when ``ngsi_context_fetch`` is true, with
  ``ngsi_context_timeout_s``; a context that cannot then be retrieved is answered 503
  ``LdContextNotAvailable``. With fetching off (the default) a context URL Qala does not hold
  defines no term: names stay as the client sent them, as before this module existed.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
NGSI_LD = "https://uri.etsi.org/ngsi-ld/"
DEFAULT_VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
_CORE_URL = re.compile(
    r"^https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(?:-v1\.[0-9])?\.jsonld$"
)
"""The published core context URLs (unversioned, v1.0 … v1.9)."""

_ETSI_CONTEXTS = ("https://uri.etsi.org/ngsi-ld/v1/", "http://uri.etsi.org/ngsi-ld/v1/")

# Members that are JSON-LD keywords or NGSI-LD structure, never renamed.
KEYWORDS = frozenset({"id", "type", "@context", "@id", "@type", "@value", "@language", "@none"})

# Core terms that may name an entity member or an attribute (their IRI is ngsi-ld:<term>).
_CORE_TERMS = (
    "location",
    "observationSpace",
    "operationSpace",
    "createdAt",
    "modifiedAt",
    "deletedAt",
    "observedAt",
    "unitCode",
    "datasetId",
    "instanceId",
    "scope",
    "lang",
    "languageMap",
    "valueList",
    "objectList",
    "objectType",
    "vocab",
    "json",
    "previousValue",
    "previousObject",
    "previousLanguageMap",
    "Property",
    "Relationship",
    "GeoProperty",
    "LanguageProperty",
    "ListProperty",
    "ListRelationship",
    "VocabProperty",
    "JsonProperty",
    "Subscription",
    "Notification",
    "EntityType",
    "EntityTypeList",
    "EntityTypeInfo",
    "Attribute",
    "AttributeList",
    "ContextSourceRegistration",
)
BUILT_IN_CORE: dict[str, Any] = {
    "@context": {
        "@vocab": DEFAULT_VOCAB,
        "ngsi-ld": NGSI_LD,
        "id": "@id",
        "type": "@type",
        "value": "ngsi-ld:hasValue",
        "object": "ngsi-ld:hasObject",
        **{term: f"ngsi-ld:{term}" for term in _CORE_TERMS},
    }
}
"""The core context's terms as far as names go: what Qala uses when no copy of the ETSI document
is configured (``ngsi_core_context_file``)."""


def is_core_context(context: Any) -> bool:
    """Whether ``context`` is one of the core context's URLs (alone)."""
    if isinstance(context, list) and len(context) == 1:
        context = context[0]
    return isinstance(context, str) and _CORE_URL.match(context) is not None


def includes_core(url: str) -> bool:
    """Whether the context document at ``url`` (one Qala holds) names the core context itself,
    as "full" contexts do (``[user context, core context]``)."""
    try:
        document = _RESOLVER.loader.load(url)
    except (ContextNotAvailable, _Unknown):
        return False
    inner = document.get("@context") if isinstance(document, Mapping) else None
    return any(is_core_context(item) for item in _as_list(inner))


class ContextNotAvailable(Exception):
    """A context document could not be retrieved or is not a JSON-LD context."""


@dataclass
class Loader:
    """Where context documents come from, and the documents already read (by URL)."""

    core: Mapping[str, Any] = field(default_factory=lambda: BUILT_IN_CORE)
    files: Mapping[str, Path] = field(default_factory=dict)
    fetch: bool = False
    timeout_s: float = 5.0
    documents: dict[str, Any] = field(default_factory=dict)

    def load(self, url: str) -> Any:
        if _CORE_URL.match(url):
            return self.core
        if url in self.documents:
            return self.documents[url]
        document = self._local(url)
        if document is None and self.fetch:
            document = self._fetch(url)
        if document is None and url.startswith(_ETSI_CONTEXTS):
            # Qala knows every published core context: another name there is none of them.
            raise ContextNotAvailable(f"{url} is not a published NGSI-LD core context")
        if document is None:
            raise _Unknown(url)
        if not isinstance(document, Mapping) or "@context" not in document:
            raise ContextNotAvailable(f"{url} is not a JSON-LD context document")
        self.documents[url] = document
        return document

    def _local(self, url: str) -> Any:
        for prefix, path in self.files.items():
            if not url.startswith(prefix):
                continue
            target = path / url[len(prefix) :].lstrip("/") if path.is_dir() else path
            try:
                return json.loads(target.read_text(encoding="utf-8"))
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                raise ContextNotAvailable(f"{url}: {exc}") from None
        return None

    def _fetch(self, url: str) -> Any:
        if not url.startswith(("http://", "https://")):
            raise ContextNotAvailable(f"{url} is not an http(s) URL")
        request = urllib.request.Request(
            url, headers={"Accept": "application/ld+json, application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                return json.loads(answer.read(2_000_000))
        except (OSError, ValueError) as exc:
            raise ContextNotAvailable(f"{url} could not be retrieved: {exc}") from None


class _Unknown(Exception):
    """A context URL Qala neither holds nor may fetch."""


@dataclass(frozen=True)
class Terms:
    """A processed context: term → IRI, the vocabulary, and IRI → term for compaction."""

    mapping: Mapping[str, str]
    vocab: str | None
    inverse: Mapping[str, str]
    prefixes: tuple[tuple[str, str], ...]  # (IRI prefix, term), longest first

    @classmethod
    def of(cls, mapping: Mapping[str, str], vocab: str | None) -> Terms:
        inverse: dict[str, str] = {}
        for term, iri in sorted(mapping.items(), key=lambda kv: (len(kv[0]), kv[0])):
            inverse.setdefault(iri, term)
        prefixes = tuple(
            sorted(
                ((iri, term) for term, iri in mapping.items() if iri.endswith(("/", "#", ":"))),
                key=lambda pair: -len(pair[0]),
            )
        )
        return cls(mapping, vocab, inverse, prefixes)

    def expand(self, name: str) -> str:
        """The IRI a name stands for (clause 5.5.7: an undefined term falls to @vocab)."""
        if name in KEYWORDS or name.startswith("@"):
            return name
        iri = self.mapping.get(name)
        if iri is not None:
            return iri
        prefix, colon, suffix = name.partition(":")
        if colon:
            if prefix in self.mapping and not suffix.startswith("//"):
                return self.mapping[prefix] + suffix
            return name  # an absolute IRI (urn:…, https://…)
        return (self.vocab or "") + name

    def compact(self, iri: str) -> str:
        """The shortest name this context gives an IRI (the IRI itself when none)."""
        if iri in KEYWORDS or iri.startswith("@"):
            return iri
        term = self.inverse.get(iri)
        if term is not None:
            return term
        if self.vocab and iri.startswith(self.vocab):
            rest = iri[len(self.vocab) :]
            if rest and rest not in self.mapping and ":" not in rest:
                return rest
        for prefix, name in self.prefixes:
            if iri.startswith(prefix) and len(iri) > len(prefix):
                return f"{name}:{iri[len(prefix) :]}"
        return iri


class Names:
    """Names between one client context and Qala's canonical form."""

    def __init__(self, terms: Terms, core: Terms) -> None:
        self.terms = terms
        self.core = core
        self._in: dict[str, str] = {}
        self._out: dict[str, str] = {}

    def canonical(self, name: str) -> str:
        """The stored form of a name the client sent."""
        found = self._in.get(name)
        if found is None:
            found = self._in[name] = self.core.compact(self.terms.expand(name))
        return found

    def to_reader(self, stored: str) -> str:
        """A stored name as this client's context names it."""
        found = self._out.get(stored)
        if found is None:
            found = self._out[stored] = self.terms.compact(self.core.expand(stored))
        return found

    def canonical_list(self, names: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.canonical(n) for n in names)

    def expanded(self, name: str) -> str:
        """The full IRI of a name the client sent."""
        return self.terms.expand(name)


class Resolver:
    """Turns ``@context`` values into ``Names``, caching processed contexts."""

    MAX_CACHED = 256

    def __init__(self, loader: Loader | None = None) -> None:
        self.loader = loader or Loader()
        self._lock = threading.Lock()
        self._cache: dict[str, Names] = {}
        self._core: Terms | None = None

    @property
    def core(self) -> Terms:
        if self._core is None:
            self._core = self._process([CORE_CONTEXT])
        return self._core

    def names(self, context: Any) -> Names:
        """``Names`` for a request's ``@context`` (a URL, an object, a list, or None: core).

        Raises ``ContextNotAvailable`` when the context cannot be retrieved or processed.
        """
        key = json.dumps(context, sort_keys=True, ensure_ascii=False)
        with self._lock:
            found = self._cache.get(key)
        if found is not None:
            return found
        core = self.core
        terms = core if context is None else self._process([CORE_CONTEXT, *_as_list(context)])
        found = Names(terms, core)
        with self._lock:
            if len(self._cache) >= self.MAX_CACHED:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = found
        return found

    def _process(self, contexts: list[Any]) -> Terms:
        from pyld import jsonld

        known: list[Any] = []
        for item in contexts:  # unknown URLs (fetching off) define nothing
            if isinstance(item, str):
                try:
                    self.loader.load(item)
                except _Unknown:
                    log.debug("JSON-LD context %s is not held here; its terms stay as sent", item)
                    continue
            known.append(item)

        def document_loader(url: str, _options: Any = None) -> dict[str, Any]:
            try:
                document = self.loader.load(url)
            except _Unknown:
                document = {"@context": {}}
            return {
                "contentType": "application/ld+json",
                "contextUrl": None,
                "documentUrl": url,
                "document": document,
            }

        processor = jsonld.JsonLdProcessor()
        options = {"documentLoader": document_loader, "base": "", "processingMode": "json-ld-1.1"}
        try:
            active = processor.process_context(
                processor._get_initial_context(options),  # PyLD has no public name for it
                known,
                options,
            )
        except jsonld.JsonLdError as exc:
            cause = exc
            while getattr(cause, "cause", None) is not None:
                cause = cause.cause
            if isinstance(cause, ContextNotAvailable):
                raise cause from None
            raise ContextNotAvailable(
                f"the @context is not a valid JSON-LD context: {exc}"
            ) from None
        mapping = {
            term: definition["@id"]
            for term, definition in active["mappings"].items()
            if isinstance(definition, Mapping) and isinstance(definition.get("@id"), str)
        }
        return Terms.of(mapping, active.get("@vocab"))


def _as_list(context: Any) -> list[Any]:
    if isinstance(context, list):
        return list(context)
    return [context]


_RESOLVER = Resolver()
_CONFIGURED: tuple[Any, ...] | None = None


def configure(
    *,
    core_file: Path | None = None,
    files: Mapping[str, Path] | None = None,
    fetch: bool = False,
    timeout_s: float = 5.0,
) -> None:
    """Where contexts come from (see the module's text); forgets every cached context."""
    global _RESOLVER, _CONFIGURED
    key = (core_file, tuple(sorted((files or {}).items())), fetch, timeout_s)
    if key == _CONFIGURED:
        return
    core: Mapping[str, Any] = BUILT_IN_CORE
    if core_file is not None:
        core = json.loads(Path(core_file).read_text(encoding="utf-8"))
    _RESOLVER = Resolver(
        Loader(core=core, files=dict(files or {}), fetch=fetch, timeout_s=timeout_s)
    )
    _CONFIGURED = key


def configure_from(settings: Any) -> None:
    """``configure`` from Qala's settings (``ngsi_core_context_file``, ``ngsi_context_files``,
    ``ngsi_context_fetch``, ``ngsi_context_timeout_s``)."""
    configure(
        core_file=getattr(settings, "ngsi_core_context_file", None),
        files={
            k: Path(v) for k, v in (getattr(settings, "ngsi_context_files", None) or {}).items()
        },
        fetch=bool(getattr(settings, "ngsi_context_fetch", False)),
        timeout_s=float(getattr(settings, "ngsi_context_timeout_s", 5.0)),
    )


def names(context: Any) -> Names:
    """``Names`` of a client's ``@context`` (None: the core context alone)."""
    if isinstance(context, list) and not context:
        context = None
    return _RESOLVER.names(context)


# ---------------------------------------------------------------------------------------------
# Whole entities


ATTRIBUTE_MEMBERS = frozenset(
    {
        "type",
        "value",
        "object",
        "observedAt",
        "unitCode",
        "datasetId",
        "createdAt",
        "modifiedAt",
        "deletedAt",
        "languageMap",
        "lang",
        "valueList",
        "objectList",
        "objectType",
        "vocab",
        "json",
        "instanceId",
        "previousValue",
        "previousObject",
        "previousLanguageMap",
    }
)
"""Members of a normalised attribute that are not sub-attributes."""
# Members of an attribute that hold no sub-attribute (their names are never mapped).
_MEMBERS = ATTRIBUTE_MEMBERS | {"values", "@context"}
_ATTRIBUTE_TYPES = frozenset(
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
_ENTITY_MEMBERS = frozenset({"id", "type", "@context", "scope", "createdAt", "modifiedAt"})


def _rename_attribute(attribute: Any, rename: Callable[[str], str]) -> Any:
    if isinstance(attribute, list):
        return [_rename_attribute(item, rename) for item in attribute]
    if not isinstance(attribute, Mapping) or attribute.get("type") not in _ATTRIBUTE_TYPES:
        return attribute
    out: dict[str, Any] = {}
    for key, member in attribute.items():
        if key in _MEMBERS:
            out[key] = member
        else:
            out[rename(key)] = _rename_attribute(member, rename)
    return out


def _rename_type(value: Any, rename: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return rename(value)
    if isinstance(value, list):
        return [rename(v) if isinstance(v, str) else v for v in value]
    return value


def canonical_entity(body: Mapping[str, Any], names_: Names) -> dict[str, Any]:
    """An incoming entity (or fragment) with its type, attribute and sub-attribute names in
    canonical form; values are left as they are."""
    out: dict[str, Any] = {}
    for key, member in body.items():
        if key == "type":
            out[key] = _rename_type(member, names_.canonical)
        elif key in _ENTITY_MEMBERS:
            out[key] = member
        else:
            name = names_.canonical(key) if isinstance(key, str) else key
            out[name] = _rename_attribute(member, names_.canonical)
    return out


def compact_entity(entity: Mapping[str, Any], names_: Names) -> dict[str, Any]:
    """A rendered entity (any format) with its names as the reader's context gives them."""
    out: dict[str, Any] = {}
    for key, member in entity.items():
        if key == "type":
            out[key] = _rename_type(member, names_.to_reader)
        elif key in _ENTITY_MEMBERS:
            out[key] = member
        else:
            out[names_.to_reader(key)] = _rename_attribute(member, names_.to_reader)
    return out
