"""The email connector through Django's locmem backend (``mail.outbox``), and through the real
SMTP backend against a small SMTP server on 127.0.0.1 whose replies each test chooses."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from automate_core.connectors.base import ConnectorContext, ConnectorError, connector_class
from automate_core.connectors.builtin.email import EmailConnector, message_id_for
from automate_core.testing.contracts import ConnectorContractTest
from automate_core.testing.loopback import closed_port


class TestEmailConnectorContract(ConnectorContractTest):
    connector_class = EmailConnector
    valid_config = {"from_email": "Automate <noreply@example.com>", "max_recipients": 10}
    invalid_configs = [
        {"from_email": "not an address"},
        {"reply_to": "one@example.com"},
        {"allowed_from": ["@example.com"], "from_email": "x@other.example"},
        {"max_recipients": 0},
        {"host": "smtp.internal"},
    ]
    sample_action = "send"
    sample_params = {"to": "ada@example.com", "subject": "Hi", "text": "Hello"}


def context(key: str = "exec-5:mail") -> ConnectorContext:
    return ConnectorContext(idempotency_key=key, trace_id="t-5")


def send(params: dict, **config) -> dict:
    connector = EmailConnector({"from_email": "noreply@example.com", **config})
    return connector.execute("send", params, context()).data


def test_is_found_by_code() -> None:
    assert connector_class("email") is EmailConnector


def test_sends_text_and_html_to_every_recipient(mailoutbox) -> None:
    data = send(
        {
            "to": ["Ada <ada@example.com>", "bob@example.com"],
            "cc": "carol@example.com",
            "bcc": ["audit@example.com"],
            "subject": "Invoice 42",
            "text": "Your invoice is ready.",
            "html": "<p>Your invoice is <b>ready</b>.</p>",
        }
    )

    [message] = mailoutbox
    assert message.subject == "Invoice 42"
    assert message.from_email == "noreply@example.com"
    assert message.to == ["Ada <ada@example.com>", "bob@example.com"]
    assert message.cc == ["carol@example.com"]
    assert message.bcc == ["audit@example.com"]
    assert message.body == "Your invoice is ready."
    assert message.alternatives[0][1] == "text/html"
    assert "audit@example.com" not in message.message().as_string()
    assert data == {
        "message_id": message_id_for("exec-5:mail", "noreply@example.com"),
        "to": ["Ada <ada@example.com>", "bob@example.com"],
        "cc": ["carol@example.com"],
        "bcc_count": 1,
    }


def test_html_only_gets_a_plain_text_body(mailoutbox) -> None:
    send({"to": "ada@example.com", "subject": "Hi", "html": "<h1>Hello</h1><p>there</p>"})

    assert mailoutbox[0].body == "Hellothere"
    assert mailoutbox[0].alternatives[0][0] == "<h1>Hello</h1><p>there</p>"


def test_message_id_is_the_same_for_every_retry_of_a_step(mailoutbox) -> None:
    connector = EmailConnector({"from_email": "noreply@example.com"})
    params = {"to": "ada@example.com", "subject": "Hi", "text": "x"}

    connector.execute("send", params, context("exec-5:mail"))
    connector.execute("send", params, context("exec-5:mail"))
    connector.execute("send", params, context("exec-6:mail"))

    ids = [message.message()["Message-ID"] for message in mailoutbox]
    assert ids[0] == ids[1] != ids[2]
    assert ids[0].endswith("@example.com>")
    assert mailoutbox[0].message()["X-Trace-Id"] == "t-5"


def test_config_defaults_and_the_steps_own_sender(settings, mailoutbox) -> None:
    settings.DEFAULT_FROM_EMAIL = "site@example.com"
    connector = EmailConnector({"reply_to": ["help@example.com"]})

    connector.execute("send", {"to": "a@example.com", "subject": "s", "text": "t"}, context())
    connector.execute(
        "send",
        {"to": "a@example.com", "subject": "s", "text": "t", "from": "Ops <ops@example.com>"},
        context(),
    )

    assert [m.from_email for m in mailoutbox] == ["site@example.com", "Ops <ops@example.com>"]
    assert mailoutbox[0].reply_to == ["help@example.com"]


def test_a_sender_outside_allowed_from_is_refused(mailoutbox) -> None:
    connector = EmailConnector(
        {"from_email": "noreply@example.com", "allowed_from": ["@example.com"]}
    )
    params = {"to": "a@example.com", "subject": "s", "text": "t"}

    connector.execute("send", {**params, "from": "billing@example.com"}, context())
    with pytest.raises(ConnectorError, match="allowed_from"):
        connector.execute("send", {**params, "from": "ceo@bank.example"}, context())

    assert len(mailoutbox) == 1


@pytest.mark.parametrize(
    "params",
    [
        {"to": "not-an-address", "subject": "s", "text": "t"},
        {"to": ["ok@example.com", "also bad"], "subject": "s", "text": "t"},
        {"to": "a@example.com, b@example.com", "subject": "s", "text": "t"},
        {"to": "a@example.com\nBcc: victim@example.com", "subject": "s", "text": "t"},
        {"to": "a@example.com", "subject": "Hi\r\nBcc: victim@example.com", "text": "t"},
        {"to": "a@example.com", "subject": "", "text": "t"},
        {"to": "a@example.com", "subject": "s"},
        {"subject": "s", "text": "t"},
        {"to": "a@example.com", "subject": "s", "text": "t", "from": "nobody"},
        {"to": "a@example.com", "subject": "s", "text": "t", "attachments": []},
        {"to": {"a": 1}, "subject": "s", "text": "t"},
    ],
)
def test_invalid_messages_are_refused_and_nothing_is_sent(mailoutbox, params) -> None:
    with pytest.raises(ConnectorError, match="Invalid params") as raised:
        send(params)

    assert raised.value.retryable is False
    assert mailoutbox == []


def test_too_many_recipients_are_refused(mailoutbox) -> None:
    recipients = [f"user{i}@example.com" for i in range(4)]

    with pytest.raises(ConnectorError, match="max_recipients"):
        send(
            {"to": recipients[:2], "bcc": recipients[2:], "subject": "s", "text": "t"},
            max_recipients=3,
        )

    assert mailoutbox == []


# --- through a real SMTP conversation ---------------------------------------------------------


@dataclass
class SmtpScript:
    """What the fake mail server answers, and what it received."""

    mail_reply: str = "250 OK"
    rcpt_reply: str = "250 OK"
    data_reply: str = "250 Queued"
    envelopes: list[tuple[str, list[str], bytes]] = field(default_factory=list)


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, script: SmtpScript) -> None:
        self.script = script
        super().__init__(("127.0.0.1", 0), SmtpHandler)


class SmtpHandler(socketserver.StreamRequestHandler):
    server: SmtpServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        script = self.server.script
        sender, recipients = "", []
        self.reply("220 fake.smtp ESMTP")
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 fake.smtp")
            elif verb == "MAIL":
                sender = command[10:]
                self.reply(script.mail_reply)
            elif verb == "RCPT":
                recipients.append(command[8:])
                self.reply(script.rcpt_reply)
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                script.envelopes.append((sender, recipients, data))
                self.reply(script.data_reply)
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("250 OK")


@pytest.fixture
def smtp(settings) -> Iterator[SmtpScript]:
    script = SmtpScript()
    server = SmtpServer(script)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.server_address[1]
    settings.EMAIL_TIMEOUT = 5
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()


def test_smtp_delivery_puts_bcc_in_the_envelope_only(smtp) -> None:
    send({"to": "ada@example.com", "bcc": "audit@example.com", "subject": "Hi", "text": "Hello"})

    [(sender, recipients, data)] = smtp.envelopes
    assert sender == "<noreply@example.com>"
    assert recipients == ["<ada@example.com>", "<audit@example.com>"]
    assert b"Subject: Hi" in data and b"audit@example.com" not in data


@pytest.mark.parametrize(
    "replies, retryable",
    [
        ({"rcpt_reply": "451 4.7.1 Greylisted, try again"}, True),
        ({"rcpt_reply": "550 5.1.1 No such user"}, False),
        ({"mail_reply": "421 4.3.2 Shutting down"}, True),
        ({"data_reply": "554 5.7.1 Rejected as spam"}, False),
        ({"data_reply": "452 4.3.1 Insufficient storage"}, True),
    ],
)
def test_smtp_4xx_replies_are_retryable_and_5xx_are_not(smtp, replies, retryable) -> None:
    for name, value in replies.items():
        setattr(smtp, name, value)

    with pytest.raises(ConnectorError) as raised:
        send({"to": "ada@example.com", "subject": "Hi", "text": "Hello"})

    assert raised.value.retryable is retryable


def test_an_unreachable_mail_server_is_retryable(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()

    with pytest.raises(ConnectorError, match="Could not reach the mail server") as raised:
        send({"to": "ada@example.com", "subject": "Hi", "text": "Hello"})

    assert raised.value.retryable is True
