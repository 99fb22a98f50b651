"""The finance MRR report for one closed month: ``mrr-YYYY-MM.csv`` and ``mrr-YYYY-MM.xlsx``.

Reads ``marts.fct_mrr_movements`` (the month's bridge, its 12-month trend) and ``marts.fct_mrr``
(the customers that moved). The marts hold amounts in the reporting currency's **minor units**,
``decimal(38,6)``, exact; everything here stays ``Decimal`` until a value is written.

CSV layout (one table, ``pandas.read_csv(path)`` reads it in one call; ``\\n`` line ends)::

    section,month,line,sign,value,unit,customer_id,movement,previous_mrr,mrr,mrr_change,
    customer_currency,fx_rate

- ``section=bridge``: one row per bridge line, in order ``starting_mrr``, ``new_mrr``,
  ``expansion_mrr``, ``reactivation_mrr``, ``contraction_mrr``, ``churned_mrr``, ``ending_mrr``.
  ``value`` is the amount as the mart has it (churn and contraction positive), ``sign`` is ``1`` or
  ``-1`` (empty on ``ending_mrr``), so ``sum(value * sign) == value of ending_mrr`` exactly.
- ``section=metric``: customer counts (``unit=customers``); ``arr``, ``arpa``, ``usage_mrr``,
  ``fx_restatement_mrr`` (``unit`` = the reporting currency; empty when the mart lacks it);
  ``nrr``, ``grr``, ``nrr_ttm``, ``grr_ttm``, ``logo_churn_rate`` (``unit=ratio``, empty when
  undefined, e.g. no starting MRR).
- ``section=customer``: one row per customer with a movement that month (``customer_id``,
  ``movement``, ``previous_mrr``, ``mrr``, ``mrr_change`` in the reporting currency, the customer's
  billing ``customer_currency`` and the ``fx_rate`` used), sorted by movement in bridge order,
  then largest absolute change, then customer id. ``sum(mrr_change)`` per movement equals the
  bridge line (churn and contraction negative).

CSV amounts are in **major units** of the reporting currency (``unit``), exact: the mart's value
moved by the currency's exponent, with at least the currency's decimals and no rounding
(``83.33333333``). The workbook shows the same amounts rounded half-up to whole minor units,
with an explicit display-rounding line so its bridge adds up on screen too.

Reproducible: no wall clock anywhere. The workbook's created/modified properties and every zip
entry's timestamp are the instant the month closed (1st of the next month, 00:00 UTC); rows are
sorted on total keys; files are written to a temporary name and renamed, so a re-run of a closed
month on the same data gives byte-identical files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from meterworks.pricing import minor_unit_exponent


class ReportError(Exception):
    """The report cannot be produced (no data for the month, marts missing); one line."""


@dataclass(frozen=True)
class ReportFiles:
    csv: Path
    xlsx: Path
    #: what the Dagster asset records as metadata
    reporting_currency: str = ""
    ending_mrr_minor: Decimal = Decimal(0)
    bridge_holds: bool = True
    customers_reconcile: bool = True
    movers: int = 0
    fingerprint: str = ""


#: (mart column, label, sign in the bridge)
BRIDGE_LINES: tuple[tuple[str, str, int], ...] = (
    ("starting_mrr", "Starting MRR", 1),
    ("new_mrr", "New", 1),
    ("expansion_mrr", "Expansion", 1),
    ("reactivation_mrr", "Reactivation", 1),
    ("contraction_mrr", "Contraction", -1),
    ("churned_mrr", "Churn", -1),
)
ENDING = ("ending_mrr", "Ending MRR")
MOVEMENTS = ("new", "expansion", "reactivation", "contraction", "churn")
MOVEMENT_LINE = {
    "new": "new_mrr",
    "expansion": "expansion_mrr",
    "reactivation": "reactivation_mrr",
    "contraction": "contraction_mrr",
    "churn": "churned_mrr",
}
MOVEMENT_COUNT = {
    "starting_mrr": "starting_customers",
    "new_mrr": "new_customers",
    "expansion_mrr": "expansion_customers",
    "reactivation_mrr": "reactivation_customers",
    "contraction_mrr": "contraction_customers",
    "churned_mrr": "churned_customers",
    "ending_mrr": "ending_customers",
}
COUNT_METRICS = tuple(MOVEMENT_COUNT.values())
AMOUNT_METRICS = (
    ("arr", "ARR"),
    ("arpa", "ARPA (ending MRR per customer)"),
    ("usage_mrr", "Usage MRR (beside recurring, not in the bridge)"),
    # starting MRR - the previous month's ending MRR: FX revaluation, never a movement
    ("fx_restatement_mrr", "FX restatement of the opening book (in starting MRR)"),
)
RATIO_METRICS = (
    ("nrr", "NRR (month)"),
    ("grr", "GRR (month)"),
    ("nrr_ttm", "NRR (trailing 12 months)"),
    ("grr_ttm", "GRR (trailing 12 months)"),
    ("logo_churn_rate", "Logo churn rate (month)"),
)
CSV_COLUMNS = (
    "section",
    "month",
    "line",
    "sign",
    "value",
    "unit",
    "customer_id",
    "movement",
    "previous_mrr",
    "mrr",
    "mrr_change",
    "customer_currency",
    "fx_rate",
)

DEFAULT_MRR_POLICIES = """\
MRR is recurring subscription revenue normalised to a month (annual / 12, quarterly / 3, weekly x 52 / 12, multi-interval prices divided by their interval), net of discounts, excluding tax, one-off charges and trials, converted to the reporting currency.
Usage revenue (finalized metered invoice lines for services in the month) is reported beside it as usage MRR and never mixed into MRR.
Each customer-month is classified first match wins: new (first paying month), churn (first month with zero MRR after a paying month), reactivation (paying again after churn), expansion (MRR up), contraction (MRR down).
A customer with several subscriptions is one customer: cancelling one of two is contraction, not churn.
Finite coupons reduce MRR while they apply; their expiry is expansion.
A cancellation at period end churns in the first month with no paid service. past_due subscriptions still count; trialing and incomplete ones do not.
Past months come from invoice line service periods (what was actually billed); the current month from live subscription items.
Other currencies are converted with the FX table (the rate used is kept on each customer-month); FX moves never create movements.
Bridge: ending MRR = starting MRR + new + expansion + reactivation - contraction - churn, exactly, every month.
NRR = (starting + expansion - contraction - churn) / starting; GRR = (starting - contraction - churn) / starting."""


def parse_month(text: str) -> date:
    """``YYYY-MM`` (or a ``YYYY-MM-01`` partition key) -> the 1st of that month."""
    match = re.fullmatch(r"(\d{4})-(\d{2})(?:-01)?", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ReportError(f"must be YYYY-MM, not {text!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def _add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def mrr_policies(readme: Path | None = None) -> str:
    """The README's MRR policy section (the first heading mentioning MRR, up to the next heading
    of the same or a higher level), else :data:`DEFAULT_MRR_POLICIES`."""
    if readme is None:
        from meterworks.config import REPO_ROOT

        readme = REPO_ROOT / "README.md"
    try:
        lines = readme.read_text(encoding="utf-8").splitlines()
    except OSError:
        return DEFAULT_MRR_POLICIES
    section: list[str] = []
    level = 0
    for line in lines:
        heading = re.match(r"(#{2,6})\s+(.*)", line)
        if level:
            if heading and len(heading.group(1)) <= level:
                break
            section.append(line)
        elif heading and re.search(r"\bMRR\b", heading.group(2)):
            level = len(heading.group(1))
            section.append(line)
    text = "\n".join(section).strip()
    return text or DEFAULT_MRR_POLICIES


# --- reading the marts ---------------------------------------------------------------------


def _has_table(con, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def _rows(con, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


@dataclass(frozen=True)
class _MonthData:
    month: date
    currency: str
    bridge: dict[str, Any]
    customers: list[dict[str, Any]]
    trend: list[dict[str, Any]]


def check_mrr_data(con, month: date) -> None:
    """Raise :class:`ReportError` unless the MRR marts exist and have ``month`` (a cheap check
    the CLI runs before starting Dagster, so the user gets one line, not a failed run)."""
    for table in ("fct_mrr_movements", "fct_mrr"):
        if not _has_table(con, "marts", table):
            raise ReportError(f"the warehouse has no marts.{table}: run `meterworks build` first")
    found = con.execute(
        "select count(*) from marts.fct_mrr_movements where month = ?", [month]
    ).fetchone()[0]
    if not found:
        span = con.execute("select min(month), max(month) from marts.fct_mrr_movements").fetchone()
        have = f"{span[0]:%Y-%m}..{span[1]:%Y-%m}" if span[0] else "none"
        raise ReportError(
            f"no MRR data for {month:%Y-%m} in marts.fct_mrr_movements (months available: {have})"
        )


def _load(con, month: date) -> _MonthData:
    check_mrr_data(con, month)
    bridge_rows = _rows(
        con,
        "select * from marts.fct_mrr_movements where month = ? order by reporting_currency",
        [month],
    )
    if len(bridge_rows) > 1:
        currencies = ", ".join(str(r["reporting_currency"]) for r in bridge_rows)
        raise ReportError(f"{month:%Y-%m} has several reporting currencies ({currencies})")
    bridge = bridge_rows[0]
    currency = str(bridge["reporting_currency"]).lower()
    order = " ".join(f"when '{m}' then {i}" for i, m in enumerate(MOVEMENTS))
    customers = _rows(
        con,
        f"""
        select customer_id, movement, previous_mrr, mrr, mrr_change, currency, fx_rate
        from marts.fct_mrr
        where month = ? and lower(reporting_currency) = ? and movement is not null
        order by case movement {order} else 99 end, abs(mrr_change) desc, customer_id
        """,
        [month, currency],
    )
    trend = _rows(
        con,
        """
        select * from marts.fct_mrr_movements
        where month between ? and ? and lower(reporting_currency) = ?
        order by month
        """,
        [_add_months(month, -11), month, currency],
    )
    return _MonthData(month, currency, bridge, customers, trend)


def _fingerprint(data: _MonthData) -> str:
    """A digest of every figure the report shows: equal data, equal fingerprint."""
    digest = hashlib.sha256()
    for row in (data.bridge, *data.customers, *data.trend):
        digest.update(repr(sorted((k, str(v)) for k, v in row.items())).encode())
    return digest.hexdigest()[:16]


# --- amounts ------------------------------------------------------------------------------


def _major_exact(minor: Any, exponent: int) -> Decimal | None:
    value = _dec(minor)
    return None if value is None else value.scaleb(-exponent)


def _exact_text(minor: Any, exponent: int) -> str:
    """Exact major units, at least ``exponent`` decimals, no rounding (``'83.33333333'``)."""
    value = _major_exact(minor, exponent)
    if value is None:
        return ""
    if value == 0:
        value = Decimal(0)
    quantum = Decimal(1).scaleb(-exponent)
    if value == value.quantize(quantum):
        return format(value.quantize(quantum), "f")
    return format(value.normalize(), "f")


def _display(minor: Any, exponent: int) -> Decimal | None:
    """Minor units rounded half-up to a whole minor unit, in major units (for display only)."""
    value = _dec(minor)
    if value is None:
        return None
    return value.quantize(Decimal(1), rounding=ROUND_HALF_UP).scaleb(-exponent)


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value != 0 else "0"
    return str(value)


def _bridge_difference(bridge: dict[str, Any]) -> Decimal:
    """ending - (starting + new + expansion + reactivation - contraction - churn), exact."""
    total = sum(
        ((_dec(bridge[col]) or Decimal(0)) * sign for col, _, sign in BRIDGE_LINES), Decimal(0)
    )
    return (_dec(bridge[ENDING[0]]) or Decimal(0)) - total


def _customer_totals(customers: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Sum of customer ``mrr_change`` per bridge line, signed like the mart (churn positive)."""
    totals = {MOVEMENT_LINE[m]: Decimal(0) for m in MOVEMENTS}
    for row in customers:
        line = MOVEMENT_LINE.get(row["movement"])
        if line is not None:
            change = _dec(row["mrr_change"]) or Decimal(0)
            totals[line] += (
                change if line in ("new_mrr", "expansion_mrr", "reactivation_mrr") else -change
            )
    return totals


# --- CSV ----------------------------------------------------------------------------------


def _csv_bytes(data: _MonthData) -> bytes:
    exponent = minor_unit_exponent(data.currency)
    unit = data.currency.upper()
    month = f"{data.month:%Y-%m}"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def row(
        section: str,
        line: str = "",
        sign: str = "",
        value: str = "",
        unit_: str = "",
        **customer: str,
    ) -> None:
        cells = {
            "section": section,
            "month": month,
            "line": line,
            "sign": sign,
            "value": value,
            "unit": unit_,
            **customer,
        }
        writer.writerow([cells.get(column, "") for column in CSV_COLUMNS])

    for col, _, sign in BRIDGE_LINES:
        row("bridge", col, str(sign), _exact_text(data.bridge[col], exponent), unit)
    row("bridge", ENDING[0], "", _exact_text(data.bridge[ENDING[0]], exponent), unit)
    for col in COUNT_METRICS:
        row("metric", col, "", _plain(data.bridge.get(col)), "customers")
    for col, _ in AMOUNT_METRICS:
        row("metric", col, "", _exact_text(data.bridge.get(col), exponent), unit)
    for col, _ in RATIO_METRICS:
        row("metric", col, "", _plain(data.bridge.get(col)), "ratio")
    for c in data.customers:
        row(
            "customer",
            unit_=unit,
            customer_id=str(c["customer_id"]),
            movement=str(c["movement"]),
            previous_mrr=_exact_text(c["previous_mrr"] or 0, exponent),
            mrr=_exact_text(c["mrr"], exponent),
            mrr_change=_exact_text(c["mrr_change"], exponent),
            customer_currency=str(c["currency"] or "").upper(),
            fx_rate=_plain(c["fx_rate"]),
        )
    return out.getvalue().encode("utf-8")


# --- XLSX ---------------------------------------------------------------------------------


def _closed_at(month: date) -> datetime:
    """The instant the month closed: the workbook's created/modified time."""
    following = _add_months(month, 1)
    return datetime(following.year, following.month, 1)


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _xlsx_bytes(data: _MonthData, policies: str, fingerprint: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.writer.excel import ExcelWriter

    exponent = minor_unit_exponent(data.currency)
    unit = data.currency.upper()
    money_format = "#,##0" + ("." + "0" * exponent if exponent else "")
    percent_format = "0.00%"
    bold = Font(bold=True)
    wb = Workbook()

    # Summary ------------------------------------------------------------------------------
    ws = wb.active
    ws.title = "Summary"
    ws["A1"] = f"MRR report {data.month:%B %Y}"
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = (
        f"Amounts in {unit}, rounded half-up to whole minor units for display; decreases are "
        f"negative. Exact figures: mrr-{data.month:%Y-%m}.csv."
    )
    header = ["Bridge", f"Amount ({unit})", "Customers", f"Customer movements ({unit})", "Check"]
    ws.append([])
    ws.append(header)
    for cell in ws[4]:
        cell.font = bold
    totals = _customer_totals(data.customers)
    first = 5
    displayed: list[Decimal] = []
    for col, label, sign in BRIDGE_LINES:
        shown = (_display(data.bridge[col], exponent) or Decimal(0)) * sign
        displayed.append(shown)
        if col == "starting_mrr":
            ws.append([label, _num(shown), data.bridge.get(MOVEMENT_COUNT[col])])
        else:
            exact_match = totals[col] == (_dec(data.bridge[col]) or Decimal(0))
            ws.append(
                [
                    label,
                    _num(shown),
                    data.bridge.get(MOVEMENT_COUNT[col]),
                    _num((_display(totals[col], exponent) or Decimal(0)) * sign),
                    "OK" if exact_match else "DIFFERS",
                ]
            )
    ending_shown = _display(data.bridge[ENDING[0]], exponent) or Decimal(0)
    rounding = ending_shown - sum(displayed, Decimal(0))
    ws.append(["Display rounding (to whole minor units)", _num(rounding)])
    last = ws.max_row
    ending_row = last + 1
    ws.append(
        [
            "Ending MRR (bridge sum)",
            f"=SUM(B{first}:B{last})",
            data.bridge.get("ending_customers"),
        ]
    )
    ws.append(["Ending MRR (reported by marts.fct_mrr_movements)", _num(ending_shown)])
    ws.append(
        [
            "Bridge check (sum = reported)",
            f'=IF(ROUND(B{ending_row}-B{ending_row + 1},{exponent})=0,"OK","DOES NOT ADD UP")',
        ]
    )
    difference = _bridge_difference(data.bridge)
    ws.append(
        [
            "Bridge difference, exact (minor units)",
            _num(difference),
            None,
            None,
            "OK" if difference == 0 else "DOES NOT ADD UP",
        ]
    )
    for r in range(first, ending_row + 2):
        ws.cell(r, 2).number_format = money_format
        ws.cell(r, 4).number_format = money_format
    for r in (ending_row, ending_row + 1):
        ws.cell(r, 1).font = bold
        ws.cell(r, 2).font = bold
    ws.append([])
    ws.append(["Metrics", "Value"])
    ws.cell(ws.max_row, 1).font = bold
    ws.cell(ws.max_row, 2).font = bold
    for col in ("starting_customers", "ending_customers"):
        ws.append([col.replace("_", " ").capitalize(), data.bridge.get(col)])
    for col, label in AMOUNT_METRICS:
        ws.append([f"{label} ({unit})", _num(_display(data.bridge.get(col), exponent))])
        ws.cell(ws.max_row, 2).number_format = money_format
    for col, label in RATIO_METRICS:
        ws.append([label, _num(_dec(data.bridge.get(col)))])
        ws.cell(ws.max_row, 2).number_format = percent_format
    ws.column_dimensions["A"].width = 50
    for letter in "BCDE":
        ws.column_dimensions[letter].width = 22

    # Customer movements -------------------------------------------------------------------
    wc = wb.create_sheet("Customer movements")
    wc.append(
        [
            "Customer",
            "Movement",
            f"Previous MRR ({unit})",
            f"MRR ({unit})",
            f"Change ({unit})",
            "Billing currency",
            "FX rate",
        ]
    )
    for cell in wc[1]:
        cell.font = bold
    for c in data.customers:
        wc.append(
            [
                str(c["customer_id"]),
                str(c["movement"]),
                _num(_display(c["previous_mrr"] or 0, exponent)),
                _num(_display(c["mrr"], exponent)),
                _num(_display(c["mrr_change"], exponent)),
                str(c["currency"] or "").upper(),
                _num(_dec(c["fx_rate"])),
            ]
        )
        for column in (3, 4, 5):
            wc.cell(wc.max_row, column).number_format = money_format
    wc.freeze_panes = "A2"
    if data.customers:
        wc.auto_filter.ref = f"A1:G{wc.max_row}"
    for index, width in enumerate((24, 14, 20, 20, 20, 16, 12), start=1):
        wc.column_dimensions[get_column_letter(index)].width = width

    # Trend --------------------------------------------------------------------------------
    wt = wb.create_sheet("Trend")
    wt.append(
        [
            "Month",
            *(label for _, label, _ in BRIDGE_LINES),
            "Display rounding",
            ENDING[1],
            "Check",
            "Ending customers",
            "NRR",
            "GRR",
            f"Usage MRR ({unit})",
        ]
    )
    for cell in wt[1]:
        cell.font = bold
    for t in data.trend:
        shown = [(_display(t[col], exponent) or Decimal(0)) * sign for col, _, sign in BRIDGE_LINES]
        ending = _display(t[ENDING[0]], exponent) or Decimal(0)
        r = wt.max_row + 1
        wt.append(
            [
                f"{t['month']:%Y-%m}",
                *(_num(v) for v in shown),
                _num(ending - sum(shown, Decimal(0))),
                _num(ending),
                f'=IF(ROUND(SUM(B{r}:H{r})-I{r},{exponent})=0,"OK","DOES NOT ADD UP")',
                t.get("ending_customers"),
                _num(_dec(t.get("nrr"))),
                _num(_dec(t.get("grr"))),
                _num(_display(t.get("usage_mrr"), exponent)),
            ]
        )
        for column in (*range(2, 10), 14):
            wt.cell(r, column).number_format = money_format
        for column in (12, 13):
            wt.cell(r, column).number_format = percent_format
    wt.freeze_panes = "B2"
    for index in range(1, 15):
        wt.column_dimensions[get_column_letter(index)].width = 16

    # Notes --------------------------------------------------------------------------------
    wn = wb.create_sheet("Notes")
    wn.column_dimensions["A"].width = 120
    notes = [
        ("MRR report", True),
        (
            f"Month: {data.month:%Y-%m} (closed {_closed_at(data.month):%Y-%m-%d} 00:00 UTC). "
            f"Reporting currency: {unit}.",
            False,
        ),
        (
            "Source: DuckDB warehouse, marts.fct_mrr_movements (bridge, metrics, trend) and "
            "marts.fct_mrr (customer movements), as built by the last dbt run.",
            False,
        ),
        (
            f"Data fingerprint: {fingerprint} (SHA-256 of every figure shown; the same data gives "
            "the same fingerprint and the same file).",
            False,
        ),
        ("", False),
        ("How the figures are computed", True),
        (
            "The marts hold amounts in minor units of the reporting currency, exact to 6 decimals. "
            "This workbook shows them in major units rounded half-up to whole minor units; the "
            "'Display rounding' line absorbs the rounding so the bridge adds up on screen. The CSV "
            "carries the exact values.",
            False,
        ),
        (
            "Bridge: ending MRR = starting MRR + new + expansion + reactivation - contraction - "
            "churn (exact; the Summary shows the exact difference, 0).",
            False,
        ),
        (
            "Customer movements: every customer whose movement is not null that month; their "
            "changes add up to the bridge lines ('Check' column on the Summary, compared exactly).",
            False,
        ),
        (
            "ARR, ARPA, NRR, GRR (monthly and trailing 12 months) and the logo churn rate are "
            "taken as computed by marts.fct_mrr_movements: NRR = (starting + expansion - "
            "contraction - churn) / starting; GRR = (starting - contraction - churn) / starting; "
            "empty where undefined (no starting MRR).",
            False,
        ),
        (
            "Usage MRR (finalized metered invoice lines for services in the month) is shown beside "
            "recurring MRR and is not part of the bridge.",
            False,
        ),
        ("", False),
        ("MRR policies", True),
        *((line, False) for line in policies.splitlines()),
    ]
    for text, heading in notes:
        wn.append([text])
        cell = wn.cell(wn.max_row, 1)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        if heading:
            cell.font = bold

    # deterministic document properties (openpyxl's save_workbook would stamp the wall clock)
    closed = _closed_at(data.month)
    wb.properties.creator = "Meterworks"
    wb.properties.lastModifiedBy = "Meterworks"
    wb.properties.title = f"MRR report {data.month:%Y-%m}"
    wb.properties.created = closed
    wb.properties.modified = closed
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).write_data()
    return _deterministic_zip(raw.getvalue(), closed)


def _deterministic_zip(data: bytes, stamp: datetime) -> bytes:
    """The same archive with every entry's timestamp and attributes fixed."""
    date_time = (stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=date_time)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()


def _write_atomically(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def write_mrr_report(con, month: date, out_dir: Path, *, policies: str) -> ReportFiles:
    """Write ``mrr-YYYY-MM.csv`` and ``mrr-YYYY-MM.xlsx`` for ``month`` into ``out_dir``.

    ``con`` is a DuckDB connection to the warehouse (read-only is enough); ``policies`` is the
    MRR policy text printed on the Notes sheet (see :func:`mrr_policies`). Raises
    :class:`ReportError` when the month has no data.
    """
    month = date(month.year, month.month, 1)
    data = _load(con, month)
    fingerprint = _fingerprint(data)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"mrr-{month:%Y-%m}.csv"
    xlsx_path = out_dir / f"mrr-{month:%Y-%m}.xlsx"
    _write_atomically(csv_path, _csv_bytes(data))
    _write_atomically(xlsx_path, _xlsx_bytes(data, policies, fingerprint))
    totals = _customer_totals(data.customers)
    reconcile = all(totals[line] == (_dec(data.bridge[line]) or 0) for line in totals)
    return ReportFiles(
        csv=csv_path,
        xlsx=xlsx_path,
        reporting_currency=data.currency,
        ending_mrr_minor=_dec(data.bridge[ENDING[0]]) or Decimal(0),
        bridge_holds=_bridge_difference(data.bridge) == 0,
        customers_reconcile=reconcile,
        movers=len(data.customers),
        fingerprint=fingerprint,
    )
