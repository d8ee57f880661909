"""The tickets family's HTTP routes, each with the permission it needs."""

from __future__ import annotations

from collections.abc import Callable

from crm.auth import Permission as P
from crm.http import ApiRequest, QueryParam, Routes
from crm.tickets.models import (
    AddMessage,
    AssignTicket,
    CalendarDefinition,
    CalendarDeleted,
    CalendarList,
    CalendarView,
    ChangeStatus,
    ConversationPage,
    CorrectCategory,
    EscalateTicket,
    EscalationRules,
    EscalationRulesView,
    MergeTicket,
    MessageView,
    OpenTicket,
    SlaPolicies,
    SlaPoliciesView,
    TicketSelfView,
    TicketView,
)
from crm.tickets.service import TicketService

PAGE = (
    QueryParam("limit", "messages per page", "integer", minimum=1, maximum=100, default=20),
    QueryParam("next_token", "the previous page's next_token"),
)


def ticket_routes(family: Callable[[], TicketService]) -> Routes:
    routes = Routes(__name__)

    @routes.route(
        "/tickets",
        "POST",
        permission=P.OPEN_TICKET,
        summary=(
            "Open a ticket from any channel (a customer's token for themself, or an agent): "
            "classified, its SLA deadlines running, escalated with its reasons when high risk"
        ),
        body=OpenTicket,
        response=(TicketView, TicketSelfView),
        status=201,
        errors=(404, 409),
    )
    def open_ticket(req: ApiRequest) -> TicketView | TicketSelfView:
        return family().open(req.who, req.model(OpenTicket))

    @routes.route(
        "/tickets/escalation-rules",
        "GET",
        permission=P.MANAGE_SLA,
        summary="The rules that escalate tickets (thresholds, tiers, keywords, who follows up)",
        response=EscalationRulesView,
    )
    def get_escalation_rules(req: ApiRequest) -> EscalationRulesView:
        return family().rules_view()

    @routes.route(
        "/tickets/escalation-rules",
        "PUT",
        permission=P.MANAGE_SLA,
        summary="Replace the escalation rules (tickets opened from now on use them)",
        body=EscalationRules,
        response=EscalationRulesView,
    )
    def put_escalation_rules(req: ApiRequest) -> EscalationRulesView:
        return family().put_rules(req.who, req.model(EscalationRules))

    @routes.route(
        "/tickets/sla-policies",
        "GET",
        permission=P.READ_TICKETS,
        summary=(
            "The SLA policies in force (targets per category, the calendar of each priority), "
            "their version and the calendars"
        ),
        response=SlaPoliciesView,
    )
    def get_sla_policies(req: ApiRequest) -> SlaPoliciesView:
        return family().policies_view()

    @routes.route(
        "/tickets/sla-policies",
        "PUT",
        permission=P.MANAGE_SLA,
        summary=(
            "Replace the SLA policies with a new version: tickets opened from now on pin it, "
            "open ones keep theirs"
        ),
        body=SlaPolicies,
        response=SlaPoliciesView,
        errors=(409,),
    )
    def put_sla_policies(req: ApiRequest) -> SlaPoliciesView:
        return family().put_policies(req.who, req.model(SlaPolicies))

    @routes.route(
        "/tickets/calendars",
        "GET",
        permission=P.READ_TICKETS,
        summary=(
            "The business-hours calendars SLA policies may count in: the built-ins "
            "(business_hours, 24x7) and the shop's own, each with its version"
        ),
        response=CalendarList,
    )
    def list_calendars(req: ApiRequest) -> CalendarList:
        return family().calendars_view()

    @routes.route(
        "/tickets/calendars/{name}",
        "GET",
        permission=P.READ_TICKETS,
        summary="One calendar: time zone, working periods per weekday, holidays, dates",
        response=CalendarView,
        errors=(404,),
    )
    def get_calendar(req: ApiRequest) -> CalendarView:
        return family().calendar_view(req.path["name"])

    @routes.route(
        "/tickets/calendars/{name}",
        "PUT",
        permission=P.MANAGE_SLA,
        summary=(
            "Create or replace a shop calendar (a time zone, working periods per weekday, a "
            "country's public holidays, the shop's closed and extra working dates) as a new "
            "version: tickets opened from now on copy it, open ones keep theirs"
        ),
        body=CalendarDefinition,
        response=CalendarView,
        errors=(409,),
    )
    def put_calendar(req: ApiRequest) -> CalendarView:
        return family().put_calendar(req.who, req.path["name"], req.model(CalendarDefinition))

    @routes.route(
        "/tickets/calendars/{name}",
        "DELETE",
        permission=P.MANAGE_SLA,
        summary=(
            "Delete a shop calendar the SLA policies in force do not use (built-ins stay); "
            "open tickets keep counting in the version they copied"
        ),
        response=CalendarDeleted,
        errors=(404, 409),
    )
    def delete_calendar(req: ApiRequest) -> CalendarDeleted:
        return family().delete_calendar(req.who, req.path["name"])

    @routes.route(
        "/tickets/{ticket_id}",
        "GET",
        permission=P.READ_TICKETS,
        summary=(
            "A ticket with every SLA deadline (running, paused, met, breached; time left) and "
            "its escalation; a customer reads where their own stands, not the team's workings"
        ),
        response=(TicketView, TicketSelfView),
        errors=(404,),
    )
    def get_ticket(req: ApiRequest) -> TicketView | TicketSelfView:
        return family().get(req.who, req.path["ticket_id"])

    @routes.route(
        "/tickets/{ticket_id}/messages",
        "POST",
        permission=P.OPEN_TICKET,
        summary=(
            "Add to a ticket's conversation from any channel: the customer's words, an agent's "
            "reply or an internal note (never shown to the customer); a merged ticket's "
            "messages reach its survivor"
        ),
        body=AddMessage,
        response=MessageView,
        status=201,
        errors=(404, 409),
    )
    def add_message(req: ApiRequest) -> MessageView:
        return family().add_message(req.who, req.path["ticket_id"], req.model(AddMessage))

    @routes.route(
        "/tickets/{ticket_id}/assign",
        "POST",
        permission=P.WORK_TICKETS,
        summary="Assign a ticket to an agent",
        body=AssignTicket,
        response=TicketView,
        errors=(404, 409),
    )
    def assign_ticket(req: ApiRequest) -> TicketView:
        return family().assign(req.who, req.path["ticket_id"], req.model(AssignTicket))

    @routes.route(
        "/tickets/{ticket_id}/escalate",
        "POST",
        permission=P.WORK_TICKETS,
        summary="Escalate a ticket by hand, with a reason code: urgent, a senior agent and a "
        "manager on it, TicketEscalated announced (once: again changes nothing)",
        body=EscalateTicket,
        response=TicketView,
        errors=(404, 409),
    )
    def escalate_ticket(req: ApiRequest) -> TicketView:
        return family().escalate(req.who, req.path["ticket_id"], req.model(EscalateTicket))

    @routes.route(
        "/tickets/{ticket_id}/category",
        "POST",
        permission=P.WORK_TICKETS,
        summary=(
            "Correct the category the classifier chose: the ticket keeps the classifier's "
            "answer beside it and the correction is kept for retraining (SLA targets stay "
            "pinned)"
        ),
        body=CorrectCategory,
        response=TicketView,
        errors=(404, 409),
    )
    def correct_category(req: ApiRequest) -> TicketView:
        return family().correct_category(req.who, req.path["ticket_id"], req.model(CorrectCategory))

    @routes.route(
        "/tickets/{ticket_id}/status",
        "POST",
        permission=P.WORK_TICKETS,
        summary=(
            "Move a ticket to another status (new, open, waiting_customer, "
            "waiting_third_party, resolved, closed), where the allowed transitions lead"
        ),
        body=ChangeStatus,
        response=TicketView,
        errors=(404, 409),
    )
    def change_ticket_status(req: ApiRequest) -> TicketView:
        return family().change_status(req.who, req.path["ticket_id"], req.model(ChangeStatus))

    @routes.route(
        "/tickets/{ticket_id}/merge",
        "POST",
        permission=P.WORK_TICKETS,
        summary="Merge a duplicate ticket into another of the same customer (a reversible link)",
        body=MergeTicket,
        response=TicketView,
        errors=(404, 409),
    )
    def merge_ticket(req: ApiRequest) -> TicketView:
        return family().merge(req.who, req.path["ticket_id"], req.model(MergeTicket))

    @routes.route(
        "/tickets/{ticket_id}/unmerge",
        "POST",
        permission=P.WORK_TICKETS,
        summary="Undo a merge: the ticket takes its own messages again",
        response=TicketView,
        errors=(404, 409),
    )
    def unmerge_ticket(req: ApiRequest) -> TicketView:
        return family().unmerge(req.who, req.path["ticket_id"])

    @routes.route(
        "/customers/{customer_id}/conversation",
        "GET",
        permission=P.READ_TICKETS,
        summary=(
            "A customer's whole conversation across tickets and channels, newest first "
            "(with the profiles merged into theirs; internal notes for staff only)"
        ),
        response=ConversationPage,
        query=PAGE,
        errors=(404,),
    )
    def get_conversation(req: ApiRequest) -> ConversationPage:
        return family().conversation(
            req.who, req.path["customer_id"], req.int_query("limit"), req.query.get("next_token")
        )

    return routes
