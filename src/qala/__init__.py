"""Qala: an open smart-city platform for Kazakhstan's cities — measure, operate, participate."""

__version__ = "0.1.0"
