"""Versioned prompts: drafts, publication, labels, resolution and rendering."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from automate_core.errors import ConflictError, InvalidInputError
from automate_core.governance.models import AuditLog
from automate_core.workflows.templating import TemplateRenderError
from automate_llm import prompts
from automate_llm.models import Prompt, PromptLabel, PromptVersion
from automate_llm.prompts import (
    PromptNotFound,
    PromptNotPublished,
    PromptVariablesInvalid,
    PromptVersionNotFound,
)

pytestmark = pytest.mark.django_db

SCHEMA = {
    "type": "object",
    "properties": {
        "customer": {"type": "string"},
        "tier": {"type": "string", "enum": ["free", "gold"], "default": "free"},
        "orders": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["customer"],
}


@pytest.fixture
def prompt(tenant) -> Prompt:
    return prompts.create_prompt(tenant, name="Support reply")


def _draft(prompt: Prompt, **overrides) -> PromptVersion:
    fields = {
        "system_template": "You help {{ tier }} customers.",
        "user_template": "Hello, I am {{ customer }}.",
        "variables": SCHEMA,
        **overrides,
    }
    return prompts.create_version(prompt, **fields)


def _published(prompt: Prompt, **overrides) -> PromptVersion:
    return prompts.publish(_draft(prompt, **overrides))


# -- drafts --------------------------------------------------------------------------------------


def test_versions_are_numbered_in_order_per_prompt(tenant, prompt):
    other = prompts.create_prompt(tenant, name="Other")
    assert [_draft(prompt).version for _ in range(3)] == [1, 2, 3]
    assert _draft(other).version == 1


def test_concurrent_drafts_get_distinct_numbers(transactional_db, tenant):
    prompt = prompts.create_prompt(tenant, name="Busy")
    numbers: list[int] = []
    errors: list[BaseException] = []

    def add() -> None:
        try:
            numbers.append(_draft(Prompt.objects.get(pk=prompt.pk)).version)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=add) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(numbers) == [1, 2, 3, 4, 5, 6]


def test_a_list_of_names_declares_required_variables_of_any_type(prompt):
    version = _draft(
        prompt, system_template="", user_template="{{ a }} {{ b }}", variables=["a", "b"]
    )
    assert version.variables == {
        "type": "object",
        "properties": {"a": {}, "b": {}},
        "required": ["a", "b"],
    }


def test_template_using_an_undeclared_variable_is_refused_at_save(prompt):
    with pytest.raises(InvalidInputError) as refused:
        _draft(prompt, user_template="Hi {{ customer }}, about {{ ordr }}")
    assert "'ordr'" in str(refused.value.details["problems"]["user_template"])


def test_template_syntax_error_is_refused_with_its_line(prompt):
    with pytest.raises(InvalidInputError) as refused:
        _draft(prompt, user_template="line one\n{% if customer %}no end")
    [problem] = refused.value.details["problems"]["user_template"]
    assert problem.startswith("line 2:")


@pytest.mark.parametrize(
    "variables",
    [
        {"type": "array"},
        {"type": "object", "properties": {"x": {"type": "no-such-type"}}},
        {"type": "object", "properties": {"__class__": {}}},
        {"type": "object", "properties": {}, "required": ["ghost"]},
        "customer",
    ],
    ids=["not-object", "invalid-schema", "dunder-name", "required-undeclared", "not-a-schema"],
)
def test_invalid_variable_declarations_are_refused(prompt, variables):
    with pytest.raises(InvalidInputError) as refused:
        _draft(prompt, system_template="", user_template="hi", variables=variables)
    assert refused.value.details["problems"]["variables"]


def test_params_are_checked_as_call_options(prompt):
    with pytest.raises(InvalidInputError) as refused:
        _draft(prompt, params={"max_tokens": -5})
    assert "max_tokens" in refused.value.details["problems"]["params"][0]


def test_a_draft_can_be_edited(prompt):
    draft = _draft(prompt)
    draft.user_template = "Hi, {{ customer }} here."
    prompts.save_draft(draft)
    assert PromptVersion.objects.get(pk=draft.pk).user_template == "Hi, {{ customer }} here."


# -- publication ---------------------------------------------------------------------------------


def test_publish_freezes_the_version_and_writes_an_audit_row(prompt):
    version = prompts.publish(_draft(prompt), actor="user:7")
    assert PromptVersion.objects.get(pk=version.pk).is_published
    row = AuditLog.objects.get(action="prompt.publish")
    assert (row.actor, row.target) == ("user:7", f"prompt_version:{version.pk}")
    assert row.data == {
        "prompt": "support-reply",
        "version": 1,
        "digest": version.content_digest,
    }
    assert row.tenant_id == prompt.tenant_id


def test_publishing_twice_writes_one_audit_row(prompt):
    version = _published(prompt)
    prompts.publish(version)
    assert AuditLog.objects.filter(action="prompt.publish").count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_template", "changed {{ customer }}"),
        ("system_template", "changed"),
        ("variables", {"type": "object"}),
        ("model", "other-model"),
        ("params", {"max_tokens": 5}),
        ("version", 9),
    ],
)
def test_a_published_version_cannot_change(prompt, field, value):
    version = _published(prompt)
    setattr(version, field, value)
    with pytest.raises(ConflictError):
        version.save()
    with pytest.raises(ConflictError):
        prompts.save_draft(PromptVersion.objects.get(pk=version.pk))


def test_a_published_version_cannot_be_unpublished_or_deleted(prompt):
    version = _published(prompt)
    version.published_at = None
    with pytest.raises(ConflictError):
        version.save()
    with pytest.raises(ConflictError):
        PromptVersion.objects.get(pk=version.pk).delete()


def test_a_version_with_no_template_cannot_be_published(prompt):
    draft = _draft(prompt, system_template="", user_template="  ", variables={})
    with pytest.raises(InvalidInputError) as refused:
        prompts.publish(draft)
    assert "user_template" in refused.value.details["problems"]
    assert not PromptVersion.objects.get(pk=draft.pk).is_published
    assert not AuditLog.objects.filter(action="prompt.publish").exists()


def test_publish_with_a_label_moves_it_in_the_same_step(prompt):
    version = prompts.publish(_draft(prompt), label="production")
    assert PromptLabel.objects.get(prompt=prompt, name="production").version_id == version.pk
    assert AuditLog.objects.filter(action="prompt.label").count() == 1


# -- labels --------------------------------------------------------------------------------------


def test_moving_a_label_is_audited_with_where_it_came_from(prompt):
    v1, v2 = _published(prompt), _published(prompt)
    prompts.move_label(prompt, "production", v1, actor="user:1")
    prompts.move_label(prompt, "production", 2, actor="user:2")
    moves = [r.data for r in AuditLog.objects.filter(action="prompt.label").order_by("seq")]
    assert moves == [
        {"prompt": "support-reply", "label": "production", "from": None, "to": 1},
        {"prompt": "support-reply", "label": "production", "from": 1, "to": 2},
    ]
    assert PromptLabel.objects.get(prompt=prompt, name="production").version_id == v2.pk


def test_moving_a_label_where_it_already_is_writes_nothing(prompt):
    version = _published(prompt)
    prompts.move_label(prompt, "canary", version)
    prompts.move_label(prompt, "canary", version)
    assert AuditLog.objects.filter(action="prompt.label").count() == 1


def test_a_draft_cannot_carry_a_label(prompt):
    draft = _draft(prompt)
    with pytest.raises(PromptNotPublished):
        prompts.move_label(prompt, "production", draft)
    assert not PromptLabel.objects.exists()


def test_a_label_cannot_point_at_another_prompts_version(tenant, prompt):
    other = _published(prompts.create_prompt(tenant, name="Other"))
    with pytest.raises(InvalidInputError):
        prompts.move_label(prompt, "production", other)


@pytest.mark.parametrize("name", ["", "Production", "has space", "x" * 51, "-lead"])
def test_label_names_are_lowercase_slugs(prompt, name):
    version = _published(prompt)
    with pytest.raises(InvalidInputError):
        prompts.move_label(prompt, name, version)


def test_label_model_clean_refuses_drafts_and_other_prompts(tenant, prompt):
    draft = _draft(prompt)
    with pytest.raises(ValidationError, match="published"):
        PromptLabel(tenant=tenant, prompt=prompt, name="x", version=draft).full_clean()
    other = _published(prompts.create_prompt(tenant, name="Other"))
    with pytest.raises(ValidationError, match="another prompt"):
        PromptLabel(tenant=tenant, prompt=prompt, name="x", version=other).full_clean()


def test_removing_a_label_is_audited(prompt):
    prompts.move_label(prompt, "canary", _published(prompt))
    assert prompts.remove_label(prompt, "canary", actor="user:3")
    assert not prompts.remove_label(prompt, "canary")
    last = AuditLog.objects.filter(action="prompt.label").order_by("-seq").first()
    assert last.data == {"prompt": "support-reply", "label": "canary", "from": 1, "to": None}


def test_a_labelled_version_cannot_be_deleted_but_its_prompt_can(prompt):
    version = _published(prompt)
    prompts.move_label(prompt, "production", version)
    _draft(prompt)
    prompts.delete_prompt(prompt, actor="user:4")
    assert not PromptVersion.objects.filter(prompt_id=prompt.pk).exists()
    row = AuditLog.objects.get(action="prompt.delete")
    assert row.data == {"prompt": "support-reply", "published": [1]}


def test_deleting_the_tenant_takes_its_labelled_prompts(tenant, prompt):
    prompts.move_label(prompt, "production", _published(prompt))
    tenant.delete()
    assert not Prompt.objects.exists() and not PromptLabel.objects.exists()


# -- resolution ----------------------------------------------------------------------------------


def test_resolve_by_number_label_and_default(tenant, prompt):
    v1, v2 = _published(prompt), _published(prompt)
    _draft(prompt)
    assert prompts.resolve(tenant, "support-reply", version=1) == v1
    assert prompts.resolve(tenant, "support-reply", version="1") == v1
    # No production label: the newest published version, never the draft.
    assert prompts.resolve(tenant, "support-reply") == v2
    prompts.move_label(prompt, "production", v1)
    assert prompts.resolve(tenant, "support-reply") == v1
    prompts.move_label(prompt, "canary", v2)
    assert prompts.resolve(tenant, "support-reply", label="canary") == v2


def test_resolve_refuses_a_draft_unless_asked(tenant, prompt):
    draft = _draft(prompt)
    with pytest.raises(PromptNotPublished, match="draft"):
        prompts.resolve(tenant, "support-reply", version=1)
    assert prompts.resolve(tenant, "support-reply", version=1, allow_draft=True) == draft


def test_resolve_errors_name_what_was_not_found(tenant, prompt):
    _published(prompt)
    with pytest.raises(PromptNotFound, match="'nope'"):
        prompts.resolve(tenant, "nope")
    with pytest.raises(PromptVersionNotFound, match="no version 7"):
        prompts.resolve(tenant, "support-reply", version=7)
    with pytest.raises(PromptVersionNotFound, match="no label 'beta'"):
        prompts.resolve(tenant, "support-reply", label="beta")
    with pytest.raises(InvalidInputError, match="not both"):
        prompts.resolve(tenant, "support-reply", version=1, label="production")
    with pytest.raises(InvalidInputError, match="positive number"):
        prompts.resolve(tenant, "support-reply", version=0)


def test_a_prompt_with_only_drafts_has_no_default_version(tenant, prompt):
    _draft(prompt)
    with pytest.raises(PromptVersionNotFound, match="no published version"):
        prompts.resolve(tenant, "support-reply")


def test_resolve_finds_only_the_tenants_own_prompt(tenant, other_tenant, prompt):
    mine = _published(prompt)
    theirs = prompts.create_prompt(other_tenant, name="Support reply")
    _published(theirs)
    _published(theirs)
    assert prompts.resolve(tenant, "support-reply") == mine
    assert prompts.resolve(other_tenant, "support-reply").prompt == theirs
    with pytest.raises(PromptVersionNotFound):
        prompts.resolve(tenant, "support-reply", version=2)


# -- rendering -----------------------------------------------------------------------------------


def test_render_gives_system_and_user_messages(prompt):
    version = _published(prompt)
    messages = prompts.render(version, {"customer": "Ada", "tier": "gold"})
    assert [(m.role, m.content) for m in messages] == [
        ("system", "You help gold customers."),
        ("user", "Hello, I am Ada."),
    ]


def test_declared_defaults_fill_absent_variables(prompt):
    messages = prompts.render(_published(prompt), {"customer": "Ada"})
    assert messages[0].content == "You help free customers."


def test_a_blank_template_gives_no_message(prompt):
    version = _published(prompt, system_template="")
    assert [m.role for m in prompts.render(version, {"customer": "Ada"})] == ["user"]


def test_a_missing_variable_is_named(prompt):
    with pytest.raises(PromptVariablesInvalid, match="missing variable\\(s\\) 'customer'") as err:
        prompts.render(_published(prompt), {"tier": "gold"})
    assert err.value.details["missing"] == ["customer"]


def test_an_extra_variable_is_named(prompt):
    with pytest.raises(
        PromptVariablesInvalid, match="undeclared variable\\(s\\) 'costumer'"
    ) as err:
        prompts.render(_published(prompt), {"customer": "Ada", "costumer": "Ada"})
    assert err.value.details["extra"] == ["costumer"]
    assert err.value.details["declared"] == ["customer", "tier", "orders"]


def test_missing_and_extra_are_reported_together(prompt):
    with pytest.raises(PromptVariablesInvalid) as err:
        prompts.render(_published(prompt), {"name": "Ada"})
    assert (err.value.details["missing"], err.value.details["extra"]) == (["customer"], ["name"])


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"customer": 42}, "customer"),
        ({"customer": "Ada", "tier": "platinum"}, "tier"),
        ({"customer": "Ada", "orders": [1, "two"]}, "orders.1"),
    ],
)
def test_values_the_schema_refuses_are_named(prompt, variables, named):
    with pytest.raises(PromptVariablesInvalid) as err:
        prompts.render(_published(prompt), variables)
    assert [i["variable"] for i in err.value.details["invalid"]] == [named]
    assert named in err.value.message


def test_with_no_required_list_every_property_without_default_is_required(prompt):
    version = _published(
        prompt,
        system_template="",
        user_template="{{ a }}{{ b }}",
        variables={"type": "object", "properties": {"a": {}, "b": {"default": "!"}}},
    )
    assert prompts.render(version, {"a": "x"})[0].content == "x!"
    with pytest.raises(PromptVariablesInvalid, match="'a'"):
        prompts.render(version, {})


def test_variables_must_be_an_object(prompt):
    with pytest.raises(PromptVariablesInvalid, match="object"):
        prompts.render(_published(prompt), ["Ada"])  # type: ignore[arg-type]


def test_template_errors_name_the_prompt_version_and_template(prompt):
    version = _published(
        prompt,
        system_template="",
        user_template="Total: {{ orders | sum / 0 }}",
        variables=["orders"],
    )
    with pytest.raises(TemplateRenderError, match="'support-reply' v1 user_template") as err:
        prompts.render(version, {"orders": [1, 2]})
    assert err.value.details["field"] == "user_template"


def test_rendering_is_sandboxed(prompt):
    version = _published(
        prompt,
        system_template="",
        user_template="{{ customer.__class__.__mro__ }}",
        variables=["customer"],
    )
    with pytest.raises(TemplateRenderError):
        prompts.render(version, {"customer": "Ada"})


def test_dict_variables_read_keys_not_methods(prompt):
    version = _published(
        prompt,
        system_template="",
        user_template="{{ order.items | join(',') }}",
        variables=["order"],
    )
    assert prompts.render(version, {"order": {"items": ["a", "b"]}})[0].content == "a,b"


def test_the_version_model_clean_reports_the_same_problems(prompt):
    version = PromptVersion(
        prompt=prompt, tenant=prompt.tenant, version=1, user_template="{{ who }}", variables={}
    )
    with pytest.raises(ValidationError) as err:
        version.full_clean()
    assert "user_template" in err.value.message_dict


def test_concurrent_first_moves_of_a_label_leave_one_label(transactional_db, tenant):
    prompt = prompts.create_prompt(tenant, name="Busy")
    versions = [_published(prompt) for _ in range(4)]
    errors: list[BaseException] = []

    def move(version: PromptVersion) -> None:
        try:
            prompts.move_label(Prompt.objects.get(pk=prompt.pk), "production", version.version)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=move, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    label = PromptLabel.objects.get(prompt=prompt, name="production")
    moves = [r.data for r in AuditLog.objects.filter(action="prompt.label").order_by("seq")]
    assert moves[0]["from"] is None and moves[-1]["to"] == label.version.version
    # Each move starts where the one before it ended: the moves were serialised.
    assert all(a["to"] == b["from"] for a, b in itertools.pairwise(moves))


def test_a_taken_slug_is_a_conflict(tenant, prompt):
    with pytest.raises(ConflictError, match="'support-reply'"):
        prompts.create_prompt(tenant, name="Again", slug="support-reply")
