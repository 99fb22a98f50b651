"""The README's main command end to end: demo data -> Dagster ingest -> dbt build -> summary.

The demo generator computes what the pipeline must produce independently of it (its manifest and
``expected_meter_totals.csv``); these tests hold the real pipeline to those figures.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

from meterworks.cli import main
from meterworks.warehouse import open_warehouse

SMALL_DEMO = ["--customers", "30", "--days", "70", "--seed", "7"]


def expected_totals(demo_dir: Path) -> dict[tuple[str, str, str, str], tuple[Decimal, int]]:
    with (demo_dir / "expected_meter_totals.csv").open() as f:
        return {
            (r["customer_id"], r["meter_code"], r["period_month"], r["dimensions"]): (
                Decimal(r["quantity"]),
                int(r["event_count"]),
            )
            for r in csv.DictReader(f)
        }


def mart_totals(warehouse: Path) -> dict[tuple[str, str, str, str], tuple[Decimal, int]]:
    with open_warehouse(warehouse, read_only=True) as con:
        rows = con.execute(
            "select customer_id, meter_code, cast(period_month as varchar), dimensions, "
            "quantity, event_count from marts.fct_meter_totals"
        ).fetchall()
    return {(c, m, p, d): (Decimal(q).normalize(), n) for c, m, p, d, q, n in rows}


def normalized(totals: dict) -> dict:
    return {key: (q.normalize(), n) for key, (q, n) in totals.items()}


def ingest_line(out: str) -> dict:
    [line] = [x for x in out.splitlines() if x.startswith("ingest: ")]
    return json.loads(line.removeprefix("ingest: "))


def assert_counts_match_manifest(counts: dict, manifest: dict) -> None:
    expected = manifest["expected"]
    assert counts["rows_read"] == expected["rows_read"]
    assert counts["accepted"] == expected["accepted"]["total"]
    assert counts["corrections"] == expected["accepted"]["corrections"]
    assert counts["duplicates"] == expected["duplicates"]
    assert counts["conflicts"] == expected["conflicts"]
    assert counts["quarantined_by_reason"] == expected["quarantined"]["by_reason"]


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory, dbt_manifest):
    """One small demo run through the CLI, shared by the tests below (they only read it,
    except the last, which appends a batch)."""
    home = tmp_path_factory.mktemp("e2e") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("METERWORKS_HOME", str(home))
        mp.setenv("DAGSTER_HOME", str(home / "dagster"))
        mp.delenv("METERWORKS_CATALOG", raising=False)
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["demo", *SMALL_DEMO]) == 0
        yield home, out.getvalue(), mp


def test_demo_counts_equal_the_generators_manifest(small_demo) -> None:
    home, out, _ = small_demo
    manifest = json.loads((home / "demo" / "manifest.json").read_text())
    assert_counts_match_manifest(ingest_line(out), manifest)
    assert "Meterworks summary" in out
    assert "top customers by usage" in out
    assert "(last closed month)" in out  # the MRR bridge line
    assert "quota thresholds:" in out


def test_meter_totals_equal_the_independent_expectation(small_demo) -> None:
    home, _, _ = small_demo
    expected = normalized(expected_totals(home / "demo"))
    actual = mart_totals(home / "warehouse.duckdb")
    assert len(expected) > 50
    assert actual == expected


def test_alert_marts_and_outbox_after_the_demo(small_demo) -> None:
    import jsonschema

    from alerts.anomaly.alerting import ANOMALY_PAYLOAD_SCHEMA
    from alerts.thresholds import PROJECTION_PAYLOAD_SCHEMA, THRESHOLD_PAYLOAD_SCHEMA

    home, out, _ = small_demo
    assert "usage anomalies, last" in out and "alerts pending webhook delivery" in out
    schemas = {
        "usage.anomaly_detected": ANOMALY_PAYLOAD_SCHEMA,
        "usage.threshold_crossed": THRESHOLD_PAYLOAD_SCHEMA,
        "invoice.projection_exceeded": PROJECTION_PAYLOAD_SCHEMA,
    }
    with open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        by_grain = dict(
            con.execute(
                "select granularity, count(distinct (customer_id, meter_code))"
                " from marts.fct_usage_anomalies group by 1"
            ).fetchall()
        )
        unexplained = con.execute(
            "select count(*) from marts.fct_usage_anomalies where is_anomaly and"
            " (explanation is null or severity is null or expected is null)"
        ).fetchone()[0]
        # nothing scored past the data: every bucket ended before the latest event
        late = con.execute(
            "select count(*) from marts.fct_usage_anomalies where window_start_utc"
            " + case granularity when 'day' then interval 1 day else interval 1 hour end"
            " > (select max(last_event_at) + interval 1 hour from marts.fct_usage_hourly)"
        ).fetchone()[0]
        messages = con.execute("select event_type, payload from alerts.outbox").fetchall()
        fired = con.execute(
            "select count(*) from marts.fct_threshold_crossings where status = 'fired'"
            " and alert_id not in (select alert_id from alerts.outbox)"
        ).fetchone()[0]
    # every catalog meter daily; hourly only the additive ones (count/sum)
    assert by_grain["day"] > by_grain["hour"] > 0
    assert unexplained == 0 and late == 0 and fired == 0
    for event_type, payload in messages:
        jsonschema.validate(json.loads(payload), schemas[event_type])


def test_rerun_is_exactly_once_and_a_new_batch_is_reflected_incrementally(
    small_demo, capsys
) -> None:
    home, _, _ = small_demo
    warehouse = home / "warehouse.duckdb"
    before = mart_totals(warehouse)

    # a retried delivery of every file: nothing new is counted
    assert main(["ingest", str(home / "demo" / "events")]) == 0
    counts = json.loads(capsys.readouterr().out.strip())
    assert counts["accepted"] == 0
    assert counts["duplicates"] + counts["quarantined"] == counts["rows_read"]

    # then a new batch: one new event and a void of an existing one, built together with the
    # retry (one build less; a retry counted twice would still move the totals below)
    with open_warehouse(warehouse, read_only=True) as con:
        txn, customer, event_ts = con.execute(
            "select transaction_id, customer_id, strftime(event_ts, '%Y-%m-%dT%H:%M:%SZ') "
            "from raw.events where event_name = 'api_request' and action = 'record' "
            "order by event_seq desc limit 1"
        ).fetchone()
    new_batch = home / "late.jsonl"
    new_batch.write_text(
        json.dumps(
            {
                "transaction_id": "e2e-new-1",
                "customer_id": customer,
                "event": "api_request",
                "timestamp": event_ts,
                "properties": {"endpoint": "/v1/e2e"},
            }
        )
        + "\n"
        + json.dumps({"transaction_id": "e2e-void-1", "action": "void", "corrects": txn})
        + "\n"
    )
    assert main(["ingest", str(new_batch)]) == 0
    counts = json.loads(capsys.readouterr().out.strip())
    assert (counts["accepted"], counts["corrections"]) == (2, 1), json.dumps(counts)
    assert main(["build", "--quiet"]) == 0
    # one api call added and one voided: the same period's count is unchanged, the event
    # counts moved in lockstep, and the incremental result equals a full rebuild
    after_incremental = mart_totals(warehouse)
    assert after_incremental == before
    assert main(["build", "--quiet", "--full-refresh"]) == 0
    assert mart_totals(warehouse) == after_incremental


def flagged_rows(warehouse: Path) -> set[tuple[str, str, str, str]]:
    with open_warehouse(warehouse, read_only=True) as con:
        rows = con.execute(
            "select customer_id, meter_code, strftime(period_start, '%Y-%m-%dT%H:%M:%SZ'), status "
            "from marts.fct_invoice_reconciliation where status != 'matched'"
        ).fetchall()
    return set(rows)


def expected_flagged(demo_dir: Path) -> set[tuple[str, str, str, str]]:
    with (demo_dir / "stripe" / "expected_reconciliation.csv").open() as f:
        return {
            (r["customer_id"], r["meter_code"], r["period_start_utc"], r["status"])
            for r in csv.DictReader(f)
        }


def test_reconciliation_reports_exactly_the_planted_defects(small_demo) -> None:
    home, out, _ = small_demo
    expected = expected_flagged(home / "demo")
    statuses = {status for *_, status in expected}
    # the small demo still plants one defect of every kind
    assert statuses == {
        "missing_invoice", "unbilled_usage", "amount_mismatch", "quantity_mismatch",
        "invoice_without_usage",
    }  # fmt: skip
    assert flagged_rows(home / "warehouse.duckdb") == expected
    assert "reconciliation (customer x closed period x meter)" in out
    with open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        open_charges, unrated = con.execute(
            "select count(*), count(*) filter (where price_id is not null and "
            "(amount_to_date is null or projected_amount is null)) "
            "from marts.fct_projected_invoice"
        ).fetchone()
    assert open_charges > 0 and unrated == 0


def test_api_sync_of_the_same_account_reconciles_identically(small_demo, monkeypatch, capsys):
    """The demo's Stripe account served by the Stripe-compatible test server, synced through the
    real SDK by `meterworks sync-stripe`, gives the same reconciliation as the export."""
    from tests.stripe_server import StripeTestServer

    home, _, _ = small_demo
    exports = home / "demo" / "stripe"
    with StripeTestServer() as server:
        for name in ("customers", "products", "billing_meters", "prices", "subscriptions",
                     "invoices", "credit_notes"):  # fmt: skip
            path = exports / f"{name}.jsonl"
            for line in path.read_text().splitlines() if path.exists() else []:
                server.add(json.loads(line))
        with open_warehouse(home / "warehouse.duckdb") as con:
            exported = dict(
                con.execute(
                    "select object_type, count(*) from raw.stripe_objects group by 1"
                ).fetchall()
            )
            con.execute("delete from raw.stripe_objects")
            con.execute("delete from raw.stripe_sync_state")
        monkeypatch.setenv("STRIPE_API_KEY", server.api_key)
        monkeypatch.setenv("STRIPE_API_BASE", server.url)
        assert main(["sync-stripe", "--full"]) == 0
        counts = json.loads(capsys.readouterr().out.strip())
        assert server.api_key not in json.dumps(counts)
        assert counts["mode"] == "full"
        for object_type, n in exported.items():
            assert counts[object_type] == n, object_type
        # the build syncs again: incremental now, through /v1/events
        assert main(["build", "--quiet"]) == 0
    assert flagged_rows(home / "warehouse.duckdb") == expected_flagged(home / "demo")


def test_mrr_report_of_the_last_closed_month_adds_up(small_demo, capsys) -> None:
    """`meterworks report mrr` on the demo: the CSV and the workbook open and the bridge holds."""
    import datetime as dt

    import pandas as pd
    from openpyxl import load_workbook

    home, _, _ = small_demo
    first_of_this_month = dt.datetime.now(dt.UTC).date().replace(day=1)
    month = (first_of_this_month - dt.timedelta(days=1)).strftime("%Y-%m")
    assert main(["report", "mrr", "--month", month]) == 0
    csv_path, xlsx_path = (Path(p) for p in capsys.readouterr().out.split())
    assert csv_path.name == f"mrr-{month}.csv" and xlsx_path.name == f"mrr-{month}.xlsx"

    report = pd.read_csv(csv_path)
    bridge = report[report["section"] == "bridge"].set_index("line")
    moves = bridge.drop(index="ending_mrr")
    assert (moves["value"] * moves["sign"]).sum() == pytest.approx(
        bridge.loc["ending_mrr", "value"]
    )
    with open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        ending = con.execute(
            "select ending_mrr from marts.fct_mrr_movements where strftime(month, '%Y-%m') = ?",
            [month],
        ).fetchone()[0]
    assert ending > 0
    assert Decimal(str(bridge.loc["ending_mrr", "value"])) == pytest.approx(Decimal(ending) / 100)
    workbook = load_workbook(xlsx_path)
    assert {"Summary", "Customer movements", "Trend", "Notes"} <= set(workbook.sheetnames)


def test_ops_adjustments_flow_into_the_projection_and_reconciliation(small_demo, capsys) -> None:
    """Adjustments made through the app-state API reach the billing marts at the next build:
    a usage adjustment that brings the planted unbilled period back to what was invoiced makes
    it reconcile, and a credit on an open period is a negative line of the projected invoice.
    (Last of the small-demo tests: it changes the warehouse.)"""
    from meterworks.state import AdjustmentRequest, create_adjustment, make_engine, state_url
    from meterworks.state import upgrade as upgrade_state

    home, _, _ = small_demo
    with open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        unbilled = con.execute(
            "select customer_id, meter_code, period_start, period_end, measured_quantity,"
            " invoiced_quantity from marts.fct_invoice_reconciliation"
            " where status = 'unbilled_usage' and invoiced_quantity is not null"
            " order by customer_id limit 1"
        ).fetchone()
        customer, currency, start, end, before = con.execute(
            "select customer_id, currency, period_start, period_end, sum(projected_amount)"
            " from marts.fct_projected_invoice"
            " where charge_type = 'metered' and currency is not null"
            " group by all order by customer_id limit 1"
        ).fetchone()
    engine = make_engine(state_url(home))
    upgrade_state(engine)
    cust, meter, p_start, p_end, measured, invoiced = unbilled
    usage = create_adjustment(
        engine,
        AdjustmentRequest(
            customer_id=cust, kind="usage", period_start=p_start, period_end=p_end,
            reason_code="usage_correction", note="late events counted after the invoice",
            meter_code=meter, quantity=invoiced - measured,
        ),
        actor="ops@example.test",
    )  # fmt: skip
    create_adjustment(
        engine,
        AdjustmentRequest(
            customer_id=customer, kind="credit", period_start=start, period_end=end,
            reason_code="service_outage", note="4 h outage", amount_minor=1234, currency=currency,
        ),
        actor="ops@example.test",
    )  # fmt: skip
    engine.dispose()
    assert main(["build", "--quiet"]) == 0
    capsys.readouterr()
    with open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        row = con.execute(
            "select status, measured_quantity, adjustment_quantity"
            " from marts.fct_invoice_reconciliation"
            " where customer_id = ? and meter_code = ? and period_start = ?",
            [cust, meter, p_start],
        ).fetchone()
        credit = con.execute(
            "select charge_type, amount_to_date, projected_amount, subscription_item_id"
            " from marts.fct_projected_invoice where customer_id = ? and charge_type = 'credit'",
            [customer],
        ).fetchall()
        after = con.execute(
            "select sum(projected_amount) from marts.fct_projected_invoice"
            " where customer_id = ? and currency = ? and period_start = ?"
            " and charge_type in ('metered', 'credit')",
            [customer, currency, start],
        ).fetchone()[0]
    assert row == ("matched", invoiced, invoiced - measured)
    assert usage.adjustment_id.startswith("adj_")
    assert [c[:3] for c in credit] == [("credit", -1234, -1234)]
    assert after == pytest.approx(before - 1234, abs=50)  # the run rate moved a little since


@pytest.mark.slow
def test_full_default_demo_matches_its_manifest(home, dbt_manifest, capsys) -> None:
    """The exact README command (default size, ~1.1 M rows in five shapes)."""
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((home / "demo" / "manifest.json").read_text())
    assert_counts_match_manifest(ingest_line(out), manifest)
    assert mart_totals(home / "warehouse.duckdb") == normalized(expected_totals(home / "demo"))
    assert flagged_rows(home / "warehouse.duckdb") == expected_flagged(home / "demo")
