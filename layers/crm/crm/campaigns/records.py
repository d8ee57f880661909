"""Stored shapes and key builders of `CampaignsTable`.

One table for the family, keys namespaced by the part that owns them (docs/data-model.md):
`JOURNEY#` definitions and `JINST#` journey instances (journeys), `MSG#` the dispatch ledger and
`CAP#` contact-pressure counters (dispatch), `SEND#` segment sends, `COUPON#` offers and codes,
`CONV#` conversions (sends, coupons and reports)."""

# ---- campaigns: D (dispatch) -------------------------------------------------------------
# MSG#<digest>            MSG         the dispatch ledger: one item per dispatch key (its hash:
#                                     fixed length, and usable as a timer id), state and outcome
# CAP#<customer_id>       CAP         the customer's marketing sends the caps count (versioned)
# STATS#<campaign>#<nn>   <variant>   counters per campaign and variant, over 16 write shards
# TOUCH#<customer_id>     <channel>   the last marketing message on a channel (attribution)
# OUTBOX#<customer_id>    <digest>    what the recording provider "sent" (local/dev; TTL)
# POLICY                  CONTACT     the contact-pressure policy
# TEMPLATE#<template_id>  TEMPLATE    a message template (zh/en bodies per channel)
# PUSH#<app user id>      ENDPOINT    the SNS platform endpoint of the user's device

import hashlib as _hashlib

STATS_SHARDS = 16
NO_VARIANT = "-"


def dispatch_digest(dispatch_key: str) -> str:
    return _hashlib.sha256(dispatch_key.encode()).hexdigest()[:40]


def message_key(digest: str) -> dict[str, str]:
    return {"PK": f"MSG#{digest}", "SK": "MSG"}


def cap_key(customer_id: str) -> dict[str, str]:
    return {"PK": f"CAP#{customer_id}", "SK": "CAP"}


def stats_partition(campaign_id: str, shard: int) -> str:
    return f"STATS#{campaign_id}#{shard:02d}"


def stats_shard(digest: str) -> int:
    return int(digest[:8], 16) % STATS_SHARDS


def touch_key(customer_id: str, channel: str) -> dict[str, str]:
    return {"PK": f"TOUCH#{customer_id}", "SK": channel}


def outbox_key(customer_id: str, digest: str) -> dict[str, str]:
    return {"PK": f"OUTBOX#{customer_id}", "SK": digest}


POLICY_KEY = {"PK": "POLICY", "SK": "CONTACT"}


def template_key(template_id: str) -> dict[str, str]:
    return {"PK": f"TEMPLATE#{template_id}", "SK": "TEMPLATE"}


# ---- the customer index (privacy) ---------------------------------------------------------
# Every item that belongs to one customer carries their id as `CUST`, the key of the sparse,
# keys-only GSI `customer`: an export or erasure finds a customer's items with one Query per
# id of theirs instead of reading the table whole (docs/personal-data.md). Items that name no
# one customer (counters, definitions, send pages) carry none; a send page's members are
# indexed by one member entry each:
# SENDMEM#<send_id>#<page>  <customer_id>  a member of a listed page (CUST), for erasure only
CUSTOMER_INDEX = "customer"
CUSTOMER_ATTR = "CUST"


def owned_by(customer_id: str | None) -> dict[str, str]:
    """The index attribute for an item of this customer ({} for an item of no customer)."""
    return {CUSTOMER_ATTR: customer_id} if customer_id else {}


def member_partition(send_id: str, page: int) -> str:
    return f"SENDMEM#{send_id}#{page:06d}"


def page_of_member(pk: str) -> tuple[str, int]:
    """(send_id, page) of a member entry's partition."""
    send_id, _, page = pk.removeprefix("SENDMEM#").rpartition("#")
    return send_id, int(page)
