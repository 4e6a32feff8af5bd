"""Bounded types for what callers send: every string and integer a route accepts has limits,
and the OpenAPI document states them.

Unbounded fields let a caller store a million-character note or hand the database a number no
column holds (HTTP 500). Use these in request models and route parameters instead of bare
``str``/``int``; where a field needs other limits, say them with ``Field``/``Query``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

Code = Annotated[str, StringConstraints(max_length=100)]
"""An identifier: a place, service, indicator, framework or process code, a status, a kind."""
Name = Annotated[str, StringConstraints(max_length=300)]
"""A title, a person's or organisation's name, a short label, an address."""
Text = Annotated[str, StringConstraints(max_length=10_000)]
"""Free text: a description, note, reason or answer (Open311 allows 4,000 characters)."""
Document = Annotated[str, StringConstraints(max_length=1_000_000)]
"""A whole document sent as text: an index specification, a model."""
Count = Annotated[int, Field(ge=0, le=1_000_000_000)]
"""A number of people, votes, participants or rows."""
Money = Annotated[int, Field(ge=0, le=10**15)]
"""An amount in tenge (a quadrillion: beyond any city's budget, within a 64-bit column)."""
Score = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
"""A point on an answer scale."""
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
"""A random seed (NumPy's generators take 32-bit seeds)."""
