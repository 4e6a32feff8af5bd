"""Route each sensor to one ingest worker, so that a stream is evaluated in order by one process.

With an MQTT 5 shared subscription the broker spreads one sensor's messages over the workers:
two of them can hold readings of one stream milliseconds apart, and whichever commits the later
reading first makes the rules skip the earlier one (stored, not evaluated). Routing instead gives
each sensor one owner:

- Every worker of ``M`` subscribes to the whole topic (no ``$share``) with its own persistent
  session, so the broker keeps a copy of every message for every worker — also for a worker that
  is down, in its session, until it comes back.
- Worker ``N`` evaluates a message only if its sensor's *routing key* hashes to ``N``
  (:func:`partition_of`: CRC-32 of the key, modulo ``M``, plus one); it acknowledges every other
  message at once, unread. The routing key is the sensor's group (``group_id``) when it has one,
  so that the sensors a group's network rules compare are evaluated by one worker too, and the
  sensor id otherwise. Both come from the store, loaded when a worker starts; a sensor registered
  later is looked up when its first message comes.
- A message of a sensor the store does not know (refused as unknown, or auto-registered in
  provisioning mode) is processed by every worker that sees it: its dead letter has a
  fingerprint and its readings unique keys, so it is recorded once either way.

Each worker then reads its sensors' messages in the order the broker received them, batches them
in that order, and commits batch after batch: the same readings in the same order as one worker.
Killed, a worker loses nothing (its session keeps what it had not acknowledged, and everything
published meanwhile) and is caught up when restarted under the same ``--worker N``.

The mapping depends on ``M`` and on the sensors' groups as the workers read them at start: move
sensors between groups with every worker stopped, then start them all; change ``M`` by starting
the new set under another client id next to the old one (``docs/operate.md``, *Each sensor to
one worker*).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.operate.models import Sensor

_CHUNK = 500


def partition_of(key: str, partitions: int) -> int:
    """The worker (1 … ``partitions``) that owns a routing key: CRC-32 of its UTF-8 bytes, modulo
    the number of workers, plus one — the same in every process, language and machine."""
    return zlib.crc32(key.encode("utf-8")) % partitions + 1


class Router:
    """Which worker owns which sensor: worker ``worker`` of ``workers``.

    ``keys`` maps each registered sensor to its routing key (its group, else itself); a sensor
    missing from it is unknown to the store as far as this worker has read it.
    """

    def __init__(self, worker: int, workers: int) -> None:
        if workers < 1 or not 1 <= worker <= workers:
            raise ValueError(f"worker must be 1 … {workers}, not {worker}")
        self.worker = worker
        self.workers = workers
        self.keys: dict[str, str] = {}
        # Sensor → owning worker, computed once per sensor (load() keeps it in step with keys):
        # every message of every worker is routed through owner() in the network thread.
        self._owners: dict[str, int] = {}

    def load(self, session: Session, sensors: Iterable[str] | None = None) -> set[str]:
        """Read the routing keys of ``sensors`` (every registered sensor if None); return those
        found registered."""
        found: set[str] = set()
        if sensors is None:
            rows = list(session.execute(select(Sensor.id, Sensor.group_id)))
        else:
            names = sorted(set(sensors))
            rows = []
            for start in range(0, len(names), _CHUNK):
                chunk = names[start : start + _CHUNK]
                rows.extend(
                    session.execute(select(Sensor.id, Sensor.group_id).where(Sensor.id.in_(chunk)))
                )
        for sensor, group in rows:
            key = group or sensor
            self.keys[sensor] = key
            self._owners[sensor] = partition_of(key, self.workers)
            found.add(sensor)
        return found

    def owner(self, sensor: str) -> int | None:
        """The worker owning a sensor; None when the sensor is not (yet) known."""
        owner = self._owners.get(sensor)
        if owner is None:
            key = self.keys.get(sensor)
            if key is None:
                return None
            owner = self._owners[sensor] = partition_of(key, self.workers)
        return owner

    def owns_key(self, key: str) -> bool:
        """Whether this worker owns a routing key (a group's, or an ungrouped sensor's)."""
        return partition_of(key, self.workers) == self.worker

    def owns_subject(self, subject: str) -> bool:
        """Whether a detector record's subject is this worker's: a sensor's (stream and
        summation records) by the sensor's owner, a group's by the group's key."""
        owner = self.owner(subject)
        return owner == self.worker if owner is not None else self.owns_key(subject)

    def owns_stream(self, sensor: str) -> bool:
        """Whether this worker evaluates a sensor's streams (a sensor it does not know: no)."""
        return self.owner(sensor) == self.worker
