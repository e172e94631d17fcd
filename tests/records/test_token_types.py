"""Every place that names the token types one by one agrees with `TOKEN_TYPES`, so a new type is caught."""

from __future__ import annotations

from dataclasses import fields

from tokenrate.cost._genai import TOKEN_TYPE_INDEX, VECTOR_KEYS
from tokenrate.ledger.schema import TOKEN_COLUMNS
from tokenrate.records import BILLED_TYPES, PART_OF, TOKEN_TYPES, TokenUsage
from tokenrate.simulator import UsagePlan
from tokenrate.view import TokenTotals


def test_typed_records_name_exactly_the_token_types_in_order():
    assert tuple(f.name for f in fields(TokenUsage)) == TOKEN_TYPES
    assert tuple(f.name for f in fields(TokenTotals)) == TOKEN_TYPES
    assert tuple(f.name for f in fields(UsagePlan))[: len(TOKEN_TYPES)] == TOKEN_TYPES


def test_every_type_is_a_billed_total_or_a_part_of_one():
    assert set(BILLED_TYPES) | set(PART_OF) == set(TOKEN_TYPES)
    assert not set(BILLED_TYPES) & set(PART_OF)
    assert set(PART_OF.values()) <= set(BILLED_TYPES)


def test_every_type_has_a_ledger_column_and_a_price_slot():
    assert tuple(f"{name}_tokens" for name in TOKEN_TYPES) == TOKEN_COLUMNS
    assert set(TOKEN_TYPE_INDEX) == set(TOKEN_TYPES)
    assert len(set(TOKEN_TYPE_INDEX.values())) == len(TOKEN_TYPES)
    assert all(0 <= index < len(VECTOR_KEYS) for index in TOKEN_TYPE_INDEX.values())


def test_usage_as_tuple_follows_token_types():
    usage = TokenUsage(**{name: i + 1 for i, name in enumerate(TOKEN_TYPES)})
    assert usage.as_tuple() == tuple(range(1, len(TOKEN_TYPES) + 1))


def test_the_cheap_cost_copy_is_the_record_with_its_cost():
    """`record_with_cost` copies every field (each set to a distinct value here) into a frozen `CallRecord`."""
    import dataclasses

    import pytest

    from tokenrate.records import CallRecord, record_with_cost

    values = {field.name: object() for field in dataclasses.fields(CallRecord)}
    record = CallRecord(**values)
    priced = record_with_cost(record, 0.125)
    assert type(priced) is CallRecord
    for field in dataclasses.fields(CallRecord):
        expected = 0.125 if field.name == "cost_usd" else values[field.name]
        assert getattr(priced, field.name) is expected, field.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        priced.cost_usd = 1.0  # type: ignore[misc]
    assert record.cost_usd is values["cost_usd"]


def test_the_cheap_new_record_is_the_record_its_constructor_makes():
    """`new_call_record` takes every field, in declaration order, and makes a frozen `CallRecord` equal to the one
    ``CallRecord(...)`` makes (each field set to a distinct value here)."""
    import dataclasses
    import inspect

    import pytest

    from tokenrate.records import CallRecord, new_call_record

    names = [field.name for field in dataclasses.fields(CallRecord)]
    assert list(inspect.signature(new_call_record).parameters) == names
    values = {name: object() for name in names}
    made = new_call_record(**values)
    assert type(made) is CallRecord
    assert made == CallRecord(**values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.outcome = "ok"  # type: ignore[misc]
