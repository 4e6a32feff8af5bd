"""The `qala` command line: a thin shell over components and engines."""
