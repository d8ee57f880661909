"""The contact-pressure policy: which marketing messages a customer may receive, and when.

One policy per shop (stored in CampaignsTable, `GET/PUT /campaigns/policy`). It decides, for a
marketing message (transactional ones are exempt from all of it, and recorded all the same):

- consent: the channel's purpose (`marketing_email`, ...) must be granted on the profile;
- the global control group: a deterministic `global_control_pct` of customers (a hash of the
  customer id and the policy's salt) receives no marketing at all, so that the uplift of all
  campaigns together can be measured;
- caps: at most `daily_cap` messages per channel per calendar day, `weekly_cap` across channels
  per calendar week (Monday to Sunday), and `rolling_cap` across channels in any
  `rolling_window_h` hours; days and weeks are the customer's: the profile's `time_zone`
  attribute (an IANA name), else the shop's (`time_zone`);
- priorities: the last `reserved_slots` of the weekly cap are kept for messages of priority at
  least `priority_threshold` (a routine newsletter at priority 0 cannot use up the week before
  a cart-abandonment or a VIP journey wants its message); below that, all slots are equal,
  first come first served;
- quiet hours (`quiet_hours.start` to `.end` in the customer's zone): a message is deferred to
  the end of the quiet hours plus a jitter of up to `quiet_jitter_s` (deterministic per
  message), so that 09:00 is not one spike at the providers.

The functions here are pure: the dispatch service reads the state, these decide, the store
writes the state back under a condition.
"""

import hashlib
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, StringConstraints

from crm.campaigns.models import MessageChannel
from crm.models import INTEGRAL, Integer, Output, Record, StrictInput

ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Purpose = Literal["marketing_email", "marketing_sms", "marketing_push", "marketing_wechat"]


class ChannelPolicy(StrictInput):
    purpose: Purpose | None = Field(
        description="the consent a marketing message on this channel needs; none: the channel "
        "takes no marketing"
    )
    daily_cap: Annotated[int, Field(ge=0, le=100), INTEGRAL] | None = Field(
        default=1, description="marketing messages per calendar day on this channel; null: none"
    )
    rate_per_s: float = Field(
        default=10, gt=0, le=10000, description="messages a second each worker sends at most"
    )
    max_concurrency: Integer = Field(
        default=10, ge=1, le=1000, description="workers sending on this channel at once"
    )
    cost_micros: Integer = Field(
        default=0, ge=0, le=10_000_000, description="what one message costs, in 1e-6 units"
    )


# The zones a shop may choose (its customers' days, weeks and quiet hours): a list the API
# document can carry, the same on every machine.
TimeZone = Literal[
    "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Macau", "Asia/Singapore",
    "Asia/Kuala_Lumpur", "Asia/Tokyo", "Asia/Seoul", "Asia/Bangkok", "Asia/Dubai",
    "Europe/London", "Europe/Berlin", "Europe/Paris", "America/New_York",
    "America/Los_Angeles", "Australia/Sydney", "UTC",
]  # fmt: skip


class QuietHours(StrictInput):
    start: ClockTime = Field(description="from (local time); overnight when after `end`")
    end: ClockTime = Field(description="until (local time); equal to `start`: no quiet hours")


class ChannelPolicies(StrictInput):
    """Each channel's part of the policy. Conservative starting rates per worker, to set to
    the account's quotas (docs/campaigns.md): SES's sending rate and SNS's SMS rate are per
    account and Region and vary by account. Costs: SES $0.10 per 1,000 emails; SMS to mainland
    China about $0.02 each (varies by country); SNS mobile push $0.50 per million; WeChat
    subscription messages free."""

    email: ChannelPolicy = ChannelPolicy(purpose="marketing_email", rate_per_s=14,
                                         cost_micros=100)  # fmt: skip
    sms: ChannelPolicy = ChannelPolicy(purpose="marketing_sms", rate_per_s=20, cost_micros=20_000)
    push: ChannelPolicy = ChannelPolicy(purpose="marketing_push", rate_per_s=100, cost_micros=1)
    wechat: ChannelPolicy = ChannelPolicy(purpose="marketing_wechat", rate_per_s=50)
    # The shop's own endpoint (an in-app inbox, ...): app-style notifications.
    webhook: ChannelPolicy = ChannelPolicy(purpose="marketing_push", daily_cap=None, rate_per_s=50)


class ContactPolicy(StrictInput):
    """The shop's contact-pressure policy (docs/campaigns.md)."""

    time_zone: TimeZone = Field(default="Asia/Shanghai", description="the shop's zone")
    quiet_hours: QuietHours | None = Field(
        default=QuietHours(start="21:00", end="09:00"), description="null: none"
    )
    quiet_jitter_s: Integer = Field(default=1800, ge=0, le=6 * 3600)
    weekly_cap: Annotated[int, Field(ge=0, le=100), INTEGRAL] | None = Field(
        default=3, description="marketing messages per calendar week across channels"
    )
    rolling_cap: Annotated[int, Field(ge=1, le=20), INTEGRAL] | None = Field(
        default=2, description="marketing messages across channels in any rolling window"
    )
    rolling_window_h: Integer = Field(default=48, ge=1, le=24 * 14)
    reserved_slots: Integer = Field(
        default=1, ge=0, le=100, description="weekly slots kept for high-priority messages"
    )
    priority_threshold: Integer = Field(
        default=50, ge=-1000, le=1000, description="what counts as high priority"
    )
    global_control_pct: float = Field(default=5, ge=1, le=15)
    control_salt: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = "gc-2026"
    default_locale: Literal["zh", "en"] = "zh"
    unsubscribe_url: Annotated[str, StringConstraints(pattern=r"^https://[!-~]{1,500}$")] = (
        "https://shop.example/unsubscribe"
    )
    channels: ChannelPolicies = Field(default_factory=ChannelPolicies)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def zone_for(self, customer_zone: object) -> ZoneInfo:
        """The customer's zone (the profile's `time_zone` attribute) when it names one the
        zone database knows, else the shop's."""
        if isinstance(customer_zone, str) and customer_zone:
            try:
                return ZoneInfo(customer_zone)
            except (ZoneInfoNotFoundError, ValueError):
                pass  # stored before it was validated: the shop's zone is the safe fallback
        return self.zone

    def channel(self, channel: MessageChannel) -> ChannelPolicy:
        found: ChannelPolicy = getattr(self.channels, channel.value)
        return found

    def in_global_control(self, customer_id: str) -> bool:
        """Deterministic: the same customer is in (or out of) the control group every time."""
        return _bucket(f"{self.control_salt}#{customer_id}", 10_000) < self.global_control_pct * 100


class StoredPolicy(Output):
    policy: ContactPolicy
    updated_at: datetime | None = None
    updated_by: str | None = None


def _bucket(text: str, buckets: int) -> int:
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def jitter(key: str, spread_s: int) -> timedelta:
    """A fixed share of `spread_s` for this message, so a redelivery computes the same time."""
    return timedelta(seconds=_bucket(key, spread_s + 1)) if spread_s > 0 else timedelta(0)


def _at(day: date, clock: str, zone: ZoneInfo) -> datetime:
    hours, minutes = (int(p) for p in clock.split(":"))
    return datetime.combine(day, time(hours, minutes), tzinfo=zone)


def quiet_until(
    policy: ContactPolicy, now: datetime, zone: ZoneInfo | None = None
) -> datetime | None:
    """When the quiet hours that hold `now` (in `zone`, the customer's; default the shop's)
    end; None when `now` is not in quiet hours."""
    quiet = policy.quiet_hours
    if quiet is None or quiet.start == quiet.end:
        return None
    zone = zone or policy.zone
    local = now.astimezone(zone)
    start = _at(local.date(), quiet.start, zone)
    end = _at(local.date(), quiet.end, zone)
    if start < end:  # within one day (13:00-14:00)
        return end if start <= local < end else None
    if local >= start:  # overnight, evening part: until tomorrow's end
        return _at(local.date() + timedelta(days=1), quiet.end, zone)
    return end if local < end else None


# ------------------------------------------------------------------ caps


class CapState(Record):
    """A customer's marketing sends the caps count: one item (`CAP#<customer_id>`), written
    under a condition on `version`, so two workers cannot both take the last slot."""

    version: int = 0
    days: dict[str, dict[str, int]] = Field(default={}, description="day -> channel")
    weeks: dict[str, int] = Field(default={})
    recent: list[datetime] = Field(default=[], description="sends in the window")


def day_of(policy: ContactPolicy, now: datetime, zone: ZoneInfo | None = None) -> str:
    return now.astimezone(zone or policy.zone).date().isoformat()


def week_of(policy: ContactPolicy, now: datetime, zone: ZoneInfo | None = None) -> str:
    year, week, _ = now.astimezone(zone or policy.zone).isocalendar()
    return f"{year}-W{week:02d}"


class CapCheck(Output):
    allowed: bool
    reason: str | None = None
    free_at: datetime | None = Field(default=None, description="when a slot is free again")


def check_caps(
    policy: ContactPolicy,
    state: CapState,
    channel: MessageChannel,
    priority: int,
    now: datetime,
    zone: ZoneInfo | None = None,
) -> CapCheck:
    """Whether one more marketing message may go now; days and weeks are `zone`'s (the
    customer's; default the shop's)."""
    zone = zone or policy.zone
    local = now.astimezone(zone)
    refusals: list[tuple[str, datetime]] = []
    daily = policy.channel(channel).daily_cap
    if daily is not None and state.days.get(day_of(policy, now, zone), {}).get(channel, 0) >= daily:
        refusals.append(("daily_cap", _at(local.date() + timedelta(days=1), "00:00", zone)))
    if policy.weekly_cap is not None:
        cap = policy.weekly_cap
        if priority < policy.priority_threshold:
            cap = max(0, cap - policy.reserved_slots)
        if state.weeks.get(week_of(policy, now, zone), 0) >= cap:
            monday = local.date() + timedelta(days=7 - local.weekday())
            refusals.append(("weekly_cap", _at(monday, "00:00", zone)))
    if policy.rolling_cap is not None:
        window = timedelta(hours=policy.rolling_window_h)
        inside = sorted(t for t in state.recent if t > now - window)
        if len(inside) >= policy.rolling_cap:
            # A slot frees when enough of the oldest sends leave the window.
            refusals.append(("rolling_cap", inside[len(inside) - policy.rolling_cap] + window))
    if not refusals:
        return CapCheck(allowed=True)
    return CapCheck(
        allowed=False,
        reason=refusals[0][0],
        free_at=max(at for _, at in refusals),
    )


def reserve(
    policy: ContactPolicy,
    state: CapState,
    channel: MessageChannel,
    now: datetime,
    zone: ZoneInfo | None = None,
) -> CapState:
    """The state with one more send on `channel` at `now`, the periods that can no longer
    count pruned (the item stays small)."""
    today, this_week = day_of(policy, now, zone), week_of(policy, now, zone)
    days = {today: dict(state.days.get(today, {}))}
    days[today][channel] = days[today].get(channel, 0) + 1
    weeks = {this_week: state.weeks.get(this_week, 0) + 1}
    window = timedelta(hours=policy.rolling_window_h)
    recent = sorted([t for t in state.recent if t > now - window] + [now])
    return CapState(version=state.version + 1, days=days, weeks=weeks, recent=recent)


def release(
    policy: ContactPolicy,
    state: CapState,
    channel: MessageChannel,
    taken_at: datetime,
    zone: ZoneInfo | None = None,
) -> CapState | None:
    """The state with the slot taken at `taken_at` on `channel` given back (a message the
    provider refused for good never went out); None: nothing left to give back (its day, week
    and window were pruned or already released)."""
    today, this_week = day_of(policy, taken_at, zone), week_of(policy, taken_at, zone)
    days = {day: dict(counts) for day, counts in state.days.items()}
    weeks = dict(state.weeks)
    recent = list(state.recent)
    changed = False
    if days.get(today, {}).get(channel, 0) > 0:
        days[today][channel] -= 1
        changed = True
    if weeks.get(this_week, 0) > 0:
        weeks[this_week] -= 1
        changed = True
    if taken_at in recent:
        recent.remove(taken_at)
        changed = True
    if not changed:
        return None
    return CapState(version=state.version + 1, days=days, weeks=weeks, recent=recent)
