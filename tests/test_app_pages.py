"""AppTest for every page of the Streamlit app on a small demo warehouse: the figures a page
shows are computed here independently, with SQL on the warehouse (the app reads the snapshot),
and compared with what the page displays."""

from __future__ import annotations

import io
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import pytest

from tests.test_app_support import (
    app_test,
    build_demo_home,
    frame_with,
    metrics,
    open_page,
    texts,
    warehouse,
)

PASSWORD = "correct horse battery staple"


def usd(minor) -> str:
    value = int(Decimal(str(minor)).to_integral_value(rounding=ROUND_HALF_UP))
    return f"USD {Decimal(value).scaleb(-2):,.2f}"


def signed(minor) -> str:
    value = int(Decimal(str(minor)).to_integral_value(rounding=ROUND_HALF_UP))
    return f"+{usd(value)}" if value > 0 else (f"-{usd(-value)}" if value < 0 else usd(0))


@pytest.fixture(scope="module")
def demo_home() -> Path:
    return build_demo_home()


@pytest.fixture
def app_env(demo_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The demo home, with a state database of this test's own."""
    monkeypatch.setenv("METERWORKS_HOME", str(demo_home))
    monkeypatch.setenv("DAGSTER_HOME", str(demo_home / "dagster"))
    monkeypatch.setenv("METERWORKS_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("METERWORKS_APP_PASSWORD", PASSWORD)
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    return demo_home


# -- sign-in and roles -----------------------------------------------------------------------


def test_nothing_is_shown_without_sign_in_configured(tmp_path, monkeypatch, demo_home) -> None:
    monkeypatch.setenv("METERWORKS_HOME", str(demo_home))
    monkeypatch.delenv("METERWORKS_APP_PASSWORD", raising=False)
    at = app_test(roles=None)
    at.run()
    assert not at.exception
    assert "Sign-in is not configured" in texts(at)
    assert not at.metric and not at.dataframe


def test_password_sign_in(app_env) -> None:
    at = app_test(roles=None)
    at.run()
    assert not at.metric  # nothing before sign-in
    at.text_input(key="mw_login_name").input("Dana")
    at.text_input(key="mw_login_password").input("wrong")
    at.button[0].click().run()
    assert "Wrong password." in texts(at)
    assert "mw_user" not in at.session_state
    at.text_input(key="mw_login_name").input("Dana")
    at.text_input(key="mw_login_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception
    assert at.session_state["mw_user"]["roles"] == ["admin"]  # METERWORKS_APP_ROLE default
    assert "MRR" in metrics(at)  # the admin lands on the overview
    # the password is never kept in the session
    assert PASSWORD not in str(at.session_state.to_dict())


def test_support_role_sees_no_revenue(app_env) -> None:
    at = app_test(roles=("support",))
    at.run()
    assert "MRR" not in metrics(at)  # lands on the customer page, not the overview
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/overview.py")  # not in a support user's navigation
    for page in ("reconciliation", "adjustments"):
        with pytest.raises(ValueError):
            at.switch_page(f"app_pages/{page}.py")


def test_oidc_user_roles_come_from_the_state_database(app_env) -> None:
    from meterworks.state import make_engine, set_roles, state_url, upgrade

    engine = make_engine(state_url())
    upgrade(engine)
    set_roles(engine, "fin@example.com", "finance", actor="test")
    at = app_test(roles=None)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback",
                          "cookie_secret": "x", "client_id": "x", "client_secret": "x",
                          "server_metadata_url": "http://127.0.0.1:9/.well-known"}  # fmt: skip
    at.user = {"is_logged_in": True, "email": "fin@example.com", "name": "Fin"}
    at.run()
    assert not at.exception
    assert "MRR" in metrics(at)
    at.user = {"is_logged_in": True, "email": "nobody@example.com", "name": "Nobody"}
    at.run()
    assert "has no role here" in texts(at)
    assert "MRR" not in metrics(at)


# -- pages -----------------------------------------------------------------------------------


def test_overview_figures(app_env) -> None:
    with warehouse(app_env) as con:
        months = con.execute("select * from marts.fct_mrr_movements order by month").df()
        issues = con.execute(
            "select count(*) from marts.fct_invoice_reconciliation where status != 'matched'"
        ).fetchone()[0]
        row, prev = months.iloc[-2], months.iloc[-3]
        movers = con.execute(
            "select customer_id, mrr_change from marts.fct_mrr where month = ? "
            "and mrr_change > 0 order by mrr_change desc, customer_id limit 5",
            [row["month"]],
        ).df()
    at = open_page(app_test(), "overview")
    shown = metrics(at)
    assert shown["MRR"] == (usd(row["ending_mrr"]), signed(
        int(Decimal(str(row["ending_mrr"])).to_integral_value(ROUND_HALF_UP))
        - int(Decimal(str(prev["ending_mrr"])).to_integral_value(ROUND_HALF_UP))
    ))  # fmt: skip
    assert shown["ARR"][0] == usd(row["arr"])
    assert shown["NRR"][0] == f"{float(row['nrr']) * 100:.1f}%"
    assert shown["GRR"][0] == f"{float(row['grr']) * 100:.1f}%"
    assert shown["NRR"][1] == f"{(float(row['nrr']) - float(prev['nrr'])) * 100:+.1f} pp"
    assert shown["Usage revenue"][0] == usd(row["usage_mrr"])
    assert shown["Open reconciliation issues"][0] == f"{issues:,}"
    bridge = frame_with(at, "movement", "amount")
    assert list(bridge["movement"]) == ["Starting MRR", "New", "Expansion", "Reactivation",
                                        "Contraction", "Churn", "Ending MRR"]  # fmt: skip
    assert bridge["amount"].iloc[0] == usd(row["starting_mrr"])
    assert bridge["amount"].iloc[1] == signed(row["new_mrr"])
    assert bridge["amount"].iloc[5] == signed(-row["churned_mrr"])
    assert bridge["amount"].iloc[-1] == usd(row["ending_mrr"])
    assert len(at.get("vega_lite_chart")) >= 2  # the waterfall and the trend are charts
    if not movers.empty:
        ups = frame_with(at, "customer", "movement", "change")
        assert list(ups["change"]) == [signed(v) for v in movers["mrr_change"]]


def _customer_with(con, sql: str) -> str:
    found = con.execute(sql).fetchone()
    assert found, sql
    return found[0]


def test_customer_page_explains_the_bill(app_env) -> None:
    with warehouse(app_env) as con:
        customer = _customer_with(
            con,
            "select r.customer_id from marts.fct_invoice_reconciliation r "
            "join marts.fct_projected_invoice p using (customer_id) "
            "where p.included > 0 group by 1 order by count(distinct r.period_start) desc, 1 "
            "limit 1",
        )
        projected = con.execute(
            "select currency, sum(amount_to_date), sum(projected_amount) "
            "from marts.fct_projected_invoice where customer_id = ? group by 1",
            [customer],
        ).fetchall()
        invoices = con.execute(
            "select status from marts.fct_invoice_reconciliation where customer_id = ? "
            "order by period_start desc, meter_code",
            [customer],
        ).df()
        stripe_id = con.execute(
            "select stripe_customer_id from staging.stg_stripe__customers where customer_id = ?",
            [customer],
        ).fetchone()[0]
    at = open_page(app_test(query={"customer": customer}), "customer")
    shown = metrics(at)
    assert f"**Customer id** `{customer}`" in texts(at)
    assert f"**Stripe customer** `{stripe_id}`" in texts(at)
    for currency, to_date, projection in projected:
        assert shown[f"Accrued to date ({currency.upper()})"][0] == usd(to_date)
        assert shown[f"Projected at period end ({currency.upper()})"][0] == usd(projection)
    shown_invoices = frame_with(at, "period", "meter", "status")
    assert list(shown_invoices["status"]) == list(invoices["status"])
    assert "Against the allowance" in texts(at)  # the allowance chart with its threshold lines
    assert len(at.get("vega_lite_chart")) >= 2


def test_customer_page_marks_anomalies_with_their_explanations(app_env) -> None:
    with warehouse(app_env) as con:
        found = con.execute(
            "select customer_id, meter_code, explanation from marts.fct_usage_anomalies "
            "where is_anomaly and granularity = 'day' and customer_id in "
            "(select customer_id from marts.fct_invoice_reconciliation) "
            "order by score desc, customer_id limit 1"
        ).fetchone()
    assert found is not None, "the demo plants anomalies on invoiced customers"
    customer, meter, explanation = found
    at = app_test(query={"customer": customer})
    open_page(at, "customer")
    at.selectbox(key="usage_meter").select(meter).run()
    shown = []
    # the anomaly lies in one of the customer's billing periods: find it through the picker
    for k in range(len(at.selectbox(key="usage_period").options)):
        at.selectbox(key="usage_period").set_value(k).run()
        try:
            shown += list(frame_with(at, "severity", "kind", "explanation")["explanation"])
        except KeyError:  # no anomaly in this period
            continue
    assert explanation in shown


def test_customer_without_stripe_data(app_env) -> None:
    with warehouse(app_env) as con:
        customer = con.execute(
            "select customer_id from marts.dim_customers where customer_id not in "
            "(select customer_id from staging.stg_stripe__customers) order by 1 limit 1"
        ).fetchone()
    assert customer is not None, "the demo has catalog customers billed outside Stripe"
    at = open_page(app_test(query={"customer": customer[0]}), "customer")
    assert "**Stripe customer** none" in texts(at)
    assert "No Stripe data for this customer" in texts(at)
    assert "No closed Stripe billing periods" in texts(at)


def test_customer_search_by_name(app_env) -> None:
    with warehouse(app_env) as con:
        customer, name = con.execute(
            "select customer_id, customer_name from marts.dim_customers "
            "where customer_name is not null order by customer_id desc limit 1"
        ).fetchone()
    at = open_page(app_test(roles=("support",)), "customer")
    at.text_input(key="customer_search").input(name.upper()).run()
    assert at.selectbox(key="customer_pick").value == customer
    assert f"**Customer id** `{customer}`" in texts(at)


def test_reconciliation_page(app_env, monkeypatch) -> None:
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    downloads: list[bytes] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):
        if mimetype == "text/csv":
            downloads.append(bytes(path_or_data))
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    with warehouse(app_env) as con:
        total, flagged = con.execute(
            "select count(*), count(*) filter (where status != 'matched') "
            "from marts.fct_invoice_reconciliation"
        ).fetchone()
        top = con.execute(
            "select customer_id, meter_code, measured_quantity, invoiced_quantity, "
            "expected_amount, invoiced_amount, amount_delta, measured_event_count, period_start, "
            "period_end from marts.fct_invoice_reconciliation where status != 'matched' "
            "order by abs(coalesce(amount_delta, 0)) desc, abs(coalesce(quantity_delta, 0)) desc, "
            "customer_id, meter_code, period_start limit 1"
        ).fetchone()
        raw = con.execute(
            "select count(*) from raw.events e join marts.dim_meters m "
            "on m.event_name = e.event_name where e.customer_id = ? and m.meter_code = ? "
            "and cast(e.event_ts as date) between cast(? as date) and cast(? as date)",
            [top[0], top[1], top[8], top[9]],
        ).fetchone()[0]
    at = open_page(app_test(roles=("finance",)), "reconciliation")
    shown = metrics(at)
    assert shown["Charge-periods reconciled"][0] == f"{total:,}"
    assert shown["Flagged"][0] == f"{flagged:,}"
    table = frame_with(at, "customer", "status", "amount delta")
    assert len(table) == flagged  # non-matched by default
    assert (table["customer"].iloc[0], table["meter"].iloc[0]) == (top[0], top[1])
    assert shown["Expected amount"][0] == usd(top[4])
    assert shown["Amount delta"][0] == signed(top[6]) if top[6] is not None else "-"
    assert shown["Measured events (mart)"][0] == f"{top[7]:,}"
    assert shown["Raw events stored (UTC days of the period)"][0] == f"{raw:,}"
    assert downloads, "the CSV export was not offered"
    exported = pd.read_csv(io.BytesIO(downloads[-1]))
    assert len(exported) == flagged
    assert {"customer_id", "amount_delta", "status"} <= set(exported.columns)


def test_alerts_page(app_env) -> None:
    with warehouse(app_env) as con:
        anomalies = con.execute(
            "select count(*) from marts.fct_usage_anomalies where is_anomaly and is_alert "
            "and granularity = 'day' and severity in ('critical', 'warning') "
            "and window_start_utc >= (select max(window_start_utc) "
            "from marts.fct_usage_anomalies) - interval 30 day"
        ).fetchone()[0]
        fired, passed = con.execute(
            "select count(*) filter (where status = 'fired'), "
            "count(*) filter (where status = 'passed') from marts.fct_threshold_crossings"
        ).fetchone()
        pending = con.execute("select count(*) from alerts.outbox").fetchone()[0]
    at = open_page(app_test(roles=("support",)), "alerts")
    shown = metrics(at)
    assert shown["Anomalies shown"][0] == f"{anomalies:,}"
    assert shown["Fired"][0] == f"{fired:,}"
    assert shown["Already passed when first seen"][0] == f"{passed:,}"
    if anomalies:
        table = frame_with(at, "explanation", "webhook")
        assert table["webhook"].isin(["pending", "succeeded", "failed", "no webhook (history)",
                                      "not queued"]).all()  # fmt: skip
    assert f"{pending:,} alerts pending in alerts.outbox" in texts(at) or pending == 0


def test_pipeline_health_page(app_env) -> None:
    with warehouse(app_env) as con:
        rows_read, dups, conflicts, quarantined = con.execute(
            "select sum(rows_read)::bigint, sum(duplicates)::bigint, sum(conflicts)::bigint, "
            "sum(quarantined)::bigint from raw.ingest_batches"
        ).fetchone()
        reasons = dict(
            con.execute("select reason, count(*) from raw.quarantine group by 1").fetchall()
        )
    at = open_page(app_test(roles=("support",)), "pipeline_health")
    shown = metrics(at)
    assert shown["Rows read"][0] == f"{rows_read:,}"
    assert shown["Duplicates dropped"][0] == f"{dups:,}"
    assert shown["Conflicts kept for review"][0] == f"{conflicts:,}"
    assert shown["Quarantined"][0] == f"{quarantined:,}"
    by_reason = frame_with(at, "reason", "events")
    assert dict(zip(by_reason["reason"], by_reason["events"], strict=True)) == reasons
    mats = frame_with(at, "asset", "last materialized")
    assert {"fct_meter_totals", "fct_mrr_movements", "app_snapshot"} <= set(mats["asset"])


def test_adjustments_page_applies_refuses_and_audits(app_env) -> None:
    with warehouse(app_env) as con:
        customer, start = con.execute(
            "select customer_id, period_start from marts.fct_projected_invoice "
            "where currency = 'usd' order by customer_id limit 1"
        ).fetchone()
    at = open_page(app_test(roles=("ops",), name="olive"), "adjustments")
    at.selectbox(key="adj_customer").select(customer).run()
    at.text_input(key="adj_amount").input("12.50").run()
    at.button(key="adj_apply").click().run()
    assert "a reason code is required" in texts(at)  # refused: no reason code
    at.selectbox(key="adj_reason").select("service_outage").run()
    at.text_input(key="adj_amount").input("-5").run()
    at.button(key="adj_apply").click().run()
    assert "a credit must be a positive amount (got USD -5.00)" in texts(at)
    at.text_input(key="adj_amount").input("12.50").run()
    at.text_area(key="adj_note").input("API outage on the 3rd").run()
    at.button(key="adj_apply").click().run()
    assert not at.exception
    assert "credit USD 12.50 for " + customer in texts(at)
    listed = frame_with(at, "id", "customer", "amount / quantity")
    assert list(listed["amount / quantity"]) == ["USD 12.50"]
    audit = frame_with(at, "who", "action", "before", "after")
    assert list(audit["action"]) == ["adjustment.create"]
    assert audit["who"].iloc[0] == "olive (password)"
    # void it: audited with before and after
    at.text_input(key=f"adj_void_reason_{listed['id'].iloc[0]}").input("wrong customer").run()
    at.button(key="adj_void").click().run()
    audit = frame_with(at, "who", "action", "before", "after")
    assert list(audit["action"]) == ["adjustment.void", "adjustment.create"]
    assert '"voided_at": null' in audit["before"].iloc[0]
    from meterworks.state import list_adjustments, make_engine, state_url

    [adj] = list_adjustments(make_engine(state_url()))
    assert adj.amount_minor == 1250 and adj.currency == "usd" and adj.voided_at is not None
    assert adj.period_start == start.to_pydatetime() if hasattr(start, "to_pydatetime") else start


def test_finance_can_view_but_not_apply_adjustments(app_env) -> None:
    at = open_page(app_test(roles=("finance",)), "adjustments")
    assert "can view adjustments; ops or admin can apply them" in texts(at)
    assert not at.get("button") or all(b.key != "adj_apply" for b in at.button)


# -- a brand-new install ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "page", ["overview", "customer", "reconciliation", "alerts", "pipeline_health"]
)
def test_empty_state_of_a_new_install(page, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("METERWORKS_HOME", str(tmp_path / "new"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "new" / "dagster"))
    monkeypatch.delenv("METERWORKS_STATE_URL", raising=False)
    at = open_page(app_test(), page)
    assert "No data yet — run `meterworks demo`" in texts(at)
    assert not at.error


def test_adjustments_page_on_a_new_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("METERWORKS_HOME", str(tmp_path / "new"))
    monkeypatch.delenv("METERWORKS_STATE_URL", raising=False)
    at = open_page(app_test(roles=("ops",)), "adjustments")
    assert "No data yet" in texts(at)
    assert "No adjustments yet." in texts(at)


def test_webhook_deliveries_are_shown_for_the_customer_and_the_alert(app_env) -> None:
    from datetime import UTC, datetime

    from meterworks.state import state_url
    from meterworks.webhooks.store import DeliveryStore

    with warehouse(app_env) as con:
        customer, alert_id = con.execute(
            "select customer_id, alert_id from marts.fct_usage_anomalies where is_alert "
            "and alert_id is not null and granularity = 'day' and severity = 'critical' "
            "order by window_start_utc desc, customer_id limit 1"
        ).fetchone()
    now = datetime.now(UTC)
    store = DeliveryStore.open(state_url())
    store.upsert_endpoint(customer, "https://hooks.example.test/meterworks", now=now)
    added = store.add_messages(
        [{"message_id": alert_id, "event_type": "usage.anomaly_detected",
          "customer_id": customer, "body": "{}", "created_at": now}],
        mode="embedded", now=now,
    )  # fmt: skip
    store.close()
    assert added == (1, 1)
    at = open_page(app_test(roles=("support",), query={"customer": customer}), "customer")
    shown = frame_with(at, "message_id", "event_type", "status")
    assert list(shown["message_id"]) == [alert_id]
    assert list(shown["status"]) == ["pending"]
    at.switch_page("app_pages/alerts.py").run()
    anomalies = frame_with(at, "explanation", "webhook")
    assert anomalies.loc[anomalies["customer"] == customer, "webhook"].iloc[0] == "pending"
