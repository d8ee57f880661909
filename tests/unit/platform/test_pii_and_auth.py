from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag

from crm.auth import Permission, Role, caller_from_claims
from crm.errors import Forbidden, Unauthorized
from crm.pii import BlindIndex, FieldCipher, mask_email, mask_name, mask_phone, normalize_phone


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13812345678", "+8613812345678"),
        ("138-1234-5678", "+8613812345678"),
        ("+86 138 1234 5678", "+8613812345678"),
        ("0086 13812345678", "+8613812345678"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_normalisation(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["12345", "+86 12812345678", "phone", "+0123456789"])
def test_malformed_phones_are_rejected(raw: str) -> None:
    with pytest.raises(ValueError, match=r"phone|mobile"):
        normalize_phone(raw)


def test_masks() -> None:
    assert mask_phone("+8613812345678") == "138****5678"
    assert mask_phone("+442079460958") == "+44****0958"
    assert mask_email("jane@example.com") == "j***@example.com"
    assert mask_name("王小明") == "王**"


def test_sealed_fields_open_only_for_their_customer_and_field() -> None:
    key = os.urandom(32)
    sealed = FieldCipher("c1", key).seal("phone", "+8613812345678")
    assert "13812345678" not in sealed
    assert FieldCipher("c1", key).open("phone", sealed) == "+8613812345678"
    with pytest.raises(InvalidTag):
        FieldCipher("c2", key).open("phone", sealed)
    with pytest.raises(InvalidTag):
        FieldCipher("c1", key).open("email", sealed)


def test_blind_index_is_keyed() -> None:
    a, b = BlindIndex(b"k1"), BlindIndex(b"k2")
    assert a.token("phone", "+86138") == a.token("phone", "+86138")
    assert a.token("phone", "+86138") != b.token("phone", "+86138")
    assert a.token("phone", "+86138") != a.token("email", "+86138")


STAFF_POOL = "https://cognito-idp.cn-north-1.amazonaws.com/cn-north-1_staff"
CUSTOMER_POOL = "https://cognito-idp.cn-north-1.amazonaws.com/cn-north-1_customers"


def test_claims_as_rest_and_http_apis_pass_them() -> None:
    rest = caller_from_claims(
        {"sub": "u", "iss": STAFF_POOL, "cognito:groups": "[marketer, analyst]"}, STAFF_POOL
    )
    assert rest.roles == {Role.MARKETER, Role.ANALYST}
    listed = caller_from_claims(
        {"sub": "u", "iss": STAFF_POOL, "cognito:groups": ["support_agent"]}, STAFF_POOL
    )
    assert listed.can(Permission.READ_PII)
    assert not rest.can(Permission.READ_PII)


def test_customers_act_on_their_own_profile_only() -> None:
    me = caller_from_claims(
        {"sub": "u", "iss": CUSTOMER_POOL, "cognito:groups": "customer",
         "custom:customer_id": "c1"},
        STAFF_POOL,
    )  # fmt: skip
    assert me.can(Permission.EDIT_PROFILE, "c1")
    assert not me.can(Permission.EDIT_PROFILE, "c2")
    assert not me.can(Permission.EDIT_TAGS, "c1")
    # The refusal says why: another customer's profile, or something no customer may do.
    with pytest.raises(Forbidden, match="a customer's token may read profile of its own"):
        me.require(Permission.READ_PROFILE, "c2")
    with pytest.raises(Forbidden, match="your role may not edit tags"):
        me.require(Permission.EDIT_TAGS, "c1")


def test_claims_without_identity_or_role() -> None:
    with pytest.raises(Unauthorized):
        caller_from_claims(None, STAFF_POOL)
    with pytest.raises(Forbidden):
        caller_from_claims({"sub": "u", "cognito:groups": "[guests]"}, STAFF_POOL)
    with pytest.raises(Forbidden):
        caller_from_claims({"sub": "u", "cognito:groups": "customer"}, STAFF_POOL)


@pytest.mark.parametrize("issuer", [CUSTOMER_POOL, None, STAFF_POOL + "x"])
def test_staff_roles_count_only_in_the_staff_pools_tokens(issuer: str | None) -> None:
    # The customers' pool allows self sign-up and no MFA: an "admin" group made there by
    # mistake, or a token of another pool, must not make its holder staff.
    claims = {"sub": "u", "cognito:groups": "[admin]"}
    if issuer:
        claims["iss"] = issuer
    with pytest.raises(Forbidden, match="staff user pool"):
        caller_from_claims(claims, STAFF_POOL)
