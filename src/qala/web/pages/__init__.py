"""The dashboard's pages, one router module per area; each calls component services only."""
