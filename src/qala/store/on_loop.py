"""Synchronous store code run on the event loop, its waits for PostgreSQL awaited there.

A report's work (SQLAlchemy sessions, direct statements, the components' in-transaction
handlers) is written as plain synchronous code. Handed to a database thread, each report costs
two thread hand-offs and, while the event loop serves other requests, turns at the GIL after
each of its round trips to the store: under load those waits, not the work, were most of a
report's latency (docs/open311.md). :func:`run_on_loop` runs the same code in a greenlet on the
event loop's own thread instead. Only waiting differs: a connection made by
:class:`LoopAwareConnection` (every PostgreSQL connection of a :class:`~qala.store.database.
Database`) that must wait for the server inside such a greenlet hands the wait to the loop
(psycopg's own asynchronous wait) and lets it serve other requests meanwhile; outside one it
waits as psycopg always does.

What runs this way must not block otherwise: no file or network I/O but the store's, and no
lock held across a statement that another greenlet on the loop may want (it would wait on its
own thread for ever; :class:`qala.store.ids.SequenceIds` draws outside its lock for this
reason). :func:`run_on_loop` lets at most ``limit`` greenlets hold connections at once, well
under the pool's size, so a greenlet never waits on the loop's thread for a connection another
greenlet holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import greenlet
import psycopg
from psycopg import waiting

P = ParamSpec("P")
T = TypeVar("T")


class LoopGreenlet(greenlet.greenlet):
    """A greenlet run by :func:`run_on_loop`: what it must wait for is awaited by its parent."""


def await_on_loop(awaitable: Awaitable[T]) -> T:
    """``awaitable``'s result, awaited by the event loop that runs the current
    :class:`LoopGreenlet` (only call it inside one)."""
    current = greenlet.getcurrent()
    assert isinstance(current, LoopGreenlet) and current.parent is not None
    return current.parent.switch(awaitable)


def on_loop() -> bool:
    """Whether the current code runs in a :class:`LoopGreenlet`."""
    return isinstance(greenlet.getcurrent(), LoopGreenlet)


class LoopRunner:
    """Runs synchronous store code on the event loop (:meth:`run`), ``limit`` at a time."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots: asyncio.Semaphore | None = None

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)``, run in a :class:`LoopGreenlet` on the running loop; every
        awaitable it hands over (:func:`await_on_loop`) is awaited here meanwhile."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        async with self._slots:
            return await run_on_loop(fn, *args, **kwargs)


async def run_on_loop(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` in a :class:`LoopGreenlet` on the running loop (see the module)."""
    child = LoopGreenlet(lambda: fn(*args, **kwargs), greenlet.getcurrent())
    handed = child.switch()
    while not child.dead:
        try:
            result = await handed
        except BaseException as exc:  # thrown into the code that waited, where it belongs
            handed = child.throw(exc)
        else:
            handed = child.switch(result)
    return handed


class LoopAwareConnection(psycopg.Connection[Any]):
    """A psycopg connection whose waits for the server, inside a :class:`LoopGreenlet`, are
    awaited by the event loop (psycopg's asynchronous wait on the same socket)."""

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        if on_loop():
            return await_on_loop(
                waiting.wait_async(gen, self.pgconn.socket, interval=interval, timeout=timeout)
            )
        return super().wait(gen, interval, timeout)
