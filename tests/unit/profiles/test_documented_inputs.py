"""What the OpenAPI document says a profile request may hold is what the models accept: a
client that follows the document is never refused, one that breaks it always is."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from crm.pii import normalize_phone
from crm.profiles.change_models import TagChange
from crm.profiles.models import MAX_IDENTITIES, Identity, ProfileAttributes, UpsertCustomer
from crm.profiles.record_models import EMAIL_SCHEMA, PHONE_SCHEMA


def documented(model: type[BaseModel], value: Any) -> bool:
    schema = model.model_json_schema(mode="validation")
    return bool(jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(value))


def accepted(model: type[BaseModel], value: Any) -> bool:
    try:
        model.model_validate(value)
    except ValidationError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(st.from_regex(r"^(\+|00)?[0-9]{6,16}$", fullmatch=True))
def test_the_phone_pattern_is_exactly_what_normalisation_accepts(raw: str) -> None:
    try:
        normalize_phone(raw)
    except ValueError:
        assert not re.match(PHONE_SCHEMA["pattern"], raw)
    else:
        assert re.match(PHONE_SCHEMA["pattern"], raw)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(PHONE_SCHEMA["pattern"], fullmatch=True))
def test_every_documented_phone_is_accepted(raw: str) -> None:
    assert accepted(ProfileAttributes, {"phone": raw})


LONG_EMAIL = "ann@" + "b" * 60 + "." + "c" * 60 + ".com"  # 129 characters: valid, too long


@pytest.mark.parametrize(
    "email", ["ann@shop.test", "ann@Shop.LOCAL", "ann@x.onion", "ann@localhost", LONG_EMAIL]
)
def test_emails_the_validator_refuses_are_outside_the_document(email: str) -> None:
    assert not accepted(ProfileAttributes, {"email": email})
    assert not documented(ProfileAttributes, {"email": email})
    assert not jsonschema_rs.validator_for(EMAIL_SCHEMA, validate_formats=True).is_valid(email)


def test_a_long_email_is_refused_as_an_attribute_not_later_as_an_identity() -> None:
    with pytest.raises(ValidationError, match=r"attributes\.email"):
        UpsertCustomer.model_validate({"identities": [{"channel": "app", "external_id": "1"}],
                                       "attributes": {"email": LONG_EMAIL}})  # fmt: skip


@pytest.mark.parametrize(
    ("identity", "valid"),
    [
        ({"channel": "phone", "external_id": "13812345678"}, True),
        ({"channel": "phone", "external_id": "0"}, False),
        ({"channel": "phone", "external_id": "+8612345678"}, False),
        ({"channel": "email", "external_id": "ann@example.com"}, True),
        ({"channel": "email", "external_id": "ann"}, False),
        ({"channel": "app", "external_id": "ann"}, True),
    ],
)
def test_an_identity_documents_the_external_id_its_channel_takes(
    identity: dict[str, str], valid: bool
) -> None:
    assert documented(Identity, identity) is valid
    assert accepted(Identity, identity) is valid


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        ({}, False),
        ({"add": [], "remove": []}, False),
        ({"add": [{"name": "vip"}]}, True),
        ({"add": [], "remove": ["vip"]}, True),
    ],
)
def test_a_tag_change_documents_that_it_changes_something(
    change: dict[str, Any], valid: bool
) -> None:
    assert documented(TagChange, change) is valid
    assert accepted(TagChange, change) is valid


def test_an_upsert_leaves_room_for_the_phone_and_email_identities() -> None:
    def body(count: int) -> dict[str, Any]:
        identities = [{"channel": "app", "external_id": f"app-{n}"} for n in range(count)]
        return {"identities": identities,
                "attributes": {"phone": "13812345678", "email": "ann@example.com"}}  # fmt: skip

    assert documented(UpsertCustomer, body(MAX_IDENTITIES - 2))
    assert accepted(UpsertCustomer, body(MAX_IDENTITIES - 2))
    assert not documented(UpsertCustomer, body(MAX_IDENTITIES - 1))
    assert not accepted(UpsertCustomer, body(MAX_IDENTITIES - 1))


def test_a_birthday_lies_between_1900_and_today() -> None:
    """JSON Schema cannot say "today": the property test keeps valid birthdays in range."""
    today = date.today()
    for born, valid in [(date(1899, 12, 31), False), (date(1900, 1, 1), True), (today, True),
                        (today + timedelta(days=1), False)]:  # fmt: skip
        assert accepted(ProfileAttributes, {"birthday": born.isoformat()}) is valid


def test_the_documents_special_use_domains_are_email_validators_own() -> None:
    # The API keeps a copy so that it need not load email-validator at cold start; a new
    # email-validator that refuses one more domain must show here, not as a 400 the document
    # never warned of.
    import email_validator

    from crm.profiles.record_models import SPECIAL_USE_DOMAIN_NAMES

    assert set(SPECIAL_USE_DOMAIN_NAMES) == set(email_validator.SPECIAL_USE_DOMAIN_NAMES)
