"""The rule engine's own promises, beyond the conformance suites: caching, errors, data access."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from automate_core.errors import AutomateError
from automate_core.rules import jsonlogic
from automate_core.rules.jsonlogic import CACHE_SIZE, JSONLogicError, apply, compile


@pytest.fixture
def empty_cache():
    jsonlogic.cache_clear()
    yield
    jsonlogic.cache_clear()


# --- caching ----------------------------------------------------------------------------------


def test_equal_rules_share_one_compilation_whatever_their_key_order(empty_cache):
    first = compile({"var": ["settings", {"theme": "dark", "lang": "en"}]})
    second = compile({"var": ["settings", {"lang": "en", "theme": "dark"}]})

    assert first is second
    assert first({}) == {"theme": "dark", "lang": "en"}
    assert jsonlogic.cache_info().misses == 1


def test_apply_reuses_the_compiled_rule(empty_cache):
    rule = {">=": [{"var": "order.total"}, 100]}

    assert apply(rule, {"order": {"total": 250}}) is True
    assert apply(rule, {"order": {"total": 50}}) is False
    assert compile(rule)({"order": {"total": 100}}) is True
    assert jsonlogic.cache_info().misses == 1


def test_cache_is_bounded():
    assert jsonlogic.cache_info().maxsize == CACHE_SIZE


def test_changing_a_rule_after_compiling_it_does_not_change_the_compiled_rule(empty_cache):
    rule = {"==": [{"var": "status"}, "open"]}
    is_open = compile(rule)

    rule["=="][1] = "closed"

    assert is_open({"status": "open"}) is True
    assert apply(rule, {"status": "closed"}) is True


def test_a_rule_with_true_is_not_served_the_compilation_of_a_rule_with_1(empty_cache):
    assert apply({"===": [{"var": "x"}, 1]}, {"x": 1}) is True
    assert apply({"===": [{"var": "x"}, True]}, {"x": 1}) is False


def test_mutating_a_result_does_not_change_the_cached_rule(empty_cache):
    rule = {"if": [True, ["vin"], []]}

    apply(rule).append("apr")

    assert apply(rule) == ["vin"]


# --- errors -----------------------------------------------------------------------------------


def test_arithmetic_on_a_word_raises_nan():
    with pytest.raises(JSONLogicError) as raised:
        apply({"+": [{"var": "qty"}, 1]}, {"qty": "three"})

    assert raised.value.type == "NaN"


def test_division_by_zero_raises_nan():
    with pytest.raises(JSONLogicError) as raised:
        apply({"/": [{"var": "total"}, {"var": "count"}]}, {"total": 10, "count": 0})

    assert raised.value.type == "NaN"


def test_malformed_rule_fails_when_compiled():
    with pytest.raises(JSONLogicError) as raised:
        compile({"<": [1]})

    assert raised.value.type == "Invalid Arguments"


def test_unknown_operator_is_reported():
    with pytest.raises(JSONLogicError) as raised:
        compile({"regex_match": ["a", "b"]})

    assert raised.value.type == "Unknown Operator"


def test_a_rule_that_is_not_json_is_reported():
    with pytest.raises(JSONLogicError) as raised:
        compile({"==": [{"var": "x"}, object()]})

    assert raised.value.type == "Invalid Rule"


def test_throw_raises_the_thrown_value_as_the_type():
    with pytest.raises(JSONLogicError) as raised:
        apply({"throw": "Out of stock"})

    assert raised.value.type == "Out of stock"


def test_throw_of_an_error_object_raises_its_type():
    with pytest.raises(JSONLogicError) as raised:
        apply({"throw": {"var": "error"}}, {"error": {"type": "Declined", "code": 51}})

    assert raised.value.type == "Declined"


def test_try_falls_back_with_the_error_type_as_data():
    rule = {"try": [{"/": [1, {"var": "n"}]}, {"cat": ["failed: ", {"var": "type"}]}]}

    assert apply(rule, {"n": 4}) == 0.25
    assert apply(rule, {"n": 0}) == "failed: NaN"


def test_try_recovers_from_a_malformed_branch():
    assert apply({"try": [{"-": []}, "fallback"]}) == "fallback"


def test_an_error_in_a_branch_not_taken_is_never_raised():
    assert apply({"if": [False, {"/": [1, 0]}, "safe"]}) == "safe"


def test_rule_errors_are_domain_errors_with_a_code():
    with pytest.raises(AutomateError) as raised:
        apply({"*": ["a", 2]})

    assert raised.value.code == "rule_error"
    assert raised.value.details == {"type": "NaN"}


# --- data access ------------------------------------------------------------------------------


def test_var_follows_dotted_paths_through_objects_and_arrays():
    data = {"order": {"items": [{"sku": "A"}, {"sku": "B"}]}}

    assert apply({"var": "order.items.1.sku"}, data) == "B"
    assert apply({"var": "order.items.2.sku"}, data) is None
    assert apply({"var": "order.items.-1.sku"}, data) is None


def test_var_default_applies_only_to_absent_keys():
    rule = {"var": ["customer.tier", "free"]}

    assert apply(rule, {"customer": {}}) == "free"
    assert apply(rule, {"customer": {"tier": None}}) is None
    assert apply(rule, {"customer": {"tier": ""}}) == ""


def test_val_takes_keys_literally_including_dots():
    data = {"a.b": 1, "a": {"b": 2}}

    assert apply({"val": "a.b"}, data) == 1
    assert apply({"val": ["a", "b"]}, data) == 2


def test_exists_tells_null_from_absent():
    assert apply({"exists": ["user", "email"]}, {"user": {"email": None}}) is True
    assert apply({"exists": ["user", "email"]}, {"user": {}}) is False


def test_val_climbs_to_the_index_and_the_outer_data_inside_map():
    rule = {"map": [{"var": "prices"}, {"*": [{"val": []}, {"val": [[2], "rate"]}]}]}
    indexed = {"map": [["a", "b"], {"cat": [{"val": [[1], "index"]}, {"val": []}]}]}

    assert apply(rule, {"prices": [10, 20], "rate": 2}) == [20, 40]
    assert apply(indexed) == ["0a", "1b"]


def test_missing_treats_null_and_empty_string_as_absent():
    rule = {"missing": ["customer.email", "customer.phone", "order.id"]}
    data = {"customer": {"email": "", "phone": None}, "order": {"id": 7}}

    assert apply(rule, data) == ["customer.email", "customer.phone"]


def test_a_missing_field_compared_with_a_word_is_false_not_an_error():
    assert apply({"==": [{"var": "status"}, "open"]}, {}) is False
    assert apply({"!=": [{"var": "status"}, "open"]}, {}) is True


def test_numeric_strings_compare_as_numbers_and_two_strings_as_strings():
    assert apply({">": [{"var": "amount"}, 9]}, {"amount": "10"}) is True
    assert apply({"<": ["2024-01-31", {"var": "date"}]}, {"date": "2024-02-01"}) is True


def test_in_is_strict_about_types():
    assert apply({"in": [1, [True, "1"]]}) is False
    assert apply({"in": [{"var": "tag"}, ["b2b", "vip"]]}, {"tag": "vip"}) is True


def test_rules_given_as_tuples_or_mapping_subclasses_work():
    assert apply(OrderedDict([("==", (1, 1))])) is True
    assert apply(({"var": "a"}, 2), {"a": 1}) == [1, 2]
