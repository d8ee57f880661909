"""HTTP routes of segment sends, coupons and the campaign report, each with its permission."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from crm.auth import Permission as P
from crm.campaigns.coupons import Coupons
from crm.campaigns.reports import Reports
from crm.campaigns.send_models import (
    CampaignReport,
    CouponOffer,
    CouponOfferInput,
    CouponOfferList,
    CouponRedemption,
    Preview,
    RedeemInput,
    Send,
    SendAction,
    SendInput,
    SendList,
)
from crm.campaigns.sends import Sends
from crm.http import ApiRequest, QueryParam, Routes


@dataclass(frozen=True)
class SendParts:
    sends: Sends
    coupons: Coupons
    reports: Reports


def send_routes(parts: Callable[[], SendParts]) -> Routes:
    routes = Routes(__name__)

    @routes.route(
        "/campaigns/coupons/offers",
        "POST",
        permission=P.EDIT_CAMPAIGNS,
        summary="Define a coupon offer: amount or percent off, a threshold (满99减50), an "
        "expiry and a budget of codes",
        body=CouponOfferInput,
        response=CouponOffer,
        status=201,
        errors=(409,),
    )
    def create_offer(req: ApiRequest) -> CouponOffer:
        return parts().coupons.create_offer(req.who, req.model(CouponOfferInput))

    @routes.route(
        "/campaigns/coupons/offers",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="Coupon offers",
        response=CouponOfferList,
    )
    def list_offers(req: ApiRequest) -> CouponOfferList:
        return parts().coupons.list_offers(req.who)

    @routes.route(
        "/campaigns/coupons/offers/{offer_id}",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="One coupon offer, with how many of its codes were issued",
        response=CouponOffer,
        errors=(404,),
    )
    def get_offer(req: ApiRequest) -> CouponOffer:
        return parts().coupons.read_offer(req.who, req.path["offer_id"])

    @routes.route(
        "/campaigns/coupons/{code}/redeem",
        "POST",
        permission=P.REDEEM_COUPONS,
        summary="Redeem a code at a till (offline): once; a second redemption or an expired "
        "code is a 409",
        body=RedeemInput,
        response=CouponRedemption,
        errors=(404, 409),
    )
    def redeem(req: ApiRequest) -> CouponRedemption:
        return parts().coupons.redeem_offline(req.who, req.path["code"], req.model(RedeemInput))

    @routes.route(
        "/campaigns/sends",
        "POST",
        permission=P.EDIT_CAMPAIGNS,
        summary="Define a segment send (a draft until started): channel, template, coupon "
        "offer, A/B variants, holdout, schedule",
        body=SendInput,
        response=Send,
        status=201,
    )
    def create_send(req: ApiRequest) -> Send:
        return parts().sends.create(req.who, req.model(SendInput))

    @routes.route(
        "/campaigns/sends",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="Segment sends, newest first",
        response=SendList,
        query=(QueryParam("limit", "how many", "integer", 1, 100, 50),),
    )
    def list_sends(req: ApiRequest) -> SendList:
        return parts().sends.list_sends(req.who, req.int_query("limit"))

    @routes.route(
        "/campaigns/sends/{send_id}",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="One segment send: its definition, status and progress",
        response=Send,
        errors=(404,),
    )
    def get_send(req: ApiRequest) -> Send:
        return parts().sends.get(req.who, req.path["send_id"])

    @routes.route(
        "/campaigns/sends/{send_id}/preview",
        "POST",
        permission=P.READ_CAMPAIGNS,
        summary="The audience a send would reach after consent, the global control group, "
        "caps and its holdout: exact for small segments, estimated from a sample for large",
        response=Preview,
        errors=(404,),
    )
    def preview_send(req: ApiRequest) -> Preview:
        return parts().sends.preview(req.who, req.path["send_id"])

    @routes.route(
        "/campaigns/sends/{send_id}/actions",
        "POST",
        permission=P.EDIT_CAMPAIGNS,
        summary="Start (now, or at its send_at), pause, resume or cancel a send",
        body=SendAction,
        response=Send,
        errors=(404, 409),
    )
    def act_on_send(req: ApiRequest) -> Send:
        return parts().sends.act(req.who, req.path["send_id"], req.model(SendAction))

    @routes.route(
        "/campaigns/{campaign_id}/report",
        "GET",
        permission=P.READ_CAMPAIGNS,
        summary="A campaign's counts, conversions, uplift over its holdout or the global "
        "control group, and ROI, per variant",
        response=CampaignReport,
        errors=(404,),
    )
    def campaign_report(req: ApiRequest) -> CampaignReport:
        return parts().reports.report(req.who, req.path["campaign_id"])

    return routes
