"""A TCP proxy that holds every chunk it forwards for a fixed time each way, as a network between
the API and PostgreSQL would: loopback answers in tens of microseconds, a database on another
host in half a millisecond to a few. Bench scripts start it (``--network-delay-ms``) to show what
a request's round trips to the store cost in time.

    .venv/bin/python bench/delay_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS

It prints ``ready`` once listening. Order is kept per direction; the delay is asyncio's, so on
Linux it is rounded up to whole milliseconds (epoll's resolution).
"""

from __future__ import annotations

import asyncio
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward ``reader`` to ``writer``, each chunk ``delay`` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        writer.close()

    sender = asyncio.create_task(send())
    try:
        while chunk := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, chunk))
    finally:
        queue.put_nowait((loop.time() + delay, b""))
        await sender


async def serve(listen_port: int, host: str, port: int, delay: float) -> None:
    async def connect(client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        server_reader, server = await asyncio.open_connection(host, port)
        await asyncio.gather(
            _pipe(client_reader, server, delay),
            _pipe(server_reader, client, delay),
            return_exceptions=True,
        )

    listening = await asyncio.start_server(connect, "127.0.0.1", listen_port)
    print("ready", flush=True)
    async with listening:
        await listening.serve_forever()


if __name__ == "__main__":
    listen, target_host, target_port, delay_ms = sys.argv[1:5]
    asyncio.run(serve(int(listen), target_host, int(target_port), float(delay_ms) / 1000))
