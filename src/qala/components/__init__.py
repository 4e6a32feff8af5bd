"""Capabilities of the platform, one package each (see ``qala.registry``).

Components never import each other, except the foundation ``catalog`` (places, indicators, values)
and ``accounts`` (who is calling), which every other component may use.
"""
