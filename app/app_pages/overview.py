"""Overview (leadership): MRR, ARR, NRR and GRR with their month-over-month change, the MRR
bridge as a waterfall, 12 months of recurring vs usage MRR, top expansions and contractions,
and the open reconciliation issues and active alerts."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app import auth, data
from app.formatting import major, money, percent, points, signed_money, to_minor

auth.page_guard(revenue=True)
st.title("Overview")
data.require_snapshot("marts.fct_mrr_movements")

months = data.frame("select * from marts.fct_mrr_movements order by month")
if months.empty:
    st.info("No MRR yet: the warehouse has no paying subscriptions. " + data.EMPTY_STATE)
    st.stop()
cur = str(months["reporting_currency"].iloc[-1])
labels = [f"{m:%Y-%m}" for m in months["month"]]
# the last closed month by default (the newest month is still open and has no usage yet)
default = len(labels) - 2 if len(labels) >= 2 else len(labels) - 1
choice = st.selectbox("Month", labels, index=default, key="overview_month")
i = labels.index(choice)
row = months.iloc[i]
prev = months.iloc[i - 1] if i > 0 else None
state = "open, live subscriptions" if i == len(labels) - 1 else "closed"
st.caption(
    f"{choice} ({state}); amounts in {cur.upper()}, each customer converted at that month's FX "
    "rate; usage revenue is reported beside MRR, never in it."
)


def _delta_money(name: str) -> str | None:
    if prev is None:
        return None
    return signed_money(to_minor(row[name]) - to_minor(prev[name]), cur)


def _delta_ratio(name: str) -> str | None:
    if prev is None or pd.isna(row[name]) or pd.isna(prev[name]):
        return None
    return points(float(row[name]) - float(prev[name]))


c1, c2, c3, c4 = st.columns(4)
c1.metric("MRR", money(row["ending_mrr"], cur), _delta_money("ending_mrr"))
c2.metric("ARR", money(row["arr"], cur), _delta_money("arr"))
c3.metric("NRR", percent(row["nrr"]), _delta_ratio("nrr"))
c4.metric("GRR", percent(row["grr"]), _delta_ratio("grr"))
c1, c2, c3, c4 = st.columns(4)
c1.metric("Usage revenue", money(row["usage_mrr"], cur), _delta_money("usage_mrr"))
c2.metric("Paying customers", f"{int(row['ending_customers']):,}",
          None if prev is None else f"{int(row['ending_customers'] - prev['ending_customers']):+,}")  # fmt: skip
c3.metric("ARPA", money(row["arpa"], cur))
c4.metric("Logo churn", percent(row["logo_churn_rate"]))

# -- counts that link to their pages ---------------------------------------------------------
issues = alerts_active = 0
if data.has("marts.fct_invoice_reconciliation"):
    issues = int(
        data.scalar(
            "select count(*) from marts.fct_invoice_reconciliation where status != 'matched'"
        )
    )
alerts_active = 0
if data.has("marts.fct_usage_anomalies"):
    alerts_active += int(
        data.scalar(
            "select count(*) from marts.fct_usage_anomalies where is_alert and window_start_utc "
            ">= (select max(window_start_utc) from marts.fct_usage_anomalies) - interval 7 day"
        )
    )
if data.has("marts.fct_threshold_crossings"):
    alerts_active += int(
        data.scalar(
            "select count(*) from marts.fct_threshold_crossings where status = 'fired' "
            "and period_end > (select published_at from app.snapshot_info)"
        )
    )
c1, c2 = st.columns(2)
with c1:
    st.metric("Open reconciliation issues", f"{issues:,}")
    auth.link("reconciliation", "Review reconciliation", ":material/rule:")
with c2:
    st.metric("Active alerts (7 days)", f"{alerts_active:,}")
    auth.link("alerts", "See alerts", ":material/notifications:")

# -- the bridge ------------------------------------------------------------------------------
st.subheader(f"MRR bridge, {choice}")
steps = [
    ("Starting MRR", row["starting_mrr"], "total"),
    ("New", row["new_mrr"], "up"),
    ("Expansion", row["expansion_mrr"], "up"),
    ("Reactivation", row["reactivation_mrr"], "up"),
    ("Contraction", -row["contraction_mrr"], "down"),
    ("Churn", -row["churned_mrr"], "down"),
    ("Ending MRR", row["ending_mrr"], "total"),
]
bars, level = [], 0.0
for order, (label, amount, kind) in enumerate(steps):
    value = major(amount, cur)
    if kind == "total":
        start, end, level = 0.0, value, value
    else:
        start, end = level, level + value
        level = end
    bars.append({"step": label, "order": order, "start": start, "end": end, "kind": kind,
                 "amount": signed_money(amount, cur) if kind != "total" else money(amount, cur)})  # fmt: skip
bridge = pd.DataFrame(bars)
# start the axis near the lowest level, so the movements are visible beside the totals
levels = [v for v in (*bridge["start"], *bridge["end"]) if v > 0]
baseline = 0.9 * min(levels) if levels else 0.0
bridge.loc[bridge["kind"] == "total", "start"] = baseline
chart = (
    alt.Chart(bridge)
    .mark_bar()
    .encode(
        x=alt.X("step:N", sort=alt.SortField("order"), title=None),
        y=alt.Y("start:Q", title=f"MRR ({cur.upper()})", scale=alt.Scale(zero=False)),
        y2="end:Q",
        color=alt.Color(
            "kind:N",
            scale=alt.Scale(
                domain=["total", "up", "down"], range=["#4c78a8", "#54a24b", "#e45756"]
            ),
            legend=None,
        ),
        tooltip=["step", "amount"],
    )
)
st.altair_chart(chart, width="stretch")
st.dataframe(
    bridge[["step", "amount"]].rename(columns={"step": "movement"}),
    hide_index=True,
    width="stretch",
)

# -- 12-month trend --------------------------------------------------------------------------
st.subheader("Recurring vs usage MRR, 12 months")
trend = months.iloc[max(0, i - 11) : i + 1]
long = pd.concat(
    [
        pd.DataFrame({"month": trend["month"], "kind": "recurring MRR",
                      "amount": [major(v, cur) for v in trend["ending_mrr"]]}),
        pd.DataFrame({"month": trend["month"], "kind": "usage revenue",
                      "amount": [major(v, cur) for v in trend["usage_mrr"]]}),
    ]
)  # fmt: skip
st.altair_chart(
    alt.Chart(long)
    .mark_area(opacity=0.8)
    .encode(
        x=alt.X("yearmonth(month):T", title=None),
        y=alt.Y("amount:Q", stack=True, title=cur.upper()),
        color=alt.Color("kind:N", title=None),
        tooltip=[alt.Tooltip("yearmonth(month):T", title="month"), "kind",
                 alt.Tooltip("amount:Q", format=",.2f")],
    ),
    width="stretch",
)  # fmt: skip

# -- top movers ------------------------------------------------------------------------------
if data.has("marts.fct_mrr"):
    month_value = months["month"].iloc[i]
    movers = data.frame(
        "select m.customer_id, coalesce(c.customer_name, m.customer_id) as customer, "
        "m.movement, m.previous_mrr, m.mrr, m.mrr_change from marts.fct_mrr m "
        "left join marts.dim_customers c using (customer_id) "
        "where m.month = $1 and m.mrr_change != 0 order by m.mrr_change desc, m.customer_id",
        (month_value,),
    )

    def _table(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "customer": df["customer"],
                "movement": df["movement"],
                "from": [money(v, cur) for v in df["previous_mrr"]],
                "to": [money(v, cur) for v in df["mrr"]],
                "change": [signed_money(v, cur) for v in df["mrr_change"]],
            }
        )

    left, right = st.columns(2)
    with left:
        st.subheader("Top expansions")
        up = movers[movers["mrr_change"] > 0].head(5)
        if up.empty:
            st.caption("None this month.")
        else:
            st.dataframe(_table(up), hide_index=True, width="stretch")
    with right:
        st.subheader("Top contractions")
        down = movers[movers["mrr_change"] < 0].sort_values(["mrr_change", "customer_id"]).head(5)
        if down.empty:
            st.caption("None this month.")
        else:
            st.dataframe(_table(down), hide_index=True, width="stretch")
