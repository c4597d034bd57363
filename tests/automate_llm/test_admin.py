"""The LLM gateway's admin: providers and model configs (validated and audited), prompts with
their versions, labels, a diff between versions, the test console, and call records."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from automate_core.governance.models import AuditLog
from automate_core.tenancy.models import TenantMembership
from automate_core.testing.runtime import run_until_idle
from automate_llm import prompts
from automate_llm.models import (
    LLMModelConfig,
    LLMProvider,
    LLMRequest,
    LLMUsage,
    Prompt,
    PromptLabel,
    PromptVersion,
)

pytestmark = pytest.mark.django_db


def _url(model: str, view: str, *args: object) -> str:
    return reverse(f"admin:automate_llm_{model}_{view}", args=args)


def _errors(response) -> str:
    """The form's error text (the admin answers 200 with the form again when it refuses)."""
    assert response.status_code == 200, response.status_code
    return " ".join(
        re.sub(r"<[^>]+>", " ", m) for m in re.findall(r'<ul class="errorlist[^"]*"[^>]*>.*?</ul>',
                                                        response.content.decode(), re.S)
    )  # fmt: skip


@pytest.fixture
def prompt(tenant) -> Prompt:
    return prompts.create_prompt(tenant, name="Support reply")


def _version(prompt: Prompt, user_template: str, *, publish: bool = True) -> PromptVersion:
    version = prompts.create_version(
        prompt,
        system_template="You are kind.",
        user_template=user_template,
        variables={"type": "object", "properties": {"name": {"type": "string"}}},
    )
    return prompts.publish(version) if publish else version


# -- providers -----------------------------------------------------------------------------------


def _provider_form(tenant, **overrides) -> dict[str, object]:
    return {
        "tenant": tenant.pk,
        "name": "OpenAI",
        "slug": "openai",
        "provider_type": "openai",
        "config": json.dumps({"api_key": {"$secret": "OPENAI_KEY"}}),
        "is_active": "on",
        **overrides,
    }


def test_adding_a_provider_is_audited_with_its_secret_refs_only(admin_client, admin_user, tenant):
    response = admin_client.post(_url("llmprovider", "add"), _provider_form(tenant))
    assert response.status_code == 302, _errors(response)
    provider = LLMProvider.objects.get(slug="openai")
    row = AuditLog.objects.get(action="llm_provider.create")
    assert (row.actor, row.target) == (f"user:{admin_user.pk}", f"llm_provider:{provider.pk}")
    assert row.data["config"] == {"api_key": {"$secret": "OPENAI_KEY"}}


def test_changing_a_provider_is_audited_with_the_changed_fields(admin_client, tenant):
    provider = LLMProvider.objects.create(
        tenant=tenant, name="OpenAI", provider_type="openai", config={"api_key": "$secret:K"}
    )
    response = admin_client.post(
        _url("llmprovider", "change", provider.pk),
        _provider_form(tenant, config=json.dumps({"api_key": "$secret:OTHER"})),
    )
    assert response.status_code == 302, _errors(response)
    row = AuditLog.objects.get(action="llm_provider.change")
    assert row.data["changed"] == ["config"]


def test_a_raw_credential_in_a_provider_config_is_refused(admin_client, tenant):
    config = {"api_key": {"$secret": "K"}, "headers": {"X-Api-Key": "sk-live-abcdefghijklmnop"}}
    response = admin_client.post(
        _url("llmprovider", "add"), _provider_form(tenant, config=json.dumps(config))
    )
    assert "config.headers.X-Api-Key holds a credential in clear" in _errors(response)
    assert not LLMProvider.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="llm_provider").exists()


def test_a_raw_key_written_around_the_form_is_shown_redacted_and_must_be_replaced(
    admin_client, tenant
):
    raw = "sk-live-abcdefghijklmnopqrstuvwxyz"
    provider = LLMProvider.objects.create(
        tenant=tenant, name="Legacy", provider_type="openai", config={"api_key": raw}
    )
    page = admin_client.get(_url("llmprovider", "change", provider.pk)).content.decode()
    assert raw not in page and "[REDACTED]" in page
    resent = admin_client.post(
        _url("llmprovider", "change", provider.pk),
        _provider_form(tenant, slug="legacy", config=json.dumps({"api_key": "[REDACTED]"})),
    )
    assert "config.api_key holds a credential in clear (or redacted)" in _errors(resent)
    assert LLMProvider.objects.get(pk=provider.pk).config == {"api_key": raw}


def test_a_malformed_secret_ref_is_refused(admin_client, tenant):
    config = {"api_key": {"$secret": "K", "extra": 1}}
    response = admin_client.post(
        _url("llmprovider", "add"), _provider_form(tenant, config=json.dumps(config))
    )
    assert "may have no other keys" in _errors(response)


def test_the_provider_plugins_own_validation_runs(admin_client, tenant):
    response = admin_client.post(
        _url("llmprovider", "add"),
        _provider_form(tenant, config=json.dumps({"api_key": {"$secret": "K"}, "colour": 1})),
    )
    assert "unknown key &#x27;colour&#x27;" in _errors(response)
    assert not LLMProvider.objects.exists()


def test_a_second_default_provider_is_refused_with_a_clear_message(admin_client, tenant):
    LLMProvider.objects.create(tenant=tenant, name="First", provider_type="openai", is_default=True)
    response = admin_client.post(
        _url("llmprovider", "add"), _provider_form(tenant, is_default="on")
    )
    assert "is already this tenant&#x27;s default" in _errors(response)


def test_the_provider_list_shows_secret_names_not_values(admin_client, tenant):
    LLMProvider.objects.create(
        tenant=tenant, name="OpenAI", provider_type="openai",
        config={"api_key": {"$secret": "OPENAI_KEY"}},
    )  # fmt: skip
    page = admin_client.get(_url("llmprovider", "changelist")).content.decode()
    assert "OPENAI_KEY" in page


def test_deleting_a_provider_is_audited(admin_client, tenant):
    provider = LLMProvider.objects.create(tenant=tenant, name="OpenAI", provider_type="openai")
    admin_client.post(_url("llmprovider", "delete", provider.pk), {"post": "yes"})
    assert not LLMProvider.objects.exists()
    assert AuditLog.objects.get(action="llm_provider.delete").data["slug"] == "openai"


# -- model configs -------------------------------------------------------------------------------


def _model_form(tenant, provider, **overrides) -> dict[str, object]:
    return {
        "tenant": tenant.pk,
        "name": "Fast",
        "slug": "fast",
        "provider": provider.pk,
        "model_id": "gpt-4o-mini",
        "max_tokens": "256",
        "temperature": "",
        "params": "{}",
        "fallbacks": "[]",
        # What the browser sends back for fields with a callable default.
        "initial-params": "{}",
        "initial-fallbacks": "[]",
        **overrides,
    }


def test_model_config_changes_are_audited(admin_client, tenant):
    provider = LLMProvider.objects.create(tenant=tenant, name="OpenAI", provider_type="openai")
    created = admin_client.post(_url("llmmodelconfig", "add"), _model_form(tenant, provider))
    assert created.status_code == 302, _errors(created)
    model = LLMModelConfig.objects.get()
    changed = admin_client.post(
        _url("llmmodelconfig", "change", model.pk),
        _model_form(tenant, provider, max_tokens="512"),
    )
    assert changed.status_code == 302, _errors(changed)
    rows = list(AuditLog.objects.filter(action__startswith="llm_model.").order_by("seq"))
    assert [r.action for r in rows] == ["llm_model.create", "llm_model.change"]
    assert rows[1].data["changed"] == ["max_tokens"] and rows[1].data["max_tokens"] == 512


def test_a_fallback_to_an_unknown_model_config_is_refused(admin_client, tenant):
    provider = LLMProvider.objects.create(tenant=tenant, name="OpenAI", provider_type="openai")
    response = admin_client.post(
        _url("llmmodelconfig", "add"),
        _model_form(tenant, provider, fallbacks=json.dumps(["ghost"])),
    )
    assert "No model config with slug ghost" in _errors(response)


def test_a_model_config_cannot_use_another_tenants_provider(admin_client, tenant, other_tenant):
    theirs = LLMProvider.objects.create(tenant=other_tenant, name="OpenAI", provider_type="openai")
    response = admin_client.post(_url("llmmodelconfig", "add"), _model_form(tenant, theirs))
    assert "another tenant" in _errors(response)


# -- prompts and versions ------------------------------------------------------------------------


def test_the_prompt_page_lists_its_versions_with_labels_and_tools(admin_client, prompt):
    v1 = _version(prompt, "Hi {{ name }}")
    _version(prompt, "Hello {{ name }}", publish=False)
    prompts.move_label(prompt, "production", v1)
    page = admin_client.get(_url("prompt", "change", prompt.pk)).content.decode()
    assert ">v1<" in page and ">v2<" in page
    assert "production" in page and "draft" in page
    assert _url("promptversion", "diff", v1.pk) in page
    assert _url("promptversion", "console", v1.pk) in page


def test_adding_a_version_in_the_admin_numbers_and_validates_it(admin_client, prompt):
    _version(prompt, "Hi {{ name }}")
    form = {
        "prompt": prompt.pk,
        "system_template": "",
        "user_template": "Dear {{ name }}",
        "variables": json.dumps(["name"]),
        "model": "",
        "params": "{}",
    }
    response = admin_client.post(_url("promptversion", "add"), form)
    assert response.status_code == 302, _errors(response)
    assert PromptVersion.objects.get(prompt=prompt, version=2).variables["required"] == ["name"]
    refused = admin_client.post(
        _url("promptversion", "add"), {**form, "user_template": "Dear {{ nmae }}"}
    )
    assert "undeclared variable(s) &#x27;nmae&#x27;" in _errors(refused)
    assert not PromptVersion.objects.filter(version=3).exists()


def test_a_published_version_page_has_no_editable_template(admin_client, prompt):
    published = _version(prompt, "Hi {{ name }}")
    page = admin_client.get(_url("promptversion", "change", published.pk)).content.decode()
    assert 'name="user_template"' not in page
    draft = _version(prompt, "Hello {{ name }}", publish=False)
    page = admin_client.get(_url("promptversion", "change", draft.pk)).content.decode()
    assert 'name="user_template"' in page


def test_a_published_version_cannot_be_deleted_in_the_admin(admin_client, prompt):
    published = _version(prompt, "Hi {{ name }}")
    draft = _version(prompt, "Hello {{ name }}", publish=False)
    assert admin_client.get(_url("promptversion", "delete", published.pk)).status_code == 403

    def delete_selected(*versions: PromptVersion) -> None:
        admin_client.post(
            _url("promptversion", "changelist"),
            {
                "action": "delete_selected",
                "_selected_action": [str(v.pk) for v in versions],
                "post": "yes",
            },
        )

    delete_selected(published, draft)  # refused as a whole: one of them is published
    assert sorted(PromptVersion.objects.values_list("version", flat=True)) == [1, 2]
    delete_selected(draft)
    assert list(PromptVersion.objects.values_list("version", flat=True)) == [1]


def test_the_publish_action_publishes_drafts_and_audits_them(admin_client, admin_user, prompt):
    draft = _version(prompt, "Hi {{ name }}", publish=False)
    admin_client.post(
        _url("promptversion", "changelist"),
        {"action": "publish_drafts", "_selected_action": [str(draft.pk)]},
    )
    assert PromptVersion.objects.get(pk=draft.pk).is_published
    assert AuditLog.objects.get(action="prompt.publish").actor == f"user:{admin_user.pk}"


def test_the_publish_action_reports_a_version_that_cannot_be_published(admin_client, prompt):
    empty = prompts.create_version(prompt, user_template="")
    response = admin_client.post(
        _url("promptversion", "changelist"),
        {"action": "publish_drafts", "_selected_action": [str(empty.pk)]},
        follow=True,
    )
    assert "cannot be published" in response.content.decode()
    assert not PromptVersion.objects.get(pk=empty.pk).is_published


def test_copying_a_published_version_gives_an_editable_draft(admin_client, prompt):
    published = _version(prompt, "Hi {{ name }}")
    admin_client.post(
        _url("promptversion", "changelist"),
        {"action": "copy_to_new_draft", "_selected_action": [str(published.pk)]},
    )
    copy = PromptVersion.objects.get(prompt=prompt, version=2)
    assert (copy.user_template, copy.is_published) == ("Hi {{ name }}", False)


def test_deleting_a_prompt_in_the_admin_is_audited(admin_client, prompt):
    prompts.move_label(prompt, "production", _version(prompt, "Hi {{ name }}"))
    admin_client.post(_url("prompt", "delete", prompt.pk), {"post": "yes"})
    assert not Prompt.objects.exists()
    assert AuditLog.objects.get(action="prompt.delete").data["published"] == [1]


# -- labels --------------------------------------------------------------------------------------


def test_adding_and_moving_a_label_in_the_admin_is_audited(admin_client, prompt):
    v1, v2 = _version(prompt, "Hi {{ name }}"), _version(prompt, "Hello {{ name }}")
    added = admin_client.post(
        _url("promptlabel", "add"), {"prompt": prompt.pk, "name": "production", "version": v1.pk}
    )
    assert added.status_code == 302, _errors(added)
    label = PromptLabel.objects.get()
    moved = admin_client.post(_url("promptlabel", "change", label.pk), {"version": v2.pk})
    assert moved.status_code == 302, _errors(moved)
    assert PromptLabel.objects.get().version_id == v2.pk
    moves = [r.data for r in AuditLog.objects.filter(action="prompt.label").order_by("seq")]
    assert [(m["from"], m["to"]) for m in moves] == [(None, 1), (1, 2)]


def test_a_label_form_offers_published_versions_only(admin_client, prompt):
    draft = _version(prompt, "Hi {{ name }}", publish=False)
    response = admin_client.post(
        _url("promptlabel", "add"), {"prompt": prompt.pk, "name": "canary", "version": draft.pk}
    )
    assert "Select a valid choice" in _errors(response)
    assert not PromptLabel.objects.exists()


def test_deleting_a_label_is_audited(admin_client, prompt):
    label = prompts.move_label(prompt, "canary", _version(prompt, "Hi {{ name }}"))
    admin_client.post(_url("promptlabel", "delete", label.pk), {"post": "yes"})
    assert not PromptLabel.objects.exists()
    last = AuditLog.objects.filter(action="prompt.label").order_by("-seq").first()
    assert (last.data["from"], last.data["to"]) == (1, None)


# -- diff ----------------------------------------------------------------------------------------


def test_the_diff_shows_what_changed_against_the_version_before(admin_client, prompt):
    _version(prompt, "Hi {{ name }}\nHow can I help?")
    v2 = _version(prompt, "Hello {{ name }}\nHow can I help?")
    page = admin_client.get(_url("promptversion", "diff", v2.pk)).content.decode()
    assert "Changes from <strong>v1</strong> to <strong>v2</strong>" in page
    assert '<pre class="remove">-Hi {{ name }}</pre>' in page
    assert '<pre class="add">+Hello {{ name }}</pre>' in page
    assert '<pre class="context"> How can I help?</pre>' in page
    # Fields that did not change say so rather than showing a diff.
    assert page.count("unchanged") == 4


def test_the_diff_compares_with_any_chosen_version(admin_client, prompt):
    v1 = _version(prompt, "one {{ name }}")
    _version(prompt, "two {{ name }}")
    v3 = _version(prompt, "three {{ name }}")
    page = admin_client.get(_url("promptversion", "diff", v1.pk), {"against": 3}).content.decode()
    assert "Changes from <strong>v3</strong> to <strong>v1</strong>" in page
    assert "-three {{ name }}" in page and "+one {{ name }}" in page
    assert f'<option value="{v3.version}" selected>' in page


def test_the_diff_escapes_template_text(admin_client, prompt):
    _version(prompt, "plain")
    v2 = _version(prompt, "<script>alert(1)</script>")
    page = admin_client.get(_url("promptversion", "diff", v2.pk)).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_diff_of_a_lone_version_says_there_is_nothing_to_compare(admin_client, prompt):
    only = _version(prompt, "Hi {{ name }}")
    page = admin_client.get(_url("promptversion", "diff", only.pk)).content.decode()
    assert "has no other version to compare with" in page


# -- test console --------------------------------------------------------------------------------


def test_the_console_prefills_example_variables(admin_client, prompt):
    version = prompts.publish(
        prompts.create_version(
            prompt,
            user_template="{{ name }} {{ count }} {{ tier }}",
            variables={
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "count": {"type": "integer"},
                    "tier": {"enum": ["gold", "free"]},
                },
            },
        )
    )
    page = admin_client.get(_url("promptversion", "console", version.pk)).content.decode()
    assert "&quot;count&quot;: 0" in page and "&quot;tier&quot;: &quot;gold&quot;" in page


def test_the_console_renders_with_given_variables(admin_client, prompt):
    version = _version(prompt, "Hi {{ name }}!")
    page = admin_client.post(
        _url("promptversion", "console", version.pk), {"variables": '{"name": "Ada"}'}
    ).content.decode()
    assert "<pre>You are kind.</pre>" in page and "<pre>Hi Ada!</pre>" in page


def test_the_console_shows_a_variable_error_naming_it(admin_client, prompt):
    version = _version(prompt, "Hi {{ name }}!")
    page = admin_client.post(
        _url("promptversion", "console", version.pk), {"variables": '{"nmae": "Ada"}'}
    ).content.decode()
    assert "undeclared variable(s) &#x27;nmae&#x27;" in page


def test_the_console_says_when_no_provider_is_configured(admin_client, prompt):
    version = _version(prompt, "Hi {{ name }}!")
    page = admin_client.get(_url("promptversion", "console", version.pk)).content.decode()
    assert "renders only" in page
    assert 'name="run"' not in page


# -- call records --------------------------------------------------------------------------------


def _call(tenant) -> LLMRequest:
    request = LLMRequest.objects.create(
        tenant=tenant,
        provider_type="openai",
        model="gpt-4o-mini",
        success=True,
        request={"messages": [{"role": "user", "content": "my password=hunter2-hunter2"}]},
        response={"text": "ok"},
    )
    LLMUsage.objects.create(
        tenant=tenant, request=request, provider_type="openai", model="gpt-4o-mini",
        input_tokens=10, output_tokens=2,
    )  # fmt: skip
    return request


def test_call_records_are_redacted_for_staff_without_the_raw_permission(
    client, admin_client, tenant
):
    call = _call(tenant)
    staff = User.objects.create_user("staff", is_staff=True, password="pw-12345678")
    staff.user_permissions.add(Permission.objects.get(codename="view_llmrequest"))
    TenantMembership.objects.create(tenant=tenant, user=staff)
    client.force_login(staff)
    url = _url("llmrequest", "change", call.pk)
    page = client.get(url).content.decode()
    assert "hunter2-hunter2" not in page and "[REDACTED]" in page
    assert "hunter2-hunter2" in admin_client.get(url).content.decode()


@pytest.mark.parametrize("model", ["llmrequest", "llmusage"])
def test_call_records_are_read_only(admin_client, tenant, model):
    call = _call(tenant)
    pk = call.pk if model == "llmrequest" else call.usage.pk
    assert admin_client.get(_url(model, "add")).status_code == 403
    assert admin_client.get(_url(model, "delete", pk)).status_code == 403
    page = admin_client.get(_url(model, "change", pk)).content.decode()
    assert 'name="_save"' not in page


@pytest.mark.parametrize(
    "model",
    ["llmprovider", "llmmodelconfig", "prompt", "promptversion", "promptlabel", "llmrequest",
     "llmusage"],
)  # fmt: skip
def test_every_llm_model_has_an_admin_list(admin_client, model):
    assert admin_client.get(_url(model, "changelist")).status_code == 200


def test_the_console_runs_the_rendered_prompt_through_the_gateway(
    admin_client, prompt, wire, wire_model
):
    from automate_llm.testing import Reply

    wire.script(Reply(text="Happy to help, Ada."))
    version = _version(prompt, "Hi {{ name }}!")
    page = admin_client.post(
        _url("promptversion", "console", version.pk),
        {"variables": '{"name": "Ada"}', "run": "on"},
    ).content.decode()
    assert "<pre>Happy to help, Ada.</pre>" in page
    [sent] = wire.requests
    assert "Hi Ada!" in json.dumps(sent.body)
    run_until_idle()  # the call's record is written by its outbox job
    call = LLMRequest.objects.get()
    assert (call.prompt_version_id, call.prompt_slug) == (version.pk, "support-reply")
    assert _url("llmrequest", "change", call.pk) in page


def test_the_console_shows_a_provider_error_instead_of_failing(
    admin_client, prompt, wire, wire_model
):
    from automate_llm.testing import Rejected

    wire.script(Rejected())
    version = _version(prompt, "Hi {{ name }}!")
    response = admin_client.post(
        _url("promptversion", "console", version.pk),
        {"variables": '{"name": "Ada"}', "run": "on"},
    )
    assert response.status_code == 200
    assert 'class="console-error"' in response.content.decode()


def test_staff_who_may_only_view_can_render_but_not_run(client, tenant, prompt, wire, wire_model):
    staff = User.objects.create_user("viewer", is_staff=True, password="pw-12345678")
    staff.user_permissions.add(Permission.objects.get(codename="view_promptversion"))
    TenantMembership.objects.create(tenant=tenant, user=staff)
    client.force_login(staff)
    version = _version(prompt, "Hi {{ name }}!")
    url = _url("promptversion", "console", version.pk)
    assert "running needs the change permission" in client.get(url).content.decode()
    page = client.post(url, {"variables": '{"name": "Ada"}', "run": "on"}).content.decode()
    assert "<pre>Hi Ada!</pre>" in page
    assert wire.requests == [] and not LLMRequest.objects.exists()
