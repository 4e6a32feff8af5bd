"""Ids of new rows known before the rows are written.

A statement that needs a new row's id — a confirmation naming its subscription, the incident
entity naming its citizen request — must otherwise wait for the INSERT's answer. With the id
drawn beforehand, the statements no longer depend on each other and go to the store together
(:meth:`qala.store.direct.DirectStatement.send`).
"""

from __future__ import annotations

import threading
import weakref

from sqlalchemy import Connection, Engine, text


class SequenceIds:
    """Ids for new rows of ``table`` on PostgreSQL, drawn from its serial ``column``'s own
    sequence ``block`` at a time and handed out by this process (its threads share them).

    Ids stay unique: the sequence never gives one twice, so rows numbered by the column's
    default and rows numbered here never collide. They follow the order of creation only within
    a process, and an id taken by a rolled-back transaction is skipped, as a sequence skips it
    anyway. Blocks are kept per engine: a database made again under the same engine (tests that
    drop and re-create their tables) must get a new engine, or it would hand out ids the new
    sequence gives again.
    """

    def __init__(self, table: str, column: str = "id", block: int = 64) -> None:
        self.block = block
        self._draw = text(
            f"SELECT nextval(pg_get_serial_sequence('{table}', '{column}'))"
            " FROM generate_series(1, :count)"
        )
        self._free: weakref.WeakKeyDictionary[Engine, list[int]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def take(self, connection: Connection) -> int:
        """A new id for the database ``connection`` talks to."""
        engine = connection.engine
        with self._lock:
            free = self._free.get(engine)
            if free:
                return free.pop()
        # Drawn outside the lock: the statement may wait on the event loop's thread
        # (qala.store.on_loop), where another report holding the lock would wait for ever. Two
        # threads finding the block empty both draw one; the ids left over are kept for later.
        drawn = connection.execute(self._draw, {"count": self.block})
        fresh = [int(i) for i in drawn.scalars()]
        with self._lock:
            free = self._free.setdefault(engine, [])
            free.extend(fresh)
            free.sort(reverse=True)
            return free.pop()
