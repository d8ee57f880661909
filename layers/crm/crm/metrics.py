"""A count from inside a service, where no handler's `Metrics` object reaches: one EMF line
(Powertools' `single_metric`), in the namespace the template gives every function
(POWERTOOLS_METRICS_NAMESPACE) with the function's `service` dimension.

Reporting never fails the work it reports on; and with POWERTOOLS_METRICS_DISABLED (the local
emulator's quiet mode) nothing is printed, which `single_metric` alone does not honour."""

from __future__ import annotations

import os
from collections.abc import Mapping

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger(child=True)


def count(
    name: str,
    value: float = 1,
    dimensions: Mapping[str, str] | None = None,
    namespace: str | None = None,
) -> None:
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in ("1", "true"):
        return
    try:
        with single_metric(
            name=name, unit=MetricUnit.Count, value=value, namespace=namespace
        ) as metric:
            for key, dimension in (dimensions or {}).items():
                metric.add_dimension(name=key, value=dimension)
    except Exception:  # no namespace (a script), a bad dimension: the work goes on
        logger.warning("metric could not be emitted", extra={"metric": name})
