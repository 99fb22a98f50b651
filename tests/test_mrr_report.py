"""The finance MRR report: files, bridge, customer movements, reproducibility, Dagster, CLI.

The MRR marts are built by dbt elsewhere; here ``marts.fct_mrr`` and ``marts.fct_mrr_movements``
are hand-made in a temp warehouse (the bridge below is worked out by hand in the comments).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from openpyxl import load_workbook

from meterworks.reports import ReportError, parse_month, write_mrr_report

D = Decimal
MONTHS = [date(2026, 7, 1), date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1)]

# customer -> MRR per month, in USD cents (minor units, exact); None: no row that month.
# cus_a  new Jul 100.00, expansion Sep to 150.00
# cus_b  new Jul 50.005, contraction Oct to 33.33333333 (fractional minor units)
# cus_c  new Aug EUR 200.00 at 1.1 = USD 220.00, churn Oct
# cus_d  new Jul 40.00, churn Aug, gap Sep, reactivation Oct 45.00
# cus_e  steady 70.00
HISTORY: dict[str, list[Decimal | None]] = {
    "cus_a": [D("10000"), D("10000"), D("15000"), D("15000")],
    "cus_b": [D("5000.5"), D("5000.5"), D("5000.5"), D("3333.333333")],
    "cus_c": [None, D("22000"), D("22000"), D("0")],
    "cus_d": [D("4000"), D("0"), D("0"), D("4500")],
    "cus_e": [D("7000"), D("7000"), D("7000"), D("7000")],
}
POLICIES = (
    "Annual prices count 1/12 per month.\nCancelling one of two subscriptions is contraction."
)

FCT_MRR_DDL = """
create schema if not exists marts;
create table marts.fct_mrr (
    month date, customer_id varchar, mrr decimal(38,6), usage_mrr decimal(38,6),
    previous_mrr decimal(38,6), mrr_change decimal(38,6), movement varchar, currency varchar,
    fx_rate decimal(18,8), reporting_currency varchar, active_subscriptions integer
);
create table marts.fct_mrr_movements (
    month date, reporting_currency varchar, starting_mrr decimal(38,6), new_mrr decimal(38,6),
    expansion_mrr decimal(38,6), reactivation_mrr decimal(38,6), contraction_mrr decimal(38,6),
    churned_mrr decimal(38,6), ending_mrr decimal(38,6), starting_customers bigint,
    ending_customers bigint, new_customers bigint, expansion_customers bigint,
    reactivation_customers bigint, contraction_customers bigint, churned_customers bigint,
    arr decimal(38,6), arpa decimal(38,6), nrr decimal(18,6), grr decimal(18,6),
    nrr_ttm decimal(18,6), grr_ttm decimal(18,6), logo_churn_rate decimal(18,6),
    usage_mrr decimal(38,6)
);
"""


def _movement(previous: Decimal | None, mrr: Decimal, churned_before: bool) -> str | None:
    if previous is None:
        return "new" if mrr > 0 else None
    if mrr == 0:
        return "churn" if previous > 0 else None
    if previous == 0:
        return "reactivation" if churned_before else "new"
    if mrr > previous:
        return "expansion"
    return "contraction" if mrr < previous else None


def build_warehouse(path: Path) -> None:
    """fct_mrr from HISTORY, and its monthly bridge (the way the mart defines it)."""
    con = duckdb.connect(str(path))
    con.execute(FCT_MRR_DDL)
    for i, month in enumerate(MONTHS):
        lines = dict.fromkeys(("new", "expansion", "reactivation", "contraction", "churn"), D(0))
        counts = dict.fromkeys(lines, 0)
        starting = ending = D(0)
        starting_customers = ending_customers = 0
        for customer, series in HISTORY.items():
            mrr = series[i]
            if mrr is None:
                continue
            previous = series[i - 1] if i else None
            churned_before = any(v == 0 for v in series[:i] if v is not None)
            movement = _movement(previous, mrr, churned_before)
            change = mrr - (previous or D(0))
            currency, fx = ("eur", D("1.1")) if customer == "cus_c" else ("usd", D(1))
            con.execute(
                "insert into marts.fct_mrr values (?, ?, ?, ?, ?, ?, ?, ?, ?, 'usd', 1)",
                [month, customer, mrr, D(0), previous, change, movement, currency, fx],
            )
            starting += previous or D(0)
            ending += mrr
            starting_customers += int((previous or 0) > 0)
            ending_customers += int(mrr > 0)
            if movement:
                lines[movement] += abs(change)
                counts[movement] += 1
        nrr = (
            (starting + lines["expansion"] - lines["contraction"] - lines["churn"]) / starting
            if starting
            else None
        )
        grr = (starting - lines["contraction"] - lines["churn"]) / starting if starting else None
        con.execute(
            "insert into marts.fct_mrr_movements values "
            "(?, 'usd', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, null, ?, ?)",
            [
                month, starting, lines["new"], lines["expansion"], lines["reactivation"],
                lines["contraction"], lines["churn"], ending, starting_customers,
                ending_customers, counts["new"], counts["expansion"], counts["reactivation"],
                counts["contraction"], counts["churn"], ending * 12,
                ending / ending_customers if ending_customers else None,
                None if nrr is None else round(nrr, 6), None if grr is None else round(grr, 6),
                D(counts["churn"]) / starting_customers if starting_customers else None,
                D("1234.5"),
            ],
        )  # fmt: skip
    con.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    build_warehouse(path)
    return path


def _write(warehouse: Path, out: Path, month: date = date(2026, 10, 1)):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return write_mrr_report(con, month, out, policies=POLICIES)
    finally:
        con.close()


def test_october_bridge_as_worked_out_by_hand(warehouse: Path) -> None:
    con = duckdb.connect(str(warehouse), read_only=True)
    row = con.execute(
        "select starting_mrr, new_mrr, expansion_mrr, reactivation_mrr, contraction_mrr, "
        "churned_mrr, ending_mrr from marts.fct_mrr_movements where month = '2026-10-01'"
    ).fetchone()
    con.close()
    # start 150 + 50.005 + 220 + 70; reactivation cus_d 45; contraction cus_b 16.67166667;
    # churn cus_c 220 -> ending 150 + 33.33333333 + 45 + 70
    assert row == (
        D("49000.5"), D(0), D(0), D("4500"), D("1667.166667"), D("22000"), D("29833.333333")
    )  # fmt: skip


def test_csv_bridge_metrics_and_customers(warehouse: Path, tmp_path: Path) -> None:
    files = _write(warehouse, tmp_path / "reports")
    assert files.csv.name == "mrr-2026-10.csv" and files.xlsx.name == "mrr-2026-10.xlsx"
    assert files.bridge_holds and files.customers_reconcile and files.movers == 3

    frame = pd.read_csv(files.csv, dtype={"value": str, "mrr_change": str, "mrr": str})
    assert set(frame["section"]) == {"bridge", "metric", "customer"}
    assert (frame["month"] == "2026-10").all()
    bridge = frame[frame["section"] == "bridge"]
    assert list(bridge["line"]) == [
        "starting_mrr", "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr",
        "churned_mrr", "ending_mrr",
    ]  # fmt: skip
    values = dict(zip(bridge["line"], bridge["value"].map(Decimal), strict=True))
    # exact, in dollars: no rounding in the CSV
    assert values["starting_mrr"] == D("490.005")
    assert values["contraction_mrr"] == D("16.67166667")
    assert values["ending_mrr"] == D("298.33333333")
    components = bridge[bridge["line"] != "ending_mrr"]
    total = sum(
        (Decimal(v) * int(s) for v, s in zip(components["value"], components["sign"], strict=True)),
        Decimal(0),
    )
    assert total == values["ending_mrr"]  # the bridge adds up exactly

    metrics = frame[frame["section"] == "metric"].set_index("line")
    assert metrics.loc["ending_customers", "value"] == "4"
    assert metrics.loc["churned_customers", "value"] == "1"
    assert Decimal(metrics.loc["arr", "value"]) == D("298.33333333") * 12
    assert metrics.loc["nrr", "unit"] == "ratio"
    assert pd.isna(metrics.loc["nrr_ttm", "value"])

    customers = frame[frame["section"] == "customer"]
    assert list(customers["customer_id"]) == ["cus_d", "cus_b", "cus_c"]  # bridge order
    assert list(customers["movement"]) == ["reactivation", "contraction", "churn"]
    assert list(customers["mrr_change"].map(Decimal)) == [D(45), D("-16.67166667"), D(-220)]
    assert list(customers["customer_currency"]) == ["USD", "USD", "EUR"]
    by_movement = customers.groupby("movement")["mrr_change"].apply(
        lambda s: sum(map(Decimal, s), Decimal(0))
    )
    assert by_movement["reactivation"] == values["reactivation_mrr"]
    assert -by_movement["contraction"] == values["contraction_mrr"]
    assert -by_movement["churn"] == values["churned_mrr"]


def test_workbook_sheets_bridge_and_trend(warehouse: Path, tmp_path: Path) -> None:
    files = _write(warehouse, tmp_path / "reports")
    wb = load_workbook(files.xlsx)
    assert wb.sheetnames == ["Summary", "Customer movements", "Trend", "Notes"]

    summary = {row[0]: row[1:] for row in wb["Summary"].iter_rows(values_only=True) if row[0]}
    amounts = [
        summary[label][0]
        for label in ("Starting MRR", "New", "Expansion", "Reactivation", "Contraction", "Churn")
    ]
    rounding = summary["Display rounding (to whole minor units)"][0]
    # half-up to the cent: 490.005 -> 490.01; 16.67166667 -> 16.67; 298.33333333 -> 298.33
    assert amounts == [490.01, 0.0, 0.0, 45.0, -16.67, -220.0]
    reported = summary["Ending MRR (reported by marts.fct_mrr_movements)"][0]
    assert reported == 298.33
    assert round(sum(amounts) + rounding - reported, 2) == 0
    assert rounding == pytest.approx(-0.01)
    assert summary["Ending MRR (bridge sum)"][0].startswith("=SUM(B5:")  # a live formula
    assert summary["Bridge check (sum = reported)"][0].startswith("=IF(ROUND(")
    assert summary["Bridge difference, exact (minor units)"][0] == 0
    assert summary["Bridge difference, exact (minor units)"][3] == "OK"
    assert summary["Churn"][1:] == (1, -220.0, "OK")  # customers, customer total, check
    cell = wb["Summary"]["B5"]
    assert isinstance(cell.value, float) and cell.number_format == "#,##0.00"
    metrics = {row[0]: row[1] for row in wb["Summary"].iter_rows(values_only=True) if row[0]}
    assert metrics["ARR (USD)"] == pytest.approx(3580.0)
    assert (
        wb["Summary"]
        .cell([c.value for c in wb["Summary"]["A"]].index("NRR (month)") + 1, 2)
        .number_format
        == "0.00%"
    )

    movers = pd.read_excel(files.xlsx, sheet_name="Customer movements")
    assert list(movers["Customer"]) == ["cus_d", "cus_b", "cus_c"]
    assert list(movers["Change (USD)"]) == [45.0, -16.67, -220.0]

    trend = pd.read_excel(files.xlsx, sheet_name="Trend")
    assert list(trend["Month"]) == ["2026-07", "2026-08", "2026-09", "2026-10"]
    components = trend[["Starting MRR", "New", "Expansion", "Reactivation", "Contraction",
                        "Churn", "Display rounding"]].sum(axis=1)  # fmt: skip
    assert ((components - trend["Ending MRR"]).abs() < 1e-9).all()
    assert list(trend["Ending MRR"]) == [260.01, 440.01, 490.01, 298.33]

    notes = [row[0] for row in wb["Notes"].iter_rows(values_only=True) if row[0]]
    assert "Cancelling one of two subscriptions is contraction." in notes
    assert any(line.startswith("Data fingerprint: ") for line in notes)
    assert wb.properties.created.isoformat() == "2026-11-01T00:00:00"
    assert wb.properties.modified.isoformat() == "2026-11-01T00:00:00"


def test_rerun_gives_byte_identical_files(warehouse: Path, tmp_path: Path) -> None:
    first = _write(warehouse, tmp_path / "one")
    second = _write(warehouse, tmp_path / "two")
    assert first.csv.read_bytes() == second.csv.read_bytes()
    assert first.xlsx.read_bytes() == second.xlsx.read_bytes()
    again = _write(warehouse, tmp_path / "one")  # overwrite in place
    assert again.xlsx.read_bytes() == second.xlsx.read_bytes()
    assert not list((tmp_path / "one").glob(".*tmp"))


def test_month_without_data_and_missing_marts(warehouse: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no MRR data for 2026-03 .*2026-07\.\.2026-10"):
        _write(warehouse, tmp_path, date(2026, 3, 1))
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(ReportError, match="run `meterworks build` first"):
        _write(empty, tmp_path)
    assert not list(tmp_path.glob("mrr-*"))


def test_parse_month() -> None:
    assert parse_month("2026-10") == date(2026, 10, 1)
    assert parse_month("2026-10-01") == date(2026, 10, 1)
    for bad in ("2026-13", "10/2026", "2026-1", ""):
        with pytest.raises(ReportError):
            parse_month(bad)


def test_dagster_partition_writes_files(home: Path) -> None:
    import dagster as dg

    from dagster_project.defs.resources import MeterworksResource
    from dagster_project.defs.revenue.assets import mrr_report

    home.mkdir(parents=True)
    build_warehouse(home / "warehouse.duckdb")
    result = dg.materialize(
        [mrr_report],
        partition_key="2026-10-01",
        resources={"meterworks": MeterworksResource(home=str(home))},
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = event.step_materialization_data.materialization.metadata
    assert metadata["bridge_check"].value == "ok"
    assert metadata["ending_mrr"].value == "USD 298.33"
    assert Path(metadata["xlsx"].value) == home / "reports" / "mrr-2026-10.xlsx"
    assert (home / "reports" / "mrr-2026-10.csv").exists()
    assert (home / "reports" / "mrr-2026-10.xlsx").exists()


def test_definitions_job_schedule_and_build_jobs(dbt_manifest) -> None:
    import dagster as dg

    from meterworks.jobs import load_definitions

    definitions = load_definitions()
    job = definitions.resolve_job_def("meterworks_mrr_report")
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {"mrr_report"}
    graph = definitions.resolve_asset_graph()
    assert {dg.AssetKey("fct_mrr"), dg.AssetKey("fct_mrr_movements")} <= set(
        graph.get(dg.AssetKey("mrr_report")).parent_keys
    )
    schedule = definitions.resolve_schedule_def("monthly_mrr_report")
    assert schedule.cron_schedule == "0 6 1 * *" and schedule.execution_timezone == "UTC"
    with dg.build_schedule_context(scheduled_execution_time=_utc(2026, 11, 1, 6)) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-10-01"  # the month just closed


def _utc(*parts: int):
    from datetime import UTC, datetime

    return datetime(*parts, tzinfo=UTC)


def test_cli_report(home: Path, dbt_manifest, capsys: pytest.CaptureFixture[str]) -> None:
    from meterworks.cli import main

    assert main(["report", "mrr", "--month", "2026-13"]) == 2
    assert capsys.readouterr().err == "meterworks: --month must be YYYY-MM, not '2026-13'\n"
    assert main(["report", "mrr", "--month", "2099-01"]) == 2
    err = capsys.readouterr().err
    assert "2099-01 is not a closed month: reports cover 2024-01 to " in err

    home.mkdir(parents=True)
    build_warehouse(home / "warehouse.duckdb")
    assert main(["report", "mrr", "--month", "2026-03"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("meterworks: no MRR data for 2026-03") and "\n" not in err

    assert main(["report", "mrr", "--month", "2026-10"]) == 0
    out = capsys.readouterr().out.split()
    assert out == [
        str(home / "reports" / "mrr-2026-10.csv"),
        str(home / "reports" / "mrr-2026-10.xlsx"),
    ]


def test_builds_leave_the_monthly_report_to_its_schedule(dbt_manifest) -> None:
    """The report is partitioned by month: the build jobs exclude it (a partitioned asset in an
    unpartitioned run cannot know its month), its own job and schedule run it."""
    from meterworks.jobs import load_definitions

    definitions = load_definitions()
    for name in ("meterworks_build", "meterworks_pipeline"):
        keys = definitions.resolve_job_def(name).asset_layer.selected_asset_keys
        assert "mrr_report" not in {key.to_user_string() for key in keys}, name
    report_job = definitions.resolve_job_def("meterworks_mrr_report")
    assert {k.to_user_string() for k in report_job.asset_layer.selected_asset_keys} == {
        "mrr_report"
    }
