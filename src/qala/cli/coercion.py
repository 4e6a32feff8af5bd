"""Plain conversion of command-line values, so a command does not import pydantic.

Typer (0.29) converts every option value with a pydantic ``TypeAdapter``; importing pydantic and
building the adapters cost 0.05–0.1 s of every command's start, more than some commands' work.
For the plain annotations almost every Qala option has — ``str``, ``int``, ``float``, ``Path``
and their optional forms, without bounds, choices or a custom parser — this module installs a
converter with the same results and the same error messages. Anything else (and any Typer whose
internals differ from what is checked here) keeps Typer's own conversion.
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any

from typer import _click as click, _coercion, core
from typer._param_types import coerce_cli_path

# pydantic's wording, which Typer shows for a value that is not a number or a truth value
NOT_AN_INTEGER = "Input should be a valid integer, unable to parse string as an integer"
NOT_A_NUMBER = "Input should be a valid number, unable to parse string as a number"
NOT_A_BOOLEAN = "Input should be a valid boolean, unable to interpret input"
TRUE_WORDS = frozenset({"1", "on", "t", "true", "y", "yes"})
FALSE_WORDS = frozenset({"0", "off", "f", "false", "n", "no", ""})


def _plain_type(annotation: Any) -> type | None:
    """``str``, ``int``, ``float`` or ``Path`` when the annotation is one of them (or
    ``X | None``); None otherwise."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            return None
        annotation = args[0]
    if annotation in (str, int, float, bool) or annotation is Path:
        return typing.cast(type, annotation)
    return None


def _number(value: Any, kind: type, param: Any, ctx: click.Context) -> Any:
    if isinstance(value, kind) and not isinstance(value, bool):
        return value
    text = value.strip() if isinstance(value, str) else value
    try:
        if kind is int:
            if isinstance(text, float):
                if text.is_integer():
                    return int(text)
                raise ValueError
            if isinstance(text, str) and "_" in text:  # pydantic refuses 1_000, Python not
                raise ValueError
            return int(text)
        if isinstance(text, str) and "_" in text:
            raise ValueError
        return float(text)
    except (TypeError, ValueError):
        message = NOT_AN_INTEGER if kind is int else NOT_A_NUMBER
        raise click.exceptions.BadParameter(message, ctx=ctx, param=param) from None


def _truth(value: Any, param: Any, ctx: click.Context) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = value.strip().lower() if isinstance(value, str) else None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise click.exceptions.BadParameter(NOT_A_BOOLEAN, ctx=ctx, param=param)


class PlainRuntimeParam(_coercion.RuntimeParam):
    """Converts a value of a plain annotation without pydantic."""

    def _coerce_value(self, value: Any, param: Any, ctx: click.Context) -> Any:
        kind = _plain_type(self.annotation)
        if kind is bool:
            return _truth(value, param, ctx)
        if kind is int or kind is float:
            return _number(value, kind, param, ctx)
        if kind is str:
            if isinstance(value, bytes):
                return value.decode(sys.getfilesystemencoding(), "replace")
            return str(value)
        # Path: Typer's own checks (exists, file_okay, …) run on a Path it need not convert
        path = value if isinstance(value, Path) else Path(value)
        return coerce_cli_path(path, self.parameter_info, path_type=Path, param=param, ctx=ctx)


def _plain(param: Any) -> bool:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or descriptor.file_annotation is not None:
        return False
    info = descriptor.parameter_info
    if info.parser is not None or info.min is not None or info.max is not None:
        return False
    if getattr(info, "path_type", None) not in (None, Path):
        return False
    if param.multiple or param.nargs != 1:
        return False
    return _plain_type(descriptor.annotation) is not None


def install(command: click.Command) -> click.Command:
    """Give every plain parameter of ``command`` (and its sub-commands) the plain converter,
    ``--help`` included (click adds it when parsing; Qala keeps click's default name)."""
    if not hasattr(core._TyperParameter, "get_runtime_param"):
        return command  # a Typer whose conversion works differently: leave it alone
    for param in command.get_params(click.Context(command)):
        if (
            isinstance(param, core._TyperParameter)
            and param._runtime_param is None
            and _plain(param)
        ):
            descriptor = param.type_descriptor
            param._runtime_param = PlainRuntimeParam(
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
            )
    for sub in getattr(command, "commands", {}).values():  # a group's sub-commands
        install(sub)
    return command
