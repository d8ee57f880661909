"""Dispatch's HTTP routes: the contact policy, message templates and the outbox (what the
recording provider would have sent), each with the permission it needs."""

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import Field

from crm.auth import Permission as P
from crm.campaigns.dispatch_service import DispatchService
from crm.campaigns.policy import ContactPolicy, StoredPolicy
from crm.campaigns.templates import MessageTemplate, StoredTemplate, Templates
from crm.errors import FieldProblem, InvalidInput
from crm.http import ApiRequest, QueryParam, Routes
from crm.models import Output

# Customer and campaign ids, as the query may name them.
ID_PATTERN = r"^[A-Za-z0-9._:#-]{1,128}$"


class OutboxEntry(Output):
    message_id: str
    dispatch_key: str
    customer_id: str
    campaign_id: str
    channel: str
    to: str | None = Field(description="the address, masked")
    locale: str
    subject: str | None
    body: str
    sent_at: str


class Outbox(Output):
    """What the recording provider took instead of sending (local/dev; entries expire)."""

    entries: Annotated[list[OutboxEntry], Field(max_length=1000)]


def dispatch_routes(
    dispatch: Callable[[], DispatchService], templates: Callable[[], Templates]
) -> Routes:
    routes = Routes(__name__)

    @routes.route(
        "/campaigns/policy",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="The contact-pressure policy: caps, quiet hours, control group, channels",
        response=StoredPolicy,
    )
    def get_policy(req: ApiRequest) -> StoredPolicy:
        return dispatch().read_policy(req.who)

    @routes.route(
        "/campaigns/policy",
        "PUT",
        permission=P.EDIT_CAMPAIGNS,
        summary="Replace the contact-pressure policy (workers see it within a minute)",
        body=ContactPolicy,
        response=StoredPolicy,
    )
    def put_policy(req: ApiRequest) -> StoredPolicy:
        return dispatch().save_policy(req.who, req.model(ContactPolicy))

    @routes.route(
        "/campaigns/templates/{template_id}",
        "PUT",
        permission=P.EDIT_CAMPAIGNS,
        summary="Define or replace a message template (zh and en bodies per channel), checked "
        "for syntax and unknown variables",
        body=MessageTemplate,
        response=StoredTemplate,
    )
    def put_template(req: ApiRequest) -> StoredTemplate:
        return templates().save(req.who, req.path["template_id"], req.model(MessageTemplate))

    @routes.route(
        "/campaigns/templates/{template_id}",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="One message template",
        response=StoredTemplate,
        errors=(404,),
    )
    def get_template(req: ApiRequest) -> StoredTemplate:
        return templates().get(req.who, req.path["template_id"])

    @routes.route(
        "/campaigns/outbox",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="What the recording provider took for a customer instead of sending it "
        "(local and development stages; entries expire after 7 days)",
        response=Outbox,
        query=(
            QueryParam(
                "customer_id",
                "the customer whose messages to show",
                required=True,
                pattern=ID_PATTERN,
            ),
            QueryParam("campaign_id", "only this campaign's messages", pattern=ID_PATTERN),
        ),
    )
    def get_outbox(req: ApiRequest) -> Outbox:
        customer_id = req.required_query("customer_id")
        campaign_id = req.query.get("campaign_id")
        problems = [
            FieldProblem(name, "an id: letters, digits and ._:#-, up to 128")
            for name, value in (("customer_id", customer_id), ("campaign_id", campaign_id))
            if value is not None and not re.fullmatch(ID_PATTERN, value)
        ]
        if problems:
            raise InvalidInput("not an outbox query", problems)
        entries = dispatch().outbox(req.who, customer_id, campaign_id)
        return Outbox(entries=[OutboxEntry.model_validate(e) for e in entries[-1000:]])

    return routes
