"""Stored shapes and key builders of `CampaignsTable`.

One table for the family, keys namespaced by the part that owns them (docs/data-model.md):
`JOURNEY#` definitions and `JINST#` journey instances (journeys), `MSG#` the dispatch ledger and
`CAP#` contact-pressure counters (dispatch), `SEND#` segment sends, `COUPON#` offers and codes,
`CONV#` conversions (sends, coupons and reports)."""
