"""The event intake's HTTP route, apart from the profiles family's other routes.

`POST /events` is most of the API's traffic (shops and apps send events all day), so a
container whose first request is one loads the intake alone: the event models, the service
and the transit, none of the customers' requests and views (`crm.profiles.models`), the import
models or the identity resolution (docs/architecture.md, "Cold starts")."""

from __future__ import annotations

from collections.abc import Callable

from crm.auth import Permission as P
from crm.http import ApiRequest, Routes
from crm.profiles.customer_events import MAX_BATCH_BYTES, EventBatch, EventsAccepted
from crm.profiles.event_intake import EventIntake


def event_routes(intake: Callable[[], EventIntake]) -> Routes:
    routes = Routes(__name__)

    @routes.route(
        "/events",
        "POST",
        permission=P.SEND_EVENTS,
        summary="Send a batch of order, browsing and after-sales events to be folded into profiles"
        " (all or none: 400 for a time in the future or an amount that disagrees with its items,"
        " 404 for a customer_id that names no customer, each naming events.N.<field>)",
        body=EventBatch,
        response=EventsAccepted,
        status=202,
        errors=(404, 413, 421),
        max_body_bytes=MAX_BATCH_BYTES,
    )
    def post_events(req: ApiRequest) -> EventsAccepted:
        return intake().accept_events(req.who, req.model(EventBatch))

    return routes
