"""Journey definitions: create, read, edit (a new version when the journey is live), delete,
activate and pause, each checked for sense before it is stored; the shipped examples; the
report. Instances are the engine's (`journey_engine`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from crm.auth import Caller, Permission
from crm.campaigns.journey_examples import examples
from crm.campaigns.journey_models import (
    EXIT_EVENT_TYPES,
    EXTRA_EVENT_TYPES,
    SERVICE_TRIGGERS,
    ConditionStep,
    EventTrigger,
    InactivityTrigger,
    InstanceList,
    JourneyDefinition,
    JourneyDeleted,
    JourneyExamples,
    JourneyList,
    JourneyReport,
    SendStep,
    SplitStep,
    Step,
    StepCounts,
    StoredJourney,
    UpdateProfileStep,
    WaitStep,
)
from crm.campaigns.journey_store import JourneyStore
from crm.campaigns.templates import StoredTemplate, send_problem
from crm.clock import Clock, IdFactory
from crm.errors import Conflict, FieldProblem, InvalidInput, NotFound
from crm.profiles import EVENT_TYPES

KNOWN_EVENT_TYPES = frozenset(EVENT_TYPES) | EXTRA_EVENT_TYPES


def successors(step: Step) -> list[str]:
    """The steps a step may go to (None, the end, left out)."""
    if isinstance(step, ConditionStep):
        targets = [step.then, step.otherwise]
    elif isinstance(step, SplitStep):
        targets = [b.next for b in step.branches]
    elif isinstance(step, WaitStep):
        targets = [step.next, step.timeout_next]
    else:
        targets = [step.next]
    return [t for t in targets if t is not None]


def _event_problem(where: str, event_type: str) -> FieldProblem | None:
    if event_type in KNOWN_EVENT_TYPES:
        return None
    known = ", ".join(sorted(KNOWN_EVENT_TYPES))
    return FieldProblem(where, f"unknown event type {event_type} (known: {known})")


def problems_of(definition: JourneyDefinition) -> list[FieldProblem]:
    """What makes no sense in a definition the models accepted one field at a time."""
    problems: list[FieldProblem] = []
    steps: dict[str, Step] = {}
    for n, step in enumerate(definition.steps):
        if step.id in steps:
            problems.append(FieldProblem(f"steps.{n}.id", f"step id {step.id} is used twice"))
        steps[step.id] = step
    if definition.start not in steps:
        problems.append(FieldProblem("start", f"no step {definition.start}"))
    for n, step in enumerate(definition.steps):
        for target in successors(step):
            if target not in steps:
                problems.append(
                    FieldProblem(f"steps.{n}", f"{step.id} goes to unknown step {target}")
                )
        if isinstance(step, WaitStep) and step.until_event is not None:
            if step.seconds is None:
                problems.append(FieldProblem(f"steps.{n}.seconds", "a wait for an event needs "
                                             "a timeout in seconds"))  # fmt: skip
            problem = _event_problem(f"steps.{n}.until_event", step.until_event)
            if problem:
                problems.append(problem)
        if isinstance(step, SplitStep):
            names = [b.name for b in step.branches]
            if len(set(names)) != len(names):
                problems.append(FieldProblem(f"steps.{n}.branches", "branch names must differ"))
    trigger = definition.trigger
    for n, step in enumerate(definition.steps):
        if (
            isinstance(step, SendStep)
            and step.purpose == "service"
            and trigger.type not in SERVICE_TRIGGERS
        ):
            problems.append(FieldProblem(
                f"steps.{n}.purpose",
                "service messages only in journeys triggered by after_sales or ticket_escalated",
            ))  # fmt: skip
    if isinstance(trigger, EventTrigger | InactivityTrigger):
        problem = _event_problem("trigger.event_type", trigger.event_type)
        if problem:
            problems.append(problem)
    if (
        isinstance(trigger, EventTrigger)
        and trigger.first_order_only
        and trigger.event_type != "order_paid"
    ):
        problems.append(FieldProblem("trigger.first_order_only", "only for order_paid"))
    for n, outcome in enumerate([*definition.exit, definition.goal]):
        where = "goal" if n == len(definition.exit) else f"exit.{n}"
        if where != "goal" and outcome is not None and outcome.event in EXIT_EVENT_TYPES:
            continue
        if outcome is not None and outcome.event is not None:
            problem = _event_problem(f"{where}.event", outcome.event)
            if problem:
                problems.append(problem)
    if not problems:
        problems += _graph_problems(definition.start, steps)
    return problems


def _graph_problems(start: str, steps: dict[str, Step]) -> list[FieldProblem]:
    """Every step reachable from the start, and no loop that never waits (it would send or
    update without end within one run)."""
    problems: list[FieldProblem] = []
    reached: set[str] = set()
    todo = [start]
    while todo:
        step_id = todo.pop()
        if step_id not in reached:
            reached.add(step_id)
            todo += successors(steps[step_id])
    for step_id in steps:
        if step_id not in reached:
            problems.append(FieldProblem("steps", f"step {step_id} is never reached from start"))
    # A loop is fine only through a wait: drop the edges out of waits and look for a cycle.
    state: dict[str, int] = {}

    def visit(step_id: str, path: list[str]) -> list[str] | None:
        state[step_id] = 1
        step = steps[step_id]
        if not isinstance(step, WaitStep):
            for target in successors(step):
                if state.get(target) == 1:
                    return [*path, step_id, target]
                if target not in state:
                    found = visit(target, [*path, step_id])
                    if found:
                        return found
        state[step_id] = 2
        return None

    for step_id in steps:
        if step_id not in state:
            cycle = visit(step_id, [])
            if cycle:
                loop = " -> ".join(cycle[cycle.index(cycle[-1]) :])
                problems.append(FieldProblem("steps", f"a loop without a wait: {loop}"))
                break
    return problems


def check(definition: JourneyDefinition) -> None:
    problems = problems_of(definition)
    if problems:
        raise InvalidInput("the journey makes no sense: " + problems[0].message, problems)


def template_ids(definition: JourneyDefinition) -> Iterable[str]:
    return [s.template_id for s in definition.steps if isinstance(s, SendStep)]


# A stored template, or None when there is no such template (dispatch's templates,
# connected by the composition root).
TemplateLookup = Callable[[Caller, str], "StoredTemplate | None"]


def template_problems(
    caller: Caller, definition: JourneyDefinition, template_of: TemplateLookup
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    for n, step in enumerate(definition.steps):
        if not isinstance(step, SendStep):
            continue
        coupon = step.coupon_offer_id is not None
        why = send_problem(step.template_id, template_of(caller, step.template_id),
                           step.channel, coupon)  # fmt: skip
        if why is not None:
            problems.append(FieldProblem(f"steps.{n}.template_id", why))
    return problems


class JourneyCatalog:
    def __init__(
        self,
        store: JourneyStore,
        clock: Clock,
        ids: IdFactory,
        template_of: TemplateLookup | None = None,
    ) -> None:
        self._store, self._clock, self._ids = store, clock, ids
        self._template_of = template_of

    def _check(self, caller: Caller, definition: JourneyDefinition) -> None:
        check(definition)
        if self._template_of is not None:
            problems = template_problems(caller, definition, self._template_of)
            if problems:
                raise InvalidInput("the journey names templates it cannot send: "
                                   + problems[0].message, problems)  # fmt: skip

    def _get(self, journey_id: str) -> StoredJourney:
        journey = self._store.head(journey_id)
        if journey is None:
            raise NotFound(f"no journey {journey_id}")
        return journey

    def create(self, caller: Caller, definition: JourneyDefinition) -> StoredJourney:
        caller.require(Permission.EDIT_CAMPAIGNS)
        self._check(caller, definition)
        now = self._clock()
        journey = StoredJourney(
            journey_id=self._ids(), version=1, status="draft", definition=definition,
            created_at=now, updated_at=now, created_by=caller.subject,
        )  # fmt: skip
        self._store.save_journey(journey, None, new_version=True)
        return journey

    def journeys(self, caller: Caller) -> JourneyList:
        caller.require(Permission.READ_CAMPAIGNS)
        heads = sorted(self._store.heads(), key=lambda j: (j.created_at, j.journey_id))
        return JourneyList(journeys=heads)

    def journey(self, caller: Caller, journey_id: str) -> StoredJourney:
        caller.require(Permission.READ_CAMPAIGNS)
        return self._get(journey_id)

    def replace(
        self, caller: Caller, journey_id: str, definition: JourneyDefinition
    ) -> StoredJourney:
        """A draft is rewritten in place; a journey that ran (active or paused) gets a new
        version, and the instances running keep the version they entered."""
        caller.require(Permission.EDIT_CAMPAIGNS)
        self._check(caller, definition)
        current = self._get(journey_id)
        new_version = current.status != "draft"
        updated = current.model_copy(
            update={
                "definition": definition,
                "version": current.version + 1 if new_version else current.version,
                "updated_at": max(self._clock(), current.updated_at),
            }
        )
        self._save(updated, current, new_version)
        return updated

    def _save(self, updated: StoredJourney, current: StoredJourney, new_version: bool) -> None:
        if not self._store.save_journey(updated, current, new_version):
            raise Conflict(f"journey {current.journey_id} changed meanwhile; read it again")

    def set_status(self, caller: Caller, journey_id: str, active: bool) -> StoredJourney:
        caller.require(Permission.EDIT_CAMPAIGNS)
        current = self._get(journey_id)
        status = "active" if active else "paused"
        if current.status == status:
            return current
        if not active and current.status == "draft":
            raise Conflict(f"journey {journey_id} is a draft: activate it first")
        updated = current.model_copy(update={"status": status, "updated_at": self._clock()})
        self._save(updated, current, new_version=False)
        return updated

    def delete(self, caller: Caller, journey_id: str) -> JourneyDeleted:
        caller.require(Permission.EDIT_CAMPAIGNS)
        current = self._get(journey_id)
        if current.status == "active":
            raise Conflict(f"journey {journey_id} is active: pause it before deleting it")
        if not self._store.delete_journey(current):
            raise Conflict(f"journey {journey_id} changed meanwhile; read it again")
        return JourneyDeleted(journey_id=journey_id)

    def examples(self, caller: Caller) -> JourneyExamples:
        caller.require(Permission.READ_CAMPAIGNS)
        return JourneyExamples(examples=list(examples()))

    def report(self, caller: Caller, journey_id: str) -> JourneyReport:
        caller.require(Permission.READ_CAMPAIGNS)
        journey = self._get(journey_id)
        counts = self._store.counts(journey_id)
        steps: dict[str, dict[str, int]] = {}
        reasons: dict[str, dict[str, dict[str, int]]] = {}  # step -> status -> reason -> n
        variants: dict[str, dict[str, int]] = {}
        for name, value in counts.items():
            kind, _, rest = name.partition("#")
            key, _, counter = rest.rpartition("#")
            status, dot, reason = counter.partition(".")
            if kind == "step" and dot:  # a send's outcome by reason: 'suppressed.no_address'
                reasons.setdefault(key, {}).setdefault(status, {})[reason] = value
            elif kind == "step":
                steps.setdefault(key, {})[counter] = value
            elif kind == "variant":
                variants.setdefault(key, {})[counter] = value
        order = [s.id for s in journey.definition.steps]
        ordered = sorted(steps, key=lambda s: order.index(s) if s in order else len(order))
        return JourneyReport(
            journey_id=journey_id,
            entered=counts.get("entered", 0),
            completed=counts.get("completed", 0),
            exited_goal=counts.get("goal", 0),
            exited_exit=counts.get("exited", 0),
            steps={
                s: StepCounts(
                    **steps[s],
                    suppressed_by=reasons.get(s, {}).get("suppressed", {}),
                    capped_by=reasons.get(s, {}).get("capped", {}),
                )
                for s in ordered
            },
            variants=variants,
        )

    def customer_instances(self, caller: Caller, journey_id: str, customer_id: str) -> InstanceList:
        caller.require(Permission.READ_CAMPAIGNS)
        self._get(journey_id)
        return InstanceList(instances=self._store.instances(journey_id, customer_id))


__all__ = ["JourneyCatalog", "UpdateProfileStep", "check", "problems_of"]
