"""Embeds, conversations and feedback stay within their embed and tenant; minting end-user
tokens needs an API key of the embed's tenant allowing ``widgets:mint``."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from automate_core.tenancy.models import APIKey
from automate_llm.testing import Reply
from widgets.models import WidgetMessage

from .client import Visitor, assert_refused, events
from .conftest import make_embed
from .knowledge import handbook_endpoint

pytestmark = pytest.mark.django_db


def key_client(tenant, scopes: list[str]) -> APIClient:
    _, raw = APIKey.issue(tenant=tenant, name="backend", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def signed(endpoint):
    return make_embed(endpoint, identity_mode="signed")


@pytest.fixture
def foreign(other_tenant):
    return make_embed(handbook_endpoint(other_tenant, name="Globex help"))


def test_a_key_allowing_widgets_mint_mints_a_token_that_starts_a_conversation(tenant, signed):
    client = key_client(tenant, ["widgets:mint"])
    response = client.post(
        f"/api/v1/widgets/{signed.publishable_key}/tokens",
        {"end_user_id": "c-17", "claims": {"customer": 17}, "ttl_seconds": 300},
        format="json",
    )
    assert response.status_code == 201
    started = Visitor(signed).start(response.json()["token"])
    assert started.status_code == 201
    assert signed.conversations.get().claims == {"customer": 17}


def test_a_key_without_widgets_mint_cannot_mint(tenant, signed):
    client = key_client(tenant, ["rag:support"])
    response = client.post(
        f"/api/v1/widgets/{signed.publishable_key}/tokens", {"end_user_id": "c"}, format="json"
    )
    assert_refused(response, 403, "permission_denied")


def test_a_key_of_another_tenant_cannot_mint_for_the_embed(other_tenant, signed):
    client = key_client(other_tenant, ["widgets:mint"])
    response = client.post(
        f"/api/v1/widgets/{signed.publishable_key}/tokens", {"end_user_id": "c"}, format="json"
    )
    assert_refused(response, 404, "embed_not_found")


def test_minting_refuses_a_ttl_over_an_hour_and_reserved_claims(tenant, signed):
    client = key_client(tenant, ["widgets:mint"])
    url = f"/api/v1/widgets/{signed.publishable_key}/tokens"
    too_long = client.post(url, {"end_user_id": "c", "ttl_seconds": 3601}, format="json")
    assert_refused(too_long, 400, "invalid_input")
    reserved = client.post(url, {"end_user_id": "c", "claims": {"sub": "x"}}, format="json")
    assert_refused(reserved, 400, "invalid_input")


def test_a_conversation_token_of_one_embed_is_refused_by_another(embed, foreign):
    visitor = Visitor(embed)
    visitor.start()
    intruder = Visitor(foreign)
    intruder.token, intruder.conversation = visitor.token, visitor.conversation
    assert_refused(intruder.ask(), 401, "invalid_token")
    assert_refused(
        intruder.get(f"conversations/{visitor.conversation}/messages"), 401, "invalid_token"
    )


def test_feedback_reaches_only_answers_of_the_callers_conversation(embed, model, openai_wire):
    openai_wire.script(Reply(text="Five days [1]."))
    owner, other = Visitor(embed), Visitor(embed)
    owner.start()
    message = events(owner.ask())[-1][1]["message"]
    other.start()
    response = other.post(f"messages/{message}/feedback", {"rating": "down"})
    assert_refused(response, 404, "conversation_not_found")
    assert WidgetMessage.objects.get(pk=message).rating == ""


def test_embeds_are_listed_per_tenant(embed, foreign, tenant, other_tenant):
    from widgets.models import ChatEmbed

    assert list(ChatEmbed.objects.for_tenant(tenant)) == [embed]
    assert list(ChatEmbed.objects.for_tenant(other_tenant)) == [foreign]
