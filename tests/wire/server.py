"""A mongoeco wire-protocol server for the test suite, run by the Python 3.13+ of `.venv-mongo`.

It binds a free port itself (port 0, so no other process can take the port between choosing and binding),
prints its URL as one line, and serves until SIGTERM or until its stdin closes: a test session that dies
without stopping it does not leave it behind. It imports nothing of ours: it runs in another interpreter.
"""

import asyncio
import signal
import sys
import threading

from mongoeco.wire import AsyncMongoEcoProxyServer


def stop_when_stdin_closes(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    def wait() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait, daemon=True).start()


async def serve(host: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stop_when_stdin_closes(loop, stop)
    async with AsyncMongoEcoProxyServer(host=host, port=0) as server:
        sys.stdout.write(server.address.uri + "\n")
        sys.stdout.flush()
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"))
