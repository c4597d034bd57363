"""``/api/v1/llm/prompts``: CRUD, versions, publish, labels and the render preview."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from automate_core.governance.models import AuditLog
from automate_core.tenancy.models import APIKey
from automate_llm import prompts
from automate_llm.models import Prompt, PromptLabel, PromptVersion

pytestmark = pytest.mark.django_db

BASE = "/api/v1/llm/prompts"
VERSION = {
    "system_template": "You answer for {{ company }}.",
    "user_template": "{{ question }}",
    "variables": {
        "type": "object",
        "properties": {
            "company": {"type": "string", "default": "Acme"},
            "question": {"type": "string"},
        },
    },
    "model": "fast",
    "params": {"max_tokens": 200},
}


@pytest.fixture
def prompt(tenant):
    return prompts.create_prompt(tenant, name="Support reply", description="Replies")


def _published(prompt, **fields):
    return prompts.publish(prompts.create_version(prompt, **{**VERSION, **fields}))


def _key_client(tenant, scopes):
    _, raw = APIKey.issue(tenant=tenant, name="scoped", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


# -- prompts -------------------------------------------------------------------------------------


def test_create_a_prompt_derives_its_slug(api_client, tenant):
    response = api_client.post(BASE, {"name": "Order status"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["slug"], body["labels"], body["latest_version"]) == ("order-status", {}, None)
    assert Prompt.objects.get(pk=body["id"]).tenant_id == tenant.pk


def test_a_slug_already_taken_is_a_conflict(api_client, prompt):
    response = api_client.post(BASE, {"name": "x", "slug": "support-reply"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


def test_list_shows_labels_and_latest_version(api_client, tenant, prompt):
    _published(prompt)
    prompts.create_version(prompt, **VERSION)
    prompts.move_label(prompt, "production", 1)
    prompts.create_prompt(tenant, name="Empty")
    listed = {p["slug"]: p for p in api_client.get(BASE).json()["results"]}
    assert listed["support-reply"]["labels"] == {"production": 1}
    assert listed["support-reply"]["latest_version"] == 2
    assert listed["empty"]["latest_version"] is None


def test_a_prompt_is_addressed_by_id_or_slug(api_client, prompt):
    by_slug = api_client.get(f"{BASE}/support-reply")
    by_id = api_client.get(f"{BASE}/{prompt.pk}")
    assert by_slug.status_code == by_id.status_code == 200
    assert by_slug.json() == by_id.json()


def test_name_and_description_can_change_but_not_the_slug(api_client, prompt):
    changed = api_client.patch(f"{BASE}/support-reply", {"name": "Replies"}, format="json")
    assert changed.status_code == 200 and changed.json()["name"] == "Replies"
    moved = api_client.patch(f"{BASE}/support-reply", {"slug": "other"}, format="json")
    assert moved.status_code == 400
    assert "slug" in moved.json()["details"]


def test_delete_removes_versions_and_labels_and_is_audited(api_client, prompt):
    _published(prompt)
    prompts.move_label(prompt, "production", 1)
    assert api_client.delete(f"{BASE}/support-reply").status_code == 204
    assert not Prompt.objects.exists() and not PromptVersion.objects.exists()
    assert AuditLog.objects.get(action="prompt.delete").actor.startswith("api_key:")


# -- versions ------------------------------------------------------------------------------------


def test_create_list_and_read_versions(api_client, prompt):
    first = api_client.post(f"{BASE}/support-reply/versions", VERSION, format="json")
    second = api_client.post(f"{BASE}/support-reply/versions", VERSION, format="json")
    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert first.json()["is_published"] is False
    listed = api_client.get(f"{BASE}/support-reply/versions").json()["results"]
    assert [v["version"] for v in listed] == [2, 1]
    one = api_client.get(f"{BASE}/support-reply/versions/1").json()
    assert one["user_template"] == "{{ question }}" and one["prompt"] == "support-reply"


def test_versions_filter_by_published(api_client, prompt):
    _published(prompt)
    prompts.create_version(prompt, **VERSION)
    drafts = api_client.get(f"{BASE}/support-reply/versions", {"published": "false"}).json()
    published = api_client.get(f"{BASE}/support-reply/versions", {"published": "true"}).json()
    assert [v["version"] for v in drafts["results"]] == [2]
    assert [v["version"] for v in published["results"]] == [1]


def test_a_bad_draft_is_a_400_naming_the_problem(api_client, prompt):
    response = api_client.post(
        f"{BASE}/support-reply/versions",
        {**VERSION, "user_template": "{{ questoin }}"},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_input"
    assert "'questoin'" in body["message"]
    assert body["details"]["problems"]["user_template"]


def test_a_draft_can_be_patched_but_a_published_version_cannot(api_client, prompt):
    prompts.create_version(prompt, **VERSION)
    edited = api_client.patch(
        f"{BASE}/support-reply/versions/1", {"user_template": "Q: {{ question }}"}, format="json"
    )
    assert edited.status_code == 200 and edited.json()["user_template"] == "Q: {{ question }}"
    prompts.publish(PromptVersion.objects.get(prompt=prompt, version=1))
    frozen = api_client.patch(
        f"{BASE}/support-reply/versions/1", {"user_template": "{{ question }}!"}, format="json"
    )
    assert frozen.status_code == 409
    assert PromptVersion.objects.get(prompt=prompt, version=1).user_template == "Q: {{ question }}"


def test_unknown_version_and_prompt_are_404(api_client, prompt):
    assert api_client.get(f"{BASE}/support-reply/versions/9").json()["code"] == (
        "prompt_version_not_found"
    )
    missing = api_client.post(f"{BASE}/nope/versions", VERSION, format="json")
    assert (missing.status_code, missing.json()["code"]) == (404, "prompt_not_found")


# -- publish and labels --------------------------------------------------------------------------


def test_publish_with_a_label_is_audited_as_both(api_client, prompt):
    prompts.create_version(prompt, **VERSION)
    response = api_client.post(
        f"{BASE}/support-reply/versions/1/publish", {"label": "production"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["is_published"] is True and body["labels"] == ["production"]
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"prompt.publish", "prompt.label"} <= actions


def test_publishing_an_empty_draft_is_a_400(api_client, prompt):
    prompts.create_version(prompt, user_template="", system_template="")
    response = api_client.post(f"{BASE}/support-reply/versions/1/publish", {}, format="json")
    assert response.status_code == 400
    assert not PromptVersion.objects.get(prompt=prompt).is_published


def test_move_and_remove_a_label(api_client, prompt):
    _published(prompt)
    _published(prompt)
    moved = api_client.post(
        f"{BASE}/support-reply/labels", {"name": "canary", "version": 2}, format="json"
    )
    assert moved.status_code == 200 and moved.json()["labels"] == {"canary": 2}
    removed = api_client.post(
        f"{BASE}/support-reply/labels", {"name": "canary", "version": None}, format="json"
    )
    assert removed.status_code == 200 and removed.json()["labels"] == {}
    assert AuditLog.objects.filter(action="prompt.label").count() == 2


def test_a_label_on_a_draft_is_a_409(api_client, prompt):
    prompts.create_version(prompt, **VERSION)
    response = api_client.post(
        f"{BASE}/support-reply/labels", {"name": "production", "version": 1}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (409, "prompt_not_published")
    assert not PromptLabel.objects.exists()


# -- render preview ------------------------------------------------------------------------------


def test_render_preview_returns_the_messages(api_client, prompt):
    _published(prompt)
    response = api_client.post(
        f"{BASE}/support-reply/render", {"variables": {"question": "Where is it?"}}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "prompt": "support-reply",
        "version": 1,
        "is_published": True,
        "model": "fast",
        "params": {"max_tokens": 200},
        "messages": [
            {"role": "system", "content": "You answer for Acme."},
            {"role": "user", "content": "Where is it?"},
        ],
    }


def test_render_follows_labels_like_a_workflow(api_client, prompt):
    _published(prompt, user_template="one {{ question }}")
    _published(prompt, user_template="two {{ question }}")
    prompts.move_label(prompt, "production", 1)
    variables = {"question": "?"}
    default = api_client.post(
        f"{BASE}/support-reply/render", {"variables": variables}, format="json"
    )
    canary = api_client.post(
        f"{BASE}/support-reply/render", {"variables": variables, "version": 2}, format="json"
    )
    assert default.json()["messages"][1]["content"] == "one ?"
    assert canary.json()["messages"][1]["content"] == "two ?"


def test_render_previews_a_draft_named_by_number(api_client, prompt):
    prompts.create_version(prompt, **VERSION)
    response = api_client.post(
        f"{BASE}/support-reply/render",
        {"variables": {"question": "q"}, "version": 1},
        format="json",
    )
    assert response.status_code == 200 and response.json()["is_published"] is False


def test_render_with_a_missing_variable_is_a_400_naming_it(api_client, prompt):
    _published(prompt)
    response = api_client.post(
        f"{BASE}/support-reply/render", {"variables": {"company": "X"}}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "prompt_variables_invalid"
    assert "'question'" in body["message"] and body["details"]["missing"] == ["question"]


def test_render_with_an_extra_variable_is_a_400_naming_it(api_client, prompt):
    _published(prompt)
    response = api_client.post(
        f"{BASE}/support-reply/render",
        {"variables": {"question": "q", "tone": "warm"}},
        format="json",
    )
    assert response.status_code == 400 and response.json()["details"]["extra"] == ["tone"]


def test_render_with_a_failing_template_is_a_400(api_client, prompt):
    _published(prompt, user_template="{{ question.nope.deeper }}")
    response = api_client.post(
        f"{BASE}/support-reply/render", {"variables": {"question": "q"}}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "template_error")
    assert "user_template" in response.json()["message"]


def test_render_naming_both_version_and_label_is_a_400(api_client, prompt):
    _published(prompt)
    response = api_client.post(
        f"{BASE}/support-reply/render",
        {"variables": {"question": "q"}, "version": 1, "label": "production"},
        format="json",
    )
    assert response.status_code == 400


# -- scopes --------------------------------------------------------------------------------------


def test_a_read_scoped_key_can_list_and_preview_but_not_change(tenant, prompt):
    _published(prompt)
    client = _key_client(tenant, ["prompts:read"])
    assert client.get(BASE).status_code == 200
    preview = client.post(
        f"{BASE}/support-reply/render", {"variables": {"question": "q"}}, format="json"
    )
    assert preview.status_code == 200
    refused = client.post(f"{BASE}/support-reply/versions", VERSION, format="json")
    assert refused.status_code == 403
    assert "prompts:write" in refused.json()["message"]


def test_a_key_scoped_elsewhere_cannot_read_prompts(tenant, prompt):
    assert _key_client(tenant, ["events:write"]).get(BASE).status_code == 403


def test_the_schema_documents_the_prompt_routes(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    assert {
        "/api/v1/llm/prompts",
        "/api/v1/llm/prompts/{prompt}",
        "/api/v1/llm/prompts/{prompt}/labels",
        "/api/v1/llm/prompts/{prompt}/render",
        "/api/v1/llm/prompts/{prompt}/versions",
        "/api/v1/llm/prompts/{prompt}/versions/{version}",
        "/api/v1/llm/prompts/{prompt}/versions/{version}/publish",
    } <= set(paths)
