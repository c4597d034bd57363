"""The embed's admin page shows the install snippet to copy."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


def test_the_change_page_shows_the_install_snippet(client, embed):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.get(f"/admin/widgets/chatembed/{embed.pk}/change/")
    assert response.status_code == 200
    snippet = (
        "&lt;script src=&quot;http://testserver/widgets/v1/embed.js&quot; "
        f"data-embed=&quot;{embed.publishable_key}&quot; async&gt;&lt;/script&gt;"
    )
    assert snippet in response.content.decode()
