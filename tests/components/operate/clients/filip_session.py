"""Run by the tests with the clients' virtual env (scripts/setup_clients_venv.sh), not by pytest.

Drives Qala's NGSI-LD API with FIWARE FiLiP's ContextBrokerLDClient: create, batch upsert, query,
get, delete. Prints one JSON document of what it saw. Usage: python filip_session.py PORT TOKEN
"""

import json
import sys

import requests
from filip.clients.ngsi_ld.cb import ContextBrokerLDClient
from filip.models.ngsi_ld.context import ActionTypeLD, ContextLDEntity

port, token = int(sys.argv[1]), sys.argv[2]
session = requests.Session()
session.headers["Authorization"] = f"Bearer {token}"
client = ContextBrokerLDClient(url=f"http://127.0.0.1:{port}", session=session)

seen = {}


def streetlight(number, state):
    return ContextLDEntity(
        id=f"urn:ngsi-ld:Streetlight:astana:{number}",
        type="Streetlight",
        powerState={"type": "Property", "value": state},
        location={
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [71.42, 51.10 + number / 1000]},
        },
    )


seen["location"] = client.post_entity(streetlight(1, "on"))
client.entity_batch_operation(
    entities=[streetlight(1, "off"), streetlight(2, "on")], action_type=ActionTypeLD.UPSERT
)
one = client.get_entity("urn:ngsi-ld:Streetlight:astana:1")
seen["power_after_upsert"] = one.model_dump()["powerState"]["value"]
seen["listed"] = sorted(e.id for e in client.get_entity_list(entity_type="Streetlight"))
seen["q_on"] = sorted(
    e.id for e in client.get_entity_list(entity_type="Streetlight", q='powerState=="on"')
)
seen["near"] = sorted(
    e.id
    for e in client.get_entity_list(
        entity_type="Streetlight",
        georel="near;maxDistance==50",
        geometry="Point",
        coordinates="[71.42,51.101]",
    )
)
client.delete_entity_by_id("urn:ngsi-ld:Streetlight:astana:2")
seen["after_delete"] = sorted(e.id for e in client.get_entity_list(entity_type="Streetlight"))
print(json.dumps(seen))
