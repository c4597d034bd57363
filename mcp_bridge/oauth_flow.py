"""The authorization code sign-in of an MCP server that demands OAuth (a person in the loop).

:func:`start` (the admin's "Authorize with OAuth" action) opens a session with the SDK's
OAuth client on the session pool's event loop; when the client has discovered the
authorization server (and registered itself, if no client id is configured) it hands over the
authorization URL, with PKCE and a ``state``, which the admin redirects the person to.
:func:`complete` (the admin's callback view, where the authorization server sends the person
back) hands the code to the waiting client, which exchanges it, stores the tokens encrypted
(:class:`mcp_bridge.oauth.SecretTokenStorage`) and finishes the handshake.

A sign-in in progress lives in this process only (for ``SIGN_IN_SECONDS``): the callback must
reach the process that started it, as it does with one admin process or sticky sessions.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from mcp.shared.auth import AuthorizationCodeResult

from automate_core.errors import ConflictError
from mcp_bridge import client
from mcp_bridge.conf import mcp_settings
from mcp_bridge.oauth import oauth_provider
from mcp_bridge.pool import pool

if TYPE_CHECKING:
    from mcp_bridge.models import MCPServer

#: Seconds a person has to sign in before the waiting client gives up.
SIGN_IN_SECONDS = 600.0


class SignInNotFound(ConflictError):
    code = "mcp_oauth_sign_in_not_found"
    default_message = "No sign-in is waiting for this answer here; start it again."


@dataclasses.dataclass(eq=False)
class _SignIn:
    server_id: Any
    url: concurrent.futures.Future[str] = dataclasses.field(
        default_factory=concurrent.futures.Future
    )
    answer: asyncio.Future[AuthorizationCodeResult] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    done: concurrent.futures.Future[None] | None = None


_waiting: dict[str, _SignIn] = {}
_lock = threading.Lock()


def start(server: MCPServer, *, redirect_uri: str) -> str | None:
    """Begin the sign-in of ``server``; the authorization URL to send the person to, or None
    when the stored tokens already work (no sign-in needed)."""
    sign_in = _SignIn(server_id=server.pk)

    async def redirect(url: str) -> None:
        state = (parse_qs(urlsplit(url).query).get("state") or [""])[0]
        sign_in.loop = asyncio.get_running_loop()
        sign_in.answer = sign_in.loop.create_future()
        with _lock:
            _waiting[state] = sign_in
        sign_in.url.set_result(url)

    async def answer() -> AuthorizationCodeResult:
        assert sign_in.answer is not None
        return await asyncio.wait_for(sign_in.answer, SIGN_IN_SECONDS)

    auth, digest = oauth_provider(
        server.auth_config["oauth"],
        server_id=server.pk,
        url=server.url,
        tenant=server.tenant,
        redirect_uri=redirect_uri,
        redirect_handler=redirect,
        callback_handler=answer,
    )
    connection = dataclasses.replace(client.connection_for(server), auth=auth, auth_digest=digest)

    async def handshake() -> None:
        try:
            async with client.open_session(connection):
                pass
        finally:
            with _lock:
                for state in [k for k, waiting in _waiting.items() if waiting is sign_in]:
                    del _waiting[state]

    sign_in.done = pool.spawn(handshake())
    either: list[concurrent.futures.Future[Any]] = [sign_in.url, sign_in.done]
    waited = concurrent.futures.wait(
        either,
        timeout=float(mcp_settings.CONNECT_TIMEOUT_SECONDS),
        return_when=concurrent.futures.FIRST_COMPLETED,
    )
    if sign_in.url.done():
        return sign_in.url.result()
    if sign_in.done in waited.done:
        sign_in.done.result()  # raises what failed
        return None
    sign_in.done.cancel()
    raise client.translate(TimeoutError("the authorization server did not answer"))


def complete(state: str, code: str, *, iss: str | None = None) -> Any:
    """Hand the authorization server's answer to the sign-in waiting on ``state`` and wait
    until the tokens are stored; returns the server id. Raises SignInNotFound, or what the
    token exchange failed with."""
    with _lock:
        sign_in = _waiting.pop(state, None)
    if sign_in is None or sign_in.answer is None or sign_in.loop is None or sign_in.done is None:
        raise SignInNotFound()
    result = AuthorizationCodeResult(code=code, state=state, iss=iss)
    sign_in.loop.call_soon_threadsafe(sign_in.answer.set_result, result)
    try:
        sign_in.done.result(timeout=float(mcp_settings.CONNECT_TIMEOUT_SECONDS))
    except Exception as exc:
        raise client.translate(exc) from exc
    return sign_in.server_id
