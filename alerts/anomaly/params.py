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
    min_ratio         smallest observed/expected factor (either direction) that can alert.
    threshold         model probability at or above which a point outside the band is anomalous.
    band_z            half-width of the expected range, in robust sigmas on the log scale.
    exclude_z         |robust z| at or above which a point is kept out of the baseline history.
    shift_z           |robust z| that, held for ``shift_buckets`` consecutive buckets in the same
                      direction, confirms a level shift (the baseline then re-anchors).
    cooldown_buckets  anomalies within this many buckets of the previous anomaly belong to the
                      same incident and do not raise another alert.
    cold_start_days   less history than this: conservative fixed thresholds, ``cold_start=True``.
    cold_ratio        fixed factor used during cold start (spike >= x, or a drop to ~zero).
    """

    min_volume: float = 100.0
    min_ratio: float = 2.5
    threshold: float = 0.9
    band_z: float = 4.0
    exclude_z: float = 3.0
    shift_z: float = 3.0
    shift_buckets: int = 3
    cooldown_buckets: int = 3
    cold_start_days: int = 14
    cold_ratio: float = 10.0
    min_sigma: float = 0.05
    default_sigma: float = 0.35
    max_daily_trend: float = 0.05
    training_rows: int = 50_000
    random_state: int = 0

    def bucket_min_volume(self, granularity: Granularity) -> float:
        return self.min_volume / 24.0 if granularity == "hour" else self.min_volume
