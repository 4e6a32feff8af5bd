"""Pure computation: composite indices, PLS-SEM, participatory-budgeting rules, stream rules.

Nothing here touches a database, a file, the network or the web (checked by import-linter).
"""
