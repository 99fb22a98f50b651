"""Comparison detector: a plain rolling z-score on the raw series.

Same interface and output as ``score_series``; it shares the grid, the volume/ratio guards, the
cooldown and the explanations, so a harness comparison isolates the scoring method. Expected =
trailing mean of the previous ``window`` buckets, sigma = their standard deviation, anomalous when
|z| >= z. No weekday awareness, no trend, no robustness to past anomalies, no cold-start rule
beyond needing ``min_periods`` buckets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alerts.anomaly.core import assemble, to_grid
from alerts.anomaly.params import AnomalyParams, Granularity


def score_series_zscore(
    frame: pd.DataFrame,
    granularity: Granularity,
    params: AnomalyParams | None = None,
    window: int | None = None,
    z: float = 3.0,
    min_periods: int = 7,
) -> pd.DataFrame:
    params = params or AnomalyParams()
    grid = to_grid(frame, granularity)
    X = grid.X
    window = window or (28 if granularity == "day" else 168)
    df = pd.DataFrame(X.T)
    roll = df.rolling(window, min_periods=min_periods)
    mean = roll.mean().shift(1).to_numpy().T
    std = roll.std().shift(1).to_numpy().T
    std = np.maximum(np.nan_to_num(std, nan=0.0), 1e-9)
    obs = np.nan_to_num(X, nan=0.0)
    zz = (obs - mean) / std
    lower = np.clip(mean - z * std, 0, None)
    upper = mean + z * std
    score = np.nan_to_num(np.abs(zz), nan=0.0)
    candidate = np.nan_to_num(np.abs(zz), nan=0.0) >= z
    per_day = 24 if granularity == "hour" else 1
    cold = ~np.isnan(X) & (
        (np.arange(X.shape[1])[None, :] - grid.first[:, None]) < params.cold_start_days * per_day
    )
    none = np.zeros(X.shape, bool)
    return assemble(
        grid, params, mean, lower, upper, score, candidate, none, np.zeros(X.shape, int), none, cold
    )
