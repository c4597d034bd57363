"""The embed's admin page shows the install snippet to copy and links to a live preview: a
page of the admin that runs the real widget with a preview token, which opens the embed to the
admin's origin for that page only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from automate_core.governance.models import AuditLog
from widgets import tokens

from .client import Visitor, assert_refused
from .conftest import make_embed

pytestmark = pytest.mark.django_db

ADMIN_ORIGIN = "http://testserver"


@pytest.fixture
def staff_client(client):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    return client


def test_the_change_page_shows_the_install_snippet(staff_client, embed):
    response = staff_client.get(f"/admin/widgets/chatembed/{embed.pk}/change/")
    assert response.status_code == 200
    snippet = (
        "&lt;script src=&quot;http://testserver/widgets/v1/embed.js&quot; "
        f"data-embed=&quot;{embed.publishable_key}&quot; async&gt;&lt;/script&gt;"
    )
    assert snippet in response.content.decode()
    assert f"/admin/widgets/chatembed/{embed.pk}/preview/" in response.content.decode()


def test_the_preview_page_loads_the_real_script_with_a_preview_token(staff_client, embed):
    response = staff_client.get(f"/admin/widgets/chatembed/{embed.pk}/preview/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<script src="http://testserver/widgets/v1/embed.js"' in page
    token = page.split('data-preview="', 1)[1].split('"', 1)[0]
    assert tokens.read_preview_token(embed, token) == ADMIN_ORIGIN


def preview_visitor(embed, token, origin=ADMIN_ORIGIN):
    visitor = Visitor(embed, origin=origin)
    visitor.client.defaults["HTTP_X_AUTOMATE_PREVIEW"] = token
    return visitor


def test_a_preview_token_opens_the_embed_to_the_admin_origin_only_with_it(embed):
    token = tokens.issue_preview_token(embed, origin=ADMIN_ORIGIN, staff="user:1")
    assert preview_visitor(embed, token).get("config").status_code == 200
    assert preview_visitor(embed, token).start().status_code == 201
    assert_refused(Visitor(embed, origin=ADMIN_ORIGIN).get("config"), 403, "origin_not_allowed")


def test_a_same_origin_get_without_an_origin_header_is_the_admin_origin(embed):
    token = tokens.issue_preview_token(embed, origin=ADMIN_ORIGIN, staff="user:1")
    visitor = preview_visitor(embed, token, origin=None)
    visitor.client.defaults["HTTP_SEC_FETCH_SITE"] = "same-origin"
    assert visitor.get("config").status_code == 200


def test_a_preview_token_is_refused_from_another_origin_or_embed(embed, endpoint):
    token = tokens.issue_preview_token(embed, origin=ADMIN_ORIGIN, staff="user:1")
    evil = preview_visitor(embed, token, origin="https://evil.example")
    assert_refused(evil.get("config"), 403, "origin_not_allowed")
    other = make_embed(endpoint)
    assert_refused(preview_visitor(other, token).get("config"), 401, "invalid_token")


def test_rotating_the_signing_key_is_audited_and_invalidates_tokens(staff_client, embed):
    token = tokens.issue_preview_token(embed, origin=ADMIN_ORIGIN, staff="user:1")
    response = staff_client.post(
        "/admin/widgets/chatembed/",
        {"action": "rotate_signing_key", "_selected_action": [str(embed.pk)]},
    )
    assert response.status_code == 302
    embed.refresh_from_db()
    assert embed.token_generation == 2
    row = AuditLog.objects.get(action="widgets.embed.rotate_key")
    assert row.target == f"widgets.embed:{embed.pk}"
    assert_refused(preview_visitor(embed, token).get("config"), 401, "invalid_token")
