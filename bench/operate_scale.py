"""Operate at scale: MQTT ingestion by several worker processes into PostgreSQL, history and rules.

Two modes, each on a fresh PostgreSQL database and a private Mosquitto configured as shipped
(deploy/mosquitto: the session queue limits that let a killed worker's messages wait for it;
anonymous here, since one publisher process stands in for every device):

* ``throughput`` — N real ``qala operate ingest-mqtt --worker`` processes (MQTT 5 shared
  subscription), a publisher process sending QoS 1 messages of several readings each at a paced
  offered rate for S seconds (its packets written by the bench, ``--client raw``: paho-mqtt's
  client spends ~0.3 ms of CPU per message on the two cores under test, the raw packets ~0.03 ms;
  ``--client paho`` measures with the library). Reports stored readings/s, that every reading was stored exactly once
  (count and duplicates by reading id), latency publish → stored (the row's ``received_us``,
  stamped in the storing transaction, minus the publish time carried in the reading's id; and the
  workers' own publish → commit histogram), CPU per reading of the workers, the PostgreSQL
  backends and the broker, and the load average before and after.
* ``soak`` — S sensors, one reading each per P seconds (one reading per message, as a device
  sends it), for M minutes. Every minute: each worker's RSS, the lag publish → stored, the backlog
  (acknowledged by the broker, not yet stored), rows and database size. At the midpoint one worker
  is killed with SIGKILL and restarted. At the end: memory slope per worker, lag trend, loss and
  duplicates, database growth per day.

The machine is shared: the load average is printed and recorded, and figures move with it.

    .venv/bin/python bench/operate_scale.py throughput [--rate 20000] [--seconds 25] [--workers 2]
    .venv/bin/python bench/operate_scale.py soak [--minutes 30] [--sensors 20000] [--period-s 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import NullPool, create_engine, text
from sqlalchemy.engine import Engine, make_url

POSTGRES_ADMIN = os.environ.get(
    "QALA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEPLOY = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
TICK = os.sysconf("SC_CLK_TCK")
console = Console(width=None if sys.stdout.isatty() else 160)

# ---- the pieces: database, broker, workers, publisher ------------------------------------------


def make_database() -> tuple[str, Callable[[], None]]:
    """A fresh database with Qala's schema; returns its URL and a function dropping it."""
    from qala.registry import prepare
    from qala.runtime import Context
    from qala.settings import Settings

    name = f"qala_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN).set(database=name).render_as_string(hide_password=False)
    context = Context.from_settings(Settings(database_url=url))
    prepare(context)
    context.database.dispose()

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return url, drop


def register(url: str, sensors: int, group_size: int) -> None:
    """Register the sensors (outside provisioning mode an unknown sensor is a dead letter), in
    groups of ``group_size`` neighbours (the group rules compare a sensor with its group; an
    ungrouped sensor falls in one default group holding every such sensor of the city)."""
    from qala.components.operate.ingest import register_sensors
    from qala.runtime import Context
    from qala.settings import Settings

    context = Context.from_settings(Settings(database_url=url))
    with context.database.transaction() as session:
        register_sensors(
            session,
            [
                {
                    "id": sensor_name(s),
                    "group_id": f"g-{s // group_size:04d}" if group_size else None,
                }
                for s in range(sensors)
            ],
        )
    context.database.dispose()


def sensor_name(index: int) -> str:
    return f"sc-{index:05d}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Broker:
    """Mosquitto with deploy/mosquitto's settings (queue limits, persistence) on a free port."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        lines = []
        for line in DEPLOY.read_text(encoding="utf-8").splitlines():
            key = line.split(" ", 1)[0]
            if key in ("password_file", "acl_file"):
                continue
            if key == "allow_anonymous":
                line = "allow_anonymous true"
            elif key == "listener":
                line = f"listener {self.port} 127.0.0.1"
            elif key == "persistence_location":
                line = f"persistence_location {folder}/"
            lines.append(line)
        lines.append(f"user {os.environ.get('USER', 'root')}")
        (folder / "mosquitto.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(folder / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(folder / "mosquitto.log").open("w"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError((folder / "mosquitto.log").read_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@dataclass
class Worker:
    """One ``qala operate ingest-mqtt --worker N`` process (restartable)."""

    number: int
    url: str
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    metrics_port: int = field(default_factory=free_port)
    starts: int = 0
    routed_of: int | None = None  # --workers M: each sensor's group to one worker

    @property
    def log(self) -> Path:
        return self.folder / f"worker-{self.number}.log"

    def start(self) -> None:
        env = {
            **os.environ,
            "QALA_DATABASE_URL": self.url,
            "QALA_MQTT_HOST": "127.0.0.1",
            "QALA_MQTT_PORT": str(self.port),
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
        command = [sys.executable, "-m", "qala.cli.main", "operate", "ingest-mqtt"]
        command += ["--worker", str(self.number), "--metrics-port", str(self.metrics_port)]
        if self.routed_of is not None:
            command += ["--workers", str(self.routed_of)]
        before = self.log.read_text().count("ingesting from") if self.log.exists() else 0
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log.open("a"), stderr=subprocess.STDOUT
        )
        self.starts += 1
        deadline = time.monotonic() + 90
        while self.log.read_text().count("ingesting from") <= before:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(self.log.read_text()[-3000:])
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def rss_mb(self) -> float:
        assert self.process is not None
        return rss_mb(self.process.pid)

    def latency_buckets(self) -> dict[float, float]:
        """The worker's cumulative publish → commit histogram (upper bound s → count)."""
        address = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(address, timeout=5) as response:
            body = response.read().decode()
        buckets: dict[float, float] = {}
        for line in body.splitlines():
            if (
                line.startswith("qala_ingest_end_to_end_seconds_bucket")
                and 'channel="mqtt"' in line
            ):
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
        return buckets


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class Plan:
    """What the publisher sends: ``messages_per_s`` messages of ``per_message`` readings each,
    sensors in turn, for ``seconds``."""

    port: int
    messages_per_s: float
    seconds: float
    sensors: int
    per_message: int
    spacing_us: int  # between the readings of one message (a gateway's buffered readings)
    client: str = "raw"  # raw: packets written by the bench; paho: the paho-mqtt client


def reading_body(plan: Plan, k: int, sent_us: int) -> tuple[str, bytes]:
    """Message ``k`` of the plan: its topic and JSON body. Each reading's id is
    ``sensor:message:index:sent_us`` so the store's rows tell their own publish time."""
    sensor = sensor_name(k % plan.sensors)
    last = plan.per_message - 1
    body = {
        "sensor": sensor,
        "sent_us": sent_us,
        "observations": [
            {
                "id": f"{sensor}:{k}:{i}:{sent_us}",
                "quantity": "pm25",
                "time_us": sent_us - (last - i) * plan.spacing_us,
                "value": 18.0 + (k * 7 + i * 3) % 17 + (k % 5) * 0.1,
                "unit": "ug/m3",
            }
            for i in range(plan.per_message)
        ],
    }
    return f"qala/observations/{sensor}", json.dumps(body).encode()


def publisher(plan: Plan, published: Any, acknowledged: Any, done: Any, cpu: Any) -> None:
    """Publish the plan with QoS 1 through the chosen client; counts the broker's PUBACKs."""
    if plan.client == "paho":
        publish_with_paho(plan, published, acknowledged)
    else:
        publish_raw(plan, published, acknowledged)
    times = os.times()
    cpu.value = times.user + times.system
    done.value = 1


def publish_with_paho(plan: Plan, published: Any, acknowledged: Any) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    def on_publish(*_args: Any) -> None:
        acknowledged.value += 1

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_publish = on_publish
    client.max_inflight_messages_set(5000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", plan.port)
    client.loop_start()
    total = int(plan.messages_per_s * plan.seconds)
    began = time.perf_counter()
    k = 0
    while k < total:
        due = min(total, int((time.perf_counter() - began) * plan.messages_per_s) + 1)
        while k < due:
            topic, body = reading_body(plan, k, time.time_ns() // 1000)
            client.publish(topic, body, qos=1)
            k += 1
            published.value = k
        time.sleep(0.002)
    deadline = time.monotonic() + 120
    while acknowledged.value < k and time.monotonic() < deadline:
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        digit, n = n % 128, n // 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mqtt_string(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            data += chunk
        return data

    first = exactly(1)[0]
    length, shift = 0, 0
    while True:
        byte = exactly(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first, exactly(length)


def _receive_maximum(connack: bytes) -> int:
    """The broker's Receive Maximum (property 0x21) from a CONNACK body; 65,535 if absent."""
    at, length, shift = 2, 0, 0
    while True:
        byte = connack[at]
        at += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    end = at + length
    while at < end:
        ident = connack[at]
        at += 1
        if ident == 0x21:
            return int.from_bytes(connack[at : at + 2], "big")
        # Skip the other CONNACK properties by their type (MQTT 5, clause 3.2.2.3).
        if ident in (0x24, 0x25, 0x28, 0x29, 0x2A):
            at += 1
        elif ident in (0x13, 0x22):
            at += 2
        elif ident in (0x11, 0x27):
            at += 4
        elif ident == 0x26:
            for _ in range(2):
                at += 2 + int.from_bytes(connack[at : at + 2], "big")
        else:  # UTF-8 strings and binary data
            at += 2 + int.from_bytes(connack[at : at + 2], "big")
    return 65_535


def publish_raw(plan: Plan, published: Any, acknowledged: Any) -> None:
    """QoS 1 PUBLISH packets written straight to one MQTT 5 connection, PUBACKs counted by a
    reader thread, at most the broker's Receive Maximum in flight.

    The load generator stands in for 20,000 devices that would each spend their own CPU; paho's
    client costs ~0.3 ms of this machine's CPU per message (its packet objects, its loop thread and
    the GIL between them), which at 2,000 messages/s is a quarter of the two cores the system under
    test needs. Encoding the packets here costs a few µs each (``--client paho`` keeps the
    library's publisher for comparison)."""
    import threading

    sock = socket.create_connection(("127.0.0.1", plan.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_id = f"bench-publisher-{uuid.uuid4().hex[:8]}"
    # CONNECT: protocol name, level 5, clean start, keep-alive 0 (none), no properties.
    variable = _mqtt_string("MQTT") + bytes([5, 0x02]) + (0).to_bytes(2, "big") + b"\x00"
    payload = _mqtt_string(client_id)
    body = variable + payload
    sock.sendall(bytes([0x10]) + _varint(len(body)) + body)
    kind, connack = _read_packet(sock)
    if kind >> 4 != 2 or connack[1] != 0:
        raise ConnectionError(f"broker refused the connection (CONNACK {connack!r})")
    window = threading.BoundedSemaphore(min(_receive_maximum(connack), 5000))
    acked = 0
    finished = threading.Event()

    def read_acks() -> None:
        nonlocal acked
        buffer = b""
        while not finished.is_set() or acked < published.value:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            at = 0
            count = 0
            while len(buffer) - at >= 2:
                length = buffer[at + 1]  # PUBACKs are short: one length byte
                if len(buffer) - at < 2 + length:
                    break
                if buffer[at] >> 4 == 4:
                    count += 1
                at += 2 + length
            buffer = buffer[at:]
            if count:
                acked += count
                acknowledged.value = acked
                for _ in range(count):
                    window.release()

    reader = threading.Thread(target=read_acks, daemon=True)
    reader.start()
    total = int(plan.messages_per_s * plan.seconds)
    began = time.perf_counter()
    k = 0
    while k < total:
        due = min(total, int((time.perf_counter() - began) * plan.messages_per_s) + 1)
        out = bytearray()
        while k < due:
            if not window.acquire(blocking=False):
                # The window is full: send what is gathered, so its PUBACKs can free it.
                sock.sendall(out)
                out.clear()
                published.value = k
                window.acquire()
            topic, body = reading_body(plan, k, time.time_ns() // 1000)
            packet_id = k % 65_535 + 1
            rest = _mqtt_string(topic) + packet_id.to_bytes(2, "big") + b"\x00" + body
            out += bytes([0x32]) + _varint(len(rest)) + rest
            k += 1
        if out:
            sock.sendall(out)
            published.value = k
        time.sleep(0.002)
    finished.set()
    deadline = time.monotonic() + 120
    while acked < k and time.monotonic() < deadline:
        time.sleep(0.05)
    sock.sendall(bytes([0xE0, 0x00]))  # DISCONNECT, normal
    sock.close()


class Store:
    """Counts and timings read from the benchmark's database over unpooled connections."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url, poolclass=NullPool)

    def scalar(self, sql: str, **params: Any) -> Any:
        for _attempt in range(5):
            try:
                with self.engine.connect() as connection:
                    return connection.execute(text(sql), params).scalar()
            except Exception:
                time.sleep(0.5)
        raise RuntimeError(f"the store did not answer {sql!r}")

    def count(self) -> int:
        return int(self.scalar("SELECT count(*) FROM operate_observation") or 0)

    def max_id(self) -> int:
        return int(self.scalar("SELECT coalesce(max(id), 0) FROM operate_observation") or 0)

    def latencies(self, after_id: int = 0, upto_id: int | None = None) -> dict[str, float]:
        """Publish → stored percentiles (ms) of the rows with ids in (after_id, upto_id]."""
        with self.engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT count(*), percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP "
                    "(ORDER BY received_us - split_part(message_id, ':', 4)::bigint), "
                    "max(received_us - split_part(message_id, ':', 4)::bigint) "
                    "FROM operate_observation WHERE id > :a AND id <= :b"
                ),
                {"a": after_id, "b": upto_id if upto_id is not None else 2**62},
            ).one()
        if not row[0]:
            return {"n": 0}
        p50, p95, p99 = (v / 1000 for v in row[1])
        return {
            "n": int(row[0]),
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "max_ms": row[2] / 1000,
        }

    def exactness(self, published_messages: int, per_message: int) -> dict[str, int]:
        """Rows, distinct reading ids, distinct messages and their index range: the set stored is
        exactly the published one when rows = distinct ids = messages × per_message and the
        message indexes are 0 … messages − 1 with every message complete."""
        with self.engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT count(*), count(DISTINCT message_id), "
                    "count(DISTINCT split_part(message_id, ':', 2)), "
                    "min(split_part(message_id, ':', 2)::bigint), "
                    "max(split_part(message_id, ':', 2)::bigint) FROM operate_observation"
                )
            ).one()
        rows, distinct, messages, low, high = (int(v) if v is not None else -1 for v in row)
        expected = published_messages * per_message
        complete = messages == published_messages and low == 0 and high == published_messages - 1
        return {
            "expected": expected,
            "rows": rows,
            "distinct_ids": distinct,
            "duplicates": rows - distinct,
            "lost": max(0, expected - distinct),
            "messages": messages,
            "exact": int(rows == distinct == expected and complete),
        }

    def sizes(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            database = connection.execute(text("SELECT pg_database_size(current_database())"))
            history = connection.execute(
                text(
                    "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
                    "FROM pg_partition_tree('operate_observation')"
                )
            )
            everything = database.scalar(), history.scalar()
        return {"database": int(everything[0] or 0), "history": int(everything[1] or 0)}

    def span_s(self) -> float:
        """Seconds from the first reading's publication to the last reading's storing."""
        value = self.scalar(
            "SELECT max(received_us) - min(split_part(message_id, ':', 4)::bigint) "
            "FROM operate_observation"
        )
        return float(value or 0) / 1e6

    def backends(self) -> list[int]:
        with self.engine.connect() as connection:
            return list(
                connection.scalars(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    )
                )
            )

    def per_second(self) -> list[int]:
        """Rows stored per second of ``received_us``, from the first to the last."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT received_us / 1000000 AS s, count(*) FROM operate_observation "
                    "GROUP BY 1 ORDER BY 1"
                )
            ).all()
        if not rows:
            return []
        first = int(rows[0][0])
        series = [0] * (int(rows[-1][0]) - first + 1)
        for second, count in rows:
            series[int(second) - first] = int(count)
        return series


def histogram_quantile(buckets: dict[float, float], q: float) -> float:
    """The q-quantile (s) of a cumulative histogram, interpolated linearly inside its bucket as
    Prometheus' ``histogram_quantile`` does (so only as fine as the buckets)."""
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return float("nan")
    lower, below = 0.0, 0.0
    for bound in sorted(buckets):
        if buckets[bound] >= q * total:
            if bound == float("inf"):
                return lower
            inside = buckets[bound] - below
            return lower + (bound - lower) * ((q * total - below) / inside if inside else 1.0)
        lower, below = bound, buckets[bound]
    return float("inf")


def merged(histograms: list[dict[float, float]]) -> dict[float, float]:
    out: dict[float, float] = {}
    for histogram in histograms:
        for bound, count in histogram.items():
            out[bound] = out.get(bound, 0.0) + count
    return out


def load() -> float:
    return os.getloadavg()[0]


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two points)."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


# ---- throughput --------------------------------------------------------------------------------


class Setup:
    """Database, broker and workers of one run; ``close()`` stops and drops them."""

    def __init__(self, workers: int, sensors: int, group_size: int, routing: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="qala-scale-"))
        self.url, self.drop = make_database()
        register(self.url, sensors, group_size)
        self.broker = Broker(self.folder)
        self.workers = [
            Worker(
                n,
                self.url,
                self.broker.port,
                self.folder,
                routed_of=workers if routing == "routed" else None,
            )
            for n in range(1, workers + 1)
        ]
        for worker in self.workers:
            worker.start()
        self.store = Store(self.url)

    def cpu(self) -> dict[str, float]:
        return {
            "workers": sum(cpu_seconds(w.process.pid) for w in self.workers if w.process),
            "broker": cpu_seconds(self.broker.process.pid),
            "postgres": sum(cpu_seconds(pid) for pid in self.store.backends()),
        }

    def prioritise(self, nice: int) -> None:
        """Give this run's PostgreSQL backends the niceness the bench and its children run at
        (``--nice``): they are forked by the postmaster, so they do not inherit it."""
        if not nice:
            return
        for pid in self.store.backends():
            with contextlib.suppress(OSError):  # a backend that ended meanwhile
                os.setpriority(os.PRIO_PROCESS, pid, nice)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.broker.stop()
        self.store.engine.dispose()
        self.drop()


def throughput_run(rate: float, args: argparse.Namespace) -> dict[str, Any]:
    setup = Setup(args.workers, args.sensors, args.group_size, args.routing)
    try:
        messages_per_s = rate / args.per_message
        plan = Plan(
            setup.broker.port,
            messages_per_s,
            args.seconds,
            args.sensors,
            args.per_message,
            max(1, int(1e6 * args.sensors / messages_per_s / args.per_message)),
            args.client,
        )
        published, acknowledged, done = (multiprocessing.Value("q", 0) for _ in range(3))
        publisher_cpu = multiprocessing.Value("d", 0.0)
        load_before = load()
        cpu_before = setup.cpu()
        process = multiprocessing.Process(
            target=publisher, args=(plan, published, acknowledged, done, publisher_cpu)
        )
        began = time.monotonic()
        process.start()
        expected = int(messages_per_s * args.seconds) * args.per_message
        deadline = began + args.seconds * 4 + 60
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(), console=console,
        ) as progress:  # fmt: skip
            task = progress.add_task(f"{rate:,.0f}/s offered", total=expected, note="")
            stored = 0
            while time.monotonic() < deadline:
                setup.prioritise(args.nice)
                stored = setup.store.count()
                progress.update(
                    task,
                    completed=stored,
                    note=f"published {published.value * args.per_message:,} · stored {stored:,}",
                )
                if done.value and stored >= acknowledged.value * args.per_message:
                    break
                time.sleep(1.0)
        drained_s = time.monotonic() - began
        process.join(30)
        cpu_after = setup.cpu()
        load_after = load()
        histogram = merged([w.latency_buckets() for w in setup.workers])
        exact = setup.store.exactness(int(published.value), args.per_message)
        latency = setup.store.latencies()
        series = setup.store.per_second()
        stored = exact["rows"]
        span = setup.store.span_s() or 1.0
        steady = series[2:-2] or series
        cpu = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
        cpu["publisher"] = float(publisher_cpu.value)
        return {
            "offered_per_s": rate,
            "seconds": args.seconds,
            "workers": args.workers,
            "routing": args.routing,
            "sensors": args.sensors,
            "group_size": args.group_size,
            "per_message": args.per_message,
            "published_messages": int(published.value),
            "acknowledged_messages": int(acknowledged.value),
            **exact,
            "stored_per_s": stored / span,
            "stored_span_s": span,
            "steady_median_per_s": statistics.median(steady) if steady else 0,
            "drained_s": drained_s,
            "latency": latency,
            "commit_histogram_p50_s": histogram_quantile(histogram, 0.5),
            "commit_histogram_p99_s": histogram_quantile(histogram, 0.99),
            "cpu_s": cpu,
            "cpu_ms_per_1000": {k: 1e6 * v / max(stored, 1) for k, v in cpu.items()},
            "load": [load_before, load_after],
            "nice": args.nice,
            "client": args.client,
            "per_second": series,
        }
    finally:
        setup.close()


def throughput(args: argparse.Namespace) -> None:
    runs = []
    for rate in (float(r) for r in str(args.rate).split(",")):
        console.print(
            f"[bold]throughput[/]: {args.workers} workers, {rate:,.0f} readings/s offered "
            f"({args.per_message} per message, {args.sensors:,} sensors) for {args.seconds:g} s; "
            f"load average {load():.1f}"
        )
        runs.append(throughput_run(rate, args))
    table = Table(
        title=f"Operate over MQTT into PostgreSQL, {args.workers} worker processes — "
        f"{os.cpu_count()} CPUs shared with other work (load average per run)"
    )
    for column in (
        "offered/s", "stored/s", "steady/s", "rows", "exact", "dup", "p50 ms", "p95 ms", "p99 ms",
        "commit p99 s", "CPU ms/1000 (workers/pg/broker/publisher)", "load",
    ):  # fmt: skip
        table.add_column(column, justify="right")
    for run in runs:
        cpu = run["cpu_ms_per_1000"]
        table.add_row(
            f"{run['offered_per_s']:,.0f}",
            f"{run['stored_per_s']:,.0f}",
            f"{run['steady_median_per_s']:,.0f}",
            f"{run['rows']:,} / {run['expected']:,}",
            "yes" if run["exact"] else "NO",
            str(run["duplicates"]),
            f"{run['latency'].get('p50_ms', float('nan')):,.0f}",
            f"{run['latency'].get('p95_ms', float('nan')):,.0f}",
            f"{run['latency'].get('p99_ms', float('nan')):,.0f}",
            f"{run['commit_histogram_p99_s']:.2f}",
            f"{cpu['workers']:.0f} / {cpu['postgres']:.0f} / {cpu['broker']:.0f} / "
            f"{cpu['publisher']:.0f}",
            f"{run['load'][0]:.1f} → {run['load'][1]:.1f}",
        )
    console.print(table)
    write("throughput", {"cpus": os.cpu_count(), "runs": runs}, chart_throughput(runs))


def chart_throughput(runs: list[dict[str, Any]]) -> Callable[[Path], None]:
    def draw(path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(9, 4.5))
        for run in runs:
            axis.plot(
                run["per_second"],
                label=f"{run['offered_per_s']:,.0f}/s offered: p99 "
                f"{run['latency'].get('p99_ms', float('nan')):,.0f} ms",
            )
            axis.axhline(run["offered_per_s"], linestyle=":", linewidth=0.8, color="grey")
        axis.set_xlabel("second of the run")
        axis.set_ylabel("readings stored per second")
        axis.set_title("MQTT → PostgreSQL, history and rules, worker processes")
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(path, dpi=120)

    return draw


# ---- soak --------------------------------------------------------------------------------------


def soak(args: argparse.Namespace) -> None:
    seconds = args.minutes * 60
    rate = args.sensors / args.period_s
    console.print(
        f"[bold]soak[/]: {args.sensors:,} sensors × one reading per {args.period_s:g} s "
        f"({rate:,.0f} readings/s) for {args.minutes:g} min, {args.workers} workers; "
        f"load average {load():.1f} (other engineers' work shares the cores)"
    )
    setup = Setup(args.workers, args.sensors, args.group_size, args.routing)
    samples: list[dict[str, Any]] = []
    try:
        plan = Plan(setup.broker.port, rate, seconds, args.sensors, 1, 1, args.client)
        published, acknowledged, done = (multiprocessing.Value("q", 0) for _ in range(3))
        process = multiprocessing.Process(
            target=publisher,
            args=(plan, published, acknowledged, done, multiprocessing.Value("d", 0.0)),
        )
        load_before = load()
        began = time.monotonic()
        process.start()
        killed: dict[str, Any] = {}
        last_id = 0
        victim = setup.workers[-1]
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(), console=console,
        ) as progress:  # fmt: skip
            task = progress.add_task("soak", total=seconds, note="")
            next_sample = began + args.sample_s
            next_priority = began
            while True:
                now = time.monotonic()
                if not killed and now - began >= seconds / 2:
                    killed = {"at_s": now - began, "worker": victim.number}
                    victim.kill()
                    time.sleep(args.down_s)
                    victim.start()
                    killed["restarted_at_s"] = time.monotonic() - began
                    progress.console.print(
                        f"worker {victim.number} killed (SIGKILL) at {killed['at_s']:.0f} s, "
                        f"restarted at {killed['restarted_at_s']:.0f} s"
                    )
                if now >= next_sample:
                    next_sample = max(next_sample + args.sample_s, now + 1.0)
                    top = setup.store.max_id()
                    stored = setup.store.count()
                    sample: dict[str, Any] = {
                        "t_s": now - began,
                        "rss_mb": {str(w.number): w.rss_mb() for w in setup.workers},
                        "pids": {str(w.number): w.process.pid for w in setup.workers if w.process},
                        "broker_rss_mb": rss_mb(setup.broker.process.pid),
                        "stored": stored,
                        "acknowledged": int(acknowledged.value),
                        "backlog": int(acknowledged.value) - stored,
                        "lag": setup.store.latencies(last_id, top),
                        **setup.store.sizes(),
                        "load": load(),
                    }
                    last_id = top
                    samples.append(sample)
                    progress.update(
                        task,
                        completed=min(seconds, now - began),
                        note=f"stored {stored:,} · backlog {sample['backlog']:,} · lag p99 "
                        f"{sample['lag'].get('p99_ms', float('nan')):,.0f} ms · RSS "
                        + "/".join(f"{v:.0f}" for v in sample["rss_mb"].values())
                        + f" MB · load {sample['load']:.1f}",
                    )
                if now >= next_priority:
                    next_priority = now + 5.0
                    setup.prioritise(args.nice)
                if done.value:
                    break
                time.sleep(0.5)
        process.join(30)
        deadline = time.monotonic() + 300
        target = int(acknowledged.value)
        while setup.store.count() < target and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(2)  # redeliveries still on their way would add rows now
        exact = setup.store.exactness(int(published.value), 1)
        record = summarise(args, samples, exact, killed, [load_before, load()])
        record["published"] = int(published.value)
        record["acknowledged"] = target
    finally:
        setup.close()
    report_soak(record)
    write("soak", record, chart_soak(record))


def summarise(
    args: argparse.Namespace,
    samples: list[dict[str, Any]],
    exact: dict[str, int],
    killed: dict[str, Any],
    loads: list[float],
) -> dict[str, Any]:
    warm = [s for s in samples if s["t_s"] >= args.warmup_s]
    memory = {}
    for number in {k for s in samples for k in s["rss_mb"]}:
        lives: dict[int, list[tuple[float, float]]] = {}
        for s in warm:
            lives.setdefault(s["pids"][number], []).append((s["t_s"], s["rss_mb"][number]))
        memory[number] = [
            {
                "pid": pid,
                "from_s": points[0][0],
                "to_s": points[-1][0],
                "first_mb": points[0][1],
                "last_mb": points[-1][1],
                "max_mb": max(p[1] for p in points),
                "change_pct": 100 * (points[-1][1] - points[0][1]) / points[0][1],
                "slope_mb_per_h": 3600 * slope([p[0] for p in points], [p[1] for p in points]),
            }
            for pid, points in lives.items()
        ]
    lag = [(s["t_s"], s["lag"]) for s in warm if s["lag"].get("n")]
    third = max(1, len(lag) // 3)

    def median_of(part: list[tuple[float, dict[str, float]]], key: str) -> float:
        return statistics.median(v[key] for _t, v in part) if part else float("nan")

    sizes = [(s["t_s"], s["database"], s["history"], s["stored"]) for s in warm]
    per_s = slope([p[0] for p in sizes], [p[1] for p in sizes])
    history_per_s = slope([p[0] for p in sizes], [p[2] for p in sizes])
    rows_per_s = slope([p[0] for p in sizes], [p[3] for p in sizes])
    return {
        "sensors": args.sensors,
        "group_size": args.group_size,
        "period_s": args.period_s,
        "minutes": args.minutes,
        "workers": args.workers,
        "exactness": exact,
        "killed": killed,
        "memory": memory,
        "lag_first_third_p50_ms": median_of(lag[:third], "p50_ms"),
        "lag_last_third_p50_ms": median_of(lag[-third:], "p50_ms"),
        "lag_first_third_p99_ms": median_of(lag[:third], "p99_ms"),
        "lag_last_third_p99_ms": median_of(lag[-third:], "p99_ms"),
        "lag_p99_slope_ms_per_min": 60 * slope([t for t, _ in lag], [v["p99_ms"] for _, v in lag]),
        "max_backlog": max((s["backlog"] for s in samples), default=0),
        "broker_rss_mb": [warm[0]["broker_rss_mb"], warm[-1]["broker_rss_mb"]] if warm else [],
        "database_growth_per_day_gb": per_s * 86400 / 1e9,
        "history_growth_per_day_gb": history_per_s * 86400 / 1e9,
        "bytes_per_reading_database": per_s / rows_per_s if rows_per_s else float("nan"),
        "rows_per_s": rows_per_s,
        "final_database_mb": samples[-1]["database"] / 1e6 if samples else float("nan"),
        "load": loads,
        "nice": args.nice,
        "client": args.client,
        "samples": samples,
    }


def report_soak(record: dict[str, Any]) -> None:
    exact = record["exactness"]
    table = Table(
        title=f"Soak: {record['sensors']:,} sensors every {record['period_s']:g} s, "
        f"{record['minutes']:g} min, {record['workers']} workers, worker "
        f"{record['killed'].get('worker')} killed at {record['killed'].get('at_s', 0):.0f} s — "
        f"load average {record['load'][0]:.1f} → {record['load'][1]:.1f} (shared machine)"
        + (f", run at nice {record['nice']}" if record.get("nice") else "")
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("readings published / stored", f"{exact['expected']:,} / {exact['rows']:,}")
    table.add_row("lost / duplicates", f"{exact['lost']:,} / {exact['duplicates']:,}")
    table.add_row("exactly the published set", "yes" if exact["exact"] else "NO")
    for number, lives in sorted(record["memory"].items()):
        for life in lives:
            table.add_row(
                f"worker {number} (pid {life['pid']}) RSS {life['from_s'] / 60:.0f}–"
                f"{life['to_s'] / 60:.0f} min",
                f"{life['first_mb']:.0f} → {life['last_mb']:.0f} MB ({life['change_pct']:+.1f} %, "
                f"{life['slope_mb_per_h']:+.1f} MB/h)",
            )
    table.add_row(
        "lag p50 first → last third",
        f"{record['lag_first_third_p50_ms']:,.0f} → {record['lag_last_third_p50_ms']:,.0f} ms",
    )
    table.add_row(
        "lag p99 first → last third",
        f"{record['lag_first_third_p99_ms']:,.0f} → {record['lag_last_third_p99_ms']:,.0f} ms",
    )
    table.add_row("lag p99 trend", f"{record['lag_p99_slope_ms_per_min']:+.1f} ms/min")
    table.add_row("largest backlog at a sample", f"{record['max_backlog']:,} readings")
    if record.get("broker_rss_mb"):
        first, last = record["broker_rss_mb"]
        table.add_row("broker RSS after warm-up → end", f"{first:.0f} → {last:.0f} MB")
    table.add_row(
        "database growth per day",
        f"{record['database_growth_per_day_gb']:.1f} GB "
        f"({record['bytes_per_reading_database']:.0f} B/reading; history "
        f"{record['history_growth_per_day_gb']:.1f} GB/day)",
    )
    console.print(table)


def chart_soak(record: dict[str, Any]) -> Callable[[Path], None]:
    def draw(path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        samples = record["samples"]
        minutes = [s["t_s"] / 60 for s in samples]
        figure, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
        for number in sorted({k for s in samples for k in s["rss_mb"]}):
            axes[0][0].plot(
                minutes, [s["rss_mb"][number] for s in samples], label=f"worker {number}"
            )
        axes[0][0].set_ylabel("RSS, MB")
        axes[0][0].legend(fontsize=8)
        for key in ("p50_ms", "p99_ms"):
            axes[0][1].plot(minutes, [s["lag"].get(key, float("nan")) for s in samples], label=key)
        axes[0][1].set_ylabel("publish → stored, ms")
        axes[0][1].set_yscale("log")
        axes[0][1].legend(fontsize=8)
        axes[1][0].plot(minutes, [s["backlog"] for s in samples])
        axes[1][0].set_ylabel("acknowledged, not yet stored")
        axes[1][1].plot(minutes, [s["database"] / 1e6 for s in samples], label="database")
        axes[1][1].plot(minutes, [s["history"] / 1e6 for s in samples], label="history")
        axes[1][1].set_ylabel("MB")
        axes[1][1].legend(fontsize=8)
        for axis in axes.flat:
            if record["killed"]:
                axis.axvline(record["killed"]["at_s"] / 60, color="red", linestyle=":")
        for axis in axes[1]:
            axis.set_xlabel("minute (red: a worker killed and restarted)")
        figure.suptitle(
            f"Soak: {record['sensors']:,} sensors every {record['period_s']:g} s, "
            f"{record['workers']} workers"
        )
        figure.tight_layout()
        figure.savefig(path, dpi=120)

    return draw


def write(mode: str, record: dict[str, Any], draw: Callable[[Path], None]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"operate_scale_{mode}.json").write_text(json.dumps(record, indent=2))
    draw(RESULTS / f"operate_scale_{mode}.png")
    console.print(f"written: {RESULTS / f'operate_scale_{mode}.json'} and .png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    fast = modes.add_parser("throughput", help="paced offered rate, stored rate and latency")
    fast.add_argument("--rate", default="20000", help="readings/s offered; several: 20000,15000")
    fast.add_argument("--seconds", type=float, default=25.0)
    fast.add_argument("--workers", type=int, default=2)
    fast.add_argument("--sensors", type=int, default=1000)
    fast.add_argument("--per-message", type=int, default=20, help="readings per MQTT message")
    long = modes.add_parser("soak", help="many sensors for minutes, a worker killed midway")
    long.add_argument("--minutes", type=float, default=30.0)
    long.add_argument("--sensors", type=int, default=20_000)
    long.add_argument(
        "--period-s", type=float, default=10.0, help="seconds between a sensor's readings"
    )
    long.add_argument("--workers", type=int, default=2)
    long.add_argument("--sample-s", type=float, default=60.0)
    long.add_argument("--warmup-s", type=float, default=120.0, help="left out of the slopes")
    long.add_argument("--down-s", type=float, default=10.0, help="the killed worker stays down")
    for mode in (fast, long):
        mode.add_argument(
            "--group-size", type=int, default=20, help="sensors per group (0: all ungrouped)"
        )
        mode.add_argument(
            "--routing",
            choices=("routed", "shared"),
            default="routed",
            help="routed: --workers M, each group's sensors to one worker; shared: MQTT 5 "
            "shared subscription",
        )
        mode.add_argument(
            "--nice",
            type=int,
            default=0,
            help="run the system under test at this niceness (e.g. -15, as root) ahead of other "
            "work sharing the machine; recorded with the results",
        )
        mode.add_argument(
            "--client",
            choices=("raw", "paho"),
            default="raw",
            help="the load generator's MQTT client: raw packets (a few µs a message) or paho-mqtt",
        )
    args = parser.parse_args()
    if args.nice:
        os.nice(args.nice)  # inherited by the workers, the broker and the publisher
    throughput(args) if args.mode == "throughput" else soak(args)


if __name__ == "__main__":
    main()
