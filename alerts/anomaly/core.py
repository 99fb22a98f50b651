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
    ref_lo: np.ndarray  # conservative mode: lowest of the available references (log1p)
    ref_hi: np.ndarray  # conservative mode: highest of the available references (log1p)
    zero_normal: np.ndarray  # bool: zero buckets are usual for the series (intermittent usage)

    @property
    def z(self) -> np.ndarray:
        return (self.L - self.exp_log) / self.sigma


def robust_baseline(grid: Grid, params: AnomalyParams) -> Baseline:
    """Sequential robust baseline that keeps flagged points out of its own history.

    For bucket t of every series: expected = median of the same weekday (hourly: same hour of the
    week) over the previous K periods (6 weeks; hourly 4 weeks), each lagged value moved forward
    by the series' log-scale trend (the difference of the medians of two trailing half-windows of
    whole weeks: daily 2-4 weeks each, hourly 1 week). With fewer than 3 such values it falls
    back to (hourly) the median of the same hour of day over the previous 7 days, then to the
    trailing one-period median (7 days / 24 hours). Sigma = RMS of the past clean residuals
    (which are already cut at |z| < exclude_z, so it is robust), shrunk towards default_sigma
    while few are known and floored by the Poisson noise of the expected count. Points with
    |z| >= exclude_z are not written to the clean history. ``shift_buckets`` consecutive
    same-direction |z| >= shift_z confirm a level shift: the clean history before the run is
    dropped so the baseline re-anchors on the new level, and the series is scored conservatively
    again until it has cold_start_days of new history.

    Conservative buckets (cold start, re-learning, or no same-season history yet) are compared
    with every reference available -- the fallback expected value and the median of the one or
    two same-season lags that already exist -- and count as outliers (kept out of the history,
    and flagged by the model) only when they are cold_ratio beyond all of them: a quiet Saturday
    night is not a drop just because the fallback does not know about weekends yet.

    Zero buckets are *usual* (``zero_normal``) when the raw history already holds at least
    ``zero_normal_count`` zeros in the comparison window (daily: the previous 28 days; hourly:
    the same hour of day over the previous 14 days): intermittent usage then keeps its zeros in
    the history and a zero is not a drop.
    """
    X = grid.X
    n, T = X.shape
    hourly = grid.granularity == "hour"
    P = 168 if hourly else 7  # season period in buckets (hour of week / weekday)
    K = 4 if hourly else 6  # number of same-season lags
    S = 24 if hourly else 7  # short window
    W = 168 if hourly else 28  # trend half window (longest)
    W_min = 168 if hourly else 14  # shortest half window used
    M = 336 if hourly else 56  # residual window for sigma
    per_day = 24 if hourly else 1
    cold_buckets = params.cold_start_days * per_day
    max_slope = params.max_daily_trend / per_day
    shift_buckets = params.shift_hours if hourly else params.shift_buckets

    L = np.log1p(np.clip(X, 0, None))
    C = L.copy()  # clean history
    R = np.full((n, T), np.nan)  # clean residuals
    exp_log = np.full((n, T), np.nan)
    season_log = np.full((n, T), np.nan)
    short_log = np.full((n, T), np.nan)
    ref_lo = np.full((n, T), np.nan)
    ref_hi = np.full((n, T), np.nan)
    sigma = np.full((n, T), params.default_sigma)
    slope_m = np.zeros((n, T))
    seasonal = np.zeros((n, T), bool)
    conservative = np.ones((n, T), bool)
    shift = np.zeros((n, T), bool)
    shift_run = np.zeros((n, T), np.int64)
    is_zero = X == 0  # NaN (before a series starts) is not zero
    zero_normal = np.zeros((n, T), bool)
    if hourly:  # zeros at the same hour of day over the previous 14 days
        zc = np.zeros((n, T), np.int64)
        for k in range(1, 15):
            zc[:, 24 * k :] += is_zero[:, : T - 24 * k]
    else:  # zeros over the previous 28 days
        cs = np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(is_zero, axis=1)], axis=1)
        lo = np.clip(np.arange(T) - 28, 0, None)
        zc = cs[:, np.arange(T)] - cs[:, lo]
    zero_normal = zc >= params.zero_normal_count
    first = grid.first
    anchor = first.copy()
    run_len = np.zeros(n, np.int64)
    run_sign = np.zeros(n, np.int8)
    ks = np.arange(1, K + 1)
    kd = np.arange(1, 8)  # same hour of day, previous 7 days (hourly fallback)
    rows = np.arange(n)
    log_cold = np.log(params.cold_ratio)
    nan_n = np.full(n, np.nan)

    for t in range(1, T):
        live = first < t  # at least one earlier bucket
        if not live.any():
            continue
        w = min(W, (t // 2) // P * P)  # whole weeks, so both halves hold the same weekdays
        if w >= W_min:
            a = _nanmedian(C[:, t - w : t])
            b = _nanmedian(C[:, t - 2 * w : t - w])
            slope = np.nan_to_num((a - b) / w, nan=0.0)
            slope = np.clip(slope, -max_slope, max_slope)
        else:
            slope = np.zeros(n)
        idx = t - P * ks
        keep = idx >= 0
        if keep.any():
            lagged = C[:, idx[keep]]
            n_seas = np.count_nonzero(~np.isnan(lagged), axis=1)
            seas_raw = _nanmedian(lagged)
            seas_adj = _nanmedian(lagged + slope[:, None] * (P * ks[keep])[None, :])
        else:
            n_seas = np.zeros(n, np.int64)
            seas_raw = seas_adj = nan_n
        use_seas = n_seas >= 3
        if hourly and t >= 24:
            idx_d = t - 24 * kd
            keep_d = idx_d >= 0
            lag_d = C[:, idx_d[keep_d]]
            n_day = np.count_nonzero(~np.isnan(lag_d), axis=1)
            day_med = _nanmedian(lag_d + slope[:, None] * (24 * kd[keep_d])[None, :])
            use_day = n_day >= 3
        else:
            use_day = np.zeros(n, bool)
            day_med = nan_n
        short = C[:, max(0, t - S) : t]
        n_short = np.count_nonzero(~np.isnan(short), axis=1)
        short_med = _nanmedian(short)
        fallback = np.where(n_short >= 3, short_med + slope * (min(S, t) + 1) / 2, np.nan)
        fallback = np.where(use_day, day_med, fallback)
        # very young series: median of whatever exists
        e = np.where(use_seas, seas_adj, np.where(np.isnan(fallback), short_med, fallback))
        e = np.clip(e, 0.0, None)  # the trend cannot take a log1p value below zero
        # conservative references: the fallback and the one or two same-season lags that exist
        part = np.where(n_seas >= 1, seas_adj, np.nan)
        lo_ref = np.fmin(np.fmin(e, part), short_med)
        hi_ref = np.fmax(np.fmax(e, part), short_med)
        Rw = R[:, max(0, t - M) : t]
        n_r = np.count_nonzero(~np.isnan(Rw), axis=1)
        # RMS of the clean residuals (already cut at |z| < exclude_z, so it is robust; x1.03
        # undoes most of that truncation)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            s = 1.03 * np.sqrt(np.nanmean(Rw**2, axis=1))
        # shrink towards default_sigma while few residuals are known
        n0 = 5.0
        s = np.sqrt((n_r * np.nan_to_num(s) ** 2 + n0 * params.default_sigma**2) / (n_r + n0))
        lam = np.expm1(np.nan_to_num(e, nan=0.0))
        s = np.maximum.reduce([s, np.full(n, params.min_sigma), np.sqrt(1.0 / (lam + 1.0))])

        # conservative: cold start / re-learning, no same-season history to compare with, or
        # intermittent usage (zeros are usual: the log-scale noise model does not hold)
        cons = ((t - anchor) < cold_buckets) | ~use_seas | zero_normal[:, t]
        obs = L[:, t]
        dev = obs - e
        z = dev / s
        finite = live & ~np.isnan(e)
        usual_zero = zero_normal[:, t] & is_zero[:, t]
        exp_log[:, t] = np.where(live, e, np.nan)
        season_log[:, t] = np.where(use_seas, seas_raw, e)
        short_log[:, t] = np.where(n_short >= 1, short_med, e)
        ref_lo[:, t] = np.where(live, lo_ref, np.nan)
        ref_hi[:, t] = np.where(live, hi_ref, np.nan)
        sigma[:, t] = s
        slope_m[:, t] = slope
        seasonal[:, t] = use_seas
        conservative[:, t] = cons

        cold_out = (obs - hi_ref >= log_cold) | (lo_ref - obs >= log_cold)
        bad = np.where(cons, cold_out, np.abs(z) >= params.exclude_z)
        bad &= finite & ~usual_zero
        R[:, t] = np.where(finite & ~bad & ~cons & ~usual_zero, dev, np.nan)
        # usual zeros stay out of the history too: the reference is the level of active buckets
        C[bad | usual_zero, t] = np.nan

        strong = finite & (np.abs(z) >= params.shift_z) & ~usual_zero
        sgn = np.where(strong, np.sign(z), 0).astype(np.int8)
        run_len = np.where((sgn != 0) & (sgn == run_sign), run_len + 1, (sgn != 0).astype(np.int64))
        run_sign = sgn
        confirmed = (run_len >= shift_buckets) & ~cons
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
        ref_lo,
        ref_hi,
        zero_normal & valid,
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
    min_ratio = params.bucket_min_ratio(grid.granularity)
    ratio_ok = np.where(up, obs >= min_ratio * exp_, obs * min_ratio <= exp_)
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
