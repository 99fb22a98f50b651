"""Row-for-row comparison of the tables dbt built on DuckDB and on Spark.

Spark keeps its managed tables as Parquet under ``<spark dir>/warehouse/<schema>.db/<table>``;
DuckDB reads those files directly, so the comparison is one DuckDB query per table
(``EXCEPT ALL`` both ways), with no Spark session. Values are compared exactly: decimals as
decimals (scale differences do not matter, 1.50 = 1.5), integers as integers, timestamps as
naive UTC, text as text; row order never matters, duplicate rows do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

#: The tables every build must produce on both engines (the public marts).
MARTS = (
    "dim_customers",
    "dim_meters",
    "fct_usage_hourly",
    "fct_usage_daily",
    "fct_meter_totals",
    "fct_projected_invoice",
    "fct_invoice_reconciliation",
    "fct_mrr",
    "fct_mrr_movements",
)


@dataclass
class TableDiff:
    table: str
    duckdb_rows: int
    spark_rows: int
    only_duckdb: int
    only_spark: int
    columns_only_duckdb: list[str] = field(default_factory=list)
    columns_only_spark: list[str] = field(default_factory=list)
    sample_only_duckdb: list[tuple] = field(default_factory=list)
    sample_only_spark: list[tuple] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return (
            not self.only_duckdb
            and not self.only_spark
            and not self.columns_only_duckdb
            and not self.columns_only_spark
        )

    def describe(self) -> str:
        if self.equal:
            return f"{self.table}: {self.duckdb_rows} rows, equal"
        parts = [
            f"{self.table}: duckdb {self.duckdb_rows} rows, spark {self.spark_rows} rows, "
            f"{self.only_duckdb} only on duckdb, {self.only_spark} only on spark"
        ]
        if self.columns_only_duckdb or self.columns_only_spark:
            parts.append(
                f"  columns only on duckdb {self.columns_only_duckdb}, "
                f"only on spark {self.columns_only_spark}"
            )
        parts += [f"  duckdb: {row}" for row in self.sample_only_duckdb]
        parts += [f"  spark:  {row}" for row in self.sample_only_spark]
        return "\n".join(parts)


def spark_table_path(spark_warehouse: Path, schema: str, table: str) -> Path:
    return spark_warehouse / f"{schema}.db" / table


def _normalised(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str]) -> str:
    """Columns in one order, in types both engines' values compare exactly in."""
    types = dict(
        con.execute(f"select column_name, column_type from (describe {relation})").fetchall()
    )
    out = []
    for name in columns:
        kind = types[name].upper()
        quoted = f'"{name}"'
        if kind.startswith("DECIMAL") or kind in ("HUGEINT", "BIGINT", "INTEGER", "SMALLINT"):
            out.append(f"cast({quoted} as decimal(38, 12)) as {quoted}")
        elif kind.startswith("TIMESTAMP"):
            out.append(f"cast({quoted} as timestamp) as {quoted}")
        elif kind == "JSON":
            out.append(f"cast({quoted} as varchar) as {quoted}")
        else:
            out.append(quoted)
    return f"select {', '.join(out)} from {relation}"


def compare_table(
    warehouse: Path, spark_warehouse: Path, table: str, schema: str = "marts", sample: int = 5
) -> TableDiff:
    path = spark_table_path(spark_warehouse, schema, table)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(
            f"create temp view spark_side as select * from read_parquet('{path}/**/*.parquet', "
            "hive_partitioning = true, union_by_name = true)"
        )
        duck_rel = f"{schema}.{table}"
        duck_cols = [r[0] for r in con.execute(f"describe {duck_rel}").fetchall()]
        spark_cols = [r[0] for r in con.execute("describe spark_side").fetchall()]
        common = [c for c in duck_cols if c in spark_cols]
        left = _normalised(con, duck_rel, common)
        right = _normalised(con, "spark_side", common)
        only_duck = con.execute(f"select * from ({left} except all {right})").fetchall()
        only_spark = con.execute(f"select * from ({right} except all {left})").fetchall()
        return TableDiff(
            table=f"{schema}.{table}",
            duckdb_rows=con.execute(f"select count(*) from {duck_rel}").fetchone()[0],
            spark_rows=con.execute("select count(*) from spark_side").fetchone()[0],
            only_duckdb=len(only_duck),
            only_spark=len(only_spark),
            columns_only_duckdb=[c for c in duck_cols if c not in spark_cols],
            columns_only_spark=[c for c in spark_cols if c not in duck_cols],
            sample_only_duckdb=sorted(only_duck, key=repr)[:sample],
            sample_only_spark=sorted(only_spark, key=repr)[:sample],
        )
    finally:
        con.close()


def spark_tables(spark_warehouse: Path, schema: str) -> list[str]:
    folder = spark_warehouse / f"{schema}.db"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def compare_all(
    warehouse: Path, spark_warehouse: Path, schemas: tuple[str, ...] = ("marts", "intermediate")
) -> list[TableDiff]:
    """Every table Spark built in ``schemas`` against the DuckDB table of the same name."""
    diffs = []
    for schema in schemas:
        for table in spark_tables(spark_warehouse, schema):
            diffs.append(compare_table(warehouse, spark_warehouse, table, schema))
    return diffs
