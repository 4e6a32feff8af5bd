"""Versioned norm tables (YAML package data); read them through :mod:`qala.engines.detect.norms_loader`."""
