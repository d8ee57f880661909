"""What the segment planner fits and stores (versioned by run) for the workers to score with.

Apart from `crm.segments.records`: the rule-segment check every profile write runs
(`crm.segments.membership`, through `SegmentStore`) reads none of these, and they are
pydantic classes a cold start would otherwise define for nothing.
"""

from datetime import datetime

from pydantic import Field

from crm.models import Record


class RfmThresholds(Record):
    """Quintile cut points: 4 ascending values each."""

    recency_days: list[float]
    frequency: list[float]
    monetary: list[float]


class BgNbdParams(Record):
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    sample_size: int


class GammaGammaParams(Record):
    p: float
    q: float
    v: float
    sample_size: int


class Association(Record):
    product: str
    support: float
    confidence: float
    lift: float


class SegmentModel(Record):
    """What the planner fits and stores (versioned by run) for the workers to score with."""

    run_id: str
    fitted_at: datetime
    sample_size: int
    rfm: RfmThresholds
    bgnbd: BgNbdParams | None = None
    gamma_gamma: GammaGammaParams | None = None
    p_alive_threshold: float = 0.3
    associations: dict[str, list[Association]] = Field(default={})
    product_categories: dict[str, str] = Field(default={})
    popular_products: list[str] = Field(default=[])
