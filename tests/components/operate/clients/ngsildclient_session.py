"""Run by the tests with the clients' virtual env (scripts/setup_clients_venv.sh), not by pytest.

Drives Qala's NGSI-LD API with Orange's ngsildclient 0.5.2: create, upsert, query, get, delete.
Prints one JSON document of what it saw. Usage: python ngsildclient_session.py PORT TOKEN
"""

import json
import sys

import requests
from ngsildclient import Client, Entity

port, token = int(sys.argv[1]), sys.argv[2]


class Bearer(requests.auth.AuthBase):
    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {token}"
        return request


seen = {}
with Client(hostname="127.0.0.1", port=port, custom_auth=Bearer(), verbose=False) as client:
    first = Entity("AirQualityObserved", "Astana:kgmt-12")
    first.tprop("dateObserved", "2025-12-01T08:00:00Z")
    first.prop("pm25", 85.25, unitcode="GQ")
    first.gprop("location", (51.181287, 71.465807))
    second = Entity("AirQualityObserved", "Astana:kgmt-14")
    second.tprop("dateObserved", "2025-12-01T08:00:00Z")
    second.prop("pm25", 11.05, unitcode="GQ")
    second.gprop("location", (51.157371, 71.415058))
    seen["created"] = bool(client.create(first))
    upserted = client.upsert(second)
    seen["upserted"] = bool(upserted)
    first["pm25"].value = 90.5
    seen["upserted_again"] = bool(client.upsert(first))
    got = client.get("urn:ngsi-ld:AirQualityObserved:Astana:kgmt-12")
    seen["pm25_after_upsert"] = got["pm25"].value
    seen["query_type"] = sorted(e.id for e in client.query(type="AirQualityObserved"))
    seen["query_q"] = sorted(e.id for e in client.query(type="AirQualityObserved", q="pm25>50"))
    seen["count"] = client.count(type="AirQualityObserved")
    seen["exists_before_delete"] = client.exists("urn:ngsi-ld:AirQualityObserved:Astana:kgmt-14")
    seen["deleted"] = bool(
        client.delete(second)
    )  # a bare id string would be split into characters by 0.5.2
    seen["exists_after_delete"] = client.exists("urn:ngsi-ld:AirQualityObserved:Astana:kgmt-14")
print(json.dumps(seen))
