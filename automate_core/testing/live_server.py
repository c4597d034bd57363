"""The site served for real in a test: an ASGI application under uvicorn on a loopback port,
and :func:`wait_for` to read what the server's own threads record once they get to it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


@contextmanager
def serve_asgi(app: Any, *, start_timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn (the ``server`` extra) on 127.0.0.1 until the block ends;
    yields its base URL once it accepts connections. Lifespan events are not sent (Django's
    ASGI handler refuses them)."""
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def wait_for(probe: Callable[[], T | None], timeout: float = 15.0) -> T:
    """The first value of ``probe()`` that is not None, polled every 50 ms; AssertionError
    when ``timeout`` seconds pass without one."""
    deadline = time.monotonic() + timeout
    while (found := probe()) is None:
        assert time.monotonic() < deadline, "nothing recorded in time"
        time.sleep(0.05)
    return found
