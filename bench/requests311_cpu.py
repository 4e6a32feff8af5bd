"""CPU of one Open311 request on PostgreSQL, in process: no HTTP client, no uvicorn, no load.

The whole ASGI app (middlewares, routing, the route, the component's services) answers requests
called directly, one after another, with the database work on the calling thread instead of the
desk's pool. It prints the server's CPU per request (``time.process_time``) and that of
PostgreSQL's backend (``/proc``): a per-request figure apart from queueing, which
``requests311_load.py``'s paced phases mix in. On a shared machine both still grow with the load;
under ``valgrind --tool=callgrind --instr-atstart=no`` the measured loop switches instruction
counting on and off (``callgrind_control``), and the instructions per request do not.

    .venv/bin/python bench/requests311_cpu.py [--phase post|get|get-uncached] [--requests 1000]
        [--profile post.prof] [--network-delay-ms 1]
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/post.cg \\
        .venv/bin/python bench/requests311_cpu.py --requests 100 --callgrind

Phases: ``post`` (the load bench's report, from one of 4,096 addresses), ``get`` (one request
among 500, mostly answered from the worker's cache of answers), ``get-uncached`` (each request
read once: a query and a rendering each).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import cProfile
import os
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import requests311_load as load

PATH = "/open311/v2/requests.json"


class OnThisThread(concurrent.futures.Executor):
    """Runs what the desk hands its database threads at once, on the caller's thread: the CPU of
    the whole request is then this thread's (and under callgrind, in one place)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting route, as a pool would
            future.set_exception(exc)
        return future


async def call(app: Any, method: str, path: str, body: bytes = b"", address: str = "") -> int:
    """Send one request to the ASGI ``app`` (from ``address``, as a proxy's header would give
    it); its status."""
    headers = [(b"host", b"127.0.0.1")]
    if body:
        headers += [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": (address or "127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status


def callgrind(switch: str) -> None:
    subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], check=True)


async def measure(
    url: str, phase: str, requests: int, *, counting: bool, profile: Path | None = None
) -> None:
    from qala.api.factory import app_from_environment
    from qala.components.requests311.open311 import DESK_KEY

    os.environ["QALA_DATABASE_URL"] = url
    os.environ["QALA_SECRET_KEY"] = "bench"
    os.environ.pop("QALA_RATE_LIMIT_PER_MINUTE", None)
    app = app_from_environment()
    rng = random.Random(41)
    body = load.POST_BODY.encode()

    async def post() -> None:
        address = f"10.0.{rng.randint(0, 15)}.{rng.randint(0, 255)}"
        status = await call(app, "POST", PATH, body, address)
        assert status == 200, status

    async with app.router.lifespan_context(app):
        for _ in range(50):  # the desk, the statements' compiled forms, the pools
            await post()
        app.state.context.extras[DESK_KEY].executor = OnThisThread()
        stored = requests + 100 if phase == "get-uncached" else 500
        for _ in range(stored if phase != "post" else 50):
            await post()
        unread = iter(range(101, requests + 101))

        async def get() -> None:
            wanted = next(unread) if phase == "get-uncached" else rng.randint(1, 500)
            status = await call(app, "GET", f"/open311/v2/requests/{wanted}.json")
            assert status == 200, status

        one: Callable[[], Awaitable[None]] = post if phase == "post" else get
        backends = load.backend_pids(url)
        store_before = load.processes_cpu_seconds(backends)
        profiler = cProfile.Profile(time.process_time) if profile else None  # CPU, not waits
        if counting:
            callgrind("on")
        if profiler:
            profiler.enable()
        started = time.process_time()
        began = time.perf_counter()
        for _ in range(requests):
            await one()
        used = time.process_time() - started
        taken = time.perf_counter() - began
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(profile))
        if counting:
            callgrind("off")
        store_used = load.processes_cpu_seconds(backends) - store_before
    print(
        f"{phase}: {requests} requests, server CPU {1000 * used / requests:.3f} ms/request,"
        f" PostgreSQL CPU {1000 * store_used / requests:.3f} ms/request,"
        f" {1000 * taken / requests:.3f} ms/request from first byte to answer, one at a time"
        f" (load average {load.load_average()})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phase", choices=["post", "get", "get-uncached"], default="post")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--callgrind", action="store_true", help="Count instructions of the measured loop only."
    )
    parser.add_argument(
        "--profile", type=Path, help="Write cProfile statistics of the measured loop here."
    )
    parser.add_argument(
        "--network-delay-ms",
        type=float,
        default=0.0,
        help="Reach PostgreSQL through bench/delay_proxy.py, which holds each chunk this long "
        "each way (a database on another host); the time per request then shows its round trips.",
    )
    args = parser.parse_args()
    url, handle = load.make_database("postgres")
    proxy = None
    try:
        load.prepare_store(url)
        if args.network_delay_ms > 0:
            proxy, url = through_delay(url, args.network_delay_ms)
        asyncio.run(
            measure(url, args.phase, args.requests, counting=args.callgrind, profile=args.profile)
        )
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait()
        load.drop_database("postgres", handle)


def through_delay(url: str, delay_ms: float) -> tuple[subprocess.Popen[str], str]:
    """Start bench/delay_proxy.py in front of ``url``'s server; the proxy and the URL through it."""
    from sqlalchemy.engine import make_url

    target = make_url(url)
    port = load.free_port()
    proxy = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent / "delay_proxy.py"),
            str(port),
            target.host or "127.0.0.1",
            str(target.port or 5432),
            str(delay_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proxy.stdout is not None
    if proxy.stdout.readline().strip() != "ready":
        raise RuntimeError("the delaying proxy did not start")
    return proxy, target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


if __name__ == "__main__":
    main()
