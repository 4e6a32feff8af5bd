"""Synchronous store code run on the event loop waits for PostgreSQL without stopping the loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text

from qala.components.requests311.jurisdictions import CatalogueCache
from qala.store.database import Database
from qala.store.ids import SequenceIds
from qala.store.on_loop import LoopRunner, await_on_loop, on_loop, run_on_loop


def _in_a_loop_of_its_own(main: Callable[[], Any], *, seconds: float = 10.0) -> Any:
    """Run the coroutine ``main()`` on a new loop in a thread: a deadlock on the loop's thread
    fails the test after ``seconds`` instead of hanging the run."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = asyncio.run(main())
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the event loop's thread was stuck (a lock held across a wait?)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class _Ticker:
    """Counts the loop's turns every 5 ms while it runs: how long the loop was left free."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1

    def __enter__(self) -> _Ticker:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def test_code_on_the_loop_answers_its_value_and_its_errors() -> None:
    async def sleep_then(value: str) -> str:
        await asyncio.sleep(0.01)
        return value

    async def failing() -> None:
        await asyncio.sleep(0)
        raise LookupError("from the loop")

    def work(value: str) -> tuple[str, bool, str]:
        awaited = await_on_loop(sleep_then(value))
        try:
            await_on_loop(failing())
        except LookupError as exc:  # thrown in where the code waited
            caught = str(exc)
        return awaited, on_loop(), caught

    def broken() -> None:
        raise ValueError("from the code")

    async def main() -> tuple[Any, ...]:
        answer = await run_on_loop(work, "ok")
        with pytest.raises(ValueError, match="from the code"):
            await run_on_loop(broken)
        return answer

    assert _in_a_loop_of_its_own(main) == ("ok", True, "from the loop")
    assert not on_loop()


def test_the_runner_lets_its_limit_run_at_once() -> None:
    running = 0
    most = 0

    def work() -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await_on_loop(asyncio.sleep(0.02))
        running -= 1

    async def main() -> None:
        runner = LoopRunner(3)
        await asyncio.gather(*(runner.run(work) for _ in range(10)))

    _in_a_loop_of_its_own(main)
    assert most == 3


@pytest.fixture
def postgres_database(postgres_server: Any) -> Iterator[Database]:
    url = postgres_server.create()
    database = Database(url)
    yield database
    database.dispose()
    postgres_server.drop(url)


@pytest.mark.postgres
def test_a_statement_on_the_loop_leaves_the_loop_free_while_the_server_works(
    postgres_database: Database,
) -> None:
    def slow_transaction() -> int:
        with postgres_database.transaction() as session:
            session.execute(text("SELECT pg_sleep(0.3)"))
            return int(session.execute(text("SELECT 41 + 1")).scalar_one())

    async def main() -> tuple[list[int], int, float]:
        with _Ticker() as ticker:
            started = time.perf_counter()
            answers = await asyncio.gather(*(run_on_loop(slow_transaction) for _ in range(3)))
            elapsed = time.perf_counter() - started
        return answers, ticker.ticks, elapsed

    answers, ticks, elapsed = _in_a_loop_of_its_own(main)
    assert answers == [42, 42, 42]
    # A blocking wait would hold the loop for 3 × 0.3 s: no ticks, and one after another.
    assert ticks >= 20
    assert elapsed < 0.8


@pytest.mark.postgres
def test_a_connection_made_on_the_loop_is_made_off_its_thread(
    postgres_database: Database,
) -> None:
    threads: list[str] = []

    @event.listens_for(postgres_database.engine, "connect")
    def note(_dbapi_connection: Any, _record: Any) -> None:
        threads.append(threading.current_thread().name)

    def first_statement() -> int:
        with postgres_database.session() as session:
            return int(session.execute(text("SELECT 1")).scalar_one())

    async def main() -> tuple[int, str]:
        return await run_on_loop(first_statement), threading.current_thread().name

    answer, loop_thread = _in_a_loop_of_its_own(main)
    assert answer == 1
    assert threads and loop_thread not in threads


@pytest.mark.postgres
def test_ids_drawn_on_the_loop_at_once_neither_deadlock_nor_repeat(
    postgres_database: Database,
) -> None:
    with postgres_database.transaction() as session:
        session.execute(text("CREATE TABLE on_loop_note (id serial PRIMARY KEY)"))
    ids = SequenceIds("on_loop_note", block=4)

    def take_some() -> list[int]:
        taken = []
        with postgres_database.session() as session:
            for _ in range(6):
                taken.append(ids.take(session.connection()))
        return taken

    async def main() -> list[list[int]]:
        return list(await asyncio.gather(*(run_on_loop(take_some) for _ in range(4))))

    taken = [i for batch in _in_a_loop_of_its_own(main) for i in batch]
    assert len(taken) == len(set(taken)) == 24


class _SlowSessions:
    """A session factory whose store answers on the event loop, after a while."""

    def __init__(self) -> None:
        self.opened = 0

    @contextmanager
    def __call__(self) -> Iterator[Any]:
        self.opened += 1
        await_on_loop(asyncio.sleep(0.05))
        yield _NoCities()


class _NoCities:
    def scalars(self, *_args: Any, **_kwargs: Any) -> list[Any]:
        return []


def test_the_catalogue_is_read_by_reports_on_the_loop_without_a_deadlock() -> None:
    sessions = _SlowSessions()
    cache = CatalogueCache(sessions, ttl=0.0)

    async def main() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(run_on_loop(cache.get) for _ in range(5))))

    assert _in_a_loop_of_its_own(main) == [{}] * 5
    assert sessions.opened >= 1
