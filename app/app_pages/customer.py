"""Customer (support): find a customer by id or name and explain their bill -- usage by day,
hour and dimension against the allowance with the threshold lines, anomalies on the chart with
their explanations, the projected invoice of the open period, past invoices with their
reconciliation status, adjustments and webhook deliveries."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app import auth, data
from app.formatting import money, period, quantity, when

user = auth.page_guard()
st.title("Customer")
data.require_snapshot("marts.dim_customers")

everyone = data.customers()
if everyone.empty:
    st.info("No customers yet. " + data.EMPTY_STATE)
    st.stop()

wanted = st.query_params.get("customer")
search = st.text_input("Search by customer id or name", key="customer_search").strip().lower()
matches = everyone
if search:
    mask = everyone["customer_id"].str.lower().str.contains(search, regex=False) | everyone[
        "customer_name"
    ].str.lower().str.contains(search, regex=False)
    matches = everyone[mask]
if matches.empty:
    st.warning(f"No customer matches '{search}'.")
    st.stop()
ids = list(matches["customer_id"])
names = dict(zip(everyone["customer_id"], everyone["customer_name"], strict=True))
index = ids.index(wanted) if wanted in ids else 0
customer_id = st.selectbox(
    f"Customer ({len(ids):,} match{'es' if len(ids) != 1 else ''})",
    ids,
    index=index,
    format_func=lambda c: f"{names[c]} ({c})" if names[c] != c else c,
    key="customer_pick",
)
st.query_params["customer"] = customer_id
info = everyone[everyone["customer_id"] == customer_id].iloc[0]
stripe_id = data.stripe_customer_id(customer_id)

st.header(str(info["customer_name"]))
st.markdown(
    f"**Customer id** `{customer_id}` · **Plan** {info['plan_code'] or '-'} · "
    f"**Time zone** {info['timezone']} · **Stripe customer** "
    + (f"`{stripe_id}`" if stripe_id else "none")
)
if stripe_id is None:
    st.info(
        "No Stripe data for this customer: it is billed from the catalog plan, so there are no "
        "Stripe invoices to reconcile.",
        icon=":material/info:",
    )

# -- projected invoice of the open period ----------------------------------------------------
st.subheader("Projected invoice, open period")
projected = pd.DataFrame()
if data.has("marts.fct_projected_invoice"):
    projected = data.frame(
        "select * from marts.fct_projected_invoice where customer_id = $1 "
        "order by period_start, charge_type, meter_code, price_id",
        (customer_id,),
    )
if projected.empty:
    st.caption("No open billing period with priced charges for this customer.")
else:
    spans = sorted({(s, e) for s, e in zip(projected["period_start"], projected["period_end"], strict=True)})  # fmt: skip
    st.caption(
        f"Period {'; '.join(period(s, e) for s, e in spans)}; projection as of "
        f"{when(projected['as_of'].iloc[0])}."
    )
    totals = projected.groupby("currency", as_index=False)[
        ["amount_to_date", "projected_amount"]
    ].sum(min_count=1)
    for _, t in totals.iterrows():
        c1, c2 = st.columns(2)
        c1.metric(
            f"Accrued to date ({t['currency'].upper()})", money(t["amount_to_date"], t["currency"])
        )
        c2.metric(
            f"Projected at period end ({t['currency'].upper()})",
            money(t["projected_amount"], t["currency"]),
        )
    lines = pd.DataFrame(
        {
            "charge": [
                m if isinstance(m, str) else t
                for m, t in zip(projected["meter_code"], projected["charge_type"], strict=True)
            ],
            "type": projected["charge_type"],
            "price": projected["price_id"],
            "included": [quantity(v) for v in projected["included"]],
            "quantity to date": [quantity(v) for v in projected["quantity_to_date"]],
            "amount to date": [money(a, c) for a, c in zip(projected["amount_to_date"], projected["currency"], strict=True)],
            "projected quantity": [quantity(v, 2) for v in projected["projected_quantity"]],
            "projected amount": [money(a, c) for a, c in zip(projected["projected_amount"], projected["currency"], strict=True)],
            "source": projected["charge_source"],
        }
    )  # fmt: skip
    st.dataframe(lines, hide_index=True, width="stretch", key="projected_lines")

# -- usage -----------------------------------------------------------------------------------
st.subheader("Usage")
meters = data.frame(
    "select distinct t.meter_code, m.aggregation, coalesce(m.unit, '') as unit "
    "from marts.fct_meter_totals t join marts.dim_meters m using (meter_code) "
    "where t.customer_id = $1 order by 1",
    (customer_id,),
)
if meters.empty:
    st.caption("No usage recorded for this customer.")
else:
    periods = data.customer_periods(customer_id).reset_index(drop=True)
    with_allowance = []
    if not projected.empty:
        with_allowance = list(projected.loc[projected["included"].fillna(0) > 0, "meter_code"])
    meter_list = list(meters["meter_code"])
    default_meter = next((m for m in meter_list if m in with_allowance), meter_list[0])
    c1, c2, c3 = st.columns([2, 2, 1])
    meter = c1.selectbox(
        "Meter", meter_list, index=meter_list.index(default_meter), key="usage_meter"
    )
    # a period a few days old draws a few bars: open on the previous one until a week has passed
    as_of = projected["as_of"].iloc[0] if not projected.empty else pd.Timestamp.utcnow()
    as_of = pd.Timestamp(as_of).tz_localize(None) if pd.Timestamp(as_of).tzinfo else as_of
    young = len(periods) > 1 and (
        pd.Timestamp(as_of) - pd.Timestamp(periods.iloc[0]["period_start"])
    ) < pd.Timedelta(days=7)
    chosen = c2.selectbox(
        "Billing period",
        list(range(len(periods))),
        index=1 if young else 0,
        format_func=lambda k: period(
            periods.iloc[k]["period_start"], periods.iloc[k]["period_end"]
        ),
        key="usage_period",
    )
    grain = c3.radio("By", ["day", "hour"], horizontal=True, key="usage_grain")
    meta = meters[meters["meter_code"] == meter].iloc[0]
    start, end = periods.iloc[chosen]["period_start"], periods.iloc[chosen]["period_end"]
    if grain == "day":
        usage = data.frame(
            "select usage_date::timestamp as bucket, dimensions, quantity::double as quantity, "
            "event_count from marts.fct_usage_daily where customer_id = $1 and meter_code = $2 "
            "and usage_date >= timezone(timezone, timezone('UTC', $3::timestamp))::date "
            "and usage_date < timezone(timezone, timezone('UTC', $4::timestamp))::date "
            "order by bucket",
            (customer_id, meter, start, end),
        )
    else:
        usage = data.frame(
            "select usage_hour as bucket, dimensions, quantity::double as quantity, event_count "
            "from marts.fct_usage_hourly where customer_id = $1 and meter_code = $2 "
            "and hour_start_utc >= $3 and hour_start_utc < $4 order by bucket",
            (customer_id, meter, start, end),
        )
    anomalies = pd.DataFrame()
    if data.has("marts.fct_usage_anomalies"):
        anomalies = data.frame(
            "select window_start as bucket, observed, expected, lower_bound, upper_bound, "
            "severity, anomaly_kind, explanation, is_alert from marts.fct_usage_anomalies "
            "where customer_id = $1 and meter_code = $2 and granularity = $3 and is_anomaly "
            "and window_start_utc >= $4 and window_start_utc < $5 order by bucket",
            (customer_id, meter, grain, start, end),
        )
    unit = f" ({meta['unit']})" if meta["unit"] else ""
    if usage.empty:
        st.caption("No usage of this meter in this period.")
    else:
        usage["dimension"] = usage["dimensions"].replace({"{}": "all"})
        bars = (
            alt.Chart(usage)
            .mark_bar()
            .encode(
                x=alt.X("bucket:T", title=None),
                y=alt.Y("sum(quantity):Q", title=f"{meter}{unit}"),
                color=alt.Color("dimension:N", title="dimension"),
                tooltip=["bucket:T", "dimension", alt.Tooltip("quantity:Q", format=",.2f")],
            )
        )
        layers = [bars]
        if not anomalies.empty:
            layers.append(
                alt.Chart(anomalies)
                .mark_point(shape="triangle-up", size=140, filled=True, color="#d62728")
                .encode(
                    x="bucket:T",
                    y="observed:Q",
                    tooltip=["bucket:T", "severity", "anomaly_kind", "explanation"],
                )
            )
        st.altair_chart(alt.layer(*layers), width="stretch")
        st.caption(
            f"{meter}{unit} by {grain} (customer's local time); red triangles mark anomalies "
            "(hover for the explanation)."
        )

        # against the allowance, with the threshold lines
        included = None
        if not projected.empty:
            inc = projected[(projected["meter_code"] == meter) & projected["included"].notna()]
            if not inc.empty and float(inc["included"].iloc[0]) > 0:
                included = float(inc["included"].iloc[0])
        if included is not None:
            thresholds = [50.0, 80.0, 100.0]
            if data.has("marts.fct_threshold_crossings"):
                seen = data.frame(
                    "select distinct threshold_value::double as v from marts.fct_threshold_crossings "
                    "where customer_id = $1 and meter_code = $2 and threshold_kind = 'percent' "
                    "order by 1",
                    (customer_id, meter),
                )
                if not seen.empty:
                    thresholds = sorted(set(thresholds) | set(seen["v"]))
            per_bucket = usage.groupby("bucket", as_index=False)["quantity"].sum()
            additive = meta["aggregation"] in ("count", "sum")
            per_bucket["level"] = (
                per_bucket["quantity"].cumsum() if additive else per_bucket["quantity"]
            )
            lines_df = pd.DataFrame(
                {"level": [included * t / 100 for t in thresholds],
                 "label": [f"{t:g}% of {quantity(included)}" for t in thresholds]}
            )  # fmt: skip
            used = per_bucket["level"].iloc[-1]
            st.markdown(
                f"**Against the allowance**: {quantity(round(used, 3))} of "
                f"{quantity(included)} included ({used / included:.1%})"
            )
            level = (
                alt.Chart(per_bucket)
                .mark_line(point=True)
                .encode(
                    x=alt.X("bucket:T", title=None),
                    y=alt.Y(
                        "level:Q", title=("cumulative " if additive else "") + f"{meter}{unit}"
                    ),
                    tooltip=["bucket:T", alt.Tooltip("level:Q", format=",.2f")],
                )
            )
            rules = (
                alt.Chart(lines_df)
                .mark_rule(strokeDash=[6, 4], color="#e45756")
                .encode(y="level:Q", tooltip=["label"])
            )
            labels = (
                alt.Chart(lines_df)
                .mark_text(align="left", dx=4, dy=-6, color="#e45756")
                .encode(y="level:Q", text="label:N", x=alt.value(0))
            )
            st.altair_chart(alt.layer(level, rules, labels), width="stretch")
        else:
            st.caption("No allowance (included quantity) on this customer's plan for this meter.")

        by_dimension = (
            usage.groupby("dimension", as_index=False)
            .agg(quantity=("quantity", "sum"), events=("event_count", "sum"))
            .sort_values("quantity", ascending=False)
        )
        if len(by_dimension) > 1:
            st.markdown("**By dimension**")
            st.dataframe(
                pd.DataFrame({"dimension": by_dimension["dimension"],
                              "quantity": [quantity(round(v, 9)) for v in by_dimension["quantity"]],
                              "events": [f"{int(v):,}" for v in by_dimension["events"]]}),
                hide_index=True, width="stretch",
            )  # fmt: skip
    if not anomalies.empty:
        st.markdown(f"**Anomalies in this period** ({len(anomalies)})")
        st.dataframe(
            anomalies[["bucket", "severity", "anomaly_kind", "explanation"]].rename(
                columns={"bucket": grain, "anomaly_kind": "kind"}
            ),
            hide_index=True,
            width="stretch",
            key="customer_anomalies",
        )

# -- past invoices ---------------------------------------------------------------------------
st.subheader("Past invoices and reconciliation")
invoices = pd.DataFrame()
if data.has("marts.fct_invoice_reconciliation"):
    invoices = data.frame(
        "select * from marts.fct_invoice_reconciliation where customer_id = $1 "
        "order by period_start desc, meter_code",
        (customer_id,),
    )
if invoices.empty:
    st.caption(
        "No closed Stripe billing periods for this customer."
        if stripe_id is None
        else "No closed billing periods yet."
    )
else:
    st.dataframe(
        pd.DataFrame(
            {
                "period": [period(s, e) for s, e in zip(invoices["period_start"], invoices["period_end"], strict=True)],
                "meter": invoices["meter_code"],
                "invoices": invoices["invoice_ids"].fillna("-"),
                "measured": [quantity(v) for v in invoices["measured_quantity"]],
                "invoiced": [quantity(v) for v in invoices["invoiced_quantity"]],
                "expected amount": [money(a, c) for a, c in zip(invoices["expected_amount"], invoices["currency"], strict=True)],
                "invoiced amount": [money(a, c) for a, c in zip(invoices["invoiced_amount"], invoices["currency"], strict=True)],
                "status": invoices["status"],
            }
        ),
        hide_index=True,
        width="stretch",
        key="customer_invoices",
    )  # fmt: skip

# -- adjustments -----------------------------------------------------------------------------
st.subheader("Adjustments")
try:
    from meterworks.state import list_adjustments

    adjustments = list_adjustments(data.state_engine(), customer_id=customer_id)
except Exception as exc:  # the state database is unreachable: say so, keep the page
    adjustments = []
    st.warning(f"Adjustments unavailable: {type(exc).__name__}")
if not adjustments:
    st.caption("No adjustments for this customer.")
else:
    st.dataframe(
        pd.DataFrame(
            {
                "id": [a.adjustment_id for a in adjustments],
                "kind": [a.kind for a in adjustments],
                "period": [period(a.period_start, a.period_end) for a in adjustments],
                "meter": [a.meter_code or "-" for a in adjustments],
                "amount / quantity": [
                    money(a.amount_minor, a.currency)
                    if a.kind == "credit"
                    else quantity(a.quantity)
                    for a in adjustments
                ],
                "reason": [a.reason_code for a in adjustments],
                "by": [a.created_by for a in adjustments],
                "status": ["void" if a.voided_at else "in force" for a in adjustments],
            }
        ),
        hide_index=True,
        width="stretch",
    )

# -- webhook deliveries ----------------------------------------------------------------------
st.subheader("Webhook deliveries")
sent = data.deliveries(customer_id=customer_id)
if sent.empty:
    st.caption("No webhook messages for this customer.")
else:
    counts = sent["status"].value_counts()
    st.caption(", ".join(f"{n} {s}" for s, n in counts.items()))
    st.dataframe(sent, hide_index=True, width="stretch", key="customer_deliveries")
