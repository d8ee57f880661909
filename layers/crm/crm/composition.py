"""The composition root: builds every service, store and adapter once per process and hands
them their collaborators. Functions ask it for what they use; tests build it on moto's
resources (or hand it fakes). Nothing else keeps a singleton, so forgetting the root (`reset`)
is all a test or the emulator does to start afresh.

Parts are built on first use and each family's modules are imported inside the property that
builds it, so a function pays at cold start only for what it touches (the timer functions load
no profile model; the segment recompute, which needs numpy, is imported only when asked for,
and scipy only when the planner fits).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from crm import aws
from crm.clock import Clock, IdFactory, new_id, utc_now
from crm.config import PlatformSettings

# Every family is imported inside the property that builds it: a function pays at cold start
# for the families it uses, not for every family the suite has (the timer sweep loads no
# profile model, the API no campaign dispatch). The names below are for type checking only.
if TYPE_CHECKING:
    from datetime import datetime

    from crm.analytics import Analytics, AnalyticsSettings
    from crm.analytics.compaction import Compaction
    from crm.analytics.service import Engine
    from crm.audit import PiiReads
    from crm.bus import Bus
    from crm.campaigns import CampaignsSettings
    from crm.campaigns.conversions import Conversions
    from crm.campaigns.coupons import Coupons
    from crm.campaigns.dispatch import Dispatcher
    from crm.campaigns.dispatch_service import DispatchService
    from crm.campaigns.dispatch_store import DispatchStore
    from crm.campaigns.journey_engine import DailyTriggers, JourneyEngine, ProfileActions
    from crm.campaigns.journey_store import JourneyStore
    from crm.campaigns.journeys import JourneyCatalog
    from crm.campaigns.names import CampaignNames
    from crm.campaigns.reports import Reports
    from crm.campaigns.send_routes import SendParts
    from crm.campaigns.send_store import SendStore
    from crm.campaigns.sends import AudienceScreen, Sends
    from crm.campaigns.templates import Templates
    from crm.keys import BlindIndexKey
    from crm.lake import FactLog, Lake
    from crm.personal_data import DataSubject, PersonalDataStore
    from crm.privacy import AuditLog, PrivacyExecutor, PrivacyRequests, PrivacySettings
    from crm.privacy.reads import AuditReadsConsumer
    from crm.privacy.replay import ErasureReplay
    from crm.privacy.routes import PrivacyParts
    from crm.privacy.store import PrivacyFiles, PrivacyStore
    from crm.profiles.event_folding import EventFolding
    from crm.profiles.event_intake import EventIntake
    from crm.profiles.family import Profiles
    from crm.profiles.history_import import HistoryImports
    from crm.profiles.identity import IdentityResolution
    from crm.profiles.import_intake import ImportIntake
    from crm.profiles.records import ProfileRecord
    from crm.profiles.service import ProfileService, SegmentShift
    from crm.profiles.settings import ProfilesSettings
    from crm.profiles.transit import EventTransit
    from crm.profiles.views import CustomerViews
    from crm.segments.membership import RuleMembership
    from crm.segments.recompute import SegmentRecompute
    from crm.segments.runs import RunWatchdog
    from crm.segments.service import SegmentCatalog
    from crm.segments.settings import SegmentsSettings
    from crm.segments.store import SegmentStore
    from crm.tickets import (
        AfterSales,
        Classifier,
        Corrections,
        ProductFeedbackBook,
        TicketsSettings,
    )
    from crm.tickets.aftersales_store import AfterSalesStore
    from crm.tickets.service import TicketService
    from crm.timers import KindQueues, Timers, TimersSettings, TimerStore, TimerSweep


class Settings:
    """Each family's resources, read from the environment when the family is first built."""

    @classmethod
    def from_env(cls) -> Settings:
        return cls()

    @cached_property
    def platform(self) -> PlatformSettings:
        return PlatformSettings.from_env()

    @cached_property
    def profiles(self) -> ProfilesSettings:
        from crm.profiles.settings import ProfilesSettings

        return ProfilesSettings.from_env()

    @cached_property
    def segments(self) -> SegmentsSettings:
        from crm.segments.settings import SegmentsSettings

        return SegmentsSettings.from_env()

    @cached_property
    def timers(self) -> TimersSettings:
        from crm.timers import TimersSettings

        return TimersSettings.from_env()

    @cached_property
    def campaigns(self) -> CampaignsSettings:
        from crm.campaigns import CampaignsSettings

        return CampaignsSettings.from_env()

    @cached_property
    def tickets(self) -> TicketsSettings:
        from crm.tickets import TicketsSettings

        return TicketsSettings.from_env()

    @cached_property
    def privacy(self) -> PrivacySettings:
        from crm.privacy import PrivacySettings

        return PrivacySettings.from_env()

    @cached_property
    def analytics(self) -> AnalyticsSettings:
        from crm.analytics import AnalyticsSettings

        return AnalyticsSettings.from_env()


class Crm:
    def __init__(
        self,
        settings: Settings,
        clock: Clock = utc_now,
        ids: IdFactory = new_id,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.ids = ids
        self.sleep = sleep

    # ------------------------------------------------------------ shared adapters
    @cached_property
    def lake(self) -> Lake:
        from crm.lake import Lake

        return Lake(self.settings.platform.lake_bucket, self.clock)

    @cached_property
    def facts(self) -> FactLog:
        """Campaign and ticket outcomes to the lake, named by pseudonym (crm.lake.FactLog)."""
        from crm.lake import FactLog

        return FactLog(self.lake, lambda cid: self.blind_index().pseudonym(cid), self.ids)

    def flush_facts(self) -> None:
        """Write the facts this batch or request recorded (if any family recorded one)."""
        if "facts" in self.__dict__:
            self.facts.flush()

    @cached_property
    def bus(self) -> Bus:
        from crm.bus import Bus

        return Bus(self.settings.platform.event_bus_name)

    @cached_property
    def blind_index(self) -> BlindIndexKey:
        from crm.keys import BlindIndexKey

        return BlindIndexKey(self.settings.profiles.blind_index_secret_arn)

    # ------------------------------------------------------------ timers
    @cached_property
    def timer_store(self) -> TimerStore:
        from crm.timers import TimerStore

        return TimerStore(self.settings.timers.timers_table)

    @cached_property
    def timer_kinds(self) -> KindQueues:
        from crm.timers import KindQueues

        return KindQueues(self.settings.timers.kinds)

    @cached_property
    def timers(self) -> Timers:
        from crm.timers import Timers

        return Timers(self.timer_store, self.timer_kinds, self.clock, self.ids)

    @cached_property
    def timer_sweep(self) -> TimerSweep:
        from crm.queue import Queue
        from crm.timers import TimerSweep

        tasks = Queue(self.settings.timers.sweep_queue_url)
        return TimerSweep(self.timer_store, self.timer_kinds, tasks, self.clock)

    # ------------------------------------------------------------ segments' membership
    @cached_property
    def segment_store(self) -> SegmentStore:
        from crm.segments.store import SegmentStore

        return SegmentStore(self.settings.segments.segments_table)

    @cached_property
    def rule_membership(self) -> RuleMembership:
        from crm.segments.membership import RuleMembership

        return RuleMembership(self.segment_store, self.bus, self.clock)

    # ------------------------------------------------------------ profiles
    @cached_property
    def profile_service(self) -> ProfileService:
        from crm.keys import DataKeys
        from crm.profiles.service import ProfileService
        from crm.profiles.store import ProfileStore

        config = self.settings.profiles
        return ProfileService(
            ProfileStore(config.customers_table),
            DataKeys(config.pii_key_id),
            self.blind_index,
            # Profiles reacts to changes in rule segments through this Protocol only.
            rules=_RulesOnFirstUse(lambda: self.rule_membership),
            clock=self.clock,
            ids=self.ids,
            sleep=self.sleep,
            region=config.data_region,
        )

    @cached_property
    def event_transit(self) -> EventTransit:
        from crm.keys import TransitKeys
        from crm.profiles.transit import EventTransit

        # One per process: the folder keeps the batch keys it unwrapped for the container's life.
        service = self.profile_service
        keys = TransitKeys(self.settings.profiles.pii_key_id)
        return EventTransit(keys, service.stored_identity, self.ids)

    # The event folder's parts are built apart from the family: it uses the service, identity
    # resolution and the folding, and loads none of the API's use cases (edits, lookup, merge
    # suggestions, points) nor their request and view models; the API never loads the folding
    # (docs/architecture.md, "Cold starts"; tests/unit/platform/test_first_request_imports.py).
    @cached_property
    def profile_views(self) -> CustomerViews:
        from crm.profiles.views import CustomerViews

        return CustomerViews(self.profile_service, self.pii_reads)

    @cached_property
    def profile_identity(self) -> IdentityResolution:
        from crm.profiles.identity import IdentityResolution

        return IdentityResolution(self.profile_service, self.profile_views)

    @cached_property
    def event_folding(self) -> EventFolding:
        from crm.profiles.event_folding import EventFolding

        return EventFolding(
            self.profile_service,
            self.profile_identity,
            self.lake,
            self.bus,
            self.blind_index,
            self.event_transit,
        )

    @cached_property
    def profiles(self) -> Profiles:
        from crm.profiles.family import Profiles

        return Profiles(self.profile_service, self.profile_identity, self.profile_views, self.bus)

    @cached_property
    def event_intake(self) -> EventIntake:
        """`POST /events`, built apart from the family: most of the API's requests are events,
        and a container whose first request is one builds the intake alone."""
        from crm.profiles.event_intake import EventIntake
        from crm.queue import Queue

        queue = Queue(self.settings.profiles.profile_events_queue_url)
        return EventIntake(queue, self.profile_service, self.event_transit)

    @cached_property
    def import_intake(self) -> ImportIntake:
        """`POST /imports` and its status, built apart from the family (see import_routes)."""
        from crm.profiles.import_intake import ImportIntake
        from crm.profiles.import_store import ImportStore, StagedImports
        from crm.queue import Queue

        config = self.settings.profiles
        return ImportIntake(
            self.profile_service,
            ImportStore(config.customers_table),
            StagedImports(config.imports_bucket),
            Queue(config.import_queue_url),
        )

    @cached_property
    def history_import(self) -> HistoryImports:
        """The import function's runner, built apart from the API's family (it folds: the
        API never loads the folding core for `POST /imports`)."""
        from crm.profiles.history_import import HistoryImports
        from crm.profiles.import_store import ImportStore, StagedImports

        config = self.settings.profiles
        return HistoryImports(
            self.profile_service,
            self.profile_identity,
            self.event_folding,
            ImportStore(config.customers_table),
            StagedImports(config.imports_bucket),
        )

    # ------------------------------------------------------------ segments
    @cached_property
    def segments(self) -> SegmentCatalog:
        from crm.segments.service import SegmentCatalog
        from crm.segments.store import ModelStore

        return SegmentCatalog(
            self.segment_store,
            self.rule_membership,
            self.bus,
            ModelStore(self.settings.platform.lake_bucket),
            self.profile_service,
            self.clock,
            self.ids,
        )

    @cached_property
    def segment_watchdog(self) -> RunWatchdog:
        from crm.segments.runs import RunWatchdog

        return RunWatchdog(self.segment_store, self.clock)

    @cached_property
    def segment_recompute(self) -> SegmentRecompute:
        # Imported here: it needs numpy and scipy, which only the segment functions carry.
        from crm.queue import Queue
        from crm.segments.recompute import SegmentRecompute
        from crm.segments.store import ModelStore

        return SegmentRecompute(
            profiles=self.profile_service,
            membership=self.rule_membership,
            segments=self.segment_store,
            models=ModelStore(self.settings.platform.lake_bucket),
            queue=Queue(self.settings.segments.segment_shards_queue_url),
            lake=self.lake,
            index=self.blind_index,
            clock=self.clock,
            ids=self.ids,
        )

    # ---- campaigns: S (segment sends, coupons, conversions, the report)
    @cached_property
    def send_store(self) -> SendStore:
        from crm.campaigns.send_store import SendStore

        return SendStore(self.settings.campaigns.campaigns_table)

    @cached_property
    def coupons(self) -> Coupons:
        """The CouponIssuer dispatch renders codes with, and the coupon API."""
        from crm.campaigns.coupons import Coupons

        return Coupons(self.send_store, self.clock)

    def _dispatch(self) -> DispatchService:
        """The dispatcher, built when first called: the API, which lists and previews sends
        and reads reports, never builds it unless it dispatches."""
        return self.campaign_dispatch

    @cached_property
    def audience_screen(self) -> AudienceScreen:
        """Who a send would reach, decided as dispatch decides (for the send's preview and
        its holdout's share of the global control group)."""
        from crm.campaigns.sends import PolicyScreen

        return PolicyScreen(
            self.profile_service.load,
            lambda: self.campaign_dispatch.policy(),
            self.dispatch_store.caps,
        )

    @cached_property
    def sends(self) -> Sends:
        from crm.campaigns.sends import Sends
        from crm.config import env
        from crm.queue import Queue

        return Sends(
            self.send_store,
            self.segments,
            self.coupons,
            dispatcher=self._dispatch,
            screen=lambda: self.audience_screen,
            timers=lambda: self.timers,
            queue=lambda: Queue(env("SEND_SHARDS_QUEUE_URL")),
            clock=self.clock,
            ids=self.ids,
            template_of=self.campaign_templates.load,
            facts=self.facts,  # analytics
            concurrency=lambda channel: (
                self.campaign_dispatch.policy().channel(channel).max_concurrency
            ),
        )

    @cached_property
    def conversions(self) -> Conversions:
        from crm.campaigns.conversions import Conversions

        return Conversions(self.send_store, self.coupons, self._dispatch, facts=self.facts)

    @cached_property
    def campaign_reports(self) -> Reports:
        from crm.campaigns.reports import Reports

        return Reports(self.send_store, self._dispatch)

    @cached_property
    def send_parts(self) -> SendParts:
        from crm.campaigns.send_routes import SendParts

        return SendParts(self.sends, self.coupons, self.campaign_reports)

    # ---- tickets
    @cached_property
    def ticket_classifier(self) -> Classifier:
        # The trained zh+en classifier (character n-grams, weights shipped in the layer and
        # applied in pure Python: docs/tickets.md), loaded when a ticket is first opened.
        from crm.tickets import TextClassifier

        return TextClassifier.shipped()

    @cached_property
    def tickets(self) -> TicketService:
        from crm.tickets.service import TicketService
        from crm.tickets.store import TicketStore

        return TicketService(
            TicketStore(self.settings.tickets.tickets_table),
            self.profile_service,
            self.ticket_classifier,
            self.timers,
            self.bus,
            self.clock,
            self.ids,
            self.sleep,
            self.classification_corrections,
            facts=self.facts,  # analytics
            pii_reads=self.pii_reads,  # privacy: staff reads of message text audited
        )

    # ---- campaigns: J (journeys)
    @cached_property
    def journey_store(self) -> JourneyStore:
        from crm.campaigns.journey_store import JourneyStore

        return JourneyStore(self.settings.campaigns.campaigns_table)

    @cached_property
    def journeys(self) -> JourneyCatalog:
        from crm.auth import Caller
        from crm.campaigns.journeys import JourneyCatalog
        from crm.campaigns.templates import StoredTemplate
        from crm.errors import NotFound

        def template_of(caller: Caller, template_id: str) -> StoredTemplate | None:
            try:
                return self.campaign_templates.get(caller, template_id)
            except NotFound:
                return None

        return JourneyCatalog(self.journey_store, self.clock, self.ids, template_of)

    @cached_property
    def journey_dispatcher(self) -> Dispatcher:
        # Part D's dispatcher: every journey send goes through the contact-pressure policy.
        return self.campaign_dispatch

    @cached_property
    def journey_profile_actions(self) -> ProfileActions:
        from crm.auth import Caller, Role
        from crm.profiles.change_models import PointsChange, TagChange, TagInput

        # The journeys act as a system caller through profiles' own use cases: the same
        # checks, ledger and events as a marketer's change.
        system = Caller(subject="journeys", roles=frozenset({Role.ADMIN}), system=True)
        profiles = self.profiles

        class Actions:
            def add_tag(self, customer_id: str, tag: str) -> None:
                profiles.edits.change_tags(system, customer_id, TagChange(add=[TagInput(name=tag)]))

            def add_points(self, customer_id: str, points: int, txn_id: str, reason: str) -> None:
                change = PointsChange(txn_id=txn_id, kind="earn", points=points, reason=reason)
                profiles.points.change_points(system, customer_id, change)

        return Actions()

    @cached_property
    def journey_engine(self) -> JourneyEngine:
        from crm.campaigns.journey_engine import JourneyEngine

        return JourneyEngine(
            self.journey_store,
            self.profile_service,
            self.journey_dispatcher,
            self.timers,
            self.journey_profile_actions,
            self.clock,
            # The shop's zone (contact policy) for customers without one of their own.
            shop_zone=lambda: self.campaign_dispatch.policy().time_zone,
        )

    @cached_property
    def journey_daily(self) -> DailyTriggers:
        from crm.campaigns.journey_engine import DailyTriggers
        from crm.queue import Queue

        queue = Queue(self.settings.campaigns.journey_daily_queue_url)
        return DailyTriggers(self.journey_engine, self.profile_service, queue, self.clock)

    # ---- end campaigns: J
    # ---- campaigns: D (dispatch, the contact-pressure policy, templates, outbox)
    @cached_property
    def dispatch_store(self) -> DispatchStore:
        from crm.campaigns.dispatch_store import DispatchStore

        return DispatchStore(self.settings.campaigns.campaigns_table)

    @cached_property
    def campaign_templates(self) -> Templates:
        from crm.campaigns.templates import Templates

        return Templates(self.dispatch_store, self.clock)

    @cached_property
    def campaign_dispatch(self) -> DispatchService:
        """The Dispatcher journeys and sends call in-process (crm.campaigns.Dispatcher)."""
        from crm.campaigns.dispatch_service import DispatchService, recommendations_from
        from crm.campaigns.providers import configured_providers

        return DispatchService(
            self.dispatch_store,
            self.profile_service,
            self.campaign_templates,
            configured_providers(self.dispatch_store, self.clock),
            self.timers,
            self.clock,
            self.ids,
            coupons=self.coupons,  # campaigns: S
            recommender=recommendations_from(lambda: self.segments),
            unsubscribe_token=lambda customer_id, purpose: self.blind_index().token(
                "unsubscribe", f"{customer_id}:{purpose}"
            )[:32],
            sleep=self.sleep,
            facts=self.facts,  # analytics
        )

    # ---- end campaigns: D
    # ---- tickets: after-sales
    @cached_property
    def aftersales_store(self) -> AfterSalesStore:
        from crm.tickets.aftersales_store import AfterSalesStore

        return AfterSalesStore(self.settings.tickets.tickets_table)

    @cached_property
    def aftersales(self) -> AfterSales:
        from crm.tickets import AfterSales, instant_refund_limit

        return AfterSales(
            self.aftersales_store,
            # Case notes are sealed under the customer's own data key (crypto-shredding).
            lambda customer_id: self.profile_service.sealing_cipher(customer_id)[1],
            self.bus,
            self.clock,
            self.ids,
            instant_refund_limit=instant_refund_limit(),
            timers=self.timers,
            orders=self.profile_service,
            pii_reads=self.pii_reads,  # privacy: staff reads of notes and reasons audited
        )

    @cached_property
    def product_feedback(self) -> ProductFeedbackBook:
        from crm.tickets import ProductFeedbackBook

        return ProductFeedbackBook(self.aftersales_store, self.clock)

    @cached_property
    def classification_corrections(self) -> Corrections:
        from crm.tickets import Corrections

        return Corrections(self.aftersales_store, self.clock, self.ids)

    # ---- privacy
    @cached_property
    def privacy_store(self) -> PrivacyStore:
        from crm.privacy.store import PrivacyStore

        return PrivacyStore(self.settings.privacy.privacy_table)

    @cached_property
    def privacy_files(self) -> PrivacyFiles:
        from crm.privacy.store import PrivacyFiles

        config = self.settings.privacy
        return PrivacyFiles(config.exports_bucket, config.audit_archive_bucket)

    @cached_property
    def privacy_audit(self) -> AuditLog:
        from crm.privacy import AuditLog

        return AuditLog(self.privacy_store, self.privacy_files, self.clock)

    @cached_property
    def erasure_replay(self) -> ErasureReplay:
        """Erasures completed since a restore point, run again (docs/operations.md)."""
        from crm.privacy.registry import collect_subject
        from crm.privacy.replay import ErasureReplay

        return ErasureReplay(
            self.privacy_files,
            self.privacy_store,
            lambda: self.personal_data_stores,
            lambda customer_id: collect_subject(self, customer_id),
            lambda customer_id: self.blind_index().pseudonym(customer_id),
            self.privacy_audit,
        )

    @cached_property
    def personal_data_stores(self) -> tuple[PersonalDataStore, ...]:
        from crm.privacy.registry import personal_data_stores

        return personal_data_stores(self)

    def collect_subject(self, customer_id: str) -> DataSubject:
        from crm.privacy.registry import collect_subject

        return collect_subject(self, customer_id)

    @cached_property
    def privacy_requests(self) -> PrivacyRequests:
        from crm.config import data_region
        from crm.privacy import PrivacyRequests
        from crm.privacy.profile_actions import ProfilesActions
        from crm.queue import Queue

        config = self.settings.privacy
        return PrivacyRequests(
            self.privacy_store,
            self.privacy_audit,
            lambda: self.personal_data_stores,
            self.collect_subject,
            ProfilesActions(self.profiles),
            Queue(config.privacy_queue_url),
            self.timers,
            self.bus,
            config.policy,
            data_region,
            self.clock,
            self.ids,
        )

    @cached_property
    def privacy_executor(self) -> PrivacyExecutor:
        from crm.privacy import PrivacyExecutor
        from crm.privacy.profile_actions import ProfilesActions
        from crm.queue import Queue

        config = self.settings.privacy
        return PrivacyExecutor(
            self.privacy_store,
            self.privacy_files,
            self.privacy_audit,
            lambda: self.personal_data_stores,
            ProfilesActions(self.profiles),
            Queue(config.privacy_queue_url),
            self.timers,
            self.bus,
            config.policy,
            self.clock,
        )

    @cached_property
    def privacy_parts(self) -> PrivacyParts:
        from crm.privacy.routes import PrivacyParts

        return PrivacyParts(self.privacy_requests, self.privacy_executor, self.privacy_audit)

    @cached_property
    def pii_reads(self) -> PiiReads:
        """Staff's unmasked reads of PII, queued for the privacy audit trail (one message a
        read; the PrivacyAuditFunction appends them in batches: crm.privacy.reads)."""
        from crm.audit import PROFILE_VIEW, NoPiiReads

        # A root built for one family's tests (no privacy resources in its environment)
        # records nothing; every stack of template.yaml has them.
        if "AUDIT_QUEUE_URL" not in os.environ:
            return NoPiiReads()
        crm = self

        class Recorder:
            # Built at the first unmasked read, not with the views: the event folder and
            # most requests read nothing unmasked and need not load the privacy family.
            def unmasked_read(
                self, actor: str, customer_id: str, fields: Sequence[str], why: str = PROFILE_VIEW
            ) -> None:
                crm.queued_pii_reads.unmasked_read(actor, customer_id, fields, why)

        return Recorder()

    @cached_property
    def queued_pii_reads(self) -> PiiReads:
        from crm.privacy.reads import QueuedPiiReads
        from crm.queue import Queue

        return QueuedPiiReads(Queue(self.settings.privacy.audit_queue_url), self.clock, self.ids)

    @cached_property
    def audit_reads(self) -> AuditReadsConsumer:
        from crm.privacy.reads import AuditReadsConsumer

        return AuditReadsConsumer(self.privacy_audit)

    # ---- end privacy
    # ---- analytics
    @cached_property
    def analytics(self) -> Analytics:
        from crm.analytics import Analytics, ResultCache

        config = self.settings.analytics

        def engine() -> Engine:
            # Built on the first metric computed (not served from the cache): the embedded
            # engine loads DuckDB and pyarrow, which the API in AWS does not carry.
            return self.analytics_engine

        return Analytics(
            engine,
            ResultCache(self.lake),
            self.clock,
            config.fresh_minutes,
            campaign_names=self.campaign_names.names,
        )

    @cached_property
    def campaign_names(self) -> CampaignNames:
        from crm.campaigns.names import CampaignNames

        return CampaignNames(self.send_store, self.journey_store)

    @cached_property
    def analytics_engine(self) -> Engine:
        config = self.settings.analytics
        if config.engine == "athena":
            from crm.analytics import AthenaQueries

            return AthenaQueries(config.workgroup, config.database)
        from crm.analytics.engine import EmbeddedEngine, LakeTables

        return EmbeddedEngine(LakeTables(self.lake))

    @cached_property
    def lake_compaction(self) -> Compaction:
        from crm.analytics.compaction import Compaction

        return Compaction(self.lake)

    # ---- end analytics
    def prime(
        self, *services: str, parts: Sequence[str] = ("profiles", "segments", "tickets")
    ) -> Crm:
        """Build what a first request would (the named parts of the root, clients) without
        calling AWS, for a SnapStart snapshot (crm.snapstart)."""
        for part in parts:
            getattr(self, part)
        for service in services:
            aws.client_for(service)
        return self


_root: Crm | None = None


def root() -> Crm:
    """This process's root, built from the environment template.yaml sets."""
    global _root
    if _root is None:
        _root = Crm(Settings.from_env())
    return _root


def reset(replacement: Crm | None = None) -> None:
    """Forget the root and the AWS clients, as a fresh Lambda container would (tests, the
    emulator after its endpoint changes); or install a root built by a test."""
    global _root
    aws.reset_clients()
    _root = replacement


class _RulesOnFirstUse:
    """The rule segments as profiles sees them (`RuleSegments`), built when a write first
    evaluates or announces: a request that writes no profile (a read, an event batch queued)
    never loads the segments' store and records."""

    def __init__(self, build: Callable[[], RuleMembership]) -> None:
        self._build = build

    def evaluate(self, record: ProfileRecord, now: datetime) -> list[str]:
        return self._build().evaluate(record, now)

    def announce(self, shifts: Sequence[SegmentShift]) -> None:
        self._build().announce(shifts)
