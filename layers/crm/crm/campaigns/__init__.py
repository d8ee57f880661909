"""Campaigns family: triggered journeys, segment sends, the contact-pressure policy, coupons,
exactly-once dispatch and the ROI it earned.

This module is the family's public interface: other families and the functions import from
here and nowhere else in the package (an import contract checks it). Campaigns builds on
profiles and segments through their public interfaces; neither of them knows campaigns.
"""

from crm.campaigns.dispatch import Dispatcher
from crm.campaigns.models import DispatchOutcome, DispatchRequest, MessageChannel
from crm.campaigns.personal_data import CampaignsPersonalData
from crm.campaigns.settings import CampaignsSettings

__all__ = [
    "CampaignsPersonalData",
    "CampaignsSettings",
    "DispatchOutcome",
    "DispatchRequest",
    "Dispatcher",
    "MessageChannel",
]
