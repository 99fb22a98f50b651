"""Usage anomaly detection (issue 5): see ``alerts.anomaly.model`` for the method."""

from alerts.anomaly.baseline import score_series_zscore
from alerts.anomaly.model import score_series
from alerts.anomaly.params import AnomalyParams

__all__ = ["AnomalyParams", "score_series", "score_series_zscore"]
