"""``AUTOMATE_MCP`` settings with defaults (see docs/mcp.md "Settings")."""

from __future__ import annotations

from automate_core.conf import AppSettings

mcp_settings = AppSettings(
    "AUTOMATE_MCP",
    defaults={
        # The only commands a stdio server may run, by name: {"files": {"command": "npx",
        # "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv/docs"], "env": {}}}.
        # A server names one of these keys; no tenant or API caller ever supplies a command.
        "STDIO_COMMANDS": {},
        # Seconds to open a session (connect and handshake).
        "CONNECT_TIMEOUT_SECONDS": 10.0,
        # Seconds a whole sync may take (every page of tools, resources and prompts).
        "SYNC_TIMEOUT_SECONDS": 300.0,
        # Seconds a whole tool call may take (session, pin check and the call).
        "CALL_TIMEOUT_SECONDS": 60.0,
        # Open sessions kept per server for tool calls, and seconds one may sit idle.
        "POOL_SIZE": 4,
        "POOL_IDLE_SECONDS": 60.0,
        # Seconds a pooled session trusts the tools it last listed for the pin check before a
        # call (only while the server tells it of changes; a change notice ends it at once).
        "TOOLS_CACHE_SECONDS": 60.0,
        # Tool calls per server, across all its callers (a sliding window in Redis).
        "CALL_RATE_LIMIT": "600/min",
        # Largest number of tools/list pages one sync follows (a server that never ends its
        # pagination cannot hang a sync).
        "MAX_LIST_PAGES": 1000,
        # Minutes between scheduled syncs of a server (its sync_interval_minutes overrides it);
        # 0 or None: no scheduled syncs. Due syncs are queued by the workers' maintenance.
        "SYNC_INTERVAL_MINUTES": 60,
        # The platform as an MCP server (/mcp): its public URL (the OAuth resource id), the
        # Host and Origin values it accepts (DNS-rebinding protection; "host:*" any port),
        # calls per key, and the code-first workflows every tenant's keys may start there.
        "SERVER_URL": "http://localhost:8000/mcp",
        "SERVER_ALLOWED_HOSTS": ["localhost:*", "127.0.0.1:*"],
        "SERVER_ALLOWED_ORIGINS": ["http://localhost:*", "http://127.0.0.1:*"],
        "SERVER_RATE_LIMIT": "120/min",
        "SERVER_CODE_WORKFLOWS": [],
        # Rate of the sync and health endpoints of the API, per key.
        "API_RATE_LIMIT": "60/min",
    },
)
