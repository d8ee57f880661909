"""Tickets family: omnichannel tickets and one conversation history per customer, SLA clocks on
business-hours calendars, escalation of high-risk tickets, zh+en classification, after-sales
cases the customer can follow, and product feedback.

This module is the family's public interface: other families and the functions import from
here and nowhere else in the package (an import contract checks it).
Each name loads its module when first read (crm/exports.py).
"""

from typing import TYPE_CHECKING

from crm.exports import lazy

if TYPE_CHECKING:
    from crm.tickets.aftersales import AfterSales, instant_refund_limit
    from crm.tickets.calendars import SHOP_ZONE, china_workday
    from crm.tickets.classifier import CATEGORIES, TextClassifier, classify
    from crm.tickets.corrections import Corrections
    from crm.tickets.feedback import ProductFeedbackBook
    from crm.tickets.models import Classifier, TicketCategory
    from crm.tickets.personal_data import TicketsPersonalData
    from crm.tickets.settings import TicketsSettings

__all__ = [
    "CATEGORIES",
    "SHOP_ZONE",
    "AfterSales",
    "Classifier",
    "Corrections",
    "ProductFeedbackBook",
    "TextClassifier",
    "TicketCategory",
    "TicketsPersonalData",
    "TicketsSettings",
    "china_workday",
    "classify",
    "instant_refund_limit",
]
__getattr__ = lazy(
    __name__,
    {
        "AfterSales": "crm.tickets.aftersales",
        "instant_refund_limit": "crm.tickets.aftersales",
        "SHOP_ZONE": "crm.tickets.calendars",
        "china_workday": "crm.tickets.calendars",
        "CATEGORIES": "crm.tickets.classifier",
        "TextClassifier": "crm.tickets.classifier",
        "classify": "crm.tickets.classifier",
        "Corrections": "crm.tickets.corrections",
        "ProductFeedbackBook": "crm.tickets.feedback",
        "Classifier": "crm.tickets.models",
        "TicketCategory": "crm.tickets.models",
        "TicketsPersonalData": "crm.tickets.personal_data",
        "TicketsSettings": "crm.tickets.settings",
    },
    globals(),
)
