"""Core vocabulary shared by every layer: errors, units, languages. No I/O here."""
