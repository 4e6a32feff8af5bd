"""Distances on the sphere and point-in-polygon tests for GeoJSON geometries (lon, lat order).

A city's boundary is small enough that treating longitude and latitude as plane coordinates
answers "inside or not" correctly; only distances need the sphere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

EARTH_RADIUS_KM = 6371.0088

Ring = Sequence[Sequence[float]]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points, km."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def in_ring(lon: float, lat: float, ring: Ring) -> bool:
    """Whether (lon, lat) is inside the closed ``ring`` (even-odd rule, ray cast eastwards)."""
    inside = False
    count = len(ring)
    for i in range(count):
        x1, y1 = float(ring[i][0]), float(ring[i][1])
        x2, y2 = float(ring[i - 1][0]), float(ring[i - 1][1])
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def in_polygon(lon: float, lat: float, rings: Sequence[Ring]) -> bool:
    """Inside the outer ring (the first) and outside every hole (the rest)."""
    if not rings or not in_ring(lon, lat, rings[0]):
        return False
    return not any(in_ring(lon, lat, hole) for hole in rings[1:])


def in_geometry(lon: float, lat: float, geometry: dict[str, Any]) -> bool:
    """Whether the point is inside a GeoJSON ``Polygon`` or ``MultiPolygon``."""
    kind, coordinates = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "Polygon":
        return in_polygon(lon, lat, coordinates)
    if kind == "MultiPolygon":
        return any(in_polygon(lon, lat, polygon) for polygon in coordinates)
    raise ValueError(f"expected a Polygon or MultiPolygon, got {kind!r}")


def radius_for_population(population: int | None) -> float:
    """How far from its centre a city takes reports when its boundary is unknown, km.

    A city's built-up area grows roughly with its population, so its radius with the square root:
    0.03 km per sqrt(resident) gives Astana (1.4 M) about 36 km, Karaganda (0.5 M) 21 km and
    Temirtau (0.17 M) 12 km, each reaching its outskirts without reaching the next city. Bounded
    to 5-40 km so a village is not a pin-point and no city swallows its neighbours.
    """
    if not population or population <= 0:
        return 10.0
    return min(40.0, max(5.0, 0.03 * math.sqrt(population)))
