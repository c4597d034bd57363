"""Structured output through the gateway, against both wire servers: validation against a JSON
schema or a pydantic model, one repair attempt that shows the model its errors, then
StructuredOutputInvalid."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from automate_core.errors import InvalidInputError
from automate_llm.errors import StructuredOutputInvalid
from automate_llm.gateway import OutputMismatch, OutputSchema, Target
from automate_llm.testing import Reply
from automate_llm.testing.providers import MODELS
from automate_llm.types import ChatMessage, ChatOptions

ASK = [ChatMessage(role="user", content="Extract the person: Ada Lovelace, 36.")]
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture
def target(wire_provider, wire) -> Target:
    return Target(model=MODELS[wire.provider_type], provider=wire_provider)


def options(key: str | None = None) -> ChatOptions:
    return ChatOptions(model="", idempotency_key=key)


def test_a_valid_answer_is_returned_as_the_parsed_value(gateway, target, wire) -> None:
    wire.script(Reply(output={"name": "Ada", "age": 36}))

    outcome = gateway.structured([target], ASK, options(), OutputSchema(PERSON))

    assert outcome.value == {"name": "Ada", "age": 36}
    assert not outcome.repaired
    assert len(wire.requests) == 1


def test_a_pydantic_model_gives_back_an_instance(gateway, target, wire) -> None:
    wire.script(Reply(output={"name": "Ada", "age": 36}))

    outcome = gateway.structured([target], ASK, options(), OutputSchema(Person))

    assert outcome.value == Person(name="Ada", age=36)


def test_an_invalid_answer_is_repaired_once_with_the_errors_shown(gateway, target, wire) -> None:
    wire.script(
        Reply(output={"name": "Ada", "age": "thirty-six"}),
        Reply(output={"name": "Ada", "age": 36}),
    )

    outcome = gateway.structured([target], ASK, options(), OutputSchema(PERSON))

    assert outcome.value == {"name": "Ada", "age": 36}
    assert outcome.repaired
    repair = wire.requests[1].body["messages"]
    sent = json.dumps(repair)
    assert "$.age: 'thirty-six' is not of type 'integer'" in sent
    assert "thirty-six" in sent  # the invalid answer itself is shown back


def test_the_repair_call_has_its_own_idempotency_key(gateway, target, wire) -> None:
    wire.script(Reply(output={"name": "Ada"}), Reply(output={"name": "Ada", "age": 36}))

    gateway.structured([target], ASK, options("run-1:extract"), OutputSchema(PERSON))

    keys = [request.headers["idempotency-key"] for request in wire.requests]
    assert keys == ["run-1:extract", "run-1:extract:repair"]


def test_an_answer_still_invalid_after_the_repair_raises(gateway, target, wire) -> None:
    wire.script(Reply(output={"name": "Ada"}), Reply(output={"name": 7, "age": -1}))

    with pytest.raises(StructuredOutputInvalid) as caught:
        gateway.structured([target], ASK, options(), OutputSchema(PERSON))

    assert caught.value.details["first_errors"] == ["$: 'age' is a required property"]
    assert caught.value.details["errors"] == [
        "$.age: -1 is less than the minimum of 0",
        "$.name: 7 is not of type 'string'",
    ]
    assert len(wire.requests) == 2


def test_text_that_is_not_json_gets_the_repair_attempt(gateway, target, wire) -> None:
    wire.script(Reply(text="Sure! Ada, 36."), Reply(output={"name": "Ada", "age": 36}))

    outcome = gateway.structured([target], ASK, options(), OutputSchema(PERSON))

    assert outcome.repaired
    assert "the answer is not valid JSON" in json.dumps(wire.requests[1].body["messages"])


def test_pydantic_errors_are_shown_for_a_model_schema(gateway, target, wire) -> None:
    wire.script(Reply(output={"name": "Ada"}), Reply(output={"name": "Ada", "age": 36}))

    gateway.structured([target], ASK, options(), OutputSchema(Person))

    assert "$.age: Field required" in json.dumps(wire.requests[1].body["messages"])


# -- the schema --------------------------------------------------------------------------------


def test_a_schema_that_is_not_a_valid_json_schema_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="not a valid JSON schema"):
        OutputSchema({"type": "objekt"})


def test_answers_in_a_markdown_code_fence_are_accepted() -> None:
    fenced = '```json\n{"name": "Ada", "age": 36}\n```'

    assert OutputSchema(PERSON).parse(fenced) == {"name": "Ada", "age": 36}


def test_every_violation_is_listed_with_its_path() -> None:
    with pytest.raises(OutputMismatch) as caught:
        OutputSchema(PERSON).parse('{"name": ["A"], "age": 1.5, "extra": true}')

    assert caught.value.errors == [
        "$: Additional properties are not allowed ('extra' was unexpected)",
        "$.age: 1.5 is not of type 'integer'",
        "$.name: ['A'] is not of type 'string'",
    ]
