"""Segments family: RFM, churn probability, lifetime value, tiers, rule segments,
recommendations. The numerical models need numpy and scipy from the analytics layer."""
