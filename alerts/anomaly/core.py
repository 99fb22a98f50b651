"""Shared machinery: series grid, robust weekday-aware baseline, guards, cooldown, output.

Everything works on an ``N x T`` matrix (one row per customer-meter series, one column per bucket
of a global grid) so that the only Python loop is over time steps, each step vectorised across all
series.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alerts.anomaly.params import AnomalyParams, Granularity

OUTPUT_COLUMNS = [
    "customer_id",
    "meter_code",
    "window_start",
    "granularity",
    "observed",
    "expected",
    "lower",
    "upper",
    "score",
    "is_anomaly",
    "alert",
    "severity",
    "kind",
    "explanation",
    "cold_start",
]

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@dataclass
class Grid:
    customer_id: np.ndarray  # (N,) object
    meter_code: np.ndarray  # (N,) object
    t0: pd.Timestamp
    step: pd.Timedelta
    X: np.ndarray  # (N, T) float, NaN before a series' first bucket, zero-filled after
    first: np.ndarray  # (N,) index of the first bucket of each series
    granularity: Granularity

    @property
    def times(self) -> pd.DatetimeIndex:
        return pd.date_range(self.t0, periods=self.X.shape[1], freq=self.step)


def to_grid(frame: pd.DataFrame, granularity: Granularity) -> Grid:
    """Pivot long usage rows to a zero-filled matrix.

    A series starts at its first row and runs to the last bucket present in the frame; missing
    buckets in between and after are zero (no rows = no usage). Duplicate buckets are summed.
    """
    if granularity not in ("day", "hour"):
        raise ValueError(f"granularity must be 'day' or 'hour', not {granularity!r}")
    step = pd.Timedelta(days=1) if granularity == "day" else pd.Timedelta(hours=1)
    ws = pd.to_datetime(frame["window_start"])
    if getattr(ws.dt, "tz", None) is not None:
        raise ValueError("window_start must be naive local time")
    ws = ws.dt.floor("D" if granularity == "day" else "h")
    if len(frame) == 0:
        empty = np.empty(0, dtype=object)
        return Grid(
            empty, empty, pd.Timestamp(0), step, np.zeros((0, 0)), np.zeros(0, int), granularity
        )
    keys = pd.MultiIndex.from_arrays(
        [frame["customer_id"].to_numpy(), frame["meter_code"].to_numpy()]
    )
    codes, uniques = pd.factorize(keys, sort=True)
    t0 = ws.min()
    t_idx = ((ws - t0) // step).to_numpy().astype(np.int64)
    n, t = len(uniques), int(t_idx.max()) + 1
    X = np.zeros((n, t))
    np.add.at(X, (codes, t_idx), frame["quantity"].to_numpy(dtype=float))
    first = np.full(n, t, dtype=np.int64)
    np.minimum.at(first, codes, t_idx)
    X[np.arange(t)[None, :] < first[:, None]] = np.nan
    cust = np.asarray(uniques.get_level_values(0), dtype=object)
    meter = np.asarray(uniques.get_level_values(1), dtype=object)
    return Grid(cust, meter, t0, step, X, first, granularity)


def _nanmedian(a: np.ndarray) -> np.ndarray:
    """Row-wise median ignoring NaN (NaN for all-NaN rows); sort-based, fast for short windows."""
    if a.shape[1] == 0:
        return np.full(a.shape[0], np.nan)
    s = np.sort(a, axis=1)  # NaN sorts last
    n = np.count_nonzero(~np.isnan(a), axis=1)
    lo = np.clip((n - 1) // 2, 0, None)
    hi = np.clip(n // 2, 0, a.shape[1] - 1)
    rows = np.arange(a.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = 0.5 * (s[rows, lo] + s[rows, hi])
    return np.where(n > 0, med, np.nan)


@dataclass
class Baseline:
    """Per-cell outputs of the robust pass (all ``N x T``)."""

    L: np.ndarray  # log1p(observed)
    exp_log: np.ndarray  # expected, log1p scale (NaN: nothing to compare with)
    season_log: np.ndarray  # same-weekday (same-hour) median, not detrended
    short_log: np.ndarray  # trailing one-period median (7 days / 24 hours)
    sigma: np.ndarray  # robust sigma on the log scale
    slope: np.ndarray  # trend, log units per bucket
    seasonal: np.ndarray  # bool: expected came from same-season history
    conservative: np.ndarray  # bool: cold start or re-learning after a level shift
    cold_start: np.ndarray  # bool: < cold_start_days of history since the series began
    shift: np.ndarray  # bool: a level shift was confirmed at this bucket
    shift_run: np.ndarray  # int: length of the run that confirmed it

    @property
    def z(self) -> np.ndarray:
        return (self.L - self.exp_log) / self.sigma


def robust_baseline(grid: Grid, params: AnomalyParams) -> Baseline:
    """Sequential robust baseline that keeps flagged points out of its own history.

    For bucket t of every series: expected = median of the same weekday (hourly: same hour of the
    week) over the previous K periods (6 weeks; hourly 4 weeks), each lagged value moved forward by the series' log-scale trend (the
    difference of two trailing half-window medians); with fewer than 3 such values it falls back
    to the trailing one-period median. Sigma = 1.4826 * MAD of past clean residuals, floored by the
    Poisson noise of the expected count. Points with |z| >= exclude_z are not written to the clean
    history. ``shift_buckets`` consecutive same-direction |z| >= shift_z confirm a level shift: the
    clean history before the run is dropped so the baseline re-anchors on the new level, and the
    series is scored conservatively again until it has cold_start_days of new history.
    """
    X = grid.X
    n, T = X.shape
    hourly = grid.granularity == "hour"
    P = 168 if hourly else 7  # season period in buckets (hour of week / weekday)
    K = 4 if hourly else 6  # number of same-season lags
    S = 24 if hourly else 7  # short window
    W = 168 if hourly else 14  # trend half window
    M = 336 if hourly else 56  # residual window for MAD
    per_day = 24 if hourly else 1
    cold_buckets = params.cold_start_days * per_day
    max_slope = params.max_daily_trend / per_day

    L = np.log1p(np.clip(X, 0, None))
    C = L.copy()  # clean history
    R = np.full((n, T), np.nan)  # clean residuals
    exp_log = np.full((n, T), np.nan)
    season_log = np.full((n, T), np.nan)
    short_log = np.full((n, T), np.nan)
    sigma = np.full((n, T), params.default_sigma)
    slope_m = np.zeros((n, T))
    seasonal = np.zeros((n, T), bool)
    conservative = np.ones((n, T), bool)
    shift = np.zeros((n, T), bool)
    shift_run = np.zeros((n, T), np.int64)
    first = grid.first
    anchor = first.copy()
    run_len = np.zeros(n, np.int64)
    run_sign = np.zeros(n, np.int8)
    ks = np.arange(1, K + 1)
    rows = np.arange(n)
    log_cold = np.log(params.cold_ratio)

    for t in range(1, T):
        live = first < t  # at least one earlier bucket
        if not live.any():
            continue
        if t >= 2 * W:
            a = _nanmedian(C[:, t - W : t])
            b = _nanmedian(C[:, t - 2 * W : t - W])
            slope = np.nan_to_num((a - b) / W, nan=0.0)
            slope = np.clip(slope, -max_slope, max_slope)
        else:
            slope = np.zeros(n)
        idx = t - P * ks
        keep = idx >= 0
        if keep.sum() >= 3:
            lagged = C[:, idx[keep]]
            n_seas = np.count_nonzero(~np.isnan(lagged), axis=1)
            seas_raw = _nanmedian(lagged)
            seas_adj = _nanmedian(lagged + slope[:, None] * (P * ks[keep])[None, :])
        else:
            n_seas = np.zeros(n, np.int64)
            seas_raw = seas_adj = np.full(n, np.nan)
        short = C[:, max(0, t - S) : t]
        n_short = np.count_nonzero(~np.isnan(short), axis=1)
        short_med = _nanmedian(short)
        use_seas = n_seas >= 3
        fallback = np.where(n_short >= 3, short_med + slope * (min(S, t) + 1) / 2, np.nan)
        # very young series: median of whatever exists
        young = _nanmedian(C[:, max(0, t - S) : t])
        e = np.where(use_seas, seas_adj, np.where(np.isnan(fallback), young, fallback))
        Rw = R[:, max(0, t - M) : t]
        n_r = np.count_nonzero(~np.isnan(Rw), axis=1)
        s = 1.4826 * _nanmedian(np.abs(Rw))
        # shrink towards default_sigma while few residuals are known
        n0 = 5.0
        s = np.sqrt((n_r * np.nan_to_num(s) ** 2 + n0 * params.default_sigma**2) / (n_r + n0))
        lam = np.expm1(np.nan_to_num(e, nan=0.0))
        s = np.maximum.reduce([s, np.full(n, params.min_sigma), np.sqrt(1.0 / (lam + 1.0))])

        # conservative: cold start / re-learning, or no same-season history to compare with
        cons = ((t - anchor) < cold_buckets) | ~use_seas
        obs = L[:, t]
        dev = obs - e
        z = dev / s
        finite = live & ~np.isnan(e)
        exp_log[:, t] = np.where(live, e, np.nan)
        season_log[:, t] = np.where(use_seas, seas_raw, e)
        short_log[:, t] = np.where(n_short >= 1, short_med, e)
        sigma[:, t] = s
        slope_m[:, t] = slope
        seasonal[:, t] = use_seas
        conservative[:, t] = cons

        bad = np.where(cons, np.abs(dev) >= log_cold, np.abs(z) >= params.exclude_z)
        bad &= finite
        R[:, t] = np.where(finite & ~bad & ~cons, dev, np.nan)
        C[bad, t] = np.nan

        sgn = np.where(finite & (np.abs(z) >= params.shift_z), np.sign(z), 0).astype(np.int8)
        run_len = np.where((sgn != 0) & (sgn == run_sign), run_len + 1, (sgn != 0).astype(np.int64))
        run_sign = sgn
        confirmed = (run_len >= params.shift_buckets) & ~cons
        if confirmed.any():
            for r in rows[confirmed]:
                start = t - run_len[r] + 1
                shift[r, t] = True
                shift_run[r, t] = run_len[r]
                C[r, :start] = np.nan
                C[r, start : t + 1] = L[r, start : t + 1]
                R[r, : t + 1] = np.nan
                anchor[r] = start
            run_len[confirmed] = 0
            run_sign[confirmed] = 0

    valid = ~np.isnan(X)
    cold_start = valid & ((np.arange(T)[None, :] - first[:, None]) < cold_buckets)
    exp_log[~valid] = np.nan
    return Baseline(
        L,
        exp_log,
        season_log,
        short_log,
        sigma,
        slope_m,
        seasonal,
        conservative,
        cold_start,
        shift,
        shift_run,
    )


def apply_cooldown(anom: np.ndarray, cooldown: int) -> np.ndarray:
    """alert = anomaly not within ``cooldown`` buckets of the previous anomaly of the series."""
    n, T = anom.shape
    alert = np.zeros_like(anom)
    last = np.full(n, -(10**9), dtype=np.int64)
    for t in range(T):
        a = anom[:, t]
        alert[:, t] = a & (t - last > cooldown)
        last = np.where(a, t, last)
    return alert


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "?"
    if x >= 1000:
        digits = int(np.floor(np.log10(x))) - 2
        return f"{round(x, -digits):,.0f}"
    if x >= 10:
        return f"{x:,.0f}"
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _factor(r: float) -> str:
    return f"{r:,.0f}x" if r >= 10 else f"{r:.1f}x"


def explain(
    when: pd.Timestamp,
    granularity: Granularity,
    meter: str,
    observed: float,
    expected: float,
    lower: float,
    upper: float,
    kind: str,
    seasonal: bool,
    run: int,
) -> str:
    day = WEEKDAYS[when.weekday()]
    if granularity == "hour":
        label = f"{day} {when:%H}:00"
        usual = f"the usual {when:%H}:00 hour" if seasonal else "the usual hour"
    else:
        label = day
        usual = f"the usual {day}" if seasonal else "the usual day"
    rng = f"(expected {_fmt(lower)}-{_fmt(upper)})"
    base = f"{usual} of ~{_fmt(expected)}"
    if kind == "level_shift":
        unit = "hours" if granularity == "hour" else "days"
        r = (observed + 1e-9) / max(expected, 1e-9)
        rel = f"{_factor(r)}" if r >= 1 else f"1/{_factor(1 / max(r, 1e-9))[:-1]}"
        return (
            f"{meter} has run at {rel} its usual level for {run} {unit}: {label}'s "
            f"{_fmt(observed)} against {base} {rng}"
        )
    if observed <= 0:
        return f"{label} had no {meter}, against {base} {rng}"
    r = observed / max(expected, 1e-9)
    if r >= 1:
        return f"{label}'s {_fmt(observed)} {meter} are {_factor(r)} {base} {rng}"
    return f"{label}'s {_fmt(observed)} {meter} are 1/{_factor(1 / r)[:-1]} of {base} {rng}"


def assemble(
    grid: Grid,
    params: AnomalyParams,
    expected: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    score: np.ndarray,
    candidate: np.ndarray,
    shift: np.ndarray,
    shift_run: np.ndarray,
    seasonal: np.ndarray,
    cold_start: np.ndarray,
) -> pd.DataFrame:
    """Apply the volume/ratio guards and the cooldown; classify, explain, flatten to rows."""
    X = grid.X
    valid = ~np.isnan(X)
    obs = np.nan_to_num(X, nan=0.0)
    exp_ = np.clip(np.nan_to_num(expected, nan=0.0), 0, None)
    minvol = params.bucket_min_volume(grid.granularity)
    up = obs > exp_
    ratio_ok = np.where(up, obs >= params.min_ratio * exp_, obs * params.min_ratio <= exp_)
    volume_ok = (exp_ >= minvol) & (~up | (obs - exp_ >= minvol))
    # counting noise: the gap must exceed ~4 Poisson standard deviations (a zero hour at an
    # expected 5 events is not an incident)
    volume_ok &= np.abs(obs - exp_) >= 4.0 * np.sqrt(exp_) + 4.0
    anom = valid & ~np.isnan(expected) & candidate & ratio_ok & volume_ok
    alert = apply_cooldown(anom, params.cooldown_buckets)

    r = np.where(exp_ > 0, obs / np.maximum(exp_, 1e-9), np.inf)
    sev = np.full(X.shape, None, dtype=object)
    sev[anom] = "info"
    sev[anom & ((r >= 3) | (r <= 1 / 3))] = "warning"
    sev[anom & ((r >= 10) | (r <= 0.1))] = "critical"
    kind = np.full(X.shape, None, dtype=object)
    kind[anom & up] = "spike"
    kind[anom & ~up] = "drop"
    kind[anom & shift] = "level_shift"

    ii, tt = np.nonzero(valid)
    times = grid.times
    out = pd.DataFrame(
        {
            "customer_id": grid.customer_id[ii],
            "meter_code": grid.meter_code[ii],
            "window_start": times[tt],
            "granularity": grid.granularity,
            "observed": obs[ii, tt],
            "expected": expected[ii, tt],
            "lower": lower[ii, tt],
            "upper": upper[ii, tt],
            "score": score[ii, tt],
            "is_anomaly": anom[ii, tt],
            "alert": alert[ii, tt],
            "severity": sev[ii, tt],
            "kind": kind[ii, tt],
            "explanation": np.full(len(ii), None, dtype=object),
            "cold_start": cold_start[ii, tt],
        }
    )
    ai, at = np.nonzero(anom)
    if len(ai):
        texts = [
            explain(
                times[t],
                grid.granularity,
                str(grid.meter_code[i]),
                obs[i, t],
                exp_[i, t],
                lower[i, t],
                upper[i, t],
                kind[i, t],
                bool(seasonal[i, t]),
                int(shift_run[i, t]),
            )
            for i, t in zip(ai, at, strict=True)
        ]
        # nonzero() is row-major, the same order as the flattened output
        pos = np.flatnonzero(anom[valid])
        out.loc[pos, "explanation"] = texts
    return out[OUTPUT_COLUMNS]
