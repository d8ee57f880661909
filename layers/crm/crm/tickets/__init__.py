"""Tickets family: omnichannel tickets, SLA clocks, escalation, classification, after-sales
cases and product feedback.

This module is the family's public interface: other families and the functions import from
here and nowhere else in the package (an import contract checks it).
"""

from crm.tickets.aftersales import AfterSales, instant_refund_limit
from crm.tickets.aftersales_routes import aftersales_routes
from crm.tickets.classifier import CATEGORIES, TextClassifier, classify
from crm.tickets.corrections import Corrections
from crm.tickets.feedback import ProductFeedbackBook
from crm.tickets.settings import TicketsSettings

__all__ = [
    "CATEGORIES",
    "AfterSales",
    "Corrections",
    "ProductFeedbackBook",
    "TextClassifier",
    "TicketsSettings",
    "aftersales_routes",
    "classify",
    "instant_refund_limit",
]
