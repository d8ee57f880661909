"""A count from inside a service, where no handler's `Metrics` object reaches: one EMF line
(Powertools' `EphemeralMetrics`), in the namespace the template gives every function
(POWERTOOLS_METRICS_NAMESPACE) with the function's `service` dimension.

Reporting never fails the work it reports on; and with POWERTOOLS_METRICS_DISABLED (the local
emulator's quiet mode) nothing is printed, which Powertools alone does not honour for these."""

from __future__ import annotations

import os
from collections.abc import Mapping

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

logger = Logger(child=True)


def count(
    name: str,
    value: float = 1,
    dimensions: Mapping[str, str] | None = None,
    namespace: str | None = None,
) -> None:
    counts({name: value}, dimensions, namespace)


def counts(
    values: Mapping[str, float],
    dimensions: Mapping[str, str] | None = None,
    namespace: str | None = None,
) -> None:
    """Several counts in one EMF line, under the same dimensions (a `service` among them
    replaces the function's own)."""
    if not values or os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in ("1", "true"):
        return
    extra = dict(dimensions or {})
    try:
        # A fresh instance: nothing accumulates across invocations, and the handler's own
        # metrics keep their service.
        metrics = EphemeralMetrics(namespace=namespace, service=extra.pop("service", None))
        for name, value in values.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        for key, dimension in extra.items():
            metrics.add_dimension(name=key, value=dimension)
        metrics.flush_metrics()
    except Exception:  # no namespace (a script), a bad dimension: the work goes on
        logger.warning("metric could not be emitted", extra={"metrics": sorted(values)})
