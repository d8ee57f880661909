"""Where each channel reaches a customer: the one definition dispatch sends by (a message to a
customer it does not reach is suppressed, `no_address`) and a send's preview screens by, so the
preview's audience is who dispatch will really send to.

- email: the profile's email; sms: its phone;
- push: an `app` identity (the app user the app's backend registered a device for);
- wechat: a `mini_program` or `wechat` identity (the openid);
- webhook: every customer (the shop's own endpoint gets the customer id).

Kept apart from dispatch_service so the preview (the API) does not load the dispatcher."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.campaigns.models import MessageChannel

if TYPE_CHECKING:
    from crm.profiles import ProfileRecord

# The identity channels a message on the channel goes to (the others go to a profile field).
IDENTITY_CHANNELS: dict[MessageChannel, frozenset[str]] = {
    MessageChannel.PUSH: frozenset({"app"}),
    MessageChannel.WECHAT: frozenset({"mini_program", "wechat"}),
}


def shown_address(record: ProfileRecord, channel: MessageChannel) -> str | None:
    """Where the channel reaches the customer, as staff may see it; None: it does not."""
    if channel is MessageChannel.EMAIL:
        return record.masked.get("email")
    if channel is MessageChannel.SMS:
        return record.masked.get("phone")
    if channel is MessageChannel.WEBHOOK:
        return record.customer_id
    wanted = IDENTITY_CHANNELS[channel]
    for identity in record.identities:
        if identity.channel in wanted:
            return identity.key
    return None
