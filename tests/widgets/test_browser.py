"""The widget in a real Chromium, against the project served by uvicorn on loopback and host
pages on two loopback origins (``127.0.0.1`` allowed, ``localhost`` not), answering from the
local OpenAI wire server. Screenshots go to ``var/artifacts/widgets/``."""

from __future__ import annotations

import json
import os
import time

import pytest

from automate_llm.testing import Reply
from widgets.models import WidgetMessage
from widgets.tokens import mint

from .browser import ARTIFACTS, HostPage, chromium_path
from .conftest import make_embed
from .datachat import ORDERS_BY_CUSTOMER, make_datachat_embed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ANSWER = "Refunds take **five business days** once the item arrives [1]."
XSS = (
    'Look: <img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> '
    "[click](javascript:window.__xss=3) done [1]"
)


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    # Playwright's sync API runs an event loop in this thread while the module's tests (and
    # their database teardown) make ordinary synchronous ORM calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with playwright_api.sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
            )
            yield launched
            launched.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def host():
    with HostPage().running() as page:
        yield page


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    tab = context.new_page()
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    context.close()


def visit(page, host, asgi_url, embed, origin_host="127.0.0.1", extra=""):
    host.embed(f"{asgi_url}/widgets/v1/embed.js", embed.publishable_key, extra=extra)
    page.goto(host.url(origin_host) + "/")
    return page.locator("automate-chat")


def identify_script(token: str) -> str:
    """A host page's call made before the widget loaded: queued in ``AutomateChat.q``."""
    return f"<script>window.AutomateChat={{q:[['identify',{json.dumps(token)}]]}}</script>"


def ask(widget, question="How long do refunds take?"):
    widget.locator("button.launcher").click()
    widget.locator("textarea").fill(question)
    widget.locator("textarea").press("Enter")


def test_a_visitor_asks_and_the_answer_streams_in_with_citations(
    page, host, asgi_url, endpoint, model, openai_wire
):
    embed = make_embed(endpoint, allowed_origins=[host.url()], theme={"title": "Shop help"})
    openai_wire.script(Reply(text=ANSWER, chunk_size=6))
    widget = visit(page, host, asgi_url, embed)
    ask(widget)
    answer = widget.locator(".msg.assistant").last
    answer.locator(".sources li").first.wait_for()
    assert "five business days" in answer.locator(".body").inner_text()
    assert answer.locator("strong").first.inner_text() == "five business days"
    assert answer.locator("a.cite").inner_text() == "[1]"
    assert "refunded within five business days" in answer.locator(".sources").inner_text()
    assert widget.locator("header h2").inner_text() == "Shop help"
    assert widget.locator("[role=dialog]").is_visible()


def test_another_origin_shows_not_available_and_the_api_refuses(
    page, host, asgi_url, endpoint, model, openai_wire
):
    embed = make_embed(endpoint, allowed_origins=[host.url()])
    widget = visit(page, host, asgi_url, embed, origin_host="localhost")
    widget.locator("button.launcher").click()
    notice = widget.locator(".notice")
    notice.wait_for()
    assert "not available on this site" in notice.inner_text()
    assert widget.locator("textarea").is_disabled()
    status = page.evaluate(
        """async (url) => {
            try { await fetch(url); return "read"; } catch (e) { return "blocked"; }
        }""",
        f"{asgi_url}/widgets/v1/{embed.publishable_key}/config",
    )
    assert status == "blocked"
    assert openai_wire.requests == []


def test_markup_in_the_answer_stays_inert_text(page, host, asgi_url, endpoint, model, openai_wire):
    embed = make_embed(endpoint, allowed_origins=[host.url()])
    openai_wire.script(Reply(text=XSS, chunk_size=7))
    widget = visit(page, host, asgi_url, embed)
    ask(widget)
    answer = widget.locator(".msg.assistant").last
    answer.locator(".actions").wait_for()
    shown = answer.locator(".body").inner_text()
    assert '<img src=x onerror="window.__xss=1">' in shown
    assert "<script>window.__xss=2</script>" in shown
    assert answer.locator(".body img, .body script").count() == 0
    assert answer.locator(".body a[href^=javascript]").count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None


def test_an_exhausted_quota_shows_its_message_and_calls_no_model(
    page, host, asgi_url, endpoint, model, openai_wire
):
    embed = make_embed(endpoint, allowed_origins=[host.url()], user_quota_tokens=5)
    widget = visit(page, host, asgi_url, embed)
    ask(widget)
    notice = widget.locator(".notice")
    notice.wait_for()
    assert "today's limit" in notice.inner_text()
    assert openai_wire.requests == []


def test_a_signed_visitor_is_answered_and_a_forged_token_is_refused(
    page, host, asgi_url, endpoint, model, openai_wire
):
    embed = make_embed(endpoint, allowed_origins=[host.url()], identity_mode="signed")
    openai_wire.script(Reply(text=ANSWER))
    token = mint(embed, "c-17", {"plan": "pro"}, ttl=600)
    identify = identify_script(token)
    widget = visit(page, host, asgi_url, embed, extra=identify)
    ask(widget)
    widget.locator(".msg.assistant .actions").wait_for()
    conversation = embed.conversations.get()
    assert (conversation.end_user, conversation.claims) == ("c-17", {"plan": "pro"})

    page.evaluate("sessionStorage.clear()")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    page.evaluate("(t) => window.AutomateChat.identify(t)", forged)
    widget.locator("textarea").fill("And shipping?")
    widget.locator("textarea").press("Enter")
    notice = widget.locator(".notice")
    notice.wait_for()
    assert "sign in" in notice.inner_text()
    assert len(openai_wire.requests) == 1


def test_a_replayed_token_is_refused(page, host, asgi_url, endpoint, model, openai_wire):
    embed = make_embed(endpoint, allowed_origins=[host.url()], identity_mode="signed")
    token = mint(embed, "c-17", ttl=600)
    identify = identify_script(token)
    visit(page, host, asgi_url, embed, extra=identify)
    first = page.evaluate(
        """async ([url, token]) => (await fetch(url, {method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({end_user_token: token})})).status""",
        [f"{asgi_url}/widgets/v1/{embed.publishable_key}/conversations", token],
    )
    assert first == 201
    widget = page.locator("automate-chat")
    ask(widget)
    notice = widget.locator(".notice")
    notice.wait_for()
    assert "sign in" in notice.inner_text()
    assert notice.get_attribute("data-code") == "token_replayed"


def test_stop_keeps_what_arrived(page, host, asgi_url, endpoint, model, openai_wire):
    embed = make_embed(endpoint, allowed_origins=[host.url()])
    openai_wire.script(Reply(text="slowly streamed words " * 400, chunk_size=2))
    widget = visit(page, host, asgi_url, embed)
    ask(widget)
    widget.locator(".msg.assistant .body").last.get_by_text("slowly").first.wait_for()
    widget.locator("button.stop").click()
    widget.locator("button.send[type=submit]").wait_for()
    deadline = time.monotonic() + 10
    while not WidgetMessage.objects.filter(role="assistant").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert WidgetMessage.objects.get(role="assistant").status == "stopped"


def test_the_panel_closes_with_escape_and_gives_focus_back(
    page, host, asgi_url, endpoint, model, openai_wire
):
    embed = make_embed(endpoint, allowed_origins=[host.url()])
    widget = visit(page, host, asgi_url, embed)
    launcher = widget.locator("button.launcher")
    launcher.click()
    assert launcher.get_attribute("aria-expanded") == "true"
    page.keyboard.press("Escape")
    assert widget.locator("[role=dialog]").is_hidden()
    assert launcher.get_attribute("aria-expanded") == "false"
    assert page.evaluate("document.activeElement.shadowRoot.activeElement.className") == "launcher"


def test_inline_mode_mounts_the_panel_in_the_page(
    page, host, asgi_url, endpoint, model, openai_wire
):
    embed = make_embed(endpoint, allowed_origins=[host.url()])
    openai_wire.script(Reply(text=ANSWER))
    host.html = (
        "<!doctype html><html><body><main id='help' style='height:480px'></main>"
        f"<script src='{asgi_url}/widgets/v1/embed.js' data-embed='{embed.publishable_key}' "
        "data-mount='#help' async></script></body></html>"
    )
    page.goto(host.url() + "/")
    widget = page.locator("#help automate-chat")
    widget.locator("[role=region]").wait_for()
    assert widget.locator("button.launcher").is_hidden()
    widget.locator("textarea").fill("How long do refunds take?")
    widget.locator("textarea").press("Enter")
    widget.locator(".msg.assistant .actions").wait_for()
    assert "five business days" in widget.locator(".msg.assistant").inner_text()


def test_the_data_chat_mode_shows_the_table_and_chart(
    page, host, asgi_url, shop_tenant, my_orders, shop_model, openai_wire
):
    embed = make_datachat_embed(shop_tenant, host.url())
    openai_wire.script(Reply(output=ORDERS_BY_CUSTOMER))
    token = mint(embed, "c-3", {"customer": 3}, ttl=600)
    widget = visit(page, host, asgi_url, embed, extra=identify_script(token))
    ask(widget, "How many orders do I have?")
    answer = widget.locator(".msg.assistant").last
    chart = answer.locator("img.chart")
    chart.wait_for()
    assert answer.locator("th").all_inner_texts() == ["customer_id", "orders"]
    assert answer.locator("tbody td").first.inner_text() == "3"
    assert chart.evaluate("(img) => img.complete && img.naturalWidth > 0")
    assert "Your orders, counted." in answer.locator(".body").inner_text()


def test_the_admin_preview_runs_full_screen_on_a_phone(
    browser, asgi_url, endpoint, model, openai_wire
):
    """The live preview (the admin's origin is not allowed: only its preview token opens it),
    at a phone's size: the panel fills the screen, the launcher hides while it is open."""
    from django.contrib.auth import get_user_model

    embed = make_embed(endpoint, allowed_origins=["https://shop.example.com"])
    get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    openai_wire.script(Reply(text=ANSWER))
    context = browser.new_context(viewport={"width": 390, "height": 760}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{asgi_url}/admin/login/?next=/admin/widgets/chatembed/{embed.pk}/preview/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw")
    page.click("[type=submit]")
    widget = page.locator("automate-chat")
    ask(widget)
    widget.locator(".msg.assistant .actions").wait_for()
    box = widget.locator("[role=dialog]").bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 760)
    assert widget.locator("button.launcher").is_hidden()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "test_the_admin_preview_on_a_phone.png"))
    widget.locator("header button.icon").click()
    assert widget.locator("[role=dialog]").is_hidden()
    assert widget.locator("button.launcher").is_visible()
    context.close()
