"""A crawler over the dashboard through the ASGI app, collecting each page's visible text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from fastapi.testclient import TestClient

SHOWN_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt")
INVISIBLE = {"script", "style", "template", "noscript"}
CODES = {"code", "kbd", "samp", "cite"}
"""Text set as code (a user name to type, an id) is a code, not a word of the page's language;
a cited source's title (``<cite>``) stays as its publisher wrote it."""
SKIPPED_PREFIXES = ("/api", "/static", "/docs", "/redoc", "/openapi", "/logout", "/reports/")


class VisibleText(HTMLParser):
    """The text a reader sees (and hears from a screen reader), and the page's links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in INVISIBLE or tag in CODES:
            self._hidden += 1
        values = dict(attrs)
        for name in SHOWN_ATTRIBUTES:
            if values.get(name):
                self.parts.append(str(values[name]))
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.parts.append(str(values["value"]))
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))

    def handle_endtag(self, tag: str) -> None:
        if (tag in INVISIBLE or tag in CODES) and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.parts.append(data.strip())


@dataclass
class Page:
    path: str
    status: int
    text: str


def route_shape(path: str) -> str:
    """``/places/astana`` and ``/places/almaty`` are one shape; numbers and slugs fold."""
    parts = [p for p in path.split("/") if p]
    shape = [parts[0]] if parts else []
    shape += ["*" for _ in parts[1:]]
    return "/" + "/".join(shape)


def crawl(
    client: TestClient,
    start: str,
    *,
    language: str,
    per_shape: int = 3,
    limit: int = 200,
    raw: bool = False,
) -> Iterator[Page]:
    """Pages reachable by links from ``start`` (GET only, this site only), a few of each shape;
    each page's visible text, or its whole HTML with ``raw``."""
    queue = [start]
    seen: set[str] = set()
    shapes: dict[str, int] = {}
    while queue and len(seen) < limit:
        path = queue.pop(0)
        split = urlsplit(path)
        if split.netloc or not split.path.startswith("/") or split.path in seen:
            continue
        if split.path.startswith(SKIPPED_PREFIXES) or split.path.endswith((".pdf", ".csv")):
            continue
        shape = route_shape(split.path)
        if shapes.get(shape, 0) >= per_shape:
            continue
        shapes[shape] = shapes.get(shape, 0) + 1
        seen.add(split.path)
        query = split.query.replace("lang=en", "").replace("lang=kk", "").replace("lang=ru", "")
        joiner = "&" if query.strip("&") else ""
        answer = client.get(f"{split.path}?{query.strip('&')}{joiner}lang={language}")
        if "text/html" not in answer.headers.get("content-type", ""):
            continue
        parser = VisibleText()
        parser.feed(answer.text)
        text = answer.text if raw else "\n".join(parser.parts)
        yield Page(split.path, answer.status_code, text)
        for link in parser.links:
            target = urljoin(split.path, link.split("#")[0])
            if target and urlsplit(target).path not in seen:
                queue.append(target)


TOKEN = re.compile(r"[^\s,;()«»\"“”'’!?|·—–/\[\]{}<>=+*]+")
LATIN = re.compile(r"[A-Za-z]{2,}")
CODE_LIKE = re.compile(r"[0-9₀-₉_.@:#]")
"""Tokens with digits (CO₂ too), underscores, dots, ``@`` or colons are codes, formulas, ids,
addresses or times."""


def latin_words(text: str) -> set[str]:
    """Words in Latin letters a reader would read as words (codes and ids left out)."""
    found: set[str] = set()
    for token in TOKEN.findall(text):
        if CODE_LIKE.search(token.rstrip(".:")):
            continue
        found.update(LATIN.findall(token))
    return found
