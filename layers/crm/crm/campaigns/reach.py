"""Dispatch's reach figures as CloudWatch metrics (Powertools, EMF), for the reach-rate alarm.

Every message dispatch settles is counted once, when its outcome is recorded (a redelivered
request that is answered the first outcome counts nothing). Dispatch runs inside several
functions (the dispatch function, journey steps and triggers, the send worker), so the metrics
carry one fixed dimension, `service: crm-campaigns`, whichever function emits them: the alarm
in template.yaml (`CampaignReachRateAlarm`) then reads two series, not one per function.

- `CampaignMessagesAttempted`: messages that reached a final outcome (sent, capped,
  suppressed, failed). Deferrals are not attempts yet: a message deferred by quiet hours at
  22:00 is attempted when it goes out at 09:00, so the night does not look like a collapse.
- `CampaignMessagesSent`; and why the others did not go: `CampaignMessagesNoConsent`,
  `CampaignMessagesControlGroup`, `CampaignMessagesCapped`, `CampaignMessagesProviderFailed`
  (the provider refused it, or it could not be known whether it went out),
  `CampaignMessagesFailed` (template, coupon), `CampaignMessagesUnreachable` (no address, no
  such customer, a channel without marketing); and the deferrals, counted when first deferred:
  `CampaignMessagesQuietHoursDeferred`, `CampaignMessagesCapDeferred`.
"""

from __future__ import annotations

from crm import metrics

SERVICE = "crm-campaigns"
ATTEMPTED = "CampaignMessagesAttempted"
SENT = "CampaignMessagesSent"

# Where a message went, by the outcome it was recorded with.
_SUPPRESSED = {"no_consent": "CampaignMessagesNoConsent",
               "global_control": "CampaignMessagesControlGroup"}  # fmt: skip


def reach_metrics(status: str, reason: str | None, provider_failure: bool = False) -> list[str]:
    """The metrics one recorded outcome adds 1 to (pure, so the mapping is tested alone)."""
    if status == "deferred":
        if reason == "quiet_hours":
            return ["CampaignMessagesQuietHoursDeferred"]
        return ["CampaignMessagesCapDeferred"]
    if status == "sent":
        return [ATTEMPTED, SENT]
    if status == "capped":
        return [ATTEMPTED, "CampaignMessagesCapped"]
    if status == "suppressed":
        return [ATTEMPTED, _SUPPRESSED.get(reason or "", "CampaignMessagesUnreachable")]
    if provider_failure or reason == "unknown_after_interruption":
        return [ATTEMPTED, "CampaignMessagesProviderFailed"]
    return [ATTEMPTED, "CampaignMessagesFailed"]


def emit_reach(status: str, reason: str | None, provider_failure: bool = False) -> None:
    """One EMF line for the outcome, under the fixed service (crm.metrics: it never fails
    the customer's message)."""
    metrics.counts(
        dict.fromkeys(reach_metrics(status, reason, provider_failure), 1), {"service": SERVICE}
    )
