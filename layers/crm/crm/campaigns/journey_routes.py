"""The journeys' HTTP routes, each with the permission it needs."""

from __future__ import annotations

from collections.abc import Callable

from crm.auth import Permission as P
from crm.campaigns.journey_models import (
    InstanceList,
    JourneyDefinition,
    JourneyDeleted,
    JourneyExamples,
    JourneyList,
    JourneyReport,
    StoredJourney,
)
from crm.campaigns.journeys import JourneyCatalog
from crm.http import ApiRequest, Routes


def journey_routes(catalog: Callable[[], JourneyCatalog]) -> Routes:
    routes = Routes(__name__)

    @routes.route(
        "/campaigns/journeys",
        "POST",
        permission=P.EDIT_CAMPAIGNS,
        summary="Define a journey (a draft until activated): trigger, steps, exit, goal, re-entry",
        body=JourneyDefinition,
        response=StoredJourney,
        status=201,
        # A definition's rules may hold long lists: past 64 KiB the body is refused unread.
        errors=(413,),
    )
    def create_journey(req: ApiRequest) -> StoredJourney:
        return catalog().create(req.who, req.model(JourneyDefinition))

    @routes.route(
        "/campaigns/journeys",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="Every journey with its status and current version",
        response=JourneyList,
    )
    def list_journeys(req: ApiRequest) -> JourneyList:
        return catalog().journeys(req.who)

    @routes.route(
        "/campaigns/journeys/examples",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="The shipped example journeys, ready to copy",
        response=JourneyExamples,
    )
    def journey_examples(req: ApiRequest) -> JourneyExamples:
        return catalog().examples(req.who)

    @routes.route(
        "/campaigns/journeys/{journey_id}",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="One journey",
        response=StoredJourney,
        errors=(404,),
    )
    def get_journey(req: ApiRequest) -> StoredJourney:
        return catalog().journey(req.who, req.path["journey_id"])

    @routes.route(
        "/campaigns/journeys/{journey_id}",
        "PUT",
        permission=P.EDIT_CAMPAIGNS,
        summary="Replace a journey's definition: a draft in place; a journey that ran gets a "
        "new version, and running instances keep theirs",
        body=JourneyDefinition,
        response=StoredJourney,
        errors=(404, 409, 413),
    )
    def replace_journey(req: ApiRequest) -> StoredJourney:
        return catalog().replace(req.who, req.path["journey_id"], req.model(JourneyDefinition))

    @routes.route(
        "/campaigns/journeys/{journey_id}",
        "DELETE",
        permission=P.EDIT_CAMPAIGNS,
        summary="Delete a journey that is not active (running instances finish on their version)",
        response=JourneyDeleted,
        errors=(404, 409),
    )
    def delete_journey(req: ApiRequest) -> JourneyDeleted:
        return catalog().delete(req.who, req.path["journey_id"])

    @routes.route(
        "/campaigns/journeys/{journey_id}/activate",
        "POST",
        permission=P.EDIT_CAMPAIGNS,
        summary="Activate a journey: its trigger starts entering customers",
        response=StoredJourney,
        errors=(404, 409),
    )
    def activate_journey(req: ApiRequest) -> StoredJourney:
        return catalog().set_status(req.who, req.path["journey_id"], active=True)

    @routes.route(
        "/campaigns/journeys/{journey_id}/pause",
        "POST",
        permission=P.EDIT_CAMPAIGNS,
        summary="Pause a journey: nobody enters; customers inside carry on",
        response=StoredJourney,
        errors=(404, 409),
    )
    def pause_journey(req: ApiRequest) -> StoredJourney:
        return catalog().set_status(req.who, req.path["journey_id"], active=False)

    @routes.route(
        "/campaigns/journeys/{journey_id}/report",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="Entered, completed, ended by goal or exit, and counts per step",
        response=JourneyReport,
        errors=(404,),
    )
    def journey_report(req: ApiRequest) -> JourneyReport:
        return catalog().report(req.who, req.path["journey_id"])

    @routes.route(
        "/campaigns/journeys/{journey_id}/customers/{customer_id}",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="One customer's instances of a journey: where they are, what they ran",
        response=InstanceList,
        errors=(404,),
    )
    def journey_customer(req: ApiRequest) -> InstanceList:
        return catalog().customer_instances(
            req.who, req.path["journey_id"], req.path["customer_id"]
        )

    return routes
