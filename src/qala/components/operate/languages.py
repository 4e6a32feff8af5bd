"""Language properties answered in one language (ETSI GS CIM 009 clause 4.15, ``lang=``).

A ``LanguageProperty`` holds a ``languageMap`` (language tag → text). With ``lang`` a query or
retrieval names the languages it wants, as an HTTP ``Accept-Language`` list (``fr-CH,fr;q=0.9,
*;q=0.5``); each LanguageProperty is then answered as a Property holding the text of the best
language present and a ``lang`` member naming it (key-values: the text alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qala.components.operate.ngsi import NgsiError

_TAG_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-*@")


def parse_lang(text: str | None) -> tuple[str, ...] | None:
    """The languages of a ``lang`` parameter, best first (None: not given).

    Raises ``BadRequestData`` for an item that is no language range or a ``q`` that is no
    number in [0, 1].
    """
    if text is None:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(text.split(",")):
        tag, *params = (piece.strip() for piece in part.split(";"))
        if not tag or not set(tag) <= _TAG_CHARACTERS:
            raise NgsiError("BadRequestData", f"lang: {part.strip()!r} is not a language tag")
        quality = 1.0
        for param in params:
            key, _, number = param.partition("=")
            if key.strip() != "q":
                continue
            try:
                quality = float(number)
            except ValueError:
                quality = -1.0
            if not 0.0 <= quality <= 1.0:
                raise NgsiError("BadRequestData", f"lang: {param!r} is not a q between 0 and 1")
        if quality > 0:
            ranked.append((-quality, position, tag))
    if not ranked:
        raise NgsiError("BadRequestData", "lang names no language")
    return tuple(tag for _q, _p, tag in sorted(ranked))


def choose(language_map: Mapping[str, Any], wanted: tuple[str, ...]) -> tuple[str, Any] | None:
    """The (tag, text) of ``language_map`` that best fits ``wanted``: an exact tag, then one
    with the same primary language, ``*`` for any; else the untagged text (``@none``) or the
    first one."""
    if not language_map:
        return None
    lowered = {tag.lower(): tag for tag in language_map}
    for want in wanted:
        if want == "*":
            tag = next(iter(language_map))
            return tag, language_map[tag]
        exact = lowered.get(want.lower())
        if exact is not None:
            return exact, language_map[exact]
        primary = want.split("-", 1)[0].lower()
        for low, tag in lowered.items():
            if low.split("-", 1)[0] == primary:
                return tag, language_map[tag]
    if "@none" in language_map:
        return "@none", language_map["@none"]
    tag = next(iter(language_map))
    return tag, language_map[tag]


def localise_attribute(attribute: Any, wanted: tuple[str, ...], *, key_values: bool) -> Any:
    """A rendered attribute with its LanguageProperty instances in one language."""
    if isinstance(attribute, list):
        return [localise_attribute(a, wanted, key_values=key_values) for a in attribute]
    if key_values:
        if isinstance(attribute, Mapping) and all(isinstance(v, str) for v in attribute.values()):
            picked = choose(attribute, wanted) if attribute else None
            return picked[1] if picked else attribute
        return attribute
    if not isinstance(attribute, Mapping):
        return attribute
    language_map = attribute.get("languageMap")
    # The concise form drops `type`: a languageMap alone says LanguageProperty.
    if attribute.get("type", "LanguageProperty") != "LanguageProperty" or not isinstance(
        language_map, Mapping
    ):
        return attribute
    picked = choose(language_map, wanted)
    if picked is None:
        return attribute
    tag, text = picked
    out: dict[str, Any] = {"type": "Property"} if "type" in attribute else {}
    out["value"] = text
    if tag != "@none":
        out["lang"] = tag
    out.update({k: v for k, v in attribute.items() if k not in ("type", "languageMap")})
    return out


def localise(
    rendered: dict[str, Any],
    stored: Mapping[str, Any],
    wanted: tuple[str, ...],
    *,
    key_values: bool = False,
) -> dict[str, Any]:
    """``rendered`` (an entity) with every LanguageProperty of ``stored`` (its attributes) in
    the best of the ``wanted`` languages."""
    for name, attribute in stored.items():
        if name not in rendered or not _has_language(attribute):
            continue
        rendered[name] = localise_attribute(rendered[name], wanted, key_values=key_values)
    return rendered


def _has_language(attribute: Any) -> bool:
    instances = attribute if isinstance(attribute, list) else [attribute]
    return any(isinstance(i, Mapping) and i.get("type") == "LanguageProperty" for i in instances)
