"""The analytics family: dashboard metrics defined once in SQL over the pseudonymous lake, run by
DuckDB locally and by Athena in AWS (docs/analytics.md).

What other modules may use; the engines (DuckDB, pyarrow) are imported only where a metric is
computed or the lake compacted, never at import of this package.
"""

from crm.analytics.models import MetricList, MetricResult
from crm.analytics.routes import analytics_routes
from crm.analytics.service import Analytics, ResultCache
from crm.analytics.settings import AnalyticsSettings
from crm.analytics.store import AthenaQueries

__all__ = [
    "Analytics",
    "AnalyticsSettings",
    "AthenaQueries",
    "MetricList",
    "MetricResult",
    "ResultCache",
    "analytics_routes",
]
