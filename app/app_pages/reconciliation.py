"""Reconciliation (finance/ops): every metered charge x closed billing period by status and size
of the delta, a drill-down to the measured vs invoiced figures and the raw events behind them,
and a CSV export."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app import auth, data
from app.formatting import money, period, quantity, signed_money

auth.page_guard(reconcile=True)
st.title("Reconciliation")
data.require_snapshot("marts.fct_invoice_reconciliation")

#: the charge-periods drawn in the table and offered in the drill-down (largest delta first);
#: the CSV export has every one of the view
TABLE_LIMIT = 1_000
FROM = (
    "from marts.fct_invoice_reconciliation r left join marts.dim_customers c using (customer_id) "
    "where list_contains($1::varchar[], r.status) and ($2 = '' "
    "or contains(lower(r.customer_id), $2) "
    "or contains(lower(coalesce(c.customer_name, r.customer_id)), $2))"
)
ORDER = (
    "order by abs(coalesce(r.amount_delta, 0)) desc, abs(coalesce(r.quantity_delta, 0)) desc, "
    "r.customer_id, r.meter_code, r.period_start"
)

# the figures of the whole mart are aggregated in SQL: it has a row per charge-period
by_status = data.frame(
    "select status, count(distinct customer_id)::bigint as accounts, count(*)::bigint as periods "
    "from marts.fct_invoice_reconciliation group by status order by periods desc, status"
)
if by_status.empty:
    st.info(
        "No closed billing periods to reconcile yet: reconciliation compares Stripe invoices with "
        "measured usage, so it needs synced Stripe invoices."
    )
    st.stop()
flagged_periods, flagged_accounts = data.frame(
    "select count(*)::bigint, count(distinct customer_id)::bigint "
    "from marts.fct_invoice_reconciliation where status != 'matched'"
).iloc[0]
c1, c2, c3 = st.columns(3)
c1.metric("Charge-periods reconciled", f"{int(by_status['periods'].sum()):,}")
c2.metric("Flagged", f"{int(flagged_periods):,}")
c3.metric("Accounts flagged", f"{int(flagged_accounts):,}")
left, right = st.columns([1, 2])
with left:
    st.dataframe(by_status, hide_index=True, width="stretch", key="recon_by_status")
with right:
    st.altair_chart(
        alt.Chart(by_status)
        .mark_bar()
        .encode(
            x=alt.X("periods:Q", title="charge-periods"),
            y=alt.Y("status:N", sort="-x", title=None),
            color=alt.condition(
                alt.datum.status == "matched", alt.value("#54a24b"), alt.value("#e45756")
            ),
            tooltip=["status", "periods", "accounts"],
        ),
        width="stretch",
    )

statuses = sorted(by_status["status"].dropna())
default = [s for s in statuses if s != "matched"] or statuses
c1, c2 = st.columns([2, 1])
chosen = c1.multiselect("Status", statuses, default=default, key="recon_status")
search = c2.text_input("Customer id or name", key="recon_customer").strip().lower()
params = (sorted(chosen), search)
total = int(data.scalar(f"select count(*) {FROM}", params))
view = data.frame(
    f"select r.*, coalesce(c.customer_name, r.customer_id) as customer_name {FROM} {ORDER} "
    f"limit {TABLE_LIMIT}",
    params,
)

st.subheader(f"Accounts ({total:,} charge-periods), largest delta first")
if total > len(view):
    st.caption(f"The {len(view):,} largest are shown; the CSV export has all {total:,}.")
display = pd.DataFrame(
    {
        "customer": view["customer_id"],
        "name": view["customer_name"],
        "meter": view["meter_code"],
        "period": [period(s, e) for s, e in zip(view["period_start"], view["period_end"], strict=True)],
        "status": view["status"],
        "measured": [quantity(v) for v in view["measured_quantity"]],
        "invoiced": [quantity(v) for v in view["invoiced_quantity"]],
        "quantity delta": [quantity(v) for v in view["quantity_delta"]],
        "expected": [money(a, c) for a, c in zip(view["expected_amount"], view["currency"], strict=True)],
        "invoiced amount": [money(a, c) for a, c in zip(view["invoiced_amount"], view["currency"], strict=True)],
        "amount delta": [signed_money(a, c) for a, c in zip(view["amount_delta"], view["currency"], strict=True)],
    }
)  # fmt: skip
st.dataframe(display, hide_index=True, width="stretch", key="recon_table")
st.download_button(
    "Download CSV",
    data.csv(
        f"select r.*, coalesce(c.customer_name, r.customer_id) as customer_name {FROM} {ORDER}",
        params,
    ),
    file_name="meterworks-reconciliation.csv",
    mime="text/csv",
    key="recon_csv",
)
st.caption(
    "The CSV has the mart's columns as they are: amounts in integer minor units of `currency`, "
    "quantities exact, timestamps UTC."
)

# -- drill-down ------------------------------------------------------------------------------
if view.empty:
    st.stop()
st.subheader("Drill-down")
pick = st.selectbox(
    "Charge-period",
    list(range(len(view))),
    format_func=lambda k: (
        f"{view.loc[k, 'customer_id']} · {view.loc[k, 'meter_code']} · "
        f"{view.loc[k, 'period_start']:%Y-%m-%d} · {view.loc[k, 'status']}"
    ),
    key="recon_pick",
)
r = view.loc[pick]
cur = r["currency"]
c1, c2, c3 = st.columns(3)
c1.metric("Measured quantity", quantity(r["measured_quantity"]))
c2.metric("Invoiced quantity", quantity(r["invoiced_quantity"]))
c3.metric("Quantity delta", quantity(r["quantity_delta"]))
c1, c2, c3 = st.columns(3)
c1.metric("Expected amount", money(r["expected_amount"], cur))
c2.metric("Invoiced amount", money(r["invoiced_amount"], cur))
c3.metric("Amount delta", signed_money(r["amount_delta"], cur))
st.markdown(
    f"**{r['customer_id']}** · `{r['meter_code']}` · {period(r['period_start'], r['period_end'])}"
    f" · invoices {r['invoice_ids'] or 'none'} · credited {quantity(r['credited_quantity'])} / "
    f"{money(r['credited_amount'], cur)} · contract price `{r['expected_price_id']}` "
    f"({r['expected_price_source']}) vs Stripe price `{r['stripe_price_id']}`"
)
c1, c2 = st.columns(2)
c1.metric("Measured events (mart)", f"{int(r['measured_event_count']):,}")
raw_counts = pd.DataFrame()
if data.has("app.raw_event_counts"):
    raw_counts = data.frame(
        "select e.event_date, e.action, sum(e.events)::bigint as events "
        "from app.raw_event_counts e join marts.dim_meters m on m.event_name = e.event_name "
        "where e.customer_id = $1 and m.meter_code = $2 "
        "and e.event_date >= $3::date and e.event_date <= $4::date "
        "group by all order by 1, 2",
        (r["customer_id"], r["meter_code"], r["period_start"], r["period_end"]),
    )
raw_total = int(raw_counts["events"].sum()) if not raw_counts.empty else 0
c2.metric("Raw events stored (UTC days of the period)", f"{raw_total:,}")
st.caption(
    "Raw events are counted per UTC day touching the period, corrections included (a void or "
    "amend is its own event), before meter filters: they bound what the meter measured."
)
if not raw_counts.empty:
    st.altair_chart(
        alt.Chart(raw_counts)
        .mark_bar()
        .encode(
            x=alt.X("event_date:T", title=None),
            y=alt.Y("events:Q", title="raw events"),
            color=alt.Color("action:N"),
            tooltip=["event_date:T", "action", "events"],
        ),
        width="stretch",
    )
