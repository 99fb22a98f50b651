"""Adjustments (ops): a credit or a usage adjustment for a customer and billing period, with a
reason code and a note; edits and voids; the append-only audit log. With ``STRIPE_API_KEY``
set, a credit is also created in Stripe (customer balance transaction, idempotent)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import pandas as pd
import streamlit as st

from app import auth, data
from app.formatting import money, period, quantity, when
from meterworks.state import (
    CREDIT,
    REASON_CODES,
    AdjustmentError,
    AdjustmentRequest,
    create_adjustment,
    edit_adjustment,
    list_adjustments,
    list_audit,
    parse_amount,
    void_adjustment,
)
from meterworks.state.stripe_credit import push_credit, stripe_configured

user = auth.page_guard(adjust=True)
st.title("Adjustments")
engine = data.state_engine()

for kind, message in st.session_state.pop("adj_flash", []):
    getattr(st, kind)(message)

if not user.can_adjust:
    st.info(f"Your role ({', '.join(sorted(user.roles))}) can view adjustments; ops or admin can apply them.")  # fmt: skip
elif data.snapshot_version() is None:
    st.info(data.EMPTY_STATE, icon=":material/hourglass_empty:")
else:
    st.subheader("New adjustment")
    everyone = data.customers()
    names = dict(zip(everyone["customer_id"], everyone["customer_name"], strict=True))
    c1, c2 = st.columns([2, 1])
    customer_id = c1.selectbox(
        "Customer",
        list(everyone["customer_id"]),
        index=None,
        placeholder="Choose a customer",
        format_func=lambda c: f"{names.get(c, c)} ({c})",
        key="adj_customer",
    )
    kind = c2.radio(
        "Kind", ["credit", "usage"], horizontal=True, key="adj_kind",
        help="credit: money off the invoice; usage: a signed quantity added to a meter",
    )  # fmt: skip
    periods = data.customer_periods(customer_id) if customer_id else pd.DataFrame()
    meters = list(data.frame("select meter_code from marts.dim_meters order by 1")["meter_code"])
    c1, c2 = st.columns(2)
    chosen_period = c1.selectbox(
        "Billing period",
        list(range(len(periods))),
        index=0 if len(periods) else None,
        placeholder="Choose a customer first" if not customer_id else "No billing periods",
        format_func=lambda k: (
            f"{period(periods.iloc[k]['period_start'], periods.iloc[k]['period_end'])} "
            f"({periods.iloc[k]['state']})"
        ),
        key=f"adj_period_{customer_id}",
    )
    meter_choices = (["(whole invoice)"] if kind == CREDIT else []) + meters
    meter = c2.selectbox("Meter", meter_choices, key=f"adj_meter_{kind}")
    c1, c2 = st.columns(2)
    currency = "usd"
    if chosen_period is not None and isinstance(periods.iloc[chosen_period]["currency"], str):
        currency = periods.iloc[chosen_period]["currency"]
    if kind == CREDIT:
        amount_text = c1.text_input(
            f"Credit amount ({currency.upper()}, e.g. 25.00)", key="adj_amount"
        )
        c2.text_input("Currency", value=currency.upper(), disabled=True, key=f"adj_cur_{currency}")
    else:
        quantity_text = c1.text_input("Quantity (negative removes usage)", key="adj_quantity")
    reason = st.selectbox(
        "Reason code",
        list(REASON_CODES),
        index=None,
        placeholder="Choose a reason (required)",
        format_func=lambda r: f"{r} — {REASON_CODES[r]}",
        key="adj_reason",
    )
    note = st.text_area("Note", key="adj_note", max_chars=2000)
    if st.button("Apply adjustment", type="primary", key="adj_apply"):
        try:
            if not customer_id:
                raise AdjustmentError("choose a customer")
            if chosen_period is None:
                raise AdjustmentError(f"customer '{customer_id}' has no billing period to adjust")
            p = periods.iloc[chosen_period]
            amount_minor = qty = None
            if kind == CREDIT:
                if not amount_text.strip():
                    raise AdjustmentError("a credit needs an amount")
                amount_minor = parse_amount(amount_text, currency)
            else:
                if not quantity_text.strip():
                    raise AdjustmentError("a usage adjustment needs a quantity")
                try:
                    qty = Decimal(quantity_text.strip().replace(",", ""))
                except InvalidOperation:
                    raise AdjustmentError(f"'{quantity_text}' is not a quantity") from None
            request = AdjustmentRequest(
                customer_id=customer_id,
                kind=kind,
                period_start=p["period_start"].to_pydatetime(),
                period_end=p["period_end"].to_pydatetime(),
                reason_code=reason or "",
                note=note,
                meter_code=None if meter == "(whole invoice)" else meter,
                amount_minor=amount_minor,
                currency=currency if kind == CREDIT else None,
                quantity=qty,
            )
            known = [(s.to_pydatetime(), e.to_pydatetime()) for s, e in zip(periods["period_start"], periods["period_end"], strict=True)]  # fmt: skip
            adj = create_adjustment(
                engine,
                request,
                actor=user.actor,
                known_periods=known,
                known_customers=names,
                known_meters=meters,
            )
        except AdjustmentError as exc:
            st.error(f"Not applied: {exc}.")
        else:
            what = (
                money(adj.amount_minor, adj.currency)
                if adj.kind == CREDIT
                else quantity(adj.quantity)
            )
            flash = [("success", f"Adjustment {adj.adjustment_id} recorded: {adj.kind} {what} for "
                      f"{adj.customer_id}. The projected invoice and reconciliation include it "
                      "after the next build.")]  # fmt: skip
            if adj.kind == CREDIT and stripe_configured():
                stripe_id = data.stripe_customer_id(adj.customer_id)
                if stripe_id is None:
                    flash.append(("warning", "This customer is not in Stripe: the credit is recorded in Meterworks only."))  # fmt: skip
                else:
                    try:
                        done = push_credit(engine, adj.adjustment_id, stripe_customer_id=stripe_id, actor=user.actor)  # fmt: skip
                        flash.append(
                            ("success", f"Stripe credit created: {done.stripe_object_id}.")
                        )
                    except AdjustmentError as exc:
                        flash.append(("error", f"{exc}. The adjustment is recorded; retry from the list below."))  # fmt: skip
            st.session_state["adj_flash"] = flash
            for key in ("adj_amount", "adj_quantity", "adj_note", "adj_reason"):
                st.session_state.pop(key, None)
            st.rerun()

# -- the list --------------------------------------------------------------------------------
st.subheader("All adjustments")
everything = list_adjustments(engine)
if not everything:
    st.caption("No adjustments yet.")
else:
    st.dataframe(
        pd.DataFrame(
            {
                "id": [a.adjustment_id for a in everything],
                "customer": [a.customer_id for a in everything],
                "kind": [a.kind for a in everything],
                "period": [period(a.period_start, a.period_end) for a in everything],
                "meter": [a.meter_code or "-" for a in everything],
                "amount / quantity": [money(a.amount_minor, a.currency) if a.kind == CREDIT else quantity(a.quantity) for a in everything],
                "reason": [a.reason_code for a in everything],
                "note": [a.note for a in everything],
                "by": [a.created_by for a in everything],
                "at": [when(a.created_at) for a in everything],
                "status": [f"void ({a.void_reason})" if a.voided_at else "in force" for a in everything],
                "stripe": [a.stripe_object_id or a.stripe_status or "-" for a in everything],
            }
        ),
        hide_index=True,
        width="stretch",
        key="adj_list",
    )  # fmt: skip
    live = [a for a in everything if a.voided_at is None]
    if user.can_adjust and live:
        st.subheader("Edit or void")
        by_id = {a.adjustment_id: a for a in live}
        target = st.selectbox(
            "Adjustment",
            list(by_id),
            format_func=lambda i: f"{i} · {by_id[i].customer_id} · {by_id[i].kind} · {by_id[i].reason_code}",
            key="adj_target",
        )  # fmt: skip
        chosen = by_id[target]
        edit_tab, void_tab = st.tabs(["Edit note / reason", "Void"])
        with edit_tab:
            new_reason = st.selectbox(
                "Reason code", list(REASON_CODES), index=list(REASON_CODES).index(chosen.reason_code),
                key=f"adj_edit_reason_{target}",
            )  # fmt: skip
            new_note = st.text_area("Note", value=chosen.note, key=f"adj_edit_note_{target}")
            if st.button("Save changes", key="adj_edit_save"):
                try:
                    edit_adjustment(engine, target, actor=user.actor, note=new_note, reason_code=new_reason)  # fmt: skip
                except AdjustmentError as exc:
                    st.error(f"Not saved: {exc}.")
                else:
                    st.session_state["adj_flash"] = [("success", f"Adjustment {target} updated.")]
                    st.rerun()
        with void_tab:
            why = st.text_input("Why is it void?", key=f"adj_void_reason_{target}")
            if st.button("Void adjustment", key="adj_void"):
                try:
                    void_adjustment(engine, target, actor=user.actor, reason=why)
                except AdjustmentError as exc:
                    st.error(f"Not voided: {exc}.")
                else:
                    st.session_state["adj_flash"] = [("success", f"Adjustment {target} voided.")]
                    st.rerun()
        retry = [a for a in live if a.kind == CREDIT and a.stripe_status == "failed"]
        if retry and stripe_configured():
            pick = st.selectbox("Retry the Stripe credit of", [a.adjustment_id for a in retry], key="adj_retry")  # fmt: skip
            if st.button("Retry in Stripe", key="adj_retry_go"):
                stripe_id = data.stripe_customer_id(by_id[pick].customer_id)
                try:
                    push_credit(engine, pick, stripe_customer_id=stripe_id or "", actor=user.actor)
                except AdjustmentError as exc:
                    st.error(str(exc))
                else:
                    st.rerun()

# -- audit log -------------------------------------------------------------------------------
st.subheader("Audit log")
st.caption("Append-only: every adjustment, edit, void, Stripe call and role change, newest first.")
entries = list_audit(engine, limit=500)
if not entries:
    st.caption("Nothing recorded yet.")
else:
    import json

    st.dataframe(
        pd.DataFrame(
            {
                "when": [when(e.occurred_at) for e in entries],
                "who": [e.actor for e in entries],
                "action": [e.action for e in entries],
                "entity": [e.entity_id for e in entries],
                "before": [json.dumps(e.before, sort_keys=True) if e.before else "" for e in entries],
                "after": [json.dumps(e.after, sort_keys=True) if e.after else "" for e in entries],
            }
        ),
        hide_index=True,
        width="stretch",
        key="adj_audit",
    )  # fmt: skip
