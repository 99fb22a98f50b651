"""Quota thresholds on hand-made marts: each rule of issue 5 (fast, no dbt)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from alerts import thresholds as th
from alerts.thresholds import (
    PROJECTION_PAYLOAD_SCHEMA,
    THRESHOLD_PAYLOAD_SCHEMA,
    alert_id_for,
    evaluate_thresholds,
)
from meterworks.warehouse import connect

JAN = (datetime(2026, 1, 1), datetime(2026, 2, 1))
FEB = (datetime(2026, 2, 1), datetime(2026, 3, 1))
# America/Los_Angeles calendar months in UTC (PST = UTC-8)
LA_FEB = (datetime(2026, 2, 1, 8), datetime(2026, 3, 1, 8))
LA_MAR = (datetime(2026, 3, 1, 8), datetime(2026, 4, 1, 7))  # DST starts 8 March


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = connect(tmp_path / "w.duckdb")
    con.execute("create schema marts")
    con.execute(
        """
        create table marts.fct_projected_invoice (
            customer_id varchar, charge_source varchar, subscription_id varchar,
            subscription_item_id varchar, charge_type varchar, meter_code varchar,
            price_id varchar, price_source varchar, currency varchar,
            period_start timestamp, period_end timestamp, as_of timestamp,
            included decimal(38, 9), quantity_to_date decimal(38, 9), amount_to_date hugeint,
            projected_quantity decimal(38, 9), projected_amount hugeint
        )
        """
    )
    con.execute(
        """
        create table marts.fct_meter_totals (
            customer_id varchar, meter_code varchar, dimensions varchar, period_month date,
            period_start timestamp, period_end timestamp, timezone varchar, aggregation varchar,
            quantity decimal(38, 9), event_count bigint, last_event_at timestamp,
            last_event_seq bigint
        )
        """
    )
    yield con
    con.close()


def project(con, rows: list[dict]) -> None:
    """Replace the projected invoice with ``rows`` (defaults: acme, api_calls, 1000 included)."""
    con.execute("delete from marts.fct_projected_invoice")
    for r in rows:
        row = {
            "customer_id": "acme",
            "charge_source": "catalog",
            "subscription_id": None,
            "subscription_item_id": f"catalog:{r.get('customer_id', 'acme')}:api_calls",
            "charge_type": "metered",
            "meter_code": "api_calls",
            "price_id": "catalog:pro:api_calls",
            "price_source": "catalog",
            "currency": "usd",
            "period_start": JAN[0],
            "period_end": JAN[1],
            "as_of": None,
            "included": 1000,
            "quantity_to_date": 0,
            "amount_to_date": 0,
            "projected_quantity": None,
            "projected_amount": 0,
            **r,
        }
        row["projected_quantity"] = row["projected_quantity"] or row["quantity_to_date"]
        cols = list(row)
        con.execute(
            f"insert into marts.fct_projected_invoice ({', '.join(cols)}) "
            f"values ({', '.join('?' for _ in cols)})",
            [row[c] for c in cols],
        )


def totals(con, customer_id, meter_code, period, quantity, tz="UTC") -> None:
    con.execute(
        "delete from marts.fct_meter_totals where customer_id = ? and meter_code = ? "
        "and period_start = ?",
        [customer_id, meter_code, period[0]],
    )
    con.execute(
        "insert into marts.fct_meter_totals values (?, ?, '{}', ?, ?, ?, ?, 'count', ?, 1, "
        "null, null)",
        [customer_id, meter_code, period[0].date(), period[0], period[1], tz, quantity],
    )


def fired(run) -> list[tuple]:
    return [
        (c.customer_id, c.meter_code, c.period_start, float(c.threshold_value)) for c in run.fired
    ]


def outbox(con) -> list[tuple]:
    return con.execute(
        "select alert_id, event_type, customer_id, payload, delivery_status from alerts.outbox "
        "order by created_at, alert_id"
    ).fetchall()


def state(con, **where) -> dict[float, tuple]:
    rows = con.execute(
        "select threshold_value, status, armed_at, fired_at, reason from alerts.threshold_state "
        "where customer_id = ? and meter_code = ? and period_start = ?",
        [where.get("customer_id", "acme"), where.get("meter_code", "api_calls"), where["start"]],
    ).fetchall()
    return {float(v): tuple(rest) for v, *rest in rows}


def d(day: int, month: int = 1, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour)


def seed_rules(con, at: datetime = datetime(2025, 12, 31), **kwargs) -> None:
    """A first evaluation before the period starts, so the rules pre-date it."""
    project(con, [{"period_start": datetime(2025, 12, 1), "period_end": JAN[0]}])
    evaluate_thresholds(con, now=at, **kwargs)


def test_fires_once_per_threshold_in_order_and_never_twice(con):
    seed_rules(con)
    seen = []
    for day, quantity in [(3, 100), (8, 520), (12, 700), (15, 810), (20, 990), (25, 1000)]:
        project(con, [{"quantity_to_date": quantity}])
        run = evaluate_thresholds(con, now=d(day))
        seen.append([v for *_, v in fired(run)])
    assert seen == [[], [50.0], [], [80.0], [], [100.0]]
    run = evaluate_thresholds(con, now=d(26))  # same usage: nothing new
    assert run.fired == []
    assert [json.loads(p)["threshold"]["value"] for _, _, _, p, _ in outbox(con)] == [50, 80, 100]
    st = state(con, start=JAN[0])
    assert {v: s[0] for v, s in st.items()} == {50.0: "fired", 80.0: "fired", 100.0: "fired"}
    assert st[50.0][2] == d(8) and st[80.0][2] == d(15) and st[100.0][2] == d(25)


def test_one_jump_fires_every_threshold_below_it(con):
    seed_rules(con)
    project(con, [{"quantity_to_date": 1200}])
    assert [v for *_, v in fired(evaluate_thresholds(con, now=d(5)))] == [50.0, 80.0, 100.0]
    payload = json.loads(outbox(con)[-1][3])
    assert payload["percent_used"] == 120.0 and payload["included"] == 1000


def test_rearms_next_period(con):
    seed_rules(con)
    project(con, [{"quantity_to_date": 600}])
    assert len(evaluate_thresholds(con, now=d(20)).fired) == 1
    project(con, [{"quantity_to_date": 600, "period_start": FEB[0], "period_end": FEB[1]}])
    run = evaluate_thresholds(con, now=d(10, month=2))
    assert fired(run) == [("acme", "api_calls", FEB[0], 50.0)]
    assert alert_id_for("acme", "api_calls", FEB[0], "percent", 50) != alert_id_for(
        "acme", "api_calls", JAN[0], "percent", 50
    )
    assert len(outbox(con)) == 2


def test_threshold_added_mid_period(con):
    seed_rules(con)
    project(con, [{"quantity_to_date": 850}])
    assert [v for *_, v in fired(evaluate_thresholds(con, now=d(10)))] == [50.0, 80.0]
    # mid-period the customer adds 70 % (already passed) and 90 % (not yet reached)
    custom = {"acme": [50, 70, 80, 90, 100]}
    run = evaluate_thresholds(con, now=d(12), customer_thresholds=custom)
    assert run.fired == []
    assert [(r[3], float(r[4])) for r in run.passed] == [("percent", 70.0)]
    st = state(con, start=JAN[0])
    assert st[70.0] == ("passed", None, None, "already passed when first seen")
    assert st[90.0][0] == "armed"
    project(con, [{"quantity_to_date": 950}])
    assert [
        v for *_, v in fired(evaluate_thresholds(con, now=d(15), customer_thresholds=custom))
    ] == [90.0]
    project(con, [{"quantity_to_date": 1000}])
    run = evaluate_thresholds(con, now=d(20), customer_thresholds=custom)
    assert [v for *_, v in fired(run)] == [100.0]  # never 70
    # next period the 70 % rule pre-dates the period: it fires normally
    project(con, [{"quantity_to_date": 750, "period_start": FEB[0], "period_end": FEB[1]}])
    run = evaluate_thresholds(con, now=d(5, month=2), customer_thresholds=custom)
    assert [v for *_, v in fired(run)] == [50.0, 70.0]


def test_first_ever_evaluation_mid_period_does_not_flood(con):
    project(con, [{"quantity_to_date": 900}])
    run = evaluate_thresholds(con, now=d(15))
    assert run.fired == [] and len(run.passed) == 2
    project(con, [{"quantity_to_date": 1000}])
    assert [v for *_, v in fired(evaluate_thresholds(con, now=d(16)))] == [100.0]


def test_correction_down_then_up_does_not_refire(con):
    seed_rules(con)
    for day, quantity, expect in [(5, 820, [50.0, 80.0]), (6, 400, []), (7, 830, [])]:
        project(con, [{"quantity_to_date": quantity}])
        assert [v for *_, v in fired(evaluate_thresholds(con, now=d(day)))] == expect
    assert len(outbox(con)) == 2


def test_period_boundary_in_customer_time_zone(con):
    """Usage at 2026-03-01 02:00 UTC is 2026-02-28 18:00 in Los Angeles: February's period."""
    seed_rules(con, at=datetime(2026, 1, 31))
    project(
        con,
        [
            {
                "customer_id": "west",
                "period_start": LA_FEB[0],
                "period_end": LA_FEB[1],
                "quantity_to_date": 400,
            }
        ],
    )
    evaluate_thresholds(con, now=datetime(2026, 2, 28, 20))
    # 2026-03-01 02:00 UTC: February is still open in LA; the event lands in it
    project(
        con,
        [
            {
                "customer_id": "west",
                "period_start": LA_FEB[0],
                "period_end": LA_FEB[1],
                "quantity_to_date": 600,
            }
        ],
    )
    run = evaluate_thresholds(con, now=datetime(2026, 3, 1, 2))
    assert fired(run) == [("west", "api_calls", LA_FEB[0], 50.0)]
    assert json.loads(outbox(con)[0][3])["period_start"] == "2026-02-01T08:00:00Z"
    # at 09:00 UTC March has begun in LA: fresh state rows, February's untouched
    project(
        con,
        [
            {
                "customer_id": "west",
                "period_start": LA_MAR[0],
                "period_end": LA_MAR[1],
                "quantity_to_date": 10,
            }
        ],
    )
    totals(con, "west", "api_calls", LA_FEB, 600, tz="America/Los_Angeles")
    run = evaluate_thresholds(con, now=datetime(2026, 3, 1, 9))
    assert run.fired == [] and run.periods_closed == 1
    assert state(con, customer_id="west", start=LA_MAR[0])[50.0][0] == "armed"


def test_late_event_fires_for_closed_period(con):
    seed_rules(con)
    project(con, [{"quantity_to_date": 790}])
    evaluate_thresholds(con, now=datetime(2026, 1, 31, 23))
    # February opens; January (790) is closed and remembered
    project(con, [{"quantity_to_date": 5, "period_start": FEB[0], "period_end": FEB[1]}])
    totals(con, "acme", "api_calls", JAN, 790)
    assert evaluate_thresholds(con, now=d(2, month=2)).fired == []
    # a late January event arrives: the meter totals for January grow past 80 %
    totals(con, "acme", "api_calls", JAN, 805)
    run = evaluate_thresholds(con, now=d(3, month=2))
    assert fired(run) == [("acme", "api_calls", JAN[0], 80.0)]
    payload = json.loads(outbox(con)[-1][3])
    assert payload["period_closed"] is True and payload["quantity"] == 805
    assert payload["period_end"] == "2026-02-01T00:00:00Z"
    # beyond the backdating window a closed period is no longer re-evaluated
    totals(con, "acme", "api_calls", JAN, 2000)
    assert evaluate_thresholds(con, now=datetime(2026, 3, 10)).fired == []


def test_closed_period_from_caller_usage(con):
    """A subscription period that is not a calendar month: the caller passes its usage."""
    start, end = datetime(2026, 1, 15, 10, 30), datetime(2026, 2, 15, 10, 30)
    seed_rules(con, at=datetime(2026, 1, 1))
    project(con, [{"period_start": start, "period_end": end, "quantity_to_date": 100}])
    evaluate_thresholds(con, now=d(20))
    project(con, [{"period_start": end, "period_end": datetime(2026, 3, 15, 10, 30)}])
    run = evaluate_thresholds(con, now=d(16, month=2))
    assert run.unresolved == [("acme", "api_calls", start)] and run.fired == []
    run = evaluate_thresholds(
        con, now=d(17, month=2), closed_usage={("acme", "api_calls", start): 500}
    )
    assert fired(run) == [("acme", "api_calls", start, 50.0)]


def test_spend_threshold_on_projected_amount(con):
    spend = {"acme": [100, 500]}  # $100 and $500: major units of the invoice currency
    seed_rules(con, spend_thresholds=spend)
    rows = [
        {"quantity_to_date": 100, "amount_to_date": 2_000, "projected_amount": 8_000},
        {
            "charge_type": "licensed",
            "meter_code": None,
            "subscription_item_id": "base",
            "included": None,
            "amount_to_date": 4_900,
            "projected_amount": 4_900,
        },
    ]
    project(con, rows)
    run = evaluate_thresholds(con, now=d(5), spend_thresholds=spend)
    # 8,000 + 4,900 = 12,900 >= 10,000, but the rule pre-dates the period, so it fires
    assert fired(run) == [("acme", "invoice:usd", JAN[0], 10000.0)]
    payload = json.loads(outbox(con)[-1][3])
    assert payload["threshold"] == {"kind": "spend", "value": 10000, "unit": "minor_units"}
    assert payload["event_type"] == "invoice.projection_exceeded"
    assert payload["projected_amount"] == 12_900 and payload["meter_code"] is None
    assert evaluate_thresholds(con, now=d(6), spend_thresholds=spend).fired == []


def test_no_percent_thresholds_without_allowance(con):
    seed_rules(con)
    project(con, [{"included": None, "quantity_to_date": 10**6}])
    assert evaluate_thresholds(con, now=d(5)).fired == []
    assert state(con, start=JAN[0]) == {}


def test_graduated_free_first_tier_is_the_allowance(con):
    con.execute("create schema intermediate")
    con.execute(
        "create table intermediate.int_billing_prices as select 'price_g' as price_id, "
        "'tiered' as billing_scheme, 'graduated' as tiers_mode"
    )
    con.execute(
        "create table intermediate.int_billing_price_tiers as select * from (values "
        "('price_g', 1, 10.0, 0.0, null), ('price_g', 2, null, 250.0, 100.0)) "
        "as t(price_id, tier_index, up_to, unit_amount_decimal, flat_amount_decimal)"
    )
    seed_rules(con)
    project(con, [{"included": None, "price_id": "price_g", "quantity_to_date": 8}])
    run = evaluate_thresholds(con, now=d(5))
    assert [v for *_, v in fired(run)] == [50.0, 80.0]
    assert json.loads(outbox(con)[-1][3])["included"] == 10


def test_stable_alert_ids_and_idempotent_outbox(con):
    a = alert_id_for("acme", "api_calls", JAN[0], "percent", 50)
    assert a == alert_id_for("acme", "api_calls", JAN[0], "percent", 50.0)
    assert a.startswith("thr_") and len(a) == 36
    assert a != alert_id_for("acme", "api_calls", JAN[0], "percent", 80)
    seed_rules(con)
    project(con, [{"quantity_to_date": 600}])
    run = evaluate_thresholds(con, now=d(5))
    assert run.fired[0].alert_id == a
    before = outbox(con)
    con.execute("begin transaction")
    th._write_outbox(con, run.fired, d(6))  # the same alert again: a no-op
    con.execute("commit")
    assert outbox(con) == before and before[0][4] == "pending"


def test_payload_matches_schema(con):
    import jsonschema

    seed_rules(con, spend_thresholds={"acme": [1]})
    project(con, [{"quantity_to_date": 1000, "projected_amount": 500}])
    evaluate_thresholds(con, now=d(5), spend_thresholds={"acme": [1]})
    rows = outbox(con)
    schemas = {
        "usage.threshold_crossed": THRESHOLD_PAYLOAD_SCHEMA,
        "invoice.projection_exceeded": PROJECTION_PAYLOAD_SCHEMA,
    }
    assert sorted(r[1] for r in rows) == [
        "invoice.projection_exceeded",
        "usage.threshold_crossed",
        "usage.threshold_crossed",
        "usage.threshold_crossed",
    ]
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    for _, event_type, _, text, _ in rows:
        payload = json.loads(text)
        assert payload["event_type"] == event_type
        jsonschema.validate(payload, schemas[event_type])
        other = next(s for t, s in schemas.items() if t != event_type)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(payload, other)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**payload, "schema_version": 2}, schemas[event_type])


def test_one_transaction_nothing_partial(con, monkeypatch):
    seed_rules(con)
    tables = ["threshold_periods", "threshold_rules", "threshold_state", "outbox", "threshold_runs"]

    def snapshot():
        return {t: con.execute(f"select * from alerts.{t} order by all").fetchall() for t in tables}

    before = snapshot()
    project(con, [{"quantity_to_date": 900}])

    def boom(*args, **kwargs):
        raise RuntimeError("outbox down")

    monkeypatch.setattr(th, "_write_outbox", boom)
    with pytest.raises(RuntimeError):
        evaluate_thresholds(con, now=d(5))
    assert snapshot() == before
    monkeypatch.undo()
    assert [v for *_, v in fired(evaluate_thresholds(con, now=d(6)))] == [50.0, 80.0]


def test_crossings_mart_lists_fired_and_passed_with_figures_at_crossing(con):
    seed_rules(con)
    project(con, [{"quantity_to_date": 850}])
    evaluate_thresholds(con, now=d(10))
    custom = {"acme": [50, 70, 80, 100]}
    evaluate_thresholds(con, now=d(12), customer_thresholds=custom)
    project(con, [{"quantity_to_date": 1200}])
    evaluate_thresholds(con, now=d(15), customer_thresholds=custom)
    rows = con.execute(
        "select threshold_value::double, status, quantity_at_crossing::double,"
        " percent_used_at_crossing, level_when_rule_arrived::double, last_level::double,"
        " alert_id is not null, event_type, delivery_status, included::double, currency"
        " from marts.fct_threshold_crossings order by threshold_value"
    ).fetchall()
    assert rows == [
        (50.0, "fired", 850.0, 85.0, 85.0, 120.0, True, "usage.threshold_crossed", "pending",
         1000.0, "usd"),
        (70.0, "passed", None, None, 85.0, 120.0, False, None, None, 1000.0, "usd"),
        (80.0, "fired", 850.0, 85.0, 85.0, 120.0, True, "usage.threshold_crossed", "pending",
         1000.0, "usd"),
        (100.0, "fired", 1200.0, 120.0, 85.0, 120.0, True, "usage.threshold_crossed", "pending",
         1000.0, "usd"),
    ]  # fmt: skip
