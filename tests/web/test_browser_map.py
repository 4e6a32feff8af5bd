"""The city maps in Chromium: Leaflet over a tile server the deployment names, else the offline SVG.

A tile server runs on loopback in the test (one small PNG for any ``/z/x/y.png``, every request
recorded). With ``QALA_TILE_URL`` pointing at it the requests page and the budgeting page load
tiles from it, show a public request and a project as markers whose popups read in Kazakh, and
name the districts in Kazakh; the CSP names the tile origin. Without the setting the SVG shows,
the CSP names no tile host, and the browser asks nothing of any host but the site.
"""

from __future__ import annotations

import shutil
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import need
from tests.web.conftest import _free_port, load_small_demo, shot

from qala.core.i18n import Translator
from qala.runtime import Context
from qala.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def tiny_png() -> bytes:
    """A 256×256 light-green PNG, written by hand (no imaging library)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xd8\xec\xc8" * 256 for _ in range(256))
    header = struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@dataclass
class TileServer:
    origin: str
    paths: list[str]


@pytest.fixture(scope="module")
def tile_server() -> Iterator[TileServer]:
    png = tiny_png()
    paths: list[str] = []

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield TileServer(f"http://127.0.0.1:{server.server_address[1]}", paths)
    server.shutdown()


@dataclass
class Sites:
    tiled: str
    offline: str


def serve(settings: Settings, context: Context) -> tuple[str, Any]:
    import uvicorn

    from qala.api.app import create_app

    app = create_app(settings, context=context)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


@pytest.fixture(scope="module")
def sites(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory, tile_server: TileServer
) -> Iterator[Sites]:
    """One demo store, served twice: with the tile server named, and without."""
    folder = tmp_path_factory.mktemp("maps")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    url = f"sqlite:///{folder / 'qala.sqlite'}"
    offline = Settings(database_url=url, secret_key="maps")
    tiled = Settings(
        database_url=url,
        secret_key="maps",
        tile_url=tile_server.origin + "/{z}/{x}/{y}.png",
        tile_attribution="© Test <b>tiles</b>",
    )
    offline_context = Context.from_settings(offline)
    load_small_demo(offline_context, replications=0, years=1)
    tiled_context = Context.from_settings(tiled)
    tiled_url, tiled_server = serve(tiled, tiled_context)
    offline_url, offline_server = serve(offline, offline_context)
    yield Sites(tiled_url, offline_url)
    for server in (tiled_server, offline_server):
        server.should_exit = True


def open_page(browser: Any, url: str, width: int = 1200) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    answer = page.goto(url)
    assert answer is not None and answer.status == 200, url
    return context, page, asked


def popup_of_first(page: Any, selector: str) -> str:
    page.locator(selector).first.click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(state="visible", timeout=5000)
    return str(popup.inner_text())


def test_the_tiled_map_shows_requests_and_projects_in_kazakh(
    browser: Any, sites: Sites, tile_server: TileServer
) -> None:
    from qala.web.geo import VENDOR

    built = (VENDOR / "leaflet" / "leaflet.js").exists()
    need(built, "static/vendor/leaflet not built (python scripts/build_assets.py)")
    context, page, _asked = open_page(browser, f"{sites.tiled}/requests?city=astana&lang=kk")
    headers = context.request.get(f"{sites.tiled}/requests").headers
    assert tile_server.origin in headers["content-security-policy"].split("img-src")[1]
    page.locator(".leaflet-tile-loaded").first.wait_for(timeout=10000)
    assert tile_server.paths, "no tile was asked of the tile server"
    assert page.locator("svg.map.local").count() == 0  # the SVG gave way to the tiles
    assert page.locator(".marker-request").count() >= 1
    text = popup_of_first(page, ".marker-request")
    kazakh = Translator("kk")
    statuses = [kazakh(f"status.{s}") for s in ("open", "acknowledged", "in_progress", "closed")]
    assert "өтініш" in text and kazakh("request.filed") in text, text
    assert any(status in text.splitlines() for status in statuses), text
    labels = page.locator(".district-label").all_inner_texts()
    assert "Есіл ауданы" in labels, labels
    attribution = page.locator(".leaflet-control-attribution").inner_text()
    assert "© Test <b>tiles</b>" in attribution  # the configured text, shown as text
    assert page.locator(".leaflet-control-zoom-in").get_attribute("title") == "Жақындату"
    shot(page, "map-requests-tiled-kk")

    page.goto(f"{sites.tiled}/budgeting?lang=kk")
    page.locator(".leaflet-tile-loaded").first.wait_for(timeout=10000)
    assert page.locator(".marker-project").count() == 2
    text = popup_of_first(page, ".marker-project")
    assert "Бюджет" in text and "₸" in text, text
    assert "Қабанбай батыр" in text or "Жылы аялдамалар" in text, text
    shot(page, "map-budgeting-tiled-kk")
    context.close()


def test_without_a_tile_server_the_svg_shows_and_nothing_leaves_the_site(
    browser: Any, sites: Sites, tile_server: TileServer
) -> None:
    before = len(tile_server.paths)
    for path in ("/requests?city=astana&lang=kk", "/budgeting?lang=kk"):
        context, page, asked = open_page(browser, f"{sites.offline}{path}")
        page.wait_for_load_state("networkidle")
        assert page.locator("svg.map.local").count() >= 1, path
        assert page.locator(".leaflet-container").count() == 0, path
        assert all(url.startswith(sites.offline) for url in asked), asked
        headers = context.request.get(f"{sites.offline}{path}").headers
        images = headers["content-security-policy"].split("img-src")[1].split(";")[0]
        assert "127.0.0.1:" not in images
        context.close()
    assert len(tile_server.paths) == before


@pytest.mark.parametrize("site", ["tiled", "offline"])
def test_a_phone_never_scrolls_sideways_on_the_maps(browser: Any, sites: Sites, site: str) -> None:
    base = getattr(sites, site)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    for path in ("/requests?city=astana&lang=kk", "/budgeting?lang=ru", "/cities/astana?lang=kk"):
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{site} {path}: {width} px"
    shot(page, f"map-phone-{site}")
    context.close()
