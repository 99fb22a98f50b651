"""Parameters of the usage anomaly model (the catalog will carry per-meter overrides)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Granularity = Literal["day", "hour"]


@dataclass(frozen=True)
class AnomalyParams:
    """Tunable knobs. Volumes are per *day*; hourly scoring divides them by 24.

    min_volume        a series whose expected bucket volume is below this never alerts, and a spike
                      must exceed the expected value by at least this much ("tiny customers").
    min_ratio         smallest observed/expected factor (either direction) that can alert (daily).
    min_ratio_hourly  the same for hourly buckets: stricter, since a day has 24 of them and the
                      false-alert budget is per customer-day.
    threshold         model probability at or above which a point outside the band is anomalous.
    band_z            half-width of the expected range, in robust sigmas on the log scale.
    exclude_z         |robust z| at or above which a point is kept out of the baseline history.
    shift_z           |robust z| that, held for ``shift_buckets`` consecutive buckets (hourly:
                      ``shift_hours``) in the same direction, confirms a level shift (the
                      baseline then re-anchors). An hourly shift needs two days so that a
                      day-long outage or a retry storm is not mistaken for a new level.
    cooldown_buckets  anomalies within this many buckets of the previous anomaly belong to the
                      same incident and do not raise another alert.
    cold_start_days   less history than this: conservative fixed thresholds, ``cold_start=True``.
    cold_ratio        fixed factor used in conservative mode (cold start, re-learning, no
                      same-season history yet, intermittent series): a spike >= x the highest
                      reference, or a drop to <= 1/x of the lowest.
    min_sigma         floor of the robust sigma (log scale).
    default_sigma     prior sigma while few residuals are known.
    max_daily_trend   clip of the trend (log units per day).
    training_rows     negatives sampled to fit the scorer.
    zero_normal_count zeros already seen in the comparison window (daily: 28 days; hourly: the
                      same hour on the previous 14 days) from which a zero is usual: no drop, and
                      the series is scored conservatively (intermittent usage).

    Defaults were tuned with ``benchmarks/eval_anomaly.py`` (three seeds).
    """

    min_volume: float = 100.0
    min_ratio: float = 2.25
    min_ratio_hourly: float = 4.0
    threshold: float = 0.9
    band_z: float = 3.5
    exclude_z: float = 3.0
    shift_z: float = 3.0
    shift_buckets: int = 3
    shift_hours: int = 48
    cooldown_buckets: int = 3
    cold_start_days: int = 14
    cold_ratio: float = 10.0
    min_sigma: float = 0.05
    default_sigma: float = 0.35
    max_daily_trend: float = 0.05
    training_rows: int = 50_000
    zero_normal_count: int = 2
    random_state: int = 0

    def bucket_min_volume(self, granularity: Granularity) -> float:
        return self.min_volume / 24.0 if granularity == "hour" else self.min_volume

    def bucket_min_ratio(self, granularity: Granularity) -> float:
        return self.min_ratio_hourly if granularity == "hour" else self.min_ratio
