"""Every refusal of a widget request is a NormalizedError, and none of them calls the model:
tokens (forged, expired, replayed, for another site or embed), identity, rate limits, quota and
the daily cap."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from automate_core.governance import budgets
from automate_core.governance.models import Budget
from automate_llm.testing import Reply
from widgets.models import WidgetMessage
from widgets.tokens import END_USER_AUDIENCE, mint, signing_key

from .client import Visitor, assert_refused, events
from .conftest import ORIGIN, make_embed

pytestmark = pytest.mark.django_db

OTHER_ORIGIN = "https://other.example.com"


@pytest.fixture
def signed(endpoint):
    return make_embed(endpoint, identity_mode="signed", allowed_origins=[ORIGIN, OTHER_ORIGIN])


def end_user_token(embed, key: bytes | None = None, **claims) -> str:
    now = int(time.time())
    payload = {
        "sub": "c-17",
        "embed": embed.publishable_key,
        "aud": END_USER_AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(payload, key or signing_key(embed, "end-user"), algorithm="HS256")


def test_a_signed_embed_starts_a_conversation_for_a_minted_token(signed):
    response = Visitor(signed).start(mint(signed, "c-17", {"plan": "pro"}, ttl=600))
    assert response.status_code == 201
    assert response.json()["signed"] is True


def test_a_signed_embed_refuses_a_visitor_without_a_token(signed):
    assert_refused(Visitor(signed).start(), 401, "identity_required")


def test_a_forged_token_is_refused(signed):
    forged = end_user_token(signed, key=b"not the embed's key at all, but 32+ bytes long")
    assert_refused(Visitor(signed).start(forged), 401, "invalid_token")


def test_a_malformed_token_is_refused(signed):
    assert_refused(Visitor(signed).start("not-a-jwt"), 401, "invalid_token")


def test_an_expired_token_is_refused(signed):
    expired = end_user_token(signed, iat=int(time.time()) - 4000, exp=int(time.time()) - 400)
    assert_refused(Visitor(signed).start(expired), 401, "token_expired")


def test_a_token_living_longer_than_an_hour_is_refused(signed):
    long_lived = end_user_token(signed, exp=int(time.time()) + 7200)
    assert_refused(Visitor(signed).start(long_lived), 401, "invalid_token")


def test_a_token_of_another_embed_is_refused(signed, endpoint):
    other = make_embed(endpoint, identity_mode="signed")
    assert_refused(Visitor(signed).start(mint(other, "c-17")), 401, "invalid_token")


def test_a_token_starts_one_conversation_only(signed):
    token = mint(signed, "c-17")
    assert Visitor(signed).start(token).status_code == 201
    assert_refused(Visitor(signed).start(token), 401, "token_replayed")


def test_a_rotated_key_refuses_the_tokens_issued_before(signed):
    token = mint(signed, "c-17")
    signed.token_generation += 1
    signed.save()
    assert_refused(Visitor(signed).start(token), 401, "invalid_token")


def test_a_conversation_token_is_refused_from_another_allowed_origin(signed):
    visitor = Visitor(signed)
    visitor.start(mint(signed, "c-17"))
    thief = Visitor(signed, origin=OTHER_ORIGIN)
    thief.token, thief.conversation = visitor.token, visitor.conversation
    assert_refused(thief.ask(), 401, "invalid_token")


def test_a_conversation_token_is_refused_for_another_conversation(embed):
    first, second = Visitor(embed), Visitor(embed)
    first.start()
    second.start()
    first.conversation = second.conversation
    assert_refused(first.ask(), 404, "conversation_not_found")


def test_an_end_user_token_is_no_conversation_token(signed):
    visitor = Visitor(signed)
    visitor.start(mint(signed, "c-17"))
    visitor.token = mint(signed, "c-17")
    assert_refused(visitor.ask(), 401, "invalid_token")


def test_a_message_without_a_conversation_token_is_refused(embed):
    visitor = Visitor(embed)
    visitor.start()
    visitor.token = None
    assert_refused(visitor.ask(), 401, "invalid_token")


def test_an_address_over_its_rate_is_refused_with_retry_after(endpoint):
    embed = make_embed(endpoint, ip_rate_limit="2/min")
    visitor = Visitor(embed)
    assert [visitor.get("config").status_code for _ in range(2)] == [200, 200]
    response = visitor.get("config")
    body = assert_refused(response, 429, "throttled")
    assert body["details"] == {"retry_after_seconds": int(response["Retry-After"])}
    assert int(response["Retry-After"]) >= 1
    assert response["Access-Control-Allow-Origin"] == ORIGIN  # the page can read why


def test_an_end_user_over_their_rate_is_refused(endpoint, model, openai_wire):
    embed = make_embed(endpoint, user_rate_limit="1/min")
    openai_wire.script(Reply(text="Five days [1]."))
    visitor = Visitor(embed)
    visitor.start()
    events(visitor.ask())
    assert_refused(visitor.ask(), 429, "throttled")
    assert len(openai_wire.requests) == 1


def test_an_end_user_with_a_spent_quota_is_refused_before_any_model_call(
    endpoint, model, openai_wire
):
    embed = make_embed(endpoint, user_quota_tokens=1000)
    visitor = Visitor(embed)
    visitor.start()
    scope = ("end_user", f"widget:{embed.pk}:anon:{visitor.conversation}")
    (today,) = budgets.current_budgets(embed.tenant, [scope])
    Budget.objects.filter(pk=today.pk).update(spent_tokens=1000)
    body = assert_refused(visitor.ask(), 402, "budget_exceeded")
    assert body["details"]["scope_type"] == "end_user"
    assert openai_wire.requests == []
    assert not WidgetMessage.objects.exists()


def test_an_answer_the_quota_cannot_hold_is_refused_before_any_model_call(
    endpoint, model, openai_wire
):
    embed = make_embed(endpoint, user_quota_tokens=5)
    visitor = Visitor(embed)
    visitor.start()
    assert_refused(visitor.ask(), 402, "budget_exceeded")
    assert openai_wire.requests == []


def test_the_daily_cap_of_the_embed_refuses_the_next_question(endpoint, model, openai_wire):
    embed = make_embed(endpoint, daily_message_cap=1)
    openai_wire.script(Reply(text="Five days [1]."))
    first, second = Visitor(embed), Visitor(embed, ip="198.51.100.9")
    first.start()
    events(first.ask())
    second.start()
    assert_refused(second.ask(), 429, "daily_cap_reached")
    assert len(openai_wire.requests) == 1
