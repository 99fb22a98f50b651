"""Alerts: usage anomalies and quota/spend threshold crossings, with filters, and how each
alert's webhook was delivered."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import auth, data
from app.formatting import money_major, percent, period, quantity, when

auth.page_guard()
st.title("Alerts")
data.require_snapshot()

delivered = data.delivery_status_by_message()
outbox: dict[str, str] = {}
if data.has("alerts.outbox"):
    ob = data.frame("select alert_id, delivery_status from alerts.outbox")
    outbox = dict(zip(ob["alert_id"], ob["delivery_status"], strict=True))


def delivery(alert_id: object) -> str:
    """The webhook store's status when the message reached it, else the outbox's."""
    if not isinstance(alert_id, str) or not alert_id:
        return "no webhook (history)"
    return delivered.get(alert_id) or outbox.get(alert_id) or "not queued"


# -- anomalies -------------------------------------------------------------------------------
st.subheader("Usage anomalies")
if not data.has("marts.fct_usage_anomalies"):
    st.caption("The anomaly model has not run yet.")
else:
    c1, c2, c3, c4 = st.columns(4)
    severities = c1.multiselect(
        "Severity", ["critical", "warning", "info"], default=["critical", "warning"], key="an_sev"
    )
    grain = c2.selectbox("Granularity", ["day", "hour", "both"], key="an_grain")
    days = c3.number_input("Last N days", min_value=1, max_value=365, value=30, key="an_days")
    incidents_only = c4.toggle("Incidents only (first bucket)", value=True, key="an_incidents")
    who = st.text_input("Customer id contains", key="an_customer").strip()
    anomalies = data.frame(
        "select customer_id, meter_code, granularity, window_start, window_start_utc, observed, "
        "expected, severity, anomaly_kind, explanation, is_alert, alert_id "
        "from marts.fct_usage_anomalies where is_anomaly "
        "and window_start_utc >= (select max(window_start_utc) from marts.fct_usage_anomalies) "
        "  - to_days($1::integer) "
        "and list_contains($2::varchar[], severity) and ($3 = 'both' or granularity = $3) "
        "and (not $4 or is_alert) and customer_id ilike '%' || $5 || '%' "
        "order by window_start_utc desc, customer_id, meter_code",
        (int(days), severities, grain, incidents_only, who),
    )
    c1, c2, c3 = st.columns(3)
    c1.metric("Anomalies shown", f"{len(anomalies):,}")
    c2.metric("Critical", f"{int((anomalies['severity'] == 'critical').sum()):,}")
    c3.metric("Customers", f"{anomalies['customer_id'].nunique():,}")
    st.dataframe(
        pd.DataFrame(
            {
                "customer": anomalies["customer_id"],
                "meter": anomalies["meter_code"],
                "bucket": anomalies["granularity"],
                "local start": anomalies["window_start"],
                "severity": anomalies["severity"],
                "kind": anomalies["anomaly_kind"],
                "explanation": anomalies["explanation"],
                "webhook": [delivery(a) for a in anomalies["alert_id"]],
            }
        ),
        hide_index=True,
        width="stretch",
        key="alerts_anomalies",
    )

# -- threshold crossings ---------------------------------------------------------------------
st.subheader("Quota and spend thresholds")
if not data.has("marts.fct_threshold_crossings"):
    st.caption("Thresholds have not been evaluated yet.")
else:
    crossings = data.frame(
        "select * from marts.fct_threshold_crossings "
        "order by coalesce(fired_at, first_seen_at) desc, customer_id, meter_code, threshold_value"
    )
    statuses = sorted(crossings["status"].unique()) if not crossings.empty else ["fired", "passed"]
    c1, c2 = st.columns(2)
    chosen = c1.multiselect("Status", statuses, default=statuses, key="th_status")
    kinds = c2.multiselect(
        "Kind", ["percent", "spend"], default=["percent", "spend"], key="th_kind"
    )
    shown = crossings[crossings["status"].isin(chosen) & crossings["threshold_kind"].isin(kinds)]
    fired = crossings[crossings["status"] == "fired"]
    c1, c2, c3 = st.columns(3)
    c1.metric("Fired", f"{len(fired):,}")
    c2.metric("Already passed when first seen", f"{int((crossings['status'] == 'passed').sum()):,}")
    c3.metric(
        "Fired, webhook delivered",
        f"{sum(delivery(a) == 'succeeded' for a in fired['alert_id']):,}",
    )
    if shown.empty:
        st.caption("No threshold crossings match.")
    else:
        st.dataframe(
            pd.DataFrame(
                {
                    "customer": shown["customer_id"],
                    "meter": shown["meter_code"].fillna("(invoice)"),
                    "period": [period(s, e) for s, e in zip(shown["period_start"], shown["period_end"], strict=True)],
                    "threshold": [
                        f"{quantity(v)}%" if k == "percent" else money_major(v, c)
                        for v, k, c in zip(shown["threshold_value"], shown["threshold_kind"], shown["currency"], strict=True)
                    ],
                    "status": shown["status"],
                    "when": [when(f if pd.notna(f) else s) for f, s in zip(shown["fired_at"], shown["first_seen_at"], strict=True)],
                    "used at crossing": [percent(v / 100 if pd.notna(v) else None) for v in shown["percent_used_at_crossing"]],
                    "reason": shown["reason"],
                    "webhook": [delivery(a) if st_ == "fired" else "-" for a, st_ in zip(shown["alert_id"], shown["status"], strict=True)],
                }
            ),
            hide_index=True,
            width="stretch",
            key="alerts_thresholds",
        )  # fmt: skip

# -- delivery summary ------------------------------------------------------------------------
st.subheader("Webhook delivery")
sent = data.deliveries(limit=100_000)
if sent.empty:
    pending = sum(1 for s in outbox.values() if s == "pending")
    st.caption(
        f"No messages in the delivery store yet; {pending:,} alerts pending in alerts.outbox."
        if outbox
        else "No alerts queued yet."
    )
else:
    counts = sent.groupby(["event_type", "status"], as_index=False).size()
    st.dataframe(counts.rename(columns={"size": "deliveries"}), hide_index=True, width="stretch")
