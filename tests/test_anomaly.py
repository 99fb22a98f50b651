"""Usage anomaly model (issue 5): behaviour on small synthetic series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alerts.anomaly import AnomalyParams, score_series, score_series_zscore
from alerts.anomaly.core import OUTPUT_COLUMNS

DAYS = pd.date_range("2025-01-06", periods=120, freq="D")  # starts on a Monday
WEEK = np.array([1.0, 1.05, 1.0, 0.95, 1.0, 0.35, 0.25])


def _series(cid: str, level: float, seed: int, growth: float = 0.004, sigma: float = 0.08):
    rng = np.random.default_rng(seed)
    t = np.arange(len(DAYS))
    q = level * WEEK[DAYS.weekday] * np.exp(growth * t) * np.exp(rng.normal(0, sigma, len(t)))
    return pd.DataFrame(
        {"customer_id": cid, "meter_code": "api_calls", "window_start": DAYS, "quantity": q}
    )


def _population(n: int = 30, **kw) -> list[pd.DataFrame]:
    return [_series(f"bg{i}", 2000 * (i + 1), 100 + i, **kw) for i in range(n)]


@pytest.fixture(scope="module")
def scored():
    spike = _series("spiky", 10_000, 1)
    spike.loc[100, "quantity"] *= 10  # 2025-04-16, a Wednesday
    drop = _series("stopped", 10_000, 2)
    drop.loc[90, "quantity"] = 0.0
    frame = pd.concat([spike, drop, *_population()], ignore_index=True)
    return score_series(frame, "day", AnomalyParams())


def test_output_schema(scored):
    assert list(scored.columns) == OUTPUT_COLUMNS
    assert len(scored) == 32 * len(DAYS)
    assert set(scored["severity"].dropna()) <= {"info", "warning", "critical"}
    assert set(scored["kind"].dropna()) <= {"spike", "drop", "level_shift"}


def test_x10_spike_flagged_with_explanation_and_range(scored):
    row = scored[(scored.customer_id == "spiky") & (scored.window_start == DAYS[100])].iloc[0]
    assert row.is_anomaly and row.alert
    assert row.kind == "spike" and row.severity in ("warning", "critical")
    assert row.lower <= row.expected <= row.upper < row.observed
    ratio = row.observed / row.expected
    assert 7 < ratio < 14
    assert row.explanation.startswith("Wednesday's ")
    factor = f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"
    assert f"{factor} the usual Wednesday of ~" in row.explanation
    assert "api_calls" in row.explanation


def test_drop_to_zero_flagged(scored):
    row = scored[(scored.customer_id == "stopped") & (scored.window_start == DAYS[90])].iloc[0]
    assert row.is_anomaly and row.alert
    assert row.kind == "drop" and row.severity == "critical"
    assert row.observed == 0 < row.lower < row.expected < row.upper
    assert row.explanation.startswith("Sunday had no api_calls, against the usual Sunday of ~")


def test_anomaly_does_not_poison_baseline(scored):
    spiky = scored[scored.customer_id == "spiky"].set_index("window_start")
    # one week later, same weekday: expected is not dragged up by the x10 day
    assert spiky.loc[DAYS[107], "expected"] < 2 * spiky.loc[DAYS[93], "expected"]
    assert not spiky["is_anomaly"].drop(index=DAYS[100]).any()


def test_seasonal_growing_series_no_false_alert(scored):
    bg = scored[scored.customer_id.str.startswith("bg")]
    assert not bg["is_anomaly"].any()


def test_tiny_volumes_never_alert():
    tiny = _series("tiny", 3, 5, sigma=0.5)
    tiny["quantity"] = np.round(tiny["quantity"])
    tiny.loc[100, "quantity"] = 60  # x20, but tiny
    tiny.loc[[90, 91, 92], "quantity"] = 0
    out = score_series(pd.concat([tiny, *_population(10)], ignore_index=True), "day")
    assert not out.loc[out.customer_id == "tiny", "is_anomaly"].any()


def test_cooldown_one_incident_one_alert():
    s = _series("storm", 10_000, 3)
    s.loc[[100, 101, 102], "quantity"] *= 20  # a three-day incident
    s.loc[[103], "quantity"] = 0.0
    out = score_series(pd.concat([s, *_population(10)], ignore_index=True), "day")
    one = out[out.customer_id == "storm"]
    assert one["is_anomaly"].sum() >= 3
    assert one["alert"].sum() == 1
    assert one.loc[one["alert"], "window_start"].iloc[0] == DAYS[100]


def test_level_shift_detected_and_rebaselined():
    s = _series("shift", 10_000, 4)
    s.loc[80:, "quantity"] *= 4
    out = score_series(pd.concat([s, *_population(10)], ignore_index=True), "day")
    one = out[out.customer_id == "shift"].reset_index(drop=True)
    assert one.loc[80:83, "is_anomaly"].any()
    assert "level_shift" in set(one["kind"].dropna())
    # after the shift the baseline follows the new level: nothing fires at the end
    assert not one.loc[110:, "is_anomaly"].any()


def test_cold_start_flagged_and_conservative():
    young = _series("young", 10_000, 6).iloc[-10:].copy()
    young.iloc[8, young.columns.get_loc("quantity")] *= 3  # x3 is not enough when cold
    out = score_series(pd.concat([young, *_population(10)], ignore_index=True), "day")
    one = out[out.customer_id == "young"]
    assert len(one) == 10 and one["cold_start"].all()
    assert not one["is_anomaly"].any()
    old = out[out.customer_id == "bg0"]
    assert old["cold_start"].sum() == 14


def test_baseline_detector_interface(scored):
    spike = _series("spiky", 10_000, 1)
    spike.loc[100, "quantity"] *= 10
    out = score_series_zscore(pd.concat([spike, *_population(5)], ignore_index=True), "day")
    assert list(out.columns) == OUTPUT_COLUMNS
    row = out[(out.customer_id == "spiky") & (out.window_start == DAYS[100])].iloc[0]
    assert row.is_anomaly and row.kind == "spike"


def test_missing_buckets_zero_filled():
    s = _series("gappy", 10_000, 7).drop(index=[90])  # no row = no usage
    out = score_series(pd.concat([s, *_population(10)], ignore_index=True), "day")
    row = out[(out.customer_id == "gappy") & (out.window_start == DAYS[90])].iloc[0]
    assert row.observed == 0 and row.is_anomaly


def test_hourly_spike_detected():
    hours = pd.date_range("2025-01-06", periods=35 * 24, freq="h")
    diurnal = 0.3 + np.exp(-0.5 * ((hours.hour - 14) / 4.0) ** 2)
    frames = []
    for i in range(8):
        rng = np.random.default_rng(i)
        q = 400 * (i + 1) * diurnal * np.exp(rng.normal(0, 0.08, len(hours)))
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": f"h{i}",
                    "meter_code": "api_calls",
                    "window_start": hours,
                    "quantity": q,
                }
            )
        )
    frames[0].loc[800:802, "quantity"] *= 50
    out = score_series(pd.concat(frames, ignore_index=True), "hour")
    alerts = out[out.alert]
    assert list(zip(alerts.customer_id, alerts.window_start, strict=True)) == [("h0", hours[800])]
    day = hours[800].day_name()
    assert alerts.explanation.iloc[0].startswith(f"{day} 08:00's "), alerts.explanation.iloc[0]
    assert "the usual 08:00 hour of ~" in alerts.explanation.iloc[0]


def test_deterministic():
    frame = pd.concat(_population(8), ignore_index=True)
    frame.loc[100, "quantity"] *= 10
    a = score_series(frame, "day")
    b = score_series(frame, "day")
    pd.testing.assert_frame_equal(a, b)


HOURS = pd.date_range("2025-01-06", periods=35 * 24, freq="h")  # five weeks from a Monday


def _business_hourly(cid: str, per_hour: float, seed: int, weekend: float = 0.2) -> pd.DataFrame:
    """Diurnal profile, quiet nights and quiet weekends, log-normal noise."""
    rng = np.random.default_rng(seed)
    diurnal = 0.25 + np.exp(-0.5 * ((HOURS.hour - 14) / 4.0) ** 2)
    wk = np.where(HOURS.weekday >= 5, weekend, 1.0)
    q = rng.poisson(per_hour * diurnal * wk * np.exp(rng.normal(0, 0.15, len(HOURS))))
    return pd.DataFrame(
        {"customer_id": cid, "meter_code": "api_calls", "window_start": HOURS, "quantity": q}
    )


def test_hourly_nights_and_weekends_are_not_drops_before_seasonal_history():
    # the first three weeks have no same-hour-of-week history: the same hour of day and the
    # conservative all-references rule must not read quiet nights and weekends as drops
    frames = [_business_hourly(f"b{i}", 300 * (i + 1), 10 + i) for i in range(12)]
    out = score_series(pd.concat(frames, ignore_index=True), "hour")
    assert not out["is_anomaly"].any(), out.loc[out["is_anomaly"], "explanation"].tolist()
    # after three weeks the expected value is seasonal: a Saturday 14:00 expects weekend volume
    sat = out[(out.customer_id == "b0") & (out.window_start == pd.Timestamp("2025-02-01 14:00"))]
    weekday = out[
        (out.customer_id == "b0") & (out.window_start == pd.Timestamp("2025-01-31 14:00"))
    ]
    assert sat["expected"].iloc[0] < 0.4 * weekday["expected"].iloc[0]


def test_hourly_outage_is_not_a_level_shift_and_later_spike_is_seasonal():
    frames = [_business_hourly(f"b{i}", 300 * (i + 1), 30 + i) for i in range(8)]
    day = 23 * 24  # Wednesday of the fourth week
    frames[0].loc[day : day + 23, "quantity"] = 0  # a day-long outage
    frames[0].loc[day + 3 * 24 + 14, "quantity"] *= 10  # x10 at 14:00 three days later
    out = score_series(pd.concat(frames, ignore_index=True), "hour")
    one = out[out.customer_id == "b0"].reset_index(drop=True)
    alerts = one[one.alert]
    assert alerts["window_start"].tolist() == [HOURS[day], HOURS[day + 3 * 24 + 14]]
    assert alerts["kind"].tolist() == ["drop", "spike"]
    assert "level_shift" not in set(one["kind"].dropna())
    assert "the usual 14:00 hour of ~" in alerts["explanation"].iloc[1]
    assert not out.loc[out.customer_id != "b0", "is_anomaly"].any()


def test_intermittent_zeros_are_not_drops():
    rng = np.random.default_rng(11)
    s = _series("bursty", 5_000, 12, sigma=0.1)
    off = rng.random(len(s)) < 0.3  # no usage on ~30 % of days
    s.loc[off, "quantity"] = 0.0
    out = score_series(pd.concat([s, *_population(10)], ignore_index=True), "day")
    one = out[out.customer_id == "bursty"]
    zeros = one[one.observed == 0]
    # once zeros are usual (two in the last 28 days) no zero is a drop
    assert zeros.iloc[2:]["is_anomaly"].sum() == 0
    assert one["alert"].sum() <= 2


def test_hourly_ratio_guard_is_stricter():
    p = AnomalyParams()
    assert p.bucket_min_ratio("day") == p.min_ratio == 2.25
    assert p.bucket_min_ratio("hour") == p.min_ratio_hourly == 4.0
    assert p.bucket_min_volume("hour") == pytest.approx(100 / 24)
