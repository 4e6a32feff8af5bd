"""Cost of naming an NGSI-LD entity through a JSON-LD @context, per request.

    PYTHONPATH=src .venv/bin/python bench/ngsi_jsonld.py [--rounds 300]

Compares, on a Smart Data Models-like AirQualityObserved in normalised form (12 attributes, two
with sub-attributes) written under a user context and read under another:

- **PyLD**: ``jsonld.expand`` of the incoming entity and ``jsonld.compact`` of the stored one
  (contexts from an in-memory loader, so no network: only processing is timed);
- **term map** (what ``operate/jsonld.py`` does): the contexts processed once by PyLD into a term
  map, then ``canonical_entity`` and ``compact_entity``, dictionary look-ups per name.

Prints wall and CPU (process) time per entity for each.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from pyld import jsonld as pyld

from qala.components.operate import jsonld

CTX_URL = "https://contexts.example.org/air.jsonld"
ALT_URL = "https://contexts.example.org/alternative.jsonld"
TERMS = ["pm25", "pm10", "no2", "o3", "so2", "co", "temperature", "relativeHumidity", "windSpeed"]
USER = {"@context": {t: f"https://vocab.example.org/air#{t}" for t in TERMS}}
USER["@context"]["AirQualityObserved"] = "https://vocab.example.org/air#AirQualityObserved"
ALT = {"@context": {f"alt_{t}": f"https://vocab.example.org/air#{t}" for t in TERMS}}


def entity() -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "urn:ngsi-ld:AirQualityObserved:kgmt-9",
        "type": "AirQualityObserved",
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [71.4, 51.1]},
        },
        "dateObserved": {"type": "Property", "value": "2026-12-06T06:00:00Z"},
        "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:kgmt-9"},
    }
    for number, term in enumerate(TERMS):
        body[term] = {
            "type": "Property",
            "value": 10.5 + number,
            "observedAt": "2026-12-06T06:00:00Z",
            "unitCode": "GQ",
        }
    body["pm25"]["quality"] = {"type": "Property", "value": "validated"}
    body["no2"]["source"] = {"type": "Relationship", "object": "urn:ngsi-ld:Device:x"}
    return body


def loader(url: str, _options: Any = None) -> dict[str, Any]:
    documents = {CTX_URL: USER, ALT_URL: ALT, jsonld.CORE_CONTEXT: jsonld.BUILT_IN_CORE}
    return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url,
            "document": documents[url]}  # fmt: skip


def timed(label: str, rounds: int, step: Any) -> None:
    step()  # warm caches (contexts processed once, as a running server has them)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<34} {wall / rounds * 1e3:8.3f} ms wall  {cpu / rounds * 1e3:8.3f} ms CPU")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    rounds = parser.parse_args().rounds
    body = {**entity(), "@context": [CTX_URL, jsonld.CORE_CONTEXT]}
    options = {"documentLoader": loader}

    def with_pyld() -> None:
        expanded = pyld.expand(body, options)
        pyld.compact(expanded, {"@context": [ALT_URL, jsonld.CORE_CONTEXT]}, options)

    # The term map reads contexts from files or memory: hand it the same documents.
    jsonld.configure()
    jsonld._RESOLVER.loader.documents.update({CTX_URL: USER, ALT_URL: ALT})

    def with_terms() -> None:
        stored = jsonld.canonical_entity(body, jsonld.names(body["@context"]))
        jsonld.compact_entity(stored, jsonld.names(ALT_URL))

    print(f"one entity, {len(TERMS) + 3} attributes, written under one context, read under another")
    timed("PyLD expand + compact", rounds, with_pyld)
    timed("term map (operate/jsonld.py)", rounds, with_terms)


if __name__ == "__main__":
    main()
