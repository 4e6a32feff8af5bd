"""Plane geometry on longitude/latitude: great-circle distances and whether a point lies inside a
GeoJSON polygon (a city's boundary)."""
