"""Ingestion: store readings once, evaluate the rules on them, and turn findings into incidents —
all in one transaction per batch, so an acknowledged batch is fully processed or not at all.

Idempotence: ``(sensor, quantity, time)`` is unique in the history and a message ``id`` is unique
too; a redelivered reading is ignored by the store and never reaches the rules. Order: each
batch's new readings are fed to the detect engine in time order; a reading older than the
newest one already evaluated for its stream is stored but not re-evaluated (the engine ignores it).

The detect engine's streaming state lives in ``operate_detector_record``, one row per stream and
per group table; a batch locks only the rows of its streams, reloads those another process
changed, and writes back what the engine changed, in the batch's transaction (:class:`RulesRunner`).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import event, select, text, tuple_, update
from sqlalchemy.orm import Session

from qala.components.operate import incidents as incident_services
from qala.components.operate.changes import EntityChange
from qala.components.operate.dead_letters import Refusal, record_dead_letters
from qala.components.operate.models import (
    DetectorRecord,
    Entity,
    Finding as FindingRow,
    Sensor,
)
from qala.components.operate.partitions import US_PER_DAY, US_PER_HOUR, add_to_rollups
from qala.components.operate.readings import AIR_QUANTITIES, HEATING_QUANTITIES, Reading, domain_of
from qala.core.clock import utc_now
from qala.engines.detect import (
    Finding,
    FindingKind,
    RuleSet,
    StreamingEvaluator,
    air_quality_rules,
    from_epoch_us,
    heating_rules,
)
from qala.runtime import Context
from qala.store.database import Database
from qala.store.statements import insert_ignoring

RUNNER_KEY = "operate.runner"


def now_us() -> int:
    return time.time_ns() // 1_000


def sensor_entity_id(sensor: str) -> str:
    """The context entity a raw sensor id feeds (``urn:ngsi-ld:Device:<sensor>``)."""
    return sensor if sensor.startswith("urn:") else f"urn:ngsi-ld:Device:{sensor}"


# ---------------------------------------------------------------------------------------------
# Rules runner: the detect engine's evaluators, one per rule set, with persisted state


def default_rule_sets() -> dict[str, RuleSet]:
    """The rule sets Operate runs: air quality (Kazakh ПДК + WHO 2021) and heating networks."""
    return {
        "air": air_quality_rules(
            tuple(sorted(AIR_QUANTITIES & {"pm25", "pm10", "no2", "so2", "co", "o3"}))
        ),
        "heating": heating_rules(),
    }


class SoftState:
    """Per-process buffer of derived "current state": sensors' first/last seen and each sensor
    entity's latest values. The history is authoritative; these are rewritten at most every
    ``every_s`` seconds per sensor so that high-rate ingestion does not update the same rows in
    every batch. A sensor seen for the first time, or whose interval passed while it was quiet,
    is written at once; one whose news waited is written by the first batch after its interval,
    with or without a reading of it.

    Each batch's cost grows with the sensors it writes, not with those buffered: a queue in
    write order finds the sensors whose interval has passed (a scan of every buffered sensor per
    batch cost more than the writes it saved, with 10,000 sensors waiting).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.written_at: dict[str, float] = {}
        self.first: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.latest: dict[str, dict[str, tuple[int, float, str]]] = {}
        self.dirty: set[str] = set()
        self._ready: set[str] = set()  # dirty, and never written or their interval passed
        self._queue: deque[tuple[float, str]] = deque()  # (written at, sensor), oldest first

    def merge(self, rows: Sequence[tuple[int, str, str, int, float, str]]) -> None:
        first, last, latest = self.first, self.last, self.latest
        dirty, written_at, ready = self.dirty, self.written_at, self._ready
        for _id, sensor, quantity, time_us, value, unit in rows:
            if time_us > last.get(sensor, -(2**62)):
                last[sensor] = time_us
            if time_us < first.get(sensor, 2**62):
                first[sensor] = time_us
            values = latest.get(sensor)
            if values is None:
                values = latest[sensor] = {}
            newest = values.get(quantity)
            if newest is None or time_us >= newest[0]:
                values[quantity] = (time_us, value, unit)
            if sensor not in dirty:
                dirty.add(sensor)
                if sensor not in written_at:
                    ready.add(sensor)

    def due(self, every_s: float) -> set[str]:
        """The buffered sensors to write now."""
        now = self.clock()
        queue, written_at = self._queue, self.written_at
        while queue and now - queue[0][0] >= every_s:
            at, sensor = queue.popleft()
            if written_at.get(sensor) != at:
                continue  # written again since: a later entry stands for it
            if sensor in self.dirty:
                self._ready.add(sensor)
            else:  # quiet through its interval: its next news is written at once
                del written_at[sensor]
        return set(self._ready)

    def written(self, sensors: set[str]) -> None:
        now = self.clock()
        for sensor in sensors:
            self.written_at[sensor] = now
            self._queue.append((now, sensor))
            self.dirty.discard(sensor)
            self._ready.discard(sensor)
            self.first.pop(sensor, None)
            self.last.pop(sensor, None)
            self.latest.pop(sensor, None)

    def latest_of(self, sensors: Iterable[str]) -> dict[tuple[str, str], tuple[int, float, str]]:
        """The newest value per ``(sensor, quantity)`` buffered for ``sensors``."""
        return {
            (sensor, quantity): value
            for sensor in sensors
            for quantity, value in self.latest.get(sensor, {}).items()
        }


class SensorFields(Protocol):
    """What a batch reads of a sensor: a :class:`Sensor`, or a row holding the same columns."""

    @property
    def entity_id(self) -> str: ...
    @property
    def place_code(self) -> str | None: ...
    @property
    def group_id(self) -> str | None: ...
    @property
    def lat(self) -> float | None: ...
    @property
    def lon(self) -> float | None: ...


StateKey = tuple[str, str, str, str]
"""A detector record's key: rule set, kind (``stream``/``group``), subject, quantity."""

_CHUNK = 500


# Four arrays instead of a row-value IN list: SQLAlchemy rendered 2,000 parameters for a batch
# of 500 keys and PostgreSQL planned a long OR; with arrays one statement serves every batch
# (800 keys of 21,000 records locked in 20 ms instead of 330–500 ms, measured on this machine).
_LOCK_ON_POSTGRES = text(
    "SELECT r.rule_set, r.kind, r.subject, r.quantity, r.version"
    " FROM operate_detector_record AS r"
    " JOIN unnest(CAST(:rule_sets AS text[]), CAST(:kinds AS text[]),"
    " CAST(:subjects AS text[]), CAST(:quantities AS text[])) AS w(rule_set, kind, subject, quantity)"
    " ON r.rule_set = w.rule_set AND r.kind = w.kind"
    " AND r.subject = w.subject AND r.quantity = w.quantity"
    " ORDER BY r.rule_set, r.kind, r.subject, r.quantity FOR UPDATE OF r"
)


def _locked(session: Session, keys: list[StateKey]) -> Iterable[tuple[str, str, str, str, int]]:
    """The records of ``keys`` locked in key order (SQLite: read; its one writer holds them)."""
    if session.get_bind().dialect.name == "postgresql":
        rule_sets, kinds, subjects, quantities = (
            list(column) for column in zip(*keys, strict=True)
        )
        parameters = {
            "rule_sets": rule_sets,
            "kinds": kinds,
            "subjects": subjects,
            "quantities": quantities,
        }
        return [tuple(row) for row in session.execute(_LOCK_ON_POSTGRES, parameters)]
    return session.execute(
        select(*_KEY, DetectorRecord.version).where(tuple_(*_KEY).in_(keys)).order_by(*_KEY)
    ).all()


class RulesRunner:
    """Evaluates readings with the detect engine, keeping its state in the store record by record.

    The state is one row per stream and per group table (``operate_detector_record``). A batch
    locks (``SELECT … FOR UPDATE``, in key order) only the rows of the streams it feeds and of
    their groups, reloads those another process changed since (each row has a version), and
    writes back the records the engine reports changed — in the transaction storing the
    readings. Workers ingesting other sensors (of other groups) lock other rows and never wait
    for each other; a restarted process simply reloads the rows it needs.

    Parameters
    ----------
    rule_sets
        Name → rule set; a reading goes to the set of its quantity's domain (``air``, ``heating``).
    soft_state_every_s
        Seconds between rewrites of a sensor's last-seen time and its entity's latest values
        (0: every batch). See :class:`SoftState`.
    clock
        Seconds, monotonic: when the soft state is due (tests pass their own).
    """

    def __init__(
        self,
        rule_sets: dict[str, RuleSet] | None = None,
        *,
        soft_state_every_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rule_sets = rule_sets if rule_sets is not None else default_rule_sets()
        self.soft_state_every_s = soft_state_every_s
        self.soft = SoftState(clock)
        self.groups: dict[str, str] = {}
        self._evaluators: dict[str, StreamingEvaluator] = {}
        self._versions: dict[StateKey, int] = {}
        # API worker threads share one runner: its evaluators and soft state are used by one
        # batch at a time. Store rows are locked before this lock is taken, never while held
        # (a thread holding it never waits on another thread's rows).
        self.lock = threading.RLock()

    @staticmethod
    def rule_set_of(quantity: str) -> str | None:
        domain = domain_of(quantity)
        return domain if domain in ("air", "heating") else None

    def invalidate(self) -> None:
        """Forget the in-memory state (after a failed transaction); it is reloaded from the store."""
        with self.lock:
            self._evaluators.clear()
            self._versions.clear()
            self.soft = SoftState(self.soft.clock)

    def evaluator(self, name: str) -> StreamingEvaluator:
        """The in-memory evaluator of a rule set (holding the records loaded so far)."""
        evaluator = self._evaluators.get(name)
        if evaluator is None:
            evaluator = self._evaluators[name] = StreamingEvaluator(self.rule_sets[name])
            evaluator.groups = self.groups  # shared: one sensor → group map per runner
        return evaluator

    # ---- locking --------------------------------------------------------------------------

    @staticmethod
    def _held(session: Session) -> dict[StateKey, int]:
        """The records this transaction has locked, with their versions (locks last until the
        transaction ends: remembered per transaction, not per session)."""
        key = ("operate_detector_locked", id(session.get_transaction()))
        held: dict[StateKey, int] = session.info.setdefault(key, {})
        return held

    def keys_for(
        self, session: Session, streams: Iterable[tuple[str, str]]
    ) -> dict[StateKey, None]:
        """The records that readings of ``(sensor, quantity)`` streams may touch, with each
        sensor's group as the store has it now."""
        wanted = {(s, q) for s, q in streams if self.rule_set_of(q) in self.rule_sets}
        sensors = sorted({s for s, _q in wanted})
        groups: dict[str, str | None] = {}
        for start in range(0, len(sensors), _CHUNK):
            chunk = sensors[start : start + _CHUNK]
            query = select(Sensor.id, Sensor.group_id).where(Sensor.id.in_(chunk))
            groups.update((sensor, group) for sensor, group in session.execute(query))
        with self.lock:
            for sensor in sensors:
                group = groups.get(sensor)
                if group:
                    self.groups[sensor] = group
                else:
                    self.groups.pop(sensor, None)
            keys: dict[StateKey, None] = {}
            for sensor, quantity in sorted(wanted):
                name = self.rule_set_of(quantity)
                assert name is not None
                for kind, subject, record in self.evaluator(name).state_keys(sensor, quantity):
                    keys[(name, kind, subject, record)] = None
        return keys

    def lock_records(self, session: Session, keys: Iterable[StateKey]) -> dict[StateKey, int]:
        """Lock the records (creating missing ones empty), in key order; return their versions."""
        held = self._held(session)
        needed = sorted(set(keys) - set(held))
        if needed:
            if session.get_bind().dialect.name == "sqlite":  # one writer: take the write lock
                session.execute(
                    text("UPDATE operate_detector_record SET version = version WHERE 0")
                )
            # Records never go away: one this process has seen exists, no insert needed…
            self._create(session, [key for key in needed if key not in self._versions])
            for start in range(0, len(needed), _CHUNK):
                chunk = needed[start : start + _CHUNK]
                held.update(((r, k, s, q), v) for r, k, s, q, v in _locked(session, chunk))
            # …unless another thread of this process created it in a transaction not committed
            # yet: the lock query does not see it. The insert waits for that transaction, then
            # either finds the row or creates it; then lock it.
            unseen = [key for key in needed if key not in held]
            if unseen:
                self._create(session, unseen)
                for start in range(0, len(unseen), _CHUNK):
                    chunk = unseen[start : start + _CHUNK]
                    held.update(((r, k, s, q), v) for r, k, s, q, v in _locked(session, chunk))
        return held

    @staticmethod
    def _create(session: Session, keys: list[StateKey]) -> None:
        """Insert empty records for ``keys``, skipping those that exist."""
        stamp = utc_now()
        for start in range(0, len(keys), _CHUNK):
            session.execute(
                insert_ignoring(session, DetectorRecord),
                [
                    {
                        "rule_set": r,
                        "kind": k,
                        "subject": s,
                        "quantity": q,
                        "state": None,
                        "version": 0,
                        "updated_at": stamp,
                    }
                    for r, k, s, q in keys[start : start + _CHUNK]
                ],
            )

    def lock_rule_sets(self, session: Session, names: Iterable[str]) -> dict[StateKey, int]:
        """Lock every record of the rule sets (a silence check, the end of a replay)."""
        held = self._held(session)
        for r, k, s, q, v in session.execute(
            select(*_KEY, DetectorRecord.version)
            .where(DetectorRecord.rule_set.in_(sorted(names)))
            .order_by(*_KEY)
            .with_for_update()
        ):
            held[(r, k, s, q)] = v
        return held

    def lock_streams_of(self, session: Session, owns: Callable[[str], bool]) -> dict[StateKey, int]:
        """Lock the stream records of the sensors ``owns`` accepts (a routed worker's silence
        check: the other workers' streams are theirs to check, and stay unlocked)."""
        names = sorted(self.rule_sets)
        keys = [
            (r, k, s, q)
            for r, k, s, q in session.execute(
                select(*_KEY).where(
                    DetectorRecord.rule_set.in_(names), DetectorRecord.kind == "stream"
                )
            )
            if owns(s)
        ]
        return self.lock_records(session, keys)

    def lock_for(self, session: Session, streams: Iterable[tuple[str, str]]) -> dict[StateKey, int]:
        """Lock the records a batch of readings of these streams may touch (the streams this
        transaction has covered already are not looked up again)."""
        key = ("operate_detector_streams", id(session.get_transaction()))
        covered: set[tuple[str, str]] = session.info.setdefault(key, set())
        wanted = set(streams) - covered
        if not wanted:
            return self._held(session)
        held = self.lock_records(session, self.keys_for(session, wanted))
        covered |= wanted
        return held

    def preload(self, session: Session, owns: Callable[[str], bool] | None = None) -> int:
        """Load every stored detector record this process evaluates (``owns``: whether a
        record's subject, a sensor or a group, is this worker's; None: all) with its version,
        before the first batch; returns how many.

        Loaded batch by batch instead, a restarted worker's records arrive interleaved with the
        batches' short-lived objects, and the allocator's arenas stay fragmented: in the soak a
        restarted worker held ~190 MB more than one that built the same state. No lock is
        taken: a record written meanwhile has another version when a batch locks it, and is
        loaded again then."""
        names = sorted(self.rule_sets)
        query = (
            select(*_KEY, DetectorRecord.state, DetectorRecord.version)
            .where(DetectorRecord.rule_set.in_(names))
            .execution_options(yield_per=_CHUNK)
        )
        loaded = 0
        with self.lock:
            for part in session.execute(query).partitions():
                by_set: dict[str, list[tuple[str, str, str, Any]]] = {}
                for r, k, s, q, state, version in part:
                    if owns is not None and not owns(s):
                        continue
                    by_set.setdefault(r, []).append((k, s, q, state))
                    self._versions[(r, k, s, q)] = version
                    loaded += 1
                for name, records in by_set.items():
                    self.evaluator(name).load_records(records)
        return loaded

    # ---- evaluating -----------------------------------------------------------------------

    def _sync(self, session: Session, keys: Iterable[StateKey], held: dict[StateKey, int]) -> None:
        """Load the locked records whose stored version differs from the one in memory."""
        stale = sorted(k for k in keys if self._versions.get(k) != held[k])
        for start in range(0, len(stale), _CHUNK):
            chunk = stale[start : start + _CHUNK]
            by_set: dict[str, list[tuple[str, str, str, Any]]] = {}
            for r, k, s, q, state in session.execute(
                select(*_KEY, DetectorRecord.state).where(tuple_(*_KEY).in_(chunk))
            ):
                by_set.setdefault(r, []).append((k, s, q, state))
            for name, records in by_set.items():
                self.evaluator(name).load_records(records)
        for key in stale:
            self._versions[key] = held[key]

    def _write(self, session: Session, name: str, held: dict[StateKey, int]) -> None:
        """Write the records the rule set's evaluator changed (they are locked)."""
        rows: list[tuple[StateKey, int, str]] = []
        for kind, subject, quantity, state in self.evaluator(name).changed_records():
            key = (name, kind, subject, quantity)
            if key not in held:  # a record no lock covers: a defect, never written unlocked
                raise RuntimeError(f"detector record {key} changed without its lock")
            version = held[key] + 1
            held[key] = self._versions[key] = version
            rows.append((key, version, state))
        _update_records(session, rows, utc_now())

    def evaluate(
        self,
        session: Session,
        rows: Sequence[tuple[int, str, str, int, float, str]],
        *,
        groups: dict[str, str],
        silence_at_us: int | None = None,
        owns: Callable[[str], bool] | None = None,
    ) -> list[Finding]:
        """Feed new observations ``(id, sensor, quantity, time_us, value, unit)`` in time order;
        with ``silence_at_us``, check the streams for silence instead (only the streams of the
        sensors ``owns`` accepts, if given)."""
        if silence_at_us is None:
            held = self.lock_for(session, {(r[1], r[2]) for r in rows})
        elif owns is None:
            held = self.lock_rule_sets(session, self.rule_sets)
        else:
            held = self.lock_streams_of(session, owns)
        with self.lock:
            self.groups.update(groups)
            return self._evaluate(session, rows, held, silence_at_us, owns)

    def _evaluate(
        self,
        session: Session,
        rows: Sequence[tuple[int, str, str, int, float, str]],
        held: dict[StateKey, int],
        silence_at_us: int | None,
        owns: Callable[[str], bool] | None = None,
    ) -> list[Finding]:
        by_set: dict[str, list[tuple[int, str, str, int, float, str]]] = {}
        for row in rows:
            name = self.rule_set_of(row[2])
            if name is not None and name in self.rule_sets:
                by_set.setdefault(name, []).append(row)
        names = set(by_set) if silence_at_us is None else set(self.rule_sets)
        self._sync(session, [k for k in held if k[0] in names], held)
        findings: list[Finding] = []
        for name in sorted(names):
            evaluator = self.evaluator(name)
            batch = sorted(by_set.get(name, []), key=lambda r: (r[3], r[0]))
            feed = evaluator.feed_value
            for _id, sensor, quantity, time_us, value, unit in batch:
                out = feed(sensor, quantity, time_us, value, unit)
                if out:
                    findings.extend(out)
            if silence_at_us is not None:
                findings.extend(evaluator.check_silence(silence_at_us, owns))
            self._write(session, name, held)
        return findings

    def flush(self, session: Session) -> list[Finding]:
        """Close every open window (end of a replay) and write the records."""
        held = self.lock_rule_sets(session, self.rule_sets)
        with self.lock:
            self._sync(session, list(held), held)
            findings: list[Finding] = []
            for name in sorted(self.rule_sets):
                findings.extend(self.evaluator(name).flush())
                self._write(session, name, held)
            return findings


# Every changed record of a batch in one statement: with one-reading devices a batch changes one
# stream record per reading, and an executemany sent each row as its own bound statement (the
# driver's per-row work was the larger part of the write). The states travel as one JSON array
# matched to the keys by position: as elements of a text[] every quote in them was escaped by
# the driver's array dumper, one regular-expression substitution per quote, in Python.
_UPDATE_RECORDS_ON_POSTGRES = text(
    "UPDATE operate_detector_record AS r SET state = s.state, version = w.version,"
    " updated_at = :stamp"
    " FROM unnest(CAST(:rule_sets AS text[]), CAST(:kinds AS text[]),"
    " CAST(:subjects AS text[]), CAST(:quantities AS text[]), CAST(:versions AS bigint[]))"
    " WITH ORDINALITY AS w(rule_set, kind, subject, quantity, version, n)"
    " JOIN json_array_elements(CAST(:states AS json)) WITH ORDINALITY AS s(state, n)"
    " ON s.n = w.n"
    " WHERE r.rule_set = w.rule_set AND r.kind = w.kind"
    " AND r.subject = w.subject AND r.quantity = w.quantity"
)


def _update_records(
    session: Session, rows: list[tuple[StateKey, int, str]], stamp: datetime
) -> None:
    """Write detector records (locked by this transaction): key, new version, state as JSON."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        values = [
            {
                "rule_set": r,
                "kind": k,
                "subject": s,
                "quantity": q,
                "state": json.loads(state),
                "version": version,
                "updated_at": stamp,
            }
            for (r, k, s, q), version, state in rows
        ]
        for start in range(0, len(values), _CHUNK):
            session.execute(update(DetectorRecord), values[start : start + _CHUNK])
        return
    session.execute(
        _UPDATE_RECORDS_ON_POSTGRES,
        {
            "rule_sets": [key[0] for key, _v, _s in rows],
            "kinds": [key[1] for key, _v, _s in rows],
            "subjects": [key[2] for key, _v, _s in rows],
            "quantities": [key[3] for key, _v, _s in rows],
            "versions": [version for _k, version, _s in rows],
            "states": f"[{','.join(state for _k, _v, state in rows)}]",
            "stamp": stamp,
        },
    )


_KEY = (
    DetectorRecord.rule_set,
    DetectorRecord.kind,
    DetectorRecord.subject,
    DetectorRecord.quantity,
)


def runner_for(context: Context) -> RulesRunner:
    """The context's rules runner (one per process, created on first use)."""
    runner = context.extras.get(RUNNER_KEY)
    if runner is None:
        runner = context.extras[RUNNER_KEY] = RulesRunner()
    return runner


# ---------------------------------------------------------------------------------------------
# Storing observations


# The history's keys: (sensor, quantity, time) and (message id, time) — a partitioned table's
# unique keys must hold its partition key — so a message id seen before at another time is
# skipped here (its first reading stands), the check served by the (message id, time) index.
# Readings carrying message ids: the first of each id in the batch, unless already stored.
_WITH_IDS = (
    "SELECT sensor, quantity, time_us, value, unit, message_id, %s FROM ("
    " SELECT *, row_number() OVER (PARTITION BY message_id ORDER BY seq) AS nth"
    " FROM operate_incoming) AS i "
    "WHERE i.message_id IS NULL OR (i.nth = 1 AND NOT EXISTS"
    " (SELECT 1 FROM operate_observation o WHERE o.message_id = i.message_id)) "
)
_WITHOUT_IDS = (
    "SELECT sensor, quantity, time_us, value, unit, message_id, %s FROM operate_incoming "
)
# The roll-ups in the same statement, from the rows it inserted (one round trip); keys in
# order, so that concurrent writers lock them in the same order.
_ROLLUPS = ", ".join(
    f"{name} AS (INSERT INTO operate_observation_{name} AS r "
    "(sensor, quantity, start_us, count, total, minimum, maximum) "
    f"SELECT sensor, quantity, time_us - time_us %% {width}, count(*), sum(value), min(value),"
    f" max(value) FROM inserted GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 "
    "ON CONFLICT (sensor, quantity, start_us) DO UPDATE SET count = r.count + "
    "excluded.count, total = r.total + excluded.total, minimum = least(r.minimum, "
    "excluded.minimum), maximum = greatest(r.maximum, excluded.maximum))"
    for name, width in (("hourly", US_PER_HOUR), ("daily", US_PER_DAY))
)


def _insert_postgres(with_ids: bool) -> str:
    source = _WITH_IDS if with_ids else _WITHOUT_IDS
    return (
        "WITH inserted AS (INSERT INTO operate_observation "
        "(sensor, quantity, time_us, value, unit, message_id, received_us) "
        f"{source}ORDER BY seq ON CONFLICT DO NOTHING "
        f"RETURNING id, sensor, quantity, time_us, value, unit), {_ROLLUPS} "
        "SELECT * FROM inserted ORDER BY id"
    )


_INSERT_POSTGRES = {with_ids: _insert_postgres(with_ids) for with_ids in (True, False)}


def _values(r: Reading, received: int) -> tuple[Any, ...]:
    return (r.sensor, r.quantity, r.time_us, r.value, r.unit, r.message_id, received)


def _insert_observations(
    session: Session, readings: Sequence[Reading], received: int
) -> list[tuple[int, str, str, int, float, str]]:
    """Insert readings, skipping duplicates, and add them to the roll-ups; return the rows
    actually inserted."""
    if not readings:
        return []
    connection = session.connection()
    raw = connection.connection.driver_connection
    assert raw is not None  # None only once the connection is closed; this one is in use
    if connection.dialect.name == "postgresql":
        pooled_info = connection.connection.info  # lives as long as the database connection
        with raw.cursor() as cursor:
            if not pooled_info.get("operate_incoming"):
                cursor.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS operate_incoming (seq integer, sensor text, "
                    "quantity text, time_us bigint, value double precision, unit text, "
                    "message_id text) ON COMMIT DELETE ROWS"
                )

                def created(_session: Session) -> None:  # a rolled-back CREATE leaves no table
                    pooled_info["operate_incoming"] = True

                event.listen(session, "after_commit", created, once=True)
            with cursor.copy(
                "COPY operate_incoming (seq, sensor, quantity, time_us, value, unit, message_id) FROM STDIN"
            ) as copy:
                for seq, r in enumerate(readings):
                    copy.write_row(
                        (seq, r.sensor, r.quantity, r.time_us, r.value, r.unit, r.message_id)
                    )
            with_ids = any(r.message_id is not None for r in readings)
            cursor.execute(_INSERT_POSTGRES[with_ids], (received,))
            inserted = cursor.fetchall()
            cursor.execute("DELETE FROM operate_incoming")
        return [tuple(row) for row in inserted]
    # SQLite: one writer at a time, so the new rows are exactly those above the previous maximum
    # read once this transaction holds the write lock (a write statement takes it, even one
    # that changes nothing); read before, another thread's rows committed meanwhile would count
    # as this batch's (evaluated and rolled up twice).
    cursor = raw.cursor()
    cursor.execute("UPDATE operate_detector_record SET version = version WHERE 0")
    cursor.execute("SELECT coalesce(max(id), 0) FROM operate_observation")
    before = cursor.fetchone()[0]
    cursor.executemany(
        "INSERT INTO operate_observation (sensor, quantity, time_us, value, unit, message_id, received_us) "
        "SELECT ?, ?, ?, ?, ?, ?, ? WHERE ? IS NULL OR NOT EXISTS "
        "(SELECT 1 FROM operate_observation WHERE message_id = ?) ON CONFLICT DO NOTHING",
        [(*_values(r, received), r.message_id, r.message_id) for r in readings],
    )
    cursor.execute(
        "SELECT id, sensor, quantity, time_us, value, unit FROM operate_observation WHERE id > ? ORDER BY id",
        (before,),
    )
    inserted = [tuple(row) for row in cursor.fetchall()]
    cursor.close()
    add_to_rollups(session, inserted)
    return inserted


# ---------------------------------------------------------------------------------------------
# Findings → incidents

_KIND_CATEGORY = {
    FindingKind.FAULT: "sensor_fault",
    FindingKind.SILENCE: "sensor_offline",
    FindingKind.EPISODE: "air_pollution_episode",
}


def category_for(finding: Finding) -> str | None:
    """The incident category a finding opens, or None when it is recorded only.

    Anomalies are recorded for the operators' review but open nothing (they may be real or a
    fault); exceedances of advisory (WHO) guidelines are recorded for the indicators; binding
    Kazakh limits and heating ranges open incidents.
    """
    if finding.rule_id.endswith(":end") or finding.details.get("phase") == "end":
        return None
    if finding.kind in _KIND_CATEGORY:
        if finding.kind == FindingKind.EPISODE and domain_of(finding.quantity) != "air":
            return "heating"
        return _KIND_CATEGORY[finding.kind]
    if finding.kind == FindingKind.EXCEEDANCE:
        if finding.rule_id.startswith("heating."):
            return "heating"
        if finding.quantity in HEATING_QUANTITIES:
            return "heating"
        if "who" in finding.rule_id:
            return None
        return "air_quality"
    return None


@dataclass
class IngestReport:
    """What one batch did."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    findings: int = 0
    incidents_opened: list[int] = field(default_factory=list)
    incidents_updated: list[int] = field(default_factory=list)
    changed_entities: list[str] = field(default_factory=list)
    changed_attributes: dict[str, list[str]] = field(default_factory=dict)
    """Attribute names changed per entity, where known (an entity absent here: all of them)."""
    entity_changes: dict[str, EntityChange] = field(default_factory=dict)
    """What NGSI-LD writes did to each entity (created, deleted, attributes and their previous
    values), for the subscriptions' triggers and ``showChanges``."""
    dead_letters: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "findings": self.findings,
            "incidents_opened": self.incidents_opened,
            "incidents_updated": self.incidents_updated,
            "seconds": round(self.seconds, 4),
        }

    def note(self, change: EntityChange) -> None:
        """Record what a write did to an entity (after what earlier writes of the batch did)."""
        known = self.entity_changes.get(change.entity_id)
        if known is None:
            self.entity_changes[change.entity_id] = change
        else:
            known.merge(change)

    def merge(self, other: IngestReport) -> None:
        self.received += other.received
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.findings += other.findings
        self.incidents_opened += other.incidents_opened
        self.incidents_updated += other.incidents_updated
        self.changed_entities += other.changed_entities
        for entity_id, names in other.changed_attributes.items():
            self.changed_attributes.setdefault(entity_id, []).extend(names)
        for change in other.entity_changes.values():
            self.note(change)
        self.dead_letters += other.dead_letters
        self.seconds += other.seconds


def store_findings(
    session: Session,
    findings: Sequence[Finding],
    *,
    sensors: Mapping[str, SensorFields],
    now: datetime,
    report: IngestReport,
    illustrative: bool = False,
) -> None:
    """Insert findings (deduplicated by rule, sensor and start) and open/attach incidents."""
    if not findings:
        return
    unique: dict[tuple[str, str, int], Finding] = {}
    for finding in findings:
        unique[finding.key] = finding  # a later finding with the same key (silence end) wins
    records = [
        {
            "rule_id": f.rule_id,
            "kind": str(f.kind),
            "sensor": f.sensor,
            "quantity": f.quantity,
            "start_us": f.start_us,
            "end_us": f.end_us,
            "severity": f.severity.name.lower(),
            "value": float(f.value),
            "threshold": None if f.threshold is None else float(f.threshold),
            "unit": f.unit,
            "explanation": f.explanation,
            "details": _jsonable(f.details),
            "created_at": now,
        }
        for f in unique.values()
    ]
    new_keys: dict[tuple[str, str, int], int] = {}
    for start in range(0, len(records), 500):
        chunk = records[start : start + 500]
        statement = insert_ignoring(session, FindingRow).values(chunk)
        result = session.execute(
            statement.returning(
                FindingRow.id, FindingRow.rule_id, FindingRow.sensor, FindingRow.start_us
            )
        )
        for finding_id, rule_id, sensor, start_us in result:
            new_keys[(rule_id, sensor, start_us)] = finding_id
    report.findings += len(new_keys)
    for key, finding in unique.items():
        if key in new_keys:
            _incident_for(session, finding, new_keys[key], sensors, now, report, illustrative)
        elif finding.details.get("phase") == "end":
            _end_of_condition(session, finding, now, report)


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    import json

    plain: dict[str, Any] = json.loads(json.dumps(details, default=str))
    return plain


def _incident_for(
    session: Session,
    finding: Finding,
    finding_id: int,
    sensors: Mapping[str, SensorFields],
    now: datetime,
    report: IngestReport,
    illustrative: bool,
) -> None:
    category = category_for(finding)
    if category is None:
        return
    sensor = sensors.get(finding.sensor)
    if sensor is None:
        sensor = session.get(Sensor, finding.sensor)
    if sensor is not None:
        place, lat, lon = sensor.place_code, sensor.lat, sensor.lon
    else:  # a network finding names a group of sensors, not one
        place, lat, lon = _group_place(session, finding.sensor)
    severity = finding.severity.name.lower()
    # Opened when the evidence ended (the present for live data, the past for a replay).
    observed = from_epoch_us(max(finding.start_us, finding.end_us))
    result = incident_services.open_incident(
        session,
        category=category,
        severity=severity,
        now=min(now, observed),
        actor=f"rule:{finding.rule_id}",
        source="rule",
        title=None,
        description=finding.explanation,
        place_code=place,
        lat=lat,
        lon=lon,
        sensor=finding.sensor,
        domain=domain_of(finding.quantity),
        illustrative=illustrative,
        evidence={
            "finding_id": finding_id,
            "rule_id": finding.rule_id,
            "kind": str(finding.kind),
            "value": finding.value,
            "threshold": finding.threshold,
            "observed_at": from_epoch_us(finding.start_us).isoformat(),
        },
    )
    session.execute(
        update(FindingRow).where(FindingRow.id == finding_id).values(incident_id=result.incident.id)
    )
    (report.incidents_opened if result.created else report.incidents_updated).append(
        result.incident.id
    )


def _group_place(session: Session, group_id: str) -> tuple[str | None, float | None, float | None]:
    """Place and mean position of a sensor group: its members' common place, else their common
    parent place in the catalogue (districts of one city → the city)."""
    from qala.components.catalog.models import Place

    members = session.execute(
        select(Sensor.place_code, Sensor.lat, Sensor.lon).where(Sensor.group_id == group_id)
    ).all()
    if not members:
        return None, None, None
    points = [(lat, lon) for _p, lat, lon in members if lat is not None and lon is not None]
    lat = sum(p[0] for p in points) / len(points) if points else None
    lon = sum(p[1] for p in points) / len(points) if points else None
    codes = {code for code, _lat, _lon in members if code}
    if len(codes) == 1:
        return codes.pop(), lat, lon
    parents = set(
        session.scalars(
            select(Place.code).where(
                Place.id.in_(select(Place.parent_id).where(Place.code.in_(codes)))
            )
        )
    )
    return (parents.pop() if len(parents) == 1 else None), lat, lon


def _end_of_condition(
    session: Session, finding: Finding, now: datetime, report: IngestReport
) -> None:
    stored = session.scalar(
        select(FindingRow).where(
            FindingRow.rule_id == finding.rule_id,
            FindingRow.sensor == finding.sensor,
            FindingRow.start_us == finding.start_us,
        )
    )
    if stored is None:
        return
    stored.end_us = finding.end_us
    stored.explanation = finding.explanation
    stored.details = _jsonable(finding.details)
    if stored.incident_id is not None:
        incident = incident_services.get_incident(session, stored.incident_id)
        if incident.status != "closed":
            incident_services.add_audit_entry(
                session,
                incident,
                now,
                f"rule:{finding.rule_id}",
                "condition_ended",
                explanation=finding.explanation,
            )
            report.incidents_updated.append(incident.id)


# ---------------------------------------------------------------------------------------------
# The pipeline


# Last/first seen of many sensors in one statement; the sensors' fields the batch needs come back.
_SEEN_ON_POSTGRES = text(
    "UPDATE operate_sensor AS s SET"
    " last_seen_us = greatest(coalesce(s.last_seen_us, v.last_us), v.last_us),"
    " first_seen_us = least(coalesce(s.first_seen_us, v.first_us), v.first_us)"
    " FROM unnest(CAST(:ids AS text[]), CAST(:firsts AS bigint[]), CAST(:lasts AS bigint[]))"
    " AS v(id, first_us, last_us) WHERE s.id = v.id"
    " RETURNING s.id, s.entity_id, s.place_code, s.group_id, s.lat, s.lon"
)


def _sensors_for(
    session: Session, names: set[str], first_seen: dict[str, int], last_seen: dict[str, int]
) -> dict[str, SensorFields]:
    """Record when the sensors were seen (creating unknown ones); returns them.

    On PostgreSQL one ``UPDATE … FROM unnest(…) RETURNING`` serves every registered sensor
    of the batch (the ORM loaded and flushed them one by one, the larger part of the soft state's
    cost with many one-reading sensors) and returns the rows the batch reads."""
    if names and session.get_bind().dialect.name == "postgresql":
        ordered = sorted(names)
        known: dict[str, SensorFields] = {
            row.id: row
            for row in session.execute(
                _SEEN_ON_POSTGRES,
                {
                    "ids": ordered,
                    "firsts": [first_seen[n] for n in ordered],
                    "lasts": [last_seen[n] for n in ordered],
                },
            )
        }
        missing = names - set(known)
        if missing:
            known.update(_sensors_for_orm(session, missing, first_seen, last_seen))
        return known
    return dict(_sensors_for_orm(session, names, first_seen, last_seen))


def _sensors_for_orm(
    session: Session, names: set[str], first_seen: dict[str, int], last_seen: dict[str, int]
) -> dict[str, Sensor]:
    known = (
        {s.id: s for s in session.scalars(select(Sensor).where(Sensor.id.in_(names)))}
        if names
        else {}
    )
    for name in names - set(known):
        sensor = Sensor(
            id=name,
            entity_id=sensor_entity_id(name),
            status="active",
            first_seen_us=first_seen[name],
            last_seen_us=last_seen[name],
        )
        session.add(sensor)
        known[name] = sensor
    for name, sensor in known.items():
        if sensor.last_seen_us is None or last_seen[name] > sensor.last_seen_us:
            sensor.last_seen_us = last_seen[name]
        if sensor.first_seen_us is None or first_seen[name] < sensor.first_seen_us:
            sensor.first_seen_us = first_seen[name]
    session.flush()
    return known


def _refresh_entities(
    session: Session,
    sensors: Mapping[str, SensorFields],
    latest: dict[tuple[str, str], tuple[int, float, str]],
) -> list[str]:
    """Keep each sensor's context entity showing its newest value per quantity (as NGSI-LD Properties)."""
    by_entity: dict[str, dict[str, tuple[int, float, str]]] = {}
    for (sensor_id, quantity), reading in latest.items():
        by_entity.setdefault(sensors[sensor_id].entity_id, {})[quantity] = reading
    if not by_entity:
        return []
    from qala.components.operate.readings import UNIT_CODES

    codes = {unit: code for code, unit in UNIT_CODES.items()}
    existing: dict[str, dict[str, Any]] = {}
    wanted = sorted(by_entity)
    for start in range(0, len(wanted), _CHUNK):
        query = select(Entity.id, Entity.attrs).where(Entity.id.in_(wanted[start : start + _CHUNK]))
        existing.update((entity_id, attrs or {}) for entity_id, attrs in session.execute(query))
    stamp = utc_now()
    changed = []
    updates: list[dict[str, Any]] = []
    for entity_id, values in by_entity.items():
        current_attrs = existing.get(entity_id)
        # An entity this session holds (an NGSI-LD write ingesting its observed properties) is
        # changed through its object, so that a later flush does not overwrite these values.
        entity = session.identity_map.get(session.identity_key(Entity, entity_id))
        if entity is not None:
            current_attrs = entity.attrs or {}
        elif current_attrs is None:
            sensor = next(s for s in sensors.values() if s.entity_id == entity_id)
            attrs: dict[str, Any] = {}
            if sensor.lat is not None and sensor.lon is not None:
                attrs["location"] = {
                    "type": "GeoProperty",
                    "value": {"type": "Point", "coordinates": [sensor.lon, sensor.lat]},
                }
            entity = Entity(
                id=entity_id,
                type="Device",
                concept="item",
                attrs=attrs,
                lat=sensor.lat,
                lon=sensor.lon,
                lat_min=sensor.lat,  # a point's box is the point (ngsi.box_of)
                lat_max=sensor.lat,
                lon_min=sensor.lon,
                lon_max=sensor.lon,
                place_code=sensor.place_code,
                created_at=stamp,
            )
            session.add(entity)
            current_attrs = attrs
        attrs = dict(current_attrs)
        for quantity, (time_us, value, unit) in values.items():
            current = attrs.get(quantity)
            observed = from_epoch_us(time_us).isoformat().replace("+00:00", "Z")
            if isinstance(current, dict) and str(current.get("observedAt", "")) > observed:
                continue
            attribute: dict[str, Any] = {"type": "Property", "value": value, "observedAt": observed}
            if unit in codes:
                attribute["unitCode"] = codes[unit]
            attrs[quantity] = attribute
        if entity is not None:
            entity.attrs = attrs
            entity.modified_at = stamp
        else:  # by primary key, many rows in one executemany (no unit of work)
            updates.append({"id": entity_id, "attrs": attrs, "modified_at": stamp})
        changed.append(entity_id)
    _update_entities(session, updates, stamp)
    return changed


# As the detector records: one statement, the attributes as one JSON array matched by position.
_UPDATE_ENTITIES_ON_POSTGRES = text(
    "UPDATE operate_entity AS e SET attrs = a.attrs, modified_at = :stamp"
    " FROM unnest(CAST(:ids AS text[])) WITH ORDINALITY AS w(id, n)"
    " JOIN json_array_elements(CAST(:attrs AS json)) WITH ORDINALITY AS a(attrs, n) ON a.n = w.n"
    " WHERE e.id = w.id"
)


def _update_entities(session: Session, updates: list[dict[str, Any]], stamp: datetime) -> None:
    """Write entities' attributes by primary key: on PostgreSQL in one statement."""
    if not updates:
        return
    if session.get_bind().dialect.name != "postgresql":
        for start in range(0, len(updates), _CHUNK):
            session.execute(update(Entity), updates[start : start + _CHUNK])
        return
    session.execute(
        _UPDATE_ENTITIES_ON_POSTGRES,
        {
            "ids": [u["id"] for u in updates],
            "attrs": json.dumps([u["attrs"] for u in updates]),
            "stamp": stamp,
        },
    )


def ingest_in_session(
    session: Session,
    readings: Sequence[Reading],
    *,
    runner: RulesRunner,
    now: datetime | None = None,
    refresh_entities: bool = True,
    illustrative: bool = False,
) -> IngestReport:
    """Store, evaluate and act on a batch inside the caller's transaction."""
    started = time.perf_counter()
    now = now or utc_now()
    report = IngestReport(received=len(readings))
    # Lock the detector records of the batch's streams (and their groups) first: a batch of the
    # same stream waits here, so its readings are stored and evaluated after this one's.
    runner.lock_for(session, {(r.sensor, r.quantity) for r in readings})
    rows = _insert_observations(session, readings, now_us())  # and adds them to the roll-ups
    report.stored = len(rows)
    report.duplicates = len(readings) - len(rows)
    with runner.lock:
        _act_on_new_rows(session, rows, runner, now, refresh_entities, illustrative, report)
    report.seconds = time.perf_counter() - started
    return report


def _act_on_new_rows(
    session: Session,
    rows: list[tuple[int, str, str, int, float, str]],
    runner: RulesRunner,
    now: datetime,
    refresh_entities: bool,
    illustrative: bool,
    report: IngestReport,
) -> None:
    soft = runner.soft
    if rows:
        soft.merge(rows)
    due = soft.due(runner.soft_state_every_s)
    sensors: dict[str, SensorFields] = {}
    if due:
        sensors = _sensors_for(session, due, soft.first, soft.last)
    if rows:
        groups = {name: s.group_id for name, s in sensors.items() if s.group_id}
        findings = runner.evaluate(session, rows, groups=groups)
        store_findings(
            session, findings, sensors=sensors, now=now, report=report, illustrative=illustrative
        )
    if due:
        if refresh_entities:
            report.changed_entities = _refresh_entities(session, sensors, soft.latest_of(due))
        soft.written(due)


def ingest(
    context: Context | Database,
    readings: Sequence[Reading],
    *,
    runner: RulesRunner | None = None,
    now: datetime | None = None,
    illustrative: bool = False,
    refusals: Sequence[Refusal] = (),
    channel: str = "direct",
) -> IngestReport:
    """Ingest one batch in one transaction; on return the batch is committed (safe to acknowledge).

    ``refusals`` (messages of the batch that cannot be ingested) go to the dead letters in the same
    transaction, so that acknowledging the batch never loses them. Afterwards, subscriptions watching the changed entities are notified (from a background
    thread) and ``operate.observations.ingested`` is published on the context's bus.
    """
    database = context.database if isinstance(context, Context) else context
    if runner is None:
        runner = runner_for(context) if isinstance(context, Context) else RulesRunner()
    started = time.perf_counter()
    try:
        with database.transaction() as session:
            report = ingest_in_session(
                session, readings, runner=runner, now=now, illustrative=illustrative
            )
            report.dead_letters = record_dead_letters(session, refusals, now=now or utc_now())
            stage_notifications(session, report)
    except BaseException:
        runner.invalidate()
        raise
    if isinstance(context, Context):
        count_batch(context, report, channel, time.perf_counter() - started)
        after_commit(context, report)
    return report


def count_batch(context: Context, report: IngestReport, channel: str, seconds: float) -> None:
    """Add a committed batch to the platform's metrics (``/metrics``)."""
    metrics = context.metrics()
    metrics.ingest_readings.labels(channel, "stored").inc(report.stored)
    metrics.ingest_readings.labels(channel, "duplicate").inc(max(report.duplicates, 0))
    metrics.dead_letters.labels(channel).inc(report.dead_letters)
    metrics.findings.labels(channel).inc(report.findings)
    metrics.batch_seconds.labels(channel).observe(seconds)


def unknown_sensors(session: Session, names: Iterable[str]) -> set[str]:
    """The names among ``names`` that are not registered sensors."""
    wanted = set(names)
    if not wanted:
        return set()
    return wanted - set(session.scalars(select(Sensor.id).where(Sensor.id.in_(wanted))))


def ingest_payload(context: Context, payload: Any, *, source: str) -> IngestReport:
    """Validate a decoded JSON payload of observations completely, then ingest it in one batch.

    All or nothing, for a caller waiting on the answer (the HTTP batch route): any bad item refuses
    the whole payload with every problem, each naming the item index and field. Outside
    provisioning mode (setting ``operate_provisioning``) unregistered sensors are problems too.

    Raises
    ------
    ValidationError
        Every problem found; nothing is stored.
    """
    from qala.components.operate.readings import readings_from_payload

    def strangers(names: set[str]) -> set[str]:
        with context.database.session() as session:
            return unknown_sensors(session, names)

    checker = None if context.settings.operate_provisioning else strangers
    readings = readings_from_payload(payload, source=source, unknown_sensors=checker)
    return ingest(context, readings, channel="http")


def stage_notifications(session: Session, report: IngestReport) -> None:
    """Put what the batch changed in the notification outbox, in the batch's transaction: the
    subscriptions are told after the commit, and after a crash by the next process."""
    from qala.components.operate.outbox import changes_of, stage

    changed = [*report.changed_entities, *report.entity_changes]
    if changed:
        changes = changes_of(changed, report.changed_attributes, report.entity_changes)
        stage(session, changes, utc_now())


def after_commit(context: Context, report: IngestReport) -> None:
    """After the batch committed: wake the notifier (it reads the changes :func:`stage_notifications`
    put in the outbox), announce incidents."""
    from qala.components.operate.subscriptions import notify_changed
    from qala.events import Event

    if report.changed_entities or report.entity_changes:
        notify_changed(context)
    for incident_id in dict.fromkeys(report.incidents_opened):
        context.bus.publish(Event("operate.incident.opened", {"id": incident_id}))
    for incident_id in dict.fromkeys(report.incidents_updated):
        if incident_id not in report.incidents_opened:
            context.bus.publish(Event("operate.incident.updated", {"id": incident_id}))


def write_soft_state(context: Context, *, runner: RulesRunner | None = None) -> IngestReport:
    """Write every sensor's buffered soft state now (last seen, the entity's latest values), as
    an ingester stops: what waited for its interval is not left behind until the sensor's next
    reading reaches another process."""
    runner = runner or runner_for(context)
    report = IngestReport()
    with runner.lock:
        soft = runner.soft
        waiting = set(soft.dirty)
        if not waiting:
            return report
        try:
            with context.database.transaction() as session:
                sensors = _sensors_for(session, waiting, soft.first, soft.last)
                report.changed_entities = _refresh_entities(
                    session, sensors, soft.latest_of(waiting)
                )
        except BaseException:
            runner.invalidate()
            raise
        soft.written(waiting)
    after_commit(context, report)
    return report


def check_silence(
    context: Context,
    *,
    at_us: int | None = None,
    runner: RulesRunner | None = None,
    owns: Callable[[str], bool] | None = None,
) -> IngestReport:
    """Findings (and incidents) for sensors that stopped reporting, as of ``at_us`` (default now);
    only for the sensors ``owns`` accepts, if given (a routed worker's own)."""
    runner = runner or runner_for(context)
    report = IngestReport()
    try:
        with context.database.transaction() as session:
            findings = runner.evaluate(
                session, [], groups={}, silence_at_us=at_us or now_us(), owns=owns
            )
            named = sorted({f.sensor for f in findings})
            sensors = {
                s.id: s
                for start in range(0, len(named), _CHUNK)
                for s in session.scalars(
                    select(Sensor).where(Sensor.id.in_(named[start : start + _CHUNK]))
                )
            }
            store_findings(session, findings, sensors=sensors, now=utc_now(), report=report)
            for finding in findings:
                if finding.kind == FindingKind.SILENCE and finding.sensor in sensors:
                    sensors[finding.sensor].status = "silent"
            stage_notifications(session, report)
    except BaseException:
        runner.invalidate()
        raise
    after_commit(context, report)
    return report


def flush_rules(
    context: Context, *, runner: RulesRunner | None = None, illustrative: bool = False
) -> IngestReport:
    """Close the open windows of every stream (end of a replay) and act on the findings."""
    runner = runner or runner_for(context)
    report = IngestReport()
    try:
        with context.database.transaction() as session:
            findings = runner.flush(session)
            sensors = {s.id: s for s in session.scalars(select(Sensor))}
            store_findings(
                session,
                findings,
                sensors=sensors,
                now=utc_now(),
                report=report,
                illustrative=illustrative,
            )
            stage_notifications(session, report)
    except BaseException:
        runner.invalidate()
        raise
    after_commit(context, report)
    return report


def register_sensors(session: Session, records: Iterable[dict[str, Any]]) -> int:
    """Create or update sensors (id, name, place_code, group_id, lat, lon, entity_id)."""
    count = 0
    for record in records:
        sensor = session.get(Sensor, record["id"])
        if sensor is None:
            sensor = Sensor(
                id=record["id"],
                entity_id=record.get("entity_id") or sensor_entity_id(record["id"]),
                status="active",
            )
            session.add(sensor)
        for key in ("name", "place_code", "group_id", "lat", "lon"):
            if record.get(key) is not None:
                setattr(sensor, key, record[key])
        count += 1
    session.flush()
    return count
