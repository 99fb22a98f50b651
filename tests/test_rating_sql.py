"""The dbt rating macro (``dbt/macros/rating.sql``) against the Python engine, without dbt.

The macro file is rendered with a small Jinja environment that stands in for dbt's context:
``return()``, ``adapter.dispatch`` (``duckdb__`` then ``default__`` implementations, as dbt picks
them) and the one ``dbt.*`` type macro it uses. The rendered SELECT runs in an in-memory DuckDB
over the case table of ``test_pricing.py`` and over ~2,000 seeded random prices x quantities;
every row must equal ``meterworks.pricing.rate`` to the cent. The ``spark``-marked test runs
the Spark rendering (``spark__`` variants) the same way in a local Spark session.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import jinja2
import pytest

from meterworks.pricing import Price, Tier, price_row, rate, tier_rows
from tests.test_pricing import CASES

MACROS = Path(__file__).resolve().parent.parent / "dbt" / "macros" / "rating.sql"
TWELVE_PLACES = Decimal("1e-12")
D = Decimal


# -- a minimal dbt context ---------------------------------------------------------------------


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


def _return(value: Any) -> None:
    raise _Return(value)


def _callable(macro: Callable[..., Any]) -> Callable[..., Any]:
    """Call a Jinja macro the way dbt does: ``{{ return(x) }}`` makes the call's value x."""

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return macro(*args, **kwargs)
        except _Return as result:
            return result.value

    return call


def load_macros(adapter_type: str = "duckdb") -> SimpleNamespace:
    """The macros of rating.sql as callables, under a stand-in dbt context."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    meterworks = SimpleNamespace()

    def dispatch(name: str, macro_namespace: str | None = None) -> Callable[..., Any]:
        assert macro_namespace == "meterworks"
        for candidate in (f"{adapter_type}__{name}", f"default__{name}"):
            if hasattr(meterworks, candidate):
                return getattr(meterworks, candidate)
        raise AssertionError(f"no implementation of {name} for {adapter_type}")

    env.globals.update(
        {
            "return": _return,
            "adapter": SimpleNamespace(dispatch=dispatch),
            "dbt": SimpleNamespace(type_bigint=lambda: "bigint"),
            "meterworks": meterworks,
        }
    )
    module = env.from_string(MACROS.read_text(encoding="utf-8")).module
    for name in dir(module):
        macro = getattr(module, name)
        if isinstance(macro, jinja2.runtime.Macro):
            setattr(meterworks, name, _callable(macro))
    return meterworks


def render_rate_usage(quantities: str, prices: str, tiers: str) -> str:
    return str(load_macros().rate_usage(quantities, prices, tiers))


# -- the warehouse side ------------------------------------------------------------------------


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        columns = list(rows[0])
        con.executemany(
            f"insert into {table} ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
            [[row[column] for column in columns] for row in rows],
        )


def load_tables(
    con: duckdb.DuckDBPyConnection,
    prices: Iterable[Price],
    quantities: Sequence[tuple[int, str, Decimal]],
) -> None:
    """The prices and tiers relations (the lead's column contracts) and a quantities table."""
    prices = list(prices)
    con.execute(
        """
        create or replace table prices (
            price_id varchar, currency varchar, billing_scheme varchar, tiers_mode varchar,
            unit_amount_decimal decimal(38, 12), divide_by bigint, round_mode varchar
        );
        create or replace table tiers (
            price_id varchar, tier_index integer, up_to decimal(38, 12),
            unit_amount_decimal decimal(38, 12), flat_amount_decimal decimal(38, 12)
        );
        create or replace table quantities (
            rating_key integer, price_id varchar, quantity decimal(38, 9), note varchar
        );
        """
    )
    _insert(con, "prices", [price_row(price) for price in prices])
    _insert(con, "tiers", tier_rows(prices))
    _insert(
        con,
        "quantities",
        [
            {"rating_key": key, "price_id": price_id, "quantity": quantity, "note": f"row {key}"}
            for key, price_id, quantity in quantities
        ],
    )


def run_macro(con: duckdb.DuckDBPyConnection) -> dict[int, tuple]:
    sql = render_rate_usage("quantities", "prices", "tiers")
    relation = con.sql(sql)
    assert relation.columns == [
        "rating_key",
        "price_id",
        "quantity",
        "note",
        "billed_quantity",
        "amount_unrounded",
        "amount",
    ]
    assert [str(t) for t in relation.types[-3:]] == [
        "DECIMAL(38,9)",
        "DECIMAL(38,12)",
        "BIGINT",
    ]
    return {row[0]: row for row in relation.fetchall()}


def assert_agrees(row: tuple, price: Price, quantity: Decimal, label: str) -> None:
    expected = rate(price, quantity)
    _, _, _, _, billed, unrounded, amount = row
    assert amount == expected.amount, f"{label}: SQL {amount} != Python {expected.amount}"
    assert billed == expected.billed_quantity, label
    assert unrounded == expected.unrounded.quantize(TWELVE_PLACES, ROUND_HALF_UP), label


# -- tests -------------------------------------------------------------------------------------


def test_rendered_sql_is_plain_sql() -> None:
    sql = render_rate_usage("quantities", "prices", "tiers")
    assert "{{" not in sql and "{%" not in sql
    assert sql.lstrip().startswith("with rating__input as (")
    assert "// (divide_by)" in sql  # exact integer division, not a float


def test_rendered_sql_passes_the_project_sqlfluff_rules() -> None:
    """sqlfluff's dbt templater skips macro files, so lint what the macro renders to."""
    sqlfluff = pytest.importorskip("sqlfluff.core")
    config = sqlfluff.FluffConfig.from_path(
        str(MACROS.parents[2]), overrides={"templater": "raw", "dialect": "duckdb"}
    )
    sql = render_rate_usage("quantities", "prices", "tiers").strip() + "\n"
    violations = sqlfluff.Linter(config=config).lint_string(sql).get_violations()
    assert [(v.rule_code(), v.line_no, v.desc()) for v in violations] == []


def test_spark_gets_its_own_integer_division() -> None:
    assert str(load_macros("spark").integer_divide("a", "b")).strip() == "((a) div (b))"


def documented_tables() -> tuple[list[Price], list[tuple[int, str, Decimal]]]:
    """The case table of ``test_pricing.py``: its prices, and one quantity row per case."""
    prices = {case.price.price_id: case.price for case in CASES}
    quantities = [(key, case.price.price_id, case.quantity) for key, case in enumerate(CASES)]
    return list(prices.values()), quantities


def assert_documented(rows: dict[int, tuple]) -> None:
    assert len(rows) == len(CASES)
    for key, case in enumerate(CASES):
        assert rows[key][6] == case.amount, case.id
        assert_agrees(rows[key], case.price, case.quantity, case.id)


def test_documented_examples_in_sql() -> None:
    con = duckdb.connect()
    load_tables(con, *documented_tables())
    assert_documented(run_macro(con))


def test_rows_that_cannot_be_rated_get_no_amount() -> None:
    con = duckdb.connect()
    price = CASES[0].price
    load_tables(
        con,
        [price],
        [(1, price.price_id, Decimal(5)), (2, "price_unknown", Decimal(5))],
    )
    con.execute(
        "insert into quantities values (3, $p, -1, 'negative'), (4, $p, null, 'null')",
        {"p": price.price_id},
    )
    rows = run_macro(con)
    assert rows[1][6] == rate(price, 5).amount
    assert [rows[key][4:] for key in (2, 3, 4)] == [(None, None, None)] * 3
    assert rows[2][:4] == (2, "price_unknown", Decimal("5.000000000"), "row 2")  # row kept


# -- property: random prices x quantities ------------------------------------------------------


def _amount(rng: random.Random) -> Decimal:
    """A minor-unit amount: whole cents, sub-cent decimals up to 12 places, or exact halves."""
    kind = rng.random()
    if kind < 0.3:
        return Decimal(rng.randint(0, 5000))
    if kind < 0.45:
        return Decimal(rng.randint(0, 20)) + Decimal("0.5")
    places = rng.randint(1, 12)
    return Decimal(rng.randint(0, 10 ** (places + 2))).scaleb(-places)


def _random_price(rng: random.Random, index: int) -> Price:
    currency = rng.choice(["usd", "usd", "eur", "jpy"])
    price_id = f"price_{index}"
    if rng.random() < 0.4:
        divide_by = rng.choice([None, None, 1, 5, 60, 1000, 10**6])
        round_mode = rng.choice(["up", "down"]) if divide_by else None
        return Price(currency, "per_unit", _amount(rng), None, (), divide_by, round_mode, price_id)
    bounds = sorted(rng.sample(range(1, 2000), rng.randint(0, 4)))
    if rng.random() < 0.2:
        bounds = [b * 10**6 for b in bounds]
    tiers = []
    for up_to in [*bounds, None]:
        unit = _amount(rng) if rng.random() < 0.85 else None
        flat = _amount(rng) if (rng.random() < 0.35 or unit is None) else None
        tiers.append(Tier(None if up_to is None else Decimal(up_to), unit, flat))
    mode = rng.choice(["graduated", "volume"])
    return Price(currency, "tiered", None, mode, tuple(tiers), price_id=price_id)


def _random_quantity(rng: random.Random, price: Price) -> Decimal:
    kind = rng.random()
    bounds = [t.up_to for t in price.tiers if t.up_to is not None]
    if kind < 0.1:
        return Decimal(0)
    if kind < 0.35 and bounds:
        return rng.choice(bounds) + rng.choice([-1, 0, 0, 1])  # on and around tier boundaries
    if kind < 0.6:
        return Decimal(rng.randint(0, 10**9)).scaleb(-rng.randint(0, 9))  # up to 9 places
    if kind < 0.7:
        return Decimal(rng.randint(10**9, 10**12))  # large
    return Decimal(rng.randint(0, 5000))


def random_cases() -> tuple[list[Price], list[tuple[int, str, Decimal]]]:
    """~2,000 seeded random quantities of 400 random prices."""
    rng = random.Random(20240611)
    prices = [_random_price(rng, index) for index in range(400)]
    quantities = [
        (key, price.price_id, max(Decimal(0), _random_quantity(rng, price)))
        for key, price in enumerate(rng.choice(prices) for _ in range(2000))
    ]
    return prices, quantities


def assert_random_cases_agree(
    rows: dict[int, tuple], prices: list[Price], quantities: list[tuple[int, str, Decimal]]
) -> None:
    by_id = {price.price_id: price for price in prices}
    assert len(rows) == len(quantities)
    half_cents = 0
    for key, price_id, quantity in quantities:
        price = by_id[price_id]
        assert_agrees(rows[key], price, quantity, f"{price} x {quantity}")
        half_cents += rate(price, quantity).unrounded % 1 == Decimal("0.5")
    assert half_cents >= 20  # the half-up rule was exercised, not just the easy cases


def test_sql_matches_python_on_random_prices() -> None:
    prices, quantities = random_cases()
    con = duckdb.connect()
    load_tables(con, prices, quantities)
    assert_random_cases_agree(run_macro(con), prices, quantities)


# -- a hair below half a minor unit ------------------------------------------------------------

_ENTERPRISE = Price(
    "usd",
    "tiered",
    None,
    "volume",
    (Tier(D("15000"), D("0.8"), D("100000")), Tier(None, D("0.6"), D("100000"))),
    price_id="enterprise_volume",
)
_SECOND_UNIT_HALF = Price(
    "usd",
    "tiered",
    None,
    "graduated",
    (Tier(D("1"), D("0")), Tier(None, D("0.5"))),
    price_id="second_unit_half",
)
#: (label, price, quantity, amount): exact amounts a hair below .5, where an engine that drops
#: decimal places on the way rounds up. The first is the demo's projected invoice that Spark
#: once billed 109118 (15195.833333333 x 0.6 = 9117.4999999998).
HALF_CENT_EDGES = [
    ("volume", _ENTERPRISE, D("15195.833333333"), 109117),
    (
        "per_unit",
        Price("usd", "per_unit", D("0.6"), price_id="six_tenths"),
        D("15195.833333333"),
        9117,
    ),
    ("graduated", _SECOND_UNIT_HALF, D("1.999999999"), 0),
    ("graduated-above", _SECOND_UNIT_HALF, D("2.000000001"), 1),
]


def edge_tables() -> tuple[list[Price], list[tuple[int, str, Decimal]]]:
    prices = {price.price_id: price for _, price, _, _ in HALF_CENT_EDGES}
    quantities = [
        (key, price.price_id, quantity)
        for key, (_, price, quantity, _) in enumerate(HALF_CENT_EDGES)
    ]
    return list(prices.values()), quantities


def assert_edges(rows: dict[int, tuple]) -> None:
    for key, (label, price, quantity, amount) in enumerate(HALF_CENT_EDGES):
        assert rate(price, quantity).amount == amount, f"the Python reference, {label}"
        assert rows[key][6] == amount, label
        assert_agrees(rows[key], price, quantity, label)


def test_amounts_a_hair_below_half_round_down() -> None:
    con = duckdb.connect()
    load_tables(con, *edge_tables())
    assert_edges(run_macro(con))


@pytest.mark.parametrize("mode", ["graduated", "volume"])
def test_price_without_tiers_rows_gets_no_amount(mode: str) -> None:
    con = duckdb.connect()
    price = Price("usd", "tiered", None, mode, (Tier(None, Decimal(1)),), price_id="p")
    load_tables(con, [price], [(1, "p", Decimal(3))])
    con.execute("delete from tiers")
    assert run_macro(con)[1][4:] == (Decimal(3), None, None)


# -- the same SQL on Apache Spark --------------------------------------------------------------
#
# Spark types decimal products and sums by its own rules (decimal(38, 9) x decimal(38, 12) is
# decimal(38, 6)), so the Spark rendering of the macro is held to the same Python reference.

_SPARK_TABLES = {
    "prices": "price_id string, currency string, billing_scheme string, tiers_mode string, "
    "unit_amount_decimal decimal(38, 12), divide_by bigint, round_mode string",
    "tiers": "price_id string, tier_index int, up_to decimal(38, 12), "
    "unit_amount_decimal decimal(38, 12), flat_amount_decimal decimal(38, 12)",
    "quantities": "rating_key int, price_id string, quantity decimal(38, 9), note string",
}


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    from pyspark.sql import SparkSession

    from meterworks.engine.spark import _java_home

    java_home = _java_home()
    if java_home is None:
        pytest.skip("no Java runtime (Spark needs Java 17)")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JAVA_HOME", java_home)
        env.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        session = (
            SparkSession.builder.master("local[1]")
            .appName("meterworks-rating-test")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
            .getOrCreate()
        )
        yield session
        session.stop()


def run_macro_on_spark(
    session: Any, prices: Iterable[Price], quantities: Sequence[tuple[int, str, Decimal]]
) -> dict[int, tuple]:
    prices = list(prices)
    rows = {
        "prices": [tuple(price_row(price).values()) for price in prices],
        "tiers": [tuple(row.values()) for row in tier_rows(prices)],
        "quantities": [(key, price_id, q, f"row {key}") for key, price_id, q in quantities],
    }
    for table, schema in _SPARK_TABLES.items():
        session.createDataFrame(rows[table], schema).createOrReplaceTempView(table)
    sql = str(load_macros("spark").rate_usage("quantities", "prices", "tiers"))
    result = session.sql(sql)
    assert [(f.name, f.dataType.simpleString()) for f in result.schema.fields][-3:] == [
        ("billed_quantity", "decimal(38,9)"),
        ("amount_unrounded", "decimal(38,12)"),
        ("amount", "bigint"),
    ]
    return {row[0]: tuple(row) for row in result.collect()}


@pytest.mark.spark
@pytest.mark.parametrize("ansi", ["true", "false"])  # the session target and the Thrift Server
def test_spark_rating_matches_python(spark: Any, ansi: str) -> None:
    spark.conf.set("spark.sql.ansi.enabled", ansi)
    assert_edges(run_macro_on_spark(spark, *edge_tables()))
    assert_documented(run_macro_on_spark(spark, *documented_tables()))
    prices, quantities = random_cases()
    assert_random_cases_agree(run_macro_on_spark(spark, prices, quantities), prices, quantities)
