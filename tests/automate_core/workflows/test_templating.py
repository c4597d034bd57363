"""Step inputs: sandboxed Jinja2 over {event, context, steps}."""

import pytest

from automate_core.workflows.templating import TemplateRenderError, render_value

SCOPE = {
    "event": {"type": "order.paid", "payload": {"amount": 42, "items": ["a", "b"]}},
    "context": {"customer": "Ada"},
    "steps": {"lookup": {"output": {"tier": "gold"}}},
}


def test_strings_render_against_event_context_and_step_outputs():
    value = {"text": "Hi {{ context.customer }}, {{ steps.lookup.output.tier }} tier"}
    assert render_value(value, SCOPE) == {"text": "Hi Ada, gold tier"}


def test_a_lone_expression_keeps_its_type():
    assert render_value("{{ event.payload.items }}", SCOPE) == ["a", "b"]
    assert render_value("{{ event.payload.amount * 2 }}", SCOPE) == 84


def test_nested_structures_are_walked_and_non_strings_kept():
    value = {"a": [1, "{{ context.customer }}", {"b": None}]}
    assert render_value(value, SCOPE) == {"a": [1, "Ada", {"b": None}]}


def test_undefined_names_are_errors_naming_the_path():
    with pytest.raises(TemplateRenderError, match=r"input\.body"):
        render_value({"body": "{{ context.missing }}"}, SCOPE)


def test_syntax_errors_are_template_errors():
    with pytest.raises(TemplateRenderError):
        render_value("{{ context.customer ", SCOPE)


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ context.__class__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{% set x = context.update({'customer': 'Eve'}) %}{{ x }}",
    ],
)
def test_sandbox_refuses_escapes_and_mutation(attack):
    scope = {**SCOPE, "context": dict(SCOPE["context"])}
    with pytest.raises(TemplateRenderError):
        render_value(attack, scope)
    assert scope["context"]["customer"] == "Ada"


def test_huge_output_is_refused():
    with pytest.raises(TemplateRenderError, match="more than"):
        render_value("{% for i in range(99999) %}xxxxxxxxxxxxxxxxxxxx{% endfor %}", SCOPE)
