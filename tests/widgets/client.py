"""A visitor's browser, as the widget endpoints see it: requests from one origin."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from .conftest import ORIGIN


class Visitor:
    """Calls ``/widgets/v1/<pk>/…`` from ``origin`` (and address ``ip``), holding the
    conversation token it was given."""

    def __init__(self, embed, origin: str | None = ORIGIN, ip: str = "203.0.113.7") -> None:
        self.key = embed.publishable_key
        self.origin = origin
        self.client = Client(REMOTE_ADDR=ip)
        self.token: str | None = None
        self.conversation: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.origin is not None:
            headers["Origin"] = self.origin
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def get(self, path: str):
        return self.client.get(f"/widgets/v1/{self.key}/{path}", headers=self.headers())

    def post(self, path: str, body: dict[str, Any] | None = None):
        return self.client.post(
            f"/widgets/v1/{self.key}/{path}",
            data=json.dumps(body or {}),
            content_type="application/json",
            headers=self.headers(),
        )

    def start(self, end_user_token: str | None = None):
        body = {"end_user_token": end_user_token} if end_user_token else {}
        response = self.post("conversations", body)
        if response.status_code == 201:
            self.token = response.json()["token"]
            self.conversation = response.json()["conversation"]
        return response

    def ask(self, text: str = "How long do refunds take?"):
        return self.post(f"conversations/{self.conversation}/messages", {"text": text})


def events(response) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a whole SSE body."""
    raw = b"".join(response.streaming_content).decode()
    parsed = []
    for block in raw.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            parsed.append((fields["event"], json.loads(fields["data"])))
    return parsed


def assert_refused(response, status: int, code: str) -> dict[str, Any]:
    """A NormalizedError with ``code``."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert set(body) == {"code", "message", "details", "trace_id"}
    return body
