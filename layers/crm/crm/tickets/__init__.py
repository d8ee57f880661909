"""Tickets family: omnichannel tickets and one conversation history per customer, SLA clocks on
business-hours calendars, escalation of high-risk tickets.

This module is the family's public interface: other code imports from here and nowhere else in
the package (an import contract checks it).
"""

from crm.tickets.models import Classifier, TicketCategory
from crm.tickets.settings import TicketsSettings

__all__ = ["Classifier", "TicketCategory", "TicketsSettings"]
