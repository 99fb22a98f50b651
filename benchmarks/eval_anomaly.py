"""Evaluation harness for the usage anomaly model (issue 5).

Command (fixed seed; about 25 s on 2 cores):

    .venv/bin/python benchmarks/eval_anomaly.py                 # 10,000 daily + 400 hourly series
    .venv/bin/python benchmarks/eval_anomaly.py --series 2000   # quicker
    .venv/bin/python benchmarks/eval_anomaly.py --demo DIR      # also the demo's labels

Daily set: ``--series`` customer-meter series of 180 days, seasonal (weekday profile), growing or
shrinking, log-normal + Poisson noise; 15 % are sparse small customers (a few units a day, below
the volume guard). Half of the series get one injected event after day 42: x3, x10 or x100 spike
(one day), drop to zero (one day), level shift (x0.3 or x3 to the end) or a retry storm (3-6 hours
at x50, i.e. a x7-x13 day). Hourly set: ``--hourly-series`` series of 56 days with a diurnal and
weekday profile and x10 one-hour spikes, retry storms (3-5 hours at x50) and day-long drops to zero.

Scoring: an *alert* (first anomaly of an incident, after the cooldown) is a true positive when it
falls in an event's window (spike / drop / storm: its buckets plus one bucket; level shift: from
its start to the end); every other alert is a false alert. Recall per injected kind counts
events with at least one alert, over events in series above the volume guard (events injected in
tiny series are listed but not expected to alert). Precision per *predicted* kind. Detection
delay = first alert - event start, in buckets. The 10,000 x 180 timing is the wall time of one
``score_series`` call on the daily set (when ``--series`` is 10,000), fit included.

Hourly recall rows carry the detection delay in hours (mean / max); the line "detected within 2
hours of start" is the share of detected hourly events alerted at most 2 hours after they began.

``--demo DIR`` reads ``DIR/anomaly_labels.csv`` (customer_id, meter_code, kind, start_utc,
end_utc, factor; ``meterworks demo`` writes it to ``$METERWORKS_HOME/demo/``) and the usage from
``marts.fct_usage_daily`` in ``--warehouse`` (default ``DIR/warehouse.duckdb``, opened read-only),
sums it over dimension values, scores it daily and prints each label (window converted to the
customer's local dates, +1 day; labels on series below the volume guard marked ``tiny``), the
recall overall and above the guard, and the alert count per meter.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.anomaly import AnomalyParams, score_series, score_series_zscore

SEED = 20260505
START = pd.Timestamp("2025-07-07")  # a Monday


def _weekday_profile(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.6:  # business usage: quiet weekends
        wk = np.ones(7) * rng.uniform(0.9, 1.1, 7)
        wk[5:] = rng.uniform(0.15, 0.6, 2)
        return wk
    return rng.uniform(0.85, 1.15, 7)


def generate_daily(n: int, days: int, seed: int):
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    dates = pd.date_range(START, periods=days, freq="D")
    wd = np.asarray(dates.weekday)
    Q = np.zeros((n, days))
    tiny = rng.random(n) < 0.15
    events = []
    kinds = ["spike_x3", "spike_x10", "spike_x100", "drop_zero", "level_shift", "retry_storm"]
    for i in range(n):
        prof = _weekday_profile(rng)[wd]
        if tiny[i]:
            lam = rng.uniform(0.3, 15.0) * prof
            Q[i] = rng.poisson(lam)
        else:
            level = 10 ** rng.uniform(2.5, 6.0)
            growth = rng.uniform(-0.002, 0.012)
            sigma = rng.uniform(0.05, 0.3)
            lam = level * prof * np.exp(growth * t) * np.exp(rng.normal(0, sigma, days))
            Q[i] = rng.poisson(lam).astype(float)
        if rng.random() < 0.5:
            kind = kinds[rng.integers(len(kinds))]
            s = int(rng.integers(42, days - 8))
            e, factor = s, None
            if kind.startswith("spike"):
                factor = float(kind.split("x")[1])
                Q[i, s] *= factor
            elif kind == "drop_zero":
                factor = 0.0
                Q[i, s] = 0.0
            elif kind == "level_shift":
                factor = float(rng.choice([0.3, 3.0]))
                Q[i, s:] *= factor
                e = days - 1
            else:
                hours = int(rng.integers(3, 7))
                factor = 1 + hours * 49 / 24
                Q[i, s] *= factor
            events.append((i, kind, s, e, factor, bool(tiny[i])))
    ids = np.array([f"cus_{i:05d}" for i in range(n)], dtype=object)
    frame = pd.DataFrame(
        {
            "customer_id": np.repeat(ids, days),
            "meter_code": "api_calls",
            "window_start": np.tile(dates.values, n),
            "quantity": Q.ravel(),
        }
    )
    ev = pd.DataFrame(events, columns=["series", "kind", "start", "end", "factor", "tiny"])
    ev["customer_id"] = ids[ev["series"]]
    return frame, ev


def generate_hourly(n: int, days: int, seed: int):
    rng = np.random.default_rng(seed)
    T = days * 24
    times = pd.date_range(START, periods=T, freq="h")
    hour, wd = np.asarray(times.hour), np.asarray(times.weekday)
    diurnal = 0.25 + np.exp(-0.5 * ((hour - 14) / 4.0) ** 2)
    Q = np.zeros((n, T))
    events = []
    kinds = ["spike_x10", "retry_storm", "drop_zero"]
    for i in range(n):
        per_hour = 10 ** rng.uniform(3.0, 6.0) / 24
        prof = _weekday_profile(rng)[wd] * diurnal / diurnal.mean()
        lam = per_hour * prof * np.exp(rng.normal(0, rng.uniform(0.05, 0.25), T))
        Q[i] = rng.poisson(lam).astype(float)
        if rng.random() < 0.5:
            kind = kinds[rng.integers(len(kinds))]
            day = int(rng.integers(21, days - 2))
            if kind == "drop_zero":
                s, e, factor = day * 24, day * 24 + 23, 0.0
                Q[i, s : e + 1] = 0.0
            elif kind == "spike_x10":
                s = day * 24 + int(rng.integers(0, 24))
                e, factor = s, 10.0
                Q[i, s] *= factor
            else:
                s = day * 24 + int(rng.integers(0, 21))
                e, factor = s + int(rng.integers(3, 6)) - 1, 50.0
                Q[i, s : e + 1] *= factor
            events.append((i, kind, s, e, factor, False))
    ids = np.array([f"cus_h{i:04d}" for i in range(n)], dtype=object)
    frame = pd.DataFrame(
        {
            "customer_id": np.repeat(ids, T),
            "meter_code": "api_calls",
            "window_start": np.tile(times.values, n),
            "quantity": Q.ravel(),
        }
    )
    ev = pd.DataFrame(events, columns=["series", "kind", "start", "end", "factor", "tiny"])
    ev["customer_id"] = ids[ev["series"]]
    return frame, ev


def evaluate(out: pd.DataFrame, ev: pd.DataFrame, t0: pd.Timestamp, step: pd.Timedelta):
    """Match alerts to events; return (per-kind recall table, per-predicted-kind table, totals)."""
    alerts = out.loc[out["alert"], ["customer_id", "window_start", "kind"]].copy()
    alerts["b"] = ((alerts["window_start"] - t0) // step).astype(int)
    win = ev.copy()
    win["lo"] = win["start"]
    win["hi"] = np.where(win["kind"] == "level_shift", win["end"], win["end"] + 1)
    m = alerts.reset_index().merge(win, on="customer_id", how="left", suffixes=("", "_ev"))
    hit = (m["b"] >= m["lo"]) & (m["b"] <= m["hi"])
    tp_alerts = set(m.loc[hit, "index"])
    alerts["tp"] = alerts.index.isin(tp_alerts)
    first = m[hit].groupby(["customer_id", "start"])["b"].min()
    ev = ev.set_index(["customer_id", "start"])
    ev["first_alert"] = first.reindex(ev.index)
    ev = ev.reset_index()
    ev["detected"] = ev["first_alert"].notna()
    ev["delay"] = ev["first_alert"] - ev["start"]
    rec = (
        ev[~ev["tiny"]]
        .groupby("kind")
        .agg(
            events=("detected", "size"),
            recall=("detected", "mean"),
            mean_delay=("delay", "mean"),
            max_delay=("delay", "max"),
        )
    )
    tiny_ev = int(ev["tiny"].sum())
    tiny_hit = int(ev.loc[ev["tiny"], "detected"].sum())
    prec = alerts.groupby("kind").agg(alerts=("tp", "size"), precision=("tp", "mean"))
    n_days = len(out) / (24 if step == pd.Timedelta(hours=1) else 1)
    fp = int((~alerts["tp"]).sum())
    totals = {
        "alerts": len(alerts),
        "precision": float(alerts["tp"].mean()) if len(alerts) else float("nan"),
        "false_alerts": fp,
        "false_per_1000_customer_days": 1000 * fp / n_days,
        "tiny_events": tiny_ev,
        "tiny_events_alerted": tiny_hit,
    }
    return rec, prec, totals, ev


def report(name: str, rec, prec, totals, unit: str) -> None:
    print(f"\n--- {name} ---")
    print(f"recall per injected kind (delay in {unit}):")
    print(rec.round(3).to_string())
    print("precision per predicted kind:")
    print(prec.round(3).to_string())
    print(
        f"overall: alerts={totals['alerts']} precision={totals['precision']:.3f} "
        f"false alerts={totals['false_alerts']} "
        f"({totals['false_per_1000_customer_days']:.3f} per 1,000 customer-meter-days); "
        f"events in tiny series: {totals['tiny_events']} (alerted: {totals['tiny_events_alerted']})"
    )


def run_demo(demo: Path, warehouse: Path, params: AnomalyParams) -> None:
    """Score the demo warehouse's daily usage and check the demo's injected anomaly labels.

    Usage is summed over the dimension values of each customer, meter and local usage date. A
    label's UTC window is converted to the customer's local dates (``timezone`` column of the
    mart) and one extra day is allowed after its end (a spike at 23:00 local lands on the next
    date in a neighbouring zone's books). Labels on series whose median day is below the volume
    guard are listed separately, like the synthetic tiny series.
    """
    import duckdb

    labels = pd.read_csv(demo / "anomaly_labels.csv")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        usage = con.execute(
            "select customer_id, meter_code, usage_date as window_start, "
            "sum(quantity)::double as quantity, any_value(timezone) as timezone "
            "from marts.fct_usage_daily group by all"
        ).df()
    finally:
        con.close()
    usage["window_start"] = pd.to_datetime(usage["window_start"])
    tz = usage.groupby("customer_id")["timezone"].first()
    out = score_series(usage.drop(columns="timezone"), "day", params)
    alerts = out[out["alert"]]

    def local_date(ts: str, cid: str) -> pd.Timestamp:
        t = pd.Timestamp(ts)
        t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
        return t.tz_convert(tz.get(cid, "UTC")).tz_localize(None).floor("D")

    cids = labels["customer_id"]
    labels["lo"] = [local_date(a, c) for a, c in zip(labels["start_utc"], cids, strict=True)]
    # end_utc is exclusive: its local date, plus one day of tolerance
    labels["hi"] = [local_date(b, c) for b, c in zip(labels["end_utc"], cids, strict=True)]
    labels["hi"] = labels["hi"] + pd.Timedelta(days=1)
    med = usage.groupby(["customer_id", "meter_code"])["quantity"].median()
    key = pd.MultiIndex.from_frame(labels[["customer_id", "meter_code"]])
    labels["median_day"] = med.reindex(key).to_numpy()
    labels["tiny"] = labels["median_day"] < params.bucket_min_volume("day")
    m = alerts.merge(labels.reset_index(), on=["customer_id", "meter_code"], how="inner")
    m = m[(m["window_start"] >= m["lo"]) & (m["window_start"] <= m["hi"])]
    labels["detected"] = labels.index.isin(m["index"])
    first = m.groupby("index")["window_start"].min()
    labels["delay_days"] = (first.reindex(labels.index) - labels["lo"]).dt.days
    print("\n--- demo labels (daily, label windows in the customer's local dates, +1 day) ---")
    cols = ["customer_id", "meter_code", "kind", "factor", "lo", "median_day", "tiny"]
    print(labels[[*cols, "detected", "delay_days"]].to_string(index=False))
    big = labels[~labels["tiny"]]
    print(
        f"recall: {labels['detected'].mean():.3f} of {len(labels)} labels; "
        f"{big['detected'].mean() if len(big) else float('nan'):.3f} of {len(big)} labels on "
        f"series above the volume guard (median day >= {params.min_volume:g})"
    )
    matched = alerts.set_index(["customer_id", "meter_code", "window_start"]).index.isin(
        m.set_index(["customer_id", "meter_code", "window_start"]).index
    )
    n_days = len(out)
    print(
        f"alerts={len(alerts)} matched to a label={int(matched.sum())} "
        f"({1000 * len(alerts) / n_days:.2f} alerts per 1,000 customer-meter-days); per meter:"
    )
    per_meter = out.groupby("meter_code").agg(days=("alert", "size"), alerts=("alert", "sum"))
    print(per_meter.to_string())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--hourly-series", type=int, default=400)
    ap.add_argument("--hourly-days", type=int, default=56)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--demo", type=Path)
    ap.add_argument("--warehouse", type=Path)
    args = ap.parse_args()
    params = AnomalyParams()

    frame, ev = generate_daily(args.series, args.days, args.seed)
    print(f"daily set: {args.series} series x {args.days} days, {len(ev)} injected events")
    for name, fn in [("model", score_series), ("rolling z-score baseline", score_series_zscore)]:
        t = time.perf_counter()
        out = fn(frame, "day", params)
        secs = time.perf_counter() - t
        rec, prec, totals, _ = evaluate(out, ev, START, pd.Timedelta(days=1))
        report(f"daily, {name}", rec, prec, totals, "days")
        print(f"scoring time: {secs:.1f} s for {args.series} series x {args.days} days")

    if args.hourly_series:
        hframe, hev = generate_hourly(args.hourly_series, args.hourly_days, args.seed + 1)
        print(
            f"\nhourly set: {args.hourly_series} series x {args.hourly_days} days, {len(hev)} events"
        )
        for name, fn in [
            ("model", score_series),
            ("rolling z-score baseline", score_series_zscore),
        ]:
            t = time.perf_counter()
            out = fn(hframe, "hour", params)
            secs = time.perf_counter() - t
            rec, prec, totals, hev2 = evaluate(out, hev, START, pd.Timedelta(hours=1))
            report(f"hourly, {name}", rec, prec, totals, "hours")
            det = hev2[hev2["detected"]]
            within = float((det["delay"] <= 2).mean()) if len(det) else float("nan")
            print(f"detected within 2 hours of start: {within:.3f} of detected events")
            print(f"scoring time: {secs:.1f} s")

    if args.demo:
        run_demo(args.demo, args.warehouse or args.demo / "warehouse.duckdb", params)


if __name__ == "__main__":
    main()
