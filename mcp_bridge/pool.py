"""Open MCP sessions kept for reuse, so a tool call does not pay for a new session (connect,
``initialize``, listen) each time.

The pool owns one event loop in a daemon thread. Each pooled session lives in a *holder*
task of that loop (the SDK's client must be entered and left in one task) and is lent to one
call at a time; at most ``POOL_SIZE`` idle sessions per connection are kept. A session is keyed by
everything that decides how it was opened (server, transport, URL, resolved headers, stdio
command, tenant), so a rotated secret or an edited server opens a new one. A session idle for
``POOL_IDLE_SECONDS`` is closed; a call that fails or times out closes the session it used,
so a broken session is never lent again. A ``tools/list_changed`` notice a session receives,
during a call or between calls, forgets the tools that session last listed (its
:class:`~mcp_bridge.client.ToolWatch`) and runs the ``on_tools_changed`` it was opened with.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mcp import Client

from automate_core.errors import AutomateError
from mcp_bridge import client as sessions
from mcp_bridge.conf import mcp_settings
from mcp_bridge.errors import ToolCallTimeout

T = TypeVar("T")


def connection_key(server_id: Any, connection: sessions.Connection) -> str:
    """What makes two connections interchangeable (secrets are hashed, never kept)."""
    stdio = connection.stdio.model_dump(mode="json") if connection.stdio is not None else None
    described = {
        "server": str(server_id),
        "tenant": str(getattr(connection.tenant, "pk", "")),
        "transport": connection.transport,
        "url": connection.url,
        "headers": sorted(connection.headers.items()),
        "auth": connection.auth_digest,
        "stdio": stdio,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


@dataclass(eq=False)
class PooledSession:
    client: Client
    url: str
    watch: sessions.ToolWatch
    close: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    idle_since: float = field(default_factory=time.monotonic)


class SessionPool:
    """Sessions by :func:`connection_key`, lent one call at a time (see the module doc)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._idle: dict[str, list[PooledSession]] = {}
        self._holders: set[asyncio.Task[None]] = set()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="mcp-session-pool", daemon=True
                ).start()
                self._loop = loop
            return self._loop

    def run(
        self,
        key: str,
        connection: sessions.Connection,
        work: Callable[[PooledSession], Awaitable[T]],
        *,
        timeout: float,
        on_tools_changed: Callable[[], None],
    ) -> T:
        """``work(session)`` on a pooled session of ``connection``, within ``timeout`` seconds
        (opening a session included); raises our errors. A session opened for it runs
        ``on_tools_changed`` (in a worker thread) on each tools/list_changed notice."""
        notices = sessions.Notices(on_tools_changed)
        future = asyncio.run_coroutine_threadsafe(
            self._lend(key, connection, work, notices), self._event_loop()
        )
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ToolCallTimeout("The MCP server did not answer in time.") from None
        except AutomateError:
            raise
        except Exception as exc:
            raise sessions.translate(exc) from exc

    async def _lend(
        self,
        key: str,
        connection: sessions.Connection,
        work: Callable[[PooledSession], Awaitable[T]],
        notices: sessions.Notices,
    ) -> T:
        session = await self._checkout(key, connection, notices)
        try:
            result = await work(session)
        except BaseException:
            self._discard(key, session)
            raise
        session.idle_since = time.monotonic()
        idle = self._idle.setdefault(key, [])
        idle.append(session)
        if len(idle) > int(mcp_settings.POOL_SIZE):
            self._discard(key, idle[0])
        return result

    async def _checkout(
        self, key: str, connection: sessions.Connection, notices: sessions.Notices
    ) -> PooledSession:
        idle = self._idle.setdefault(key, [])
        limit = float(mcp_settings.POOL_IDLE_SECONDS)
        while idle:
            session = idle.pop()
            if not session.closed and time.monotonic() - session.idle_since < limit:
                return session
            self._discard(key, session)
        return await self._open_session(connection, notices)

    async def _open_session(
        self, connection: sessions.Connection, notices: sessions.Notices
    ) -> PooledSession:
        loop = asyncio.get_running_loop()
        opened: asyncio.Future[PooledSession] = loop.create_future()

        async def hold() -> None:
            session: PooledSession | None = None
            try:
                async with sessions.open_session(connection, notices) as client:
                    session = PooledSession(client, connection.url, notices.watch)
                    opened.set_result(session)
                    await session.close.wait()
            except BaseException as exc:
                if not opened.done():
                    opened.set_exception(exc)
            finally:
                if session is not None:
                    session.closed = True

        self._holders.add(task := loop.create_task(hold()))
        task.add_done_callback(self._holders.discard)
        return await opened

    def spawn(self, work: Awaitable[T]) -> concurrent.futures.Future[T]:
        """Run ``work`` on the pool's event loop (where sessions live), without waiting."""
        return asyncio.run_coroutine_threadsafe(work, self._event_loop())  # type: ignore[arg-type]

    def watches(self, url: str) -> list[sessions.ToolWatch]:
        """The tool watches of the idle sessions to ``url`` (tests wait on their notices)."""
        return [s.watch for idle in list(self._idle.values()) for s in idle if s.url == url]

    def close_all(self, timeout: float = 5.0) -> None:
        """Close every idle session (and wait until they are closed), as at shutdown or when
        a server goes away."""
        loop = self._loop
        if loop is None:
            return

        async def close() -> None:
            for key, idle in list(self._idle.items()):
                for session in list(idle):
                    self._discard(key, session)
            if self._holders:
                await asyncio.wait(set(self._holders), timeout=timeout)

        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout + 1)

    def _discard(self, key: str, session: PooledSession) -> None:
        session.closed = True
        session.close.set()
        idle = self._idle.get(key, [])
        if session in idle:
            idle.remove(session)


#: The process's pool.
pool = SessionPool()
