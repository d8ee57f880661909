"""Stored shapes of the segments family: the fitted model a run uses, shard tasks, runs,
membership changes and stored definitions this version cannot read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field


@dataclass(frozen=True)
class MembershipChange:
    segment: str
    customer_id: str
    entered: bool


@dataclass(frozen=True)
class UnreadableDefinition:
    """A stored rule segment this version cannot read (written by an older version, or by
    hand): its members stay as they are until it is redefined or deleted."""

    name: str
    paused: bool
    problems: tuple[str, ...]  # where and what is wrong, never the values


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    status: str
    total_segments: int
    shards_done: int
    started_at: datetime
    finished_at: datetime | None
    sizes: dict[str, int]


class RfmThresholds(BaseModel):
    """Quintile cut points: 4 ascending values each."""

    recency_days: list[float]
    frequency: list[float]
    monetary: list[float]


class BgNbdParams(BaseModel):
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    sample_size: int


class GammaGammaParams(BaseModel):
    p: float
    q: float
    v: float
    sample_size: int


class Association(BaseModel):
    product: str
    support: float
    confidence: float
    lift: float


class SegmentModel(BaseModel):
    """What the planner fits and stores (versioned by run) for the workers to score with."""

    run_id: str
    fitted_at: datetime
    sample_size: int
    rfm: RfmThresholds
    bgnbd: BgNbdParams | None = None
    gamma_gamma: GammaGammaParams | None = None
    p_alive_threshold: float = 0.3
    associations: dict[str, list[Association]] = Field(default_factory=dict)
    product_categories: dict[str, str] = Field(default_factory=dict)
    popular_products: list[str] = Field(default_factory=list)


class ShardTask(BaseModel):
    run_id: str
    segment: int = Field(ge=0)
    total_segments: int = Field(ge=1, le=1_000_000)
