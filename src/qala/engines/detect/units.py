"""Unit spelling and conversion for the quantities the norms use (concentrations, °C, pressure)."""

from __future__ import annotations

from qala.core.errors import ValidationError

# Spellings seen in real feeds (AirData.kz writes "µg/m³", KazHydroMet "mg/m3") → canonical text.
_ALIASES: dict[str, str] = {
    "ug/m3": "ug/m3",
    "µg/m3": "ug/m3",
    "μg/m3": "ug/m3",  # Greek mu, not the micro sign
    "µg/m³": "ug/m3",
    "μg/m³": "ug/m3",
    "ug/m³": "ug/m3",
    "mkg/m3": "ug/m3",
    "мкг/м3": "ug/m3",
    "мкг/м³": "ug/m3",
    "mg/m3": "mg/m3",
    "mg/m³": "mg/m3",
    "мг/м3": "mg/m3",
    "мг/м³": "mg/m3",
    "degc": "degC",
    "°c": "degC",
    "c": "degC",
    "celsius": "degC",
    "mpa": "MPa",
    "kpa": "kPa",
    "bar": "bar",
    "kgf/cm2": "kgf/cm2",
    "кгс/см2": "kgf/cm2",
}

# Factor to the dimension's base unit (ug/m3 for concentration, kPa for pressure, degC for temperature).
_TO_BASE: dict[str, tuple[str, float]] = {
    "ug/m3": ("concentration", 1.0),
    "mg/m3": ("concentration", 1_000.0),
    "degC": ("temperature", 1.0),
    "kPa": ("pressure", 1.0),
    "MPa": ("pressure", 1_000.0),
    "bar": ("pressure", 100.0),
    "kgf/cm2": ("pressure", 98.0665),
}


def normalise_unit(unit: str) -> str:
    """Canonical spelling of ``unit`` (``"µg/m³"`` → ``"ug/m3"``); unknown units pass unchanged."""
    key = unit.strip().replace(" ", "").lower()
    return _ALIASES.get(key, unit.strip())


def conversion_factor(from_unit: str, to_unit: str) -> float:
    """Multiplier taking a value in ``from_unit`` to ``to_unit``.

    Raises
    ------
    ValidationError
        When the units measure different things or one is unknown and they differ.
    """
    source, target = normalise_unit(from_unit), normalise_unit(to_unit)
    if source == target:
        return 1.0
    if source not in _TO_BASE or target not in _TO_BASE:
        raise ValidationError.single(
            f"cannot convert `{from_unit}` to `{to_unit}`: unknown unit",
            column="unit",
            value=from_unit,
        )
    (source_dim, source_factor), (target_dim, target_factor) = _TO_BASE[source], _TO_BASE[target]
    if source_dim != target_dim:
        raise ValidationError.single(
            f"cannot convert `{from_unit}` ({source_dim}) to `{to_unit}` ({target_dim})",
            column="unit",
            value=from_unit,
        )
    return source_factor / target_factor
