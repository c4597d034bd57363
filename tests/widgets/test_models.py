"""Embeds: publishable keys, and what their configuration refuses to hold."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from .conftest import make_embed

pytestmark = pytest.mark.django_db


def test_each_embed_gets_its_own_publishable_key(endpoint):
    first, second = make_embed(endpoint), make_embed(endpoint)
    assert first.publishable_key.startswith("pk_")
    assert len(first.publishable_key) > 30
    assert first.publishable_key != second.publishable_key


def test_an_embed_with_a_malformed_origin_does_not_validate(embed):
    embed.allowed_origins = ["https://ok.example.com", "example.com"]
    with pytest.raises(ValidationError, match="allowed_origins"):
        embed.full_clean()


def test_an_embed_with_a_malformed_rate_does_not_validate(embed):
    embed.user_rate_limit = "fast"
    with pytest.raises(ValidationError, match="user_rate_limit"):
        embed.full_clean()


@pytest.mark.parametrize(
    "theme",
    [
        {"colors": {"accent": "red; background: url(x)"}},
        {"colors": {"accent": "expression(alert(1))"}},
        {"colors": {"font": "#fff"}},
        {"position": "top-middle"},
        {"strings": {"unknown": "x"}},
        {"title": "x" * 501},
        {"script": "alert(1)"},
        ["colors"],
    ],
)
def test_a_theme_holds_only_plain_colours_and_short_texts(embed, theme):
    embed.theme = theme
    with pytest.raises(ValidationError, match="theme"):
        embed.full_clean()


def test_a_full_theme_validates(embed):
    embed.theme = {
        "colors": {"accent": "#0a7", "background": "rgb(255, 255, 255)", "text": "black"},
        "dark_colors": {"background": "#111"},
        "title": "Help",
        "greeting": "Ask about orders",
        "position": "bottom-left",
        "strings": {"send": "Envoyer"},
    }
    embed.full_clean()


@pytest.mark.parametrize("dataset", ["", "my-orders"])
def test_an_embed_answers_from_exactly_one_target(embed, dataset):
    embed.rag_endpoint = embed.rag_endpoint if dataset else None
    embed.dataset = dataset
    with pytest.raises(ValidationError, match="RAG endpoint or a dataset"):
        embed.full_clean()


def test_an_embed_names_a_dataset_of_its_tenant(embed):
    embed.rag_endpoint = None
    embed.dataset = "no-such-dataset"
    with pytest.raises(ValidationError, match="dataset"):
        embed.full_clean()
