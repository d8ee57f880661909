"""The one timer mechanism (platform): campaign waits, ticket SLA deadlines and privacy
deadlines are all timers of a kind, whose wake-ups reach the kind's queue. It knows no family:
a family names its kind and queue in template.yaml (TIMER_QUEUE_<KIND>). See docs/timers.md."""

from crm.timers.personal_data import TimersPersonalData
from crm.timers.records import LEAD, SHARDS, Timer, WakeUp
from crm.timers.service import KindQueues, Timers, UnknownTimerKind
from crm.timers.settings import TimersSettings
from crm.timers.store import TimerStore
from crm.timers.sweep import ShardSwept, TimerSweep, shard_task

__all__ = [
    "LEAD",
    "SHARDS",
    "KindQueues",
    "ShardSwept",
    "Timer",
    "TimerStore",
    "TimerSweep",
    "Timers",
    "TimersPersonalData",
    "TimersSettings",
    "UnknownTimerKind",
    "WakeUp",
    "shard_task",
]
