"""Sustained Open311 load on SQLite and PostgreSQL: POST and GET throughput and p99 latency.

For each store the script makes a fresh database with Astana's catalogue, starts ``uvicorn``
(one worker on SQLite, ``--workers`` on PostgreSQL; uvloop/httptools when installed) and drives it
over loopback with a load generator — Debian's ``wrk`` (installed with apt-get when missing and
running as root), or else an async httpx generator. Phases, each ``--seconds`` long:

- ``post``  form-encoded ``POST /open311/v2/requests.json`` (anonymous, with attributes);
- ``get``   ``GET /open311/v2/requests/{id}.json`` for random existing ids;
- ``list``  ``GET /open311/v2/requests.json?service_code=…&page_size=10`` (filtered pages);
- ``mixed`` one POST for every four GETs of single requests.

A bare phase runs closed-loop (each of ``--connections`` sends its next request when the last one
is answered): it measures capacity, and its latency is mostly queueing at saturation. A phase
with a rate, ``post@500``, is paced: wrk sends on a fixed schedule (LuaJIT's clock, one schedule
per wrk thread) from enough connections that none has to wait, so p99 is the latency a client sees
at that load. ``post@500+get@2000`` runs two paced generators at the same time and reports each.
The schedule's worst lag is printed: when every connection is busy the generator sends late and
its latency figures undercount (coordinated omission), so a lag over the p99 goal fails the phase.

Goal on PostgreSQL (issue 4): 500 POST/s and 2,000 GET/s with p99 under 100 ms on 2 cores, judged
on the paced phases. The load generator shares the machine's cores with the server and PostgreSQL.
Rate limiting stays at its default: reports carry one of 4,096 reporters' addresses in
``X-Forwarded-For`` (uvicorn trusts it from loopback, as behind a reverse proxy), so the limit
counts each reporter apart and its cost is part of every POST.

    .venv/bin/python bench/requests311_load.py [--seconds 10] [--connections 32] [--workers 2]
        [--stores sqlite,postgres] [--phases post,get,list,mixed,post@500,get@2000,post@500+get@2000]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ADMIN = os.environ.get(
    "QALA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
GOALS = {"post": 500.0, "get": 2000.0, "list": 2000.0}
P99_GOAL_MS = 100.0
POST_BODY = (
    "jurisdiction_id=astana&service_code=heating&lat=51.125&long=71.43"
    "&attribute%5Bissue%5D=no_heating&attribute%5Bindoor_temperature%5D=15"
    "&description=%D0%A5%D0%BE%D0%BB%D0%BE%D0%B4%D0%BD%D0%BE+(bench)&email=bench%40example.kz"
)
console = Console()
# Reports come from REPORTERS addresses (behind a proxy that sets X-Forwarded-For, which uvicorn
# trusts from loopback), so the rate limit runs at its default and counts each reporter apart, as
# in production, instead of being switched off for one load generator's address.
REPORTERS = 16 * 256
REPORTER_LUA = '"10.0." .. math.random(0, 15) .. "." .. math.random(0, 255)'


@dataclass
class PhaseResult:
    store: str
    phase: str
    requests: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    generator: str
    server_cpu_ms: float = float("nan")
    """CPU time the uvicorn processes spent per request (independent of other load on the box)."""
    store_cpu_ms: float = float("nan")
    """CPU time PostgreSQL's backends serving the bench database spent per request."""
    target_rate: float | None = None
    """The paced rate asked for; None for a closed-loop (capacity) phase."""
    max_lag_ms: float = 0.0
    """How late the paced schedule sent its worst request (all connections were busy)."""
    alongside: str = ""
    """The other paced phase running at the same time, if any."""
    busy_pct: float = float("nan")
    """How busy the machine's cores were during the phase (everything on them, /proc/stat)."""
    kernel_pct: float = float("nan")
    """The part of that spent in the kernel (system, interrupts): loopback TCP, wake-ups."""
    server_switches: float = float("nan")
    """Times a server thread waited (voluntary context switches) per request: each round trip
    to PostgreSQL, hand-off between the event loop and a database thread, or wait for the GIL
    that blocks adds one. A count, so apart from how fast the machine is that hour."""
    store_switches: float = float("nan")
    """The same for PostgreSQL's backends."""
    error_kinds: str = ""
    """What the errors were, as the generator told them (answers of 4xx/5xx, socket errors)."""

    @property
    def label(self) -> str:
        paced = f"@{self.target_rate:.0f}" if self.target_rate else ""
        return f"{self.phase}{paced}" + (f" (with {self.alongside})" if self.alongside else "")

    def meets_goal(self) -> bool | None:
        """Whether a paced PostgreSQL phase meets the issue's goal (None where none applies)."""
        goal = GOALS.get(self.phase)
        if self.store != "postgres" or goal is None or not self.target_rate:
            return None
        return (
            self.target_rate >= goal
            and self.rate >= 0.97 * self.target_rate
            and self.p99_ms < P99_GOAL_MS
            and self.max_lag_ms < P99_GOAL_MS
            and self.errors == 0
        )


# ---------------------------------------------------------------------------------------------
# Stores and server


def make_database(store: str) -> tuple[str, object]:
    if store == "sqlite":
        folder = tempfile.mkdtemp(prefix="qala-r311-bench-")
        return f"sqlite:///{folder}/bench.sqlite", folder
    name = f"qala_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(POSTGRES_ADMIN).set(database=name).render_as_string(hide_password=False), name


def drop_database(store: str, handle: object) -> None:
    if store == "sqlite":
        shutil.rmtree(str(handle), ignore_errors=True)
        return
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{handle}" WITH (FORCE)'))
    admin.dispose()


def prepare_store(url: str) -> None:
    """Migrate and load Astana's catalogue (no demo requests: the POST phase makes them)."""
    from qala.components.requests311.demo import astana_catalogue
    from qala.components.requests311.services import load_catalogue
    from qala.registry import prepare
    from qala.runtime import Context
    from qala.settings import Settings

    context = Context.from_settings(Settings(database_url=url, secret_key="bench"))
    prepare(context)
    with context.database.transaction() as session:
        load_catalogue(session, astana_catalogue())
    context.database.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "QALA_DATABASE_URL": url,
        "QALA_SECRET_KEY": "bench",
    }
    env.pop("QALA_RATE_LIMIT_PER_MINUTE", None)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "qala.api.factory:app_from_environment",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        "--backlog",
        "4096",
        "--proxy-headers",
        "--forwarded-allow-ips",
        "127.0.0.1",
    ]
    for module, flag in (("uvloop", ["--loop", "uvloop"]), ("httptools", ["--http", "httptools"])):
        try:
            __import__(module)
            command += flag
        except ImportError:
            pass
    process = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/open311/v2/services.json", timeout=2).status_code == 200:
                # Every worker must be up: ask a few times.
                for _ in range(10 * workers):
                    httpx.get(f"{base}/open311/v2/services.json", timeout=5)
                return process, base
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError("uvicorn exited during start-up")
        time.sleep(0.3)
    stop_server(process)
    raise RuntimeError("uvicorn did not answer within 120 s")


def tree_pids(root_pid: int) -> list[int]:
    """A process and its children (uvicorn's workers)."""
    pids = [root_pid]
    try:
        children = Path(f"/proc/{root_pid}/task/{root_pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    return pids


def tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a process and its children (from /proc; Linux only)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in tree_pids(root_pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def backend_pids(url: str) -> list[int]:
    """PostgreSQL's backend processes connected to ``url``'s database (not this query's)."""
    engine = create_engine(url)
    with engine.connect() as connection:
        pids = connection.execute(
            text(
                "select pid from pg_stat_activity where datname = current_database()"
                " and pid <> pg_backend_pid()"
            )
        ).scalars()
        found = [int(pid) for pid in pids]
    engine.dispose()
    return found


def processes_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` (those still running; from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def voluntary_switches(pids: list[int]) -> int:
    """Voluntary context switches of every thread of ``pids`` so far (from /proc)."""
    total = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                status = Path(f"/proc/{pid}/task/{task}/status").read_text()
            except OSError:
                continue
            if found := re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M):
                total += int(found.group(1))
    return total


def machine_jiffies() -> tuple[int, int, int]:
    """All, idle (with I/O wait) and kernel (system, irq, softirq) jiffies of every core so far."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    except OSError:
        return (0, 0, 0)
    system, idle, iowait, irq, softirq = fields[2:]
    return sum(fields), idle + iowait, system + irq + softirq


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


# ---------------------------------------------------------------------------------------------
# Load generators


DEFAULT_PHASES = "post,get,list,mixed,post@500,get@2000,post@500+get@2000"


def parse_phase(spec: str) -> list[tuple[str, float | None]]:
    """``get`` → [("get", None)]; ``post@500+get@2000`` → [("post", 500.0), ("get", 2000.0)]."""
    group: list[tuple[str, float | None]] = []
    for part in spec.strip().split("+"):
        name, _, rate = part.partition("@")
        if name not in LUA:
            raise SystemExit(f"unknown phase {name!r} in {spec!r}; known: {', '.join(LUA)}")
        try:
            group.append((name, float(rate) if rate else None))
        except ValueError:
            raise SystemExit(f"phase {spec!r}: the rate after @ must be a number") from None
    return group


def find_wrk() -> str | None:
    found = shutil.which("wrk")
    if found or os.environ.get("QALA_BENCH_NO_INSTALL") or os.geteuid() != 0:
        return found
    console.print("[dim]installing Debian's wrk with apt-get…[/]")
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True, timeout=300
    )
    return shutil.which("wrk")


LUA = {
    "post": """
math.randomseed(41)
local headers = {{["Content-Type"] = "application/x-www-form-urlencoded"}}
request = function()
  headers["X-Forwarded-For"] = {reporter}
  return wrk.format("POST", "/open311/v2/requests.json", headers, "{body}")
end
""",
    "get": """
math.randomseed(42)
{ids}
request = function()
  return wrk.format("GET", "/open311/v2/requests/" .. ids[math.random(1, #ids)] .. ".json")
end
""",
    "list": """
math.randomseed(43)
local codes = {{"heating", "heating,pothole", "street_light", "snow_removal"}}
request = function()
  local code = codes[math.random(1, #codes)]
  return wrk.format("GET", "/open311/v2/requests.json?service_code=" .. code .. "&status=open&page_size=10")
end
""",
    "mixed": """
math.randomseed(44)
{ids}
local n = 0
local post_headers = {{["Content-Type"] = "application/x-www-form-urlencoded"}}
request = function()
  n = n + 1
  if n % 5 == 0 then
    post_headers["X-Forwarded-For"] = {reporter}
    return wrk.format("POST", "/open311/v2/requests.json", post_headers, "{body}")
  end
  return wrk.format("GET", "/open311/v2/requests/" .. ids[math.random(1, #ids)] .. ".json")
end
""",
}
# The ids of Astana's stored requests (the GETs name no city: Astana is the default), read once
# into a Lua table: ids drawn a block at a time per server process leave gaps, and other cities'
# requests are numbered among them, so 1..count would ask for requests Astana does not have.
IDS_LUA = """local ids = {{}}
for id in string.gmatch("{listed}", "%d+") do ids[#ids + 1] = tonumber(id) end"""


# Appended to a phase's script to send on a fixed schedule. Each wrk thread has its own Lua state
# and sends ``rate / threads`` requests a second; ``delay()`` is asked before every request.
PACED_LUA = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} qala_timespec;
int clock_gettime(int clock_id, qala_timespec *tp);
]]
local clock = ffi.new("qala_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
local interval_ms = 1000 / {thread_rate}
local next_slot = nil
max_lag = 0
delay = function()
  local now = now_ms()
  local slot = next_slot or now
  next_slot = slot + interval_ms
  if slot < now then
    if now - slot > max_lag then max_lag = now - slot end
    return 0
  end
  return slot - now
end
local threads = {{}}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local worst = 0
  for _, thread in ipairs(threads) do
    local lag = thread:get("max_lag")
    if lag > worst then worst = lag end
  end
  io.write(string.format("max_lag_ms %.1f\\n", worst))
end
"""


def _ms(text_value: str) -> float:
    # wrk prints latencies as 850.00us, 12.34ms, 1.02s or, past a minute, 1.05m.
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text_value.strip())
    if found is None:
        raise RuntimeError(f"unreadable wrk latency {text_value!r}")
    number, unit = found.groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def paced_connections(rate: float) -> int:
    """Enough connections for a paced rate that none is busy when its slot comes, even if
    answers take 50 ms (Little's law), with a floor for low rates."""
    return max(16, int(rate * 0.05) + 1)


def wrk_command(
    wrk: str,
    base: str,
    phase: str,
    *,
    seconds: int,
    connections: int,
    ids: list[int],
    rate: float | None = None,
    threads: int = 2,
) -> tuple[list[str], Path]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    listed = IDS_LUA.format(listed=" ".join(map(str, ids or [1])))
    lua = LUA[phase].format(body=POST_BODY, ids=listed, reporter=REPORTER_LUA)
    if rate:
        lua += PACED_LUA.format(thread_rate=rate / threads)
        connections = max(connections, paced_connections(rate))
    script.write_text(lua)
    path = "/open311/v2/requests.json" if phase == "post" else "/"
    command = [
        wrk,
        f"-t{threads}",
        f"-c{max(connections, threads)}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(script),
        base + path,
    ]
    return command, script


def parse_wrk(out: str, *, store: str, phase: str, rate: float | None) -> PhaseResult:
    if "Latency Distribution" not in out:
        raise RuntimeError(f"wrk printed no latency distribution for {phase}:\n{out[-2000:]}")
    total = int(re.search(r"(\d+) requests in ([\d.]+)(m?s)", out).group(1))  # type: ignore[union-attr]
    taken = re.search(r"requests in ([\d.]+)(m?s)", out)
    elapsed = float(taken.group(1)) * (0.001 if taken.group(2) == "ms" else 1.0)  # type: ignore[union-attr]
    # Anchored: a thread-stats line may end in "98.50%" too.
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = 0
    kinds = []
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(match.group(1))
        kinds.append(f"{match.group(1)} answers not 2xx/3xx")
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(g) for g in match.groups())
        kinds.append(f"socket errors: {match.group(0).split(': ', 1)[1]}")
    result = PhaseResult(store, phase, total, elapsed, total / elapsed, p50, p99, errors, "wrk")
    result.error_kinds = "; ".join(kinds)
    result.target_rate = rate
    if match := re.search(r"max_lag_ms ([\d.]+)", out):
        result.max_lag_ms = float(match.group(1))
    return result


def run_wrk(
    wrk: str,
    base: str,
    phases: list[tuple[str, float | None]],
    *,
    seconds: int,
    connections: int,
    ids: list[int],
    store: str,
) -> list[PhaseResult]:
    """Run one wrk per phase, all at the same time (one thread each when there are several)."""
    threads = 2 if len(phases) == 1 else 1
    prepared = [
        wrk_command(
            wrk,
            base,
            phase,
            seconds=seconds,
            connections=connections,
            ids=ids,
            rate=rate,
            threads=threads,
        )
        for phase, rate in phases
    ]
    running = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command, _ in prepared
    ]
    results = []
    for (phase, rate), process, (_, script) in zip(phases, running, prepared, strict=True):
        out, err = process.communicate(timeout=seconds + 60)
        script.unlink()
        if process.returncode != 0:
            raise RuntimeError(f"wrk failed for {phase}: {err.strip()[:300]}")
        results.append(parse_wrk(out, store=store, phase=phase, rate=rate))
    labels = [f"{phase}@{rate:.0f}" if rate else phase for phase, rate in phases]
    for result in results:
        result.alongside = ", ".join(
            label for label, other in zip(labels, results, strict=True) if other is not result
        )
    return results


async def _python_phase(
    base: str, phase: str, *, seconds: int, connections: int, ids: list[int]
) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    rng = random.Random(42)
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=5) as client:

        async def worker() -> None:
            nonlocal errors
            n = 0
            while time.perf_counter() < stop_at:
                n += 1
                started = time.perf_counter()
                if phase == "post" or (phase == "mixed" and n % 5 == 0):
                    response = await client.post(
                        "/open311/v2/requests.json",
                        content=POST_BODY,
                        headers={
                            "Content-Type": "application/x-www-form-urlencoded",
                            "X-Forwarded-For": f"10.0.{rng.randint(0, 15)}.{rng.randint(0, 255)}",
                        },
                    )
                elif phase == "list":
                    response = await client.get(
                        "/open311/v2/requests.json",
                        params={"service_code": "heating", "status": "open", "page_size": 10},
                    )
                else:
                    response = await client.get(
                        f"/open311/v2/requests/{rng.choice(ids or [1])}.json"
                    )
                latencies.append((time.perf_counter() - started) * 1000)
                errors += response.status_code >= 400

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return latencies, errors, time.perf_counter() - began


def run_python(
    base: str, phase: str, *, seconds: int, connections: int, ids: list[int], store: str
) -> PhaseResult:
    latencies, errors, elapsed = asyncio.run(
        _python_phase(base, phase, seconds=seconds, connections=connections, ids=ids)
    )
    latencies.sort()

    def pick(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))]
            if latencies
            else float("nan")
        )

    return PhaseResult(
        store,
        phase,
        len(latencies),
        elapsed,
        len(latencies) / elapsed,
        pick(0.5),
        pick(0.99),
        errors,
        "httpx",
    )


SEED_REPORTS = 500
"""Reports stored before a run whose first reading phase would find none (no POST phase before
it): the GETs then read requests that exist, as they do after a POST phase."""


def store_reports(base: str, count: int) -> None:
    """Post ``count`` reports, one after another, from as many reporters' addresses."""
    with httpx.Client(base_url=base, timeout=30) as client:
        for number in range(count):
            answer = client.post(
                "/open311/v2/requests.json",
                content=POST_BODY,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Forwarded-For": f"10.1.{number // 256}.{number % 256}",
                },
            )
            answer.raise_for_status()


def stored_ids(url: str) -> list[int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        ids = [
            int(i)
            for i in connection.execute(
                text(
                    "select r.id from requests311_request r join requests311_jurisdiction j"
                    " on j.id = r.jurisdiction_id where j.code = 'astana' order by r.id"
                )
            ).scalars()
        ]
    engine.dispose()
    return ids


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="Length of each phase.")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=2, help="uvicorn workers on PostgreSQL (SQLite: 1)."
    )
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument(
        "--phases",
        default=DEFAULT_PHASES,
        help="Comma-separated; NAME is closed-loop, NAME@RATE paced, A@R1+B@R2 both at once.",
    )
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    plan = [parse_phase(spec) for spec in args.phases.split(",") if spec.strip()]

    wrk = None if args.generator == "python" else find_wrk()
    if args.generator == "wrk" and wrk is None:
        raise SystemExit("wrk is not installed")
    if wrk is None and any(rate for group in plan for _, rate in group):
        console.print("[yellow]paced phases need wrk; running the closed-loop phases only[/]")
        plan = [group for group in plan if not any(rate for _, rate in group)]
    results: list[PhaseResult] = []
    for store in args.stores.split(","):
        url, handle = make_database(store)
        process = None
        try:
            prepare_store(url)
            workers = 1 if store == "sqlite" else args.workers
            process, base = start_server(url, workers)
            console.print(
                f"[bold]{store}[/]: uvicorn × {workers} on {base}; generator {'wrk' if wrk else 'httpx'}"
            )
            reads = any(phase in ("get", "mixed") for group in plan for phase, _ in group)
            if reads and not stored_ids(url):
                store_reports(base, SEED_REPORTS)
            for group in plan:
                options = {
                    "seconds": args.seconds,
                    "connections": args.connections,
                    "ids": stored_ids(url),
                    "store": store,
                }
                # Backends that connect during the phase are counted whole (all their CPU is
                # this phase's); those that end during it are missed (the pool keeps them).
                backends = backend_pids(url) if store == "postgres" else []
                store_before = processes_cpu_seconds(backends)
                store_switches_before = voluntary_switches(backends)
                cpu_before = tree_cpu_seconds(process.pid)
                switches_before = voluntary_switches(tree_pids(process.pid))
                machine_before = machine_jiffies()
                if wrk:
                    measured = run_wrk(wrk, base, group, **options)
                else:
                    measured = [run_python(base, group[0][0], **options)]
                cpu_used = tree_cpu_seconds(process.pid) - cpu_before
                switches = voluntary_switches(tree_pids(process.pid)) - switches_before
                total, idle, kernel = (
                    after - before
                    for after, before in zip(machine_jiffies(), machine_before, strict=True)
                )
                if store == "postgres":
                    backends = sorted(set(backends) | set(backend_pids(url)))
                store_used = processes_cpu_seconds(backends) - store_before
                store_switches = voluntary_switches(backends) - store_switches_before
                # With two generators at once the CPU can't be split between them: both rows show
                # the average over all requests of the phase.
                served = max(1, sum(r.requests for r in measured))
                per_request = 1000 * cpu_used / served
                for result in measured:
                    result.server_cpu_ms = per_request
                    result.server_switches = switches / served
                    if total > 0:
                        result.busy_pct = 100 * (total - idle) / total
                        result.kernel_pct = 100 * kernel / total
                    if backends:
                        result.store_cpu_ms = 1000 * store_used / served
                        result.store_switches = store_switches / served
                    results.append(result)
                    console.print(
                        f"  {result.label:32} {result.rate:7.0f} req/s  p50 {result.p50_ms:6.1f} ms  "
                        f"p99 {result.p99_ms:7.1f} ms  lag {result.max_lag_ms:5.1f} ms  "
                        f"errors {result.errors}  server CPU {result.server_cpu_ms:.2f} ms/request  "
                        f"PostgreSQL CPU {result.store_cpu_ms:.2f} ms/request  "
                        f"waits per request: server {result.server_switches:.1f}, "
                        f"PostgreSQL {result.store_switches:.1f}  "
                        f"cores {result.busy_pct:.0f}% busy ({result.kernel_pct:.0f}% kernel)  "
                        f"load average {load_average()}"
                    )
                    if result.error_kinds:
                        console.print(f"    errors: {result.error_kinds}")
        finally:
            if process is not None:
                stop_server(process)
            drop_database(store, handle)

    table = Table(
        title=f"Open311 load, {args.seconds} s per phase, {os.cpu_count()} cores "
        f"(closed-loop phases: {args.connections} connections)"
    )
    for column in (
        "store",
        "phase",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "worst lag ms",
        "errors",
        "server CPU ms/req",
        "PostgreSQL CPU ms/req",
        "cores busy %",
        "goal (PostgreSQL)",
        "met",
    ):
        table.add_column(column, justify="right" if column not in ("store", "phase") else "left")
    for r in results:
        met = r.meets_goal()
        goal = GOALS.get(r.phase)
        table.add_row(
            r.store,
            r.label,
            str(r.requests),
            f"{r.rate:.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.max_lag_ms:.1f}" if r.target_rate else "",
            str(r.errors),
            f"{r.server_cpu_ms:.2f}",
            f"{r.store_cpu_ms:.2f}",
            f"{r.busy_pct:.0f}",
            f"≥{goal:.0f}/s, p99<{P99_GOAL_MS:.0f} ms" if met is not None and goal else "",
            "" if met is None else ("yes" if met else "no"),
        )
    console.print(table)
    console.print(
        f"load average now {load_average()} (other work on the machine shares the {os.cpu_count()} cores "
        "with the server, PostgreSQL and wrk); server CPU per request does not depend on it."
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "requests311_load.csv"
    with out.open("w", newline="") as handle_out:
        writer = csv.writer(handle_out)
        writer.writerow(
            [
                "store",
                "phase",
                "requests",
                "seconds",
                "rate",
                "p50_ms",
                "p99_ms",
                "errors",
                "server_cpu_ms_per_request",
                "store_cpu_ms_per_request",
                "generator",
                "target_rate",
                "max_lag_ms",
                "alongside",
                "busy_pct",
                "kernel_pct",
                "server_waits_per_request",
                "store_waits_per_request",
            ]
        )
        for r in results:
            writer.writerow(
                [
                    r.store,
                    r.phase,
                    r.requests,
                    f"{r.seconds:.2f}",
                    f"{r.rate:.1f}",
                    f"{r.p50_ms:.2f}",
                    f"{r.p99_ms:.2f}",
                    r.errors,
                    f"{r.server_cpu_ms:.3f}",
                    f"{r.store_cpu_ms:.3f}",
                    r.generator,
                    "" if r.target_rate is None else f"{r.target_rate:.0f}",
                    f"{r.max_lag_ms:.1f}",
                    r.alongside,
                    f"{r.busy_pct:.1f}",
                    f"{r.kernel_pct:.1f}",
                    f"{r.server_switches:.2f}",
                    f"{r.store_switches:.2f}",
                ]
            )
    console.print(f"[dim]saved {out}[/]")
    picture = RESULTS / "requests311_load.png"
    plot_results(results, picture)
    console.print(f"[dim]saved {picture}[/]")


def plot_results(results: list[PhaseResult], path: Path) -> None:
    """Rate and p99 of every phase, per store, with the goal's lines."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stores = sorted({r.store for r in results}, key=lambda s: s != "postgres")
    figure, axes = plt.subplots(
        len(stores), 2, figsize=(12, 1.2 + 0.45 * max(len(results), 4)), squeeze=False
    )
    for row, store in zip(axes, stores, strict=True):
        mine = [r for r in results if r.store == store][::-1]
        labels = [r.label for r in mine]
        colours = [
            {True: "#2e7d32", False: "#c62828", None: "#607d8b"}[r.meets_goal()] for r in mine
        ]
        row[0].barh(labels, [r.rate for r in mine], color=colours)
        row[0].set_xlabel("requests per second")
        row[0].set_title(f"{store}: throughput (green/red: paced goal met/missed)", fontsize=10)
        for goal in sorted(set(GOALS.values())):
            row[0].axvline(goal, color="#999", linestyle=":", linewidth=1)
        row[1].barh(labels, [r.p99_ms for r in mine], color=colours)
        row[1].axvline(P99_GOAL_MS, color="#c62828", linestyle="--", linewidth=1)
        row[1].set_xscale("log")
        ticks = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
        top = max([P99_GOAL_MS, *(r.p99_ms for r in mine)])
        row[1].set_xticks([t for t in ticks if t <= top * 1.5])
        row[1].xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        row[1].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        row[1].set_xlabel("p99 latency, ms (log scale; dashed: the 100 ms goal)")
        row[1].set_title(f"{store}: p99 latency", fontsize=10)
        row[1].set_yticklabels([])
    figure.suptitle(
        f"Open311 load on {os.cpu_count()} cores (wrk, uvicorn and the store share them)",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    main()
